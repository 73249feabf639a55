"""Command line: ``albert-onnx export`` (needs the [export] extra), ``fill-mask``, ``score``, ``predict``,
``batch`` and ``bench``."""

from __future__ import annotations

import argparse
import json
import math
import sys
import unicodedata
from pathlib import Path
from typing import Any

from . import __version__
from .artifact import DEFAULT_SOURCE, PRECISIONS
from .engine.int8_form import INT8_WEIGHTS
from .engine.io import TASKS
from .engine.session import PROVIDER_NAMES
from .errors import AlbertOnnxError, InputError
from .tasks.zero_shot import DEFAULT_TEMPLATE

# argparse prints DESCRIPTION, not the docstring: help stays plain text
DESCRIPTION = ("Export ALBERT models to ONNX (export, needs the [export] extra) and run them: fill-mask, score, "
               "predict (any task), batch (bulk jobs), serve (an HTTP server) and bench.")
EXPORT_TASKS = ("auto", *TASKS)


def _runtime_options(p: argparse.ArgumentParser, texts: str = "+") -> None:
    p.add_argument("artifact", help="artifact folder written by `albert-onnx export`")
    p.add_argument("texts", nargs=texts, metavar="TEXT")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--provider", choices=PROVIDER_NAMES, default="cpu")
    p.add_argument("--threads", type=int, default=None)
    _int8_weights_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")


def _int8_weights_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--int8-weights", choices=INT8_WEIGHTS, default="auto",
                   help="int8 weight form in the session (default auto: the exact and fastest int8 kernel "
                        "on this CPU; int8 / uint8 force one, converted at load)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="albert-onnx", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"albert-onnx {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("export", help="export a Hugging Face ALBERT checkpoint to an artifact folder")
    e.add_argument("source", nargs="?", default=DEFAULT_SOURCE,
                   help=f"hub id or local model folder (default {DEFAULT_SOURCE})")
    e.add_argument("-o", "--output", required=True, help="artifact folder to create")
    e.add_argument("--task", choices=EXPORT_TASKS, default="auto",
                   help="the head to export (default auto: from the checkpoint's architecture)")
    e.add_argument("--quantize", choices=["int8"], help="also write a dynamic int8 graph")
    e.add_argument("--int8-min-agreement", type=float, default=None, metavar="X",
                   help="int8 gate for the task (default: fill-mask top-1 0.90, classification top label "
                        "0.97, embeddings mean cosine 0.99); 0 turns it off")
    e.add_argument("--int8-weights", choices=["int8", "uint8"], default="int8",
                   help="weight form stored in the int8 file (default int8, what VNNI / AMX and ARM CPUs run as it "
                        "is). Either form serves every CPU with the same answers: the runtime converts it at load")
    e.add_argument("--fp16", action="store_true", help="also write a float16 graph (for CUDA)")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    e.add_argument("--revision", help="hub revision: branch, tag or commit")
    e.add_argument("--atol", type=float, default=1e-4,
                   help="largest |Δ| of the outputs against PyTorch accepted (default 1e-4)")
    e.add_argument("--force", action="store_true", help="replace an existing output folder")

    f = sub.add_parser("fill-mask", help="predict the [MASK] tokens of texts (fill-mask artifacts)")
    _runtime_options(f)
    f.add_argument("--top-k", type=int, default=5)

    s = sub.add_parser("score", help="pseudo-log-likelihood of texts (fill-mask artifacts)")
    _runtime_options(s)
    s.add_argument("--per-token", action="store_true", help="the log-probability of every token")

    b = sub.add_parser("batch", help="run an artifact's task over a file or folder of texts, into Parquet")
    b.add_argument("artifact", help="artifact folder written by `albert-onnx export` (ray, spark: or its URI)")
    b.add_argument("input", help=".txt (a text a line), .jsonl or .parquet file, or a folder of them "
                   "(ray, spark: or a glob, and URIs: file://, s3://, gs://, hdfs://...)")
    b.add_argument("-o", "--output", required=True, help="output folder of Parquet parts (ray, spark: or a URI)")
    b.add_argument("--engine", choices=["local", "ray", "spark"], default="local")
    b.add_argument("--workers", type=int, default=None,
                   help="worker processes / actors (default: cores / threads; ray and spark: 2)")
    b.add_argument("--threads", type=int, default=None,
                   help="ONNX Runtime threads per worker (default: cores / workers; ray and spark: 1)")
    b.add_argument("--text-column", default="text")
    b.add_argument("--id-column", default="id")
    b.add_argument("--precision", choices=PRECISIONS, default="fp32")
    b.add_argument("--provider", choices=PROVIDER_NAMES, default="cpu", help="local engine only")
    _int8_weights_option(b)
    b.add_argument("--task", choices=["auto", "score"], default="auto",
                   help="score: pseudo-log-likelihood on a fill-mask artifact (default: the artifact's task)")
    b.add_argument("--part-rows", type=int, default=2000, help="rows per output part (and per engine task)")
    b.add_argument("--resume", action="store_true",
                   help="ray, spark: finish an unfinished run of the same job, and keep this run's parts if it "
                        "fails (the local engine always resumes)")
    b.add_argument("--address", default=None, help="ray engine: join this cluster (default: start a local one)")
    b.add_argument("--runtime-env", default=None, metavar="JSON",
                   help="ray engine: the workers' runtime_env, as JSON (for example their pip packages)")
    b.add_argument("--master", default=None,
                   help="spark engine: master URL (default local[workers], or spark-submit's)")
    b.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="spark engine: a Spark setting (spark.pyspark.python=..., spark.archives=...); repeatable")
    b.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _task_options(b)

    m = sub.add_parser("bench", help="latency, throughput, cold start and memory of an artifact (light install)")
    m.add_argument("artifact", help="artifact folder written by `albert-onnx export`")
    m.add_argument("--precision", action="append", choices=PRECISIONS, default=None,
                   help="precision to time; repeat for several (default fp32)")
    m.add_argument("--lengths", default=None,
                   help="comma-separated token counts (default 8,16,32,64,128, those the model takes)")
    m.add_argument("--batch", type=int, default=32, help="texts in the throughput run (default 32)")
    m.add_argument("--threads", type=int, default=None)
    _int8_weights_option(m)
    m.add_argument("--calls", type=int, default=30, help="calls per round at 32 tokens or fewer (default 30)")
    m.add_argument("--rounds", type=int, default=3)
    m.add_argument("--no-cold-start", action="store_true", help="skip the cold-start and memory run")
    m.add_argument("--json", dest="json_file", metavar="FILE", help="write the report as JSON")
    m.add_argument("--markdown", metavar="FILE", help="write the report as Markdown (for CI summary pages)")
    m.add_argument("--baseline", metavar="OLD.json", help="fail when a figure regressed against this report")
    m.add_argument("--max-slowdown", type=float, default=1.25,
                   help="with --baseline: the largest normalized slow-down accepted (default 1.25)")

    v = sub.add_parser("serve", help="an HTTP server for the artifact (needs the [serve] extra)")
    v.add_argument("artifact", help="artifact folder written by `albert-onnx export`")
    v.add_argument("--task", choices=["zero-shot-classification"], default=None,
                   help="serve an NLI classifier as zero-shot classification (default: the artifact's task)")
    v.add_argument("--precision", choices=PRECISIONS, default="fp32")
    v.add_argument("--provider", choices=PROVIDER_NAMES, default="cpu")
    v.add_argument("--threads", type=int, default=None)
    _int8_weights_option(v)
    v.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--max-batch-size", type=int, default=32, help="inputs merged into one model run")
    v.add_argument("--max-wait-ms", type=float, default=0.0,
                   help="fp32/fp16: how long a request waits for others to share its run (default 0)")
    v.add_argument("--max-queue", type=int, default=64, help="waiting requests beyond which the answer is 503")
    v.add_argument("--max-inputs", type=int, default=64, help="inputs one request may hold (413 beyond)")
    v.add_argument("--max-body-bytes", type=int, default=2_000_000, help="the largest request body (413 beyond)")
    v.add_argument("--api-key-env", default=None, metavar="NAME",
                   help="environment variable holding the key requests send as 'Authorization: Bearer KEY'")
    v.add_argument("--drain-seconds", type=float, default=30.0,
                   help="on SIGTERM: how long requests in flight may take to finish")
    v.add_argument("--engine", choices=["uvicorn", "ray"], default="uvicorn",
                   help="ray: a Ray Serve application of --replicas copies (needs ray[serve])")
    v.add_argument("--replicas", type=int, default=1, help="ray engine: copies of the model (one per core or two)")
    v.add_argument("--address", default=None, help="ray engine: join this cluster (default: a local Ray)")

    r = sub.add_parser("predict", help="run whatever task the artifact holds on texts (or questions)")
    _runtime_options(r, texts="*")
    r.add_argument("--text-pair", action="append", default=None, metavar="PAIR",
                   help="text classification: second text of each pair, once per TEXT")
    r.add_argument("--question", action="append", default=None, metavar="Q",
                   help="question answering: a question (repeat for several); multiple choice: use TEXT")
    r.add_argument("--context", action="append", default=None, metavar="C",
                   help="question answering: the context, once, or once per --question")
    r.add_argument("--choices", nargs="+", default=None, metavar="CHOICE",
                   help="multiple choice: the choices of each TEXT (the question)")
    _task_options(r)
    return p


def _task_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top-k", type=int, default=None,
                   help="fill-mask: candidates per mask (default 5); text classification: labels "
                        "per text (default: the best one)")
    p.add_argument("--all-labels", action="store_true", help="text classification: every label, best first")
    p.add_argument("--function-to-apply", choices=["softmax", "sigmoid", "none"], default=None,
                   help="text classification: default from the model's problem type")
    p.add_argument("--aggregation-strategy", choices=["none", "simple", "first", "average", "max"],
                   default="none", help="token classification (default none)")
    p.add_argument("--pooling", choices=["cls", "mean", "none"], default="cls",
                   help="feature extraction (default cls)")
    p.add_argument("--normalize", action="store_true", help="feature extraction: unit-length vectors")
    p.add_argument("--per-token", action="store_true", help="scoring: the log-probability of every token")
    p.add_argument("--stride", type=int, default=None,
                   help="token classification: tag long texts in windows sharing this many tokens")
    p.add_argument("--truncation", action="store_true",
                   help="text classification, feature extraction: cut texts longer than the model takes")
    p.add_argument("--labels", default=None,
                   help="zero-shot classification on an NLI artifact: comma-separated candidate labels")
    p.add_argument("--hypothesis-template", default=DEFAULT_TEMPLATE,
                   help=f"zero-shot: the hypothesis, {{}} for the label (default {DEFAULT_TEMPLATE!r})")
    p.add_argument("--multi-label", action="store_true", help="zero-shot: score each label on its own")
    p.add_argument("--doc-stride", type=int, default=None,
                   help="question answering: tokens shared by windows of a long context")
    p.add_argument("--max-answer-len", type=int, default=15, help="question answering: longest answer in tokens")
    p.add_argument("--max-seq-len", type=int, default=None, help="question answering: tokens per window")
    p.add_argument("--handle-impossible-answer", action="store_true",
                   help="question answering: the empty answer may win")
    p.add_argument("--no-align-to-words", dest="align_to_words", action="store_false",
                   help="question answering: answers exactly as predicted, not grown to space-separated words "
                        "(what unspaced Japanese wants)")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 error, 2 usage)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "export":
            return _export(args)
        if args.command == "fill-mask":
            return _fill_mask(args)
        if args.command == "score":
            return _score(args)
        if args.command == "batch":
            return _batch(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "serve":
            return _serve(args)
        return _predict(args)
    except AlbertOnnxError as exc:
        print(f"albert-onnx: error: {exc}", file=sys.stderr)
        return 1


def _export(args: argparse.Namespace) -> int:
    try:
        from albert_onnx.export import export_model
    except ImportError as exc:
        print(f"albert-onnx: error: the export needs the heavy dependencies ({exc.name} is "
              "missing); install them with: pip install 'albert-onnx[export]'", file=sys.stderr)
        return 1
    export_model(args.source, args.output, quantize=args.quantize, fp16=args.fp16, task=args.task,
                 int8_min_agreement=args.int8_min_agreement, int8_weights=args.int8_weights, opset=args.opset,
                 revision=args.revision, atol=args.atol, overwrite=args.force)
    return 0


def _open(args: argparse.Namespace, cls: Any = None, task: str | None = None) -> Any:
    from .tasks import pipeline

    options = dict(precision=args.precision, provider=args.provider, threads=args.threads,
                   int8_weights=args.int8_weights)
    predictor = cls(args.artifact, **options) if cls is not None else pipeline(args.artifact, task, **options)
    if predictor.fallback_note:
        print(f"albert-onnx: {predictor.fallback_note}", file=sys.stderr)
    return predictor


def _options(args: argparse.Namespace, **fixed: Any) -> Any:
    from .tasks.results import TaskOptions

    names = ("per_token", "top_k", "all_labels", "function_to_apply", "aggregation_strategy", "pooling", "normalize",
             "truncation", "stride", "hypothesis_template", "multi_label", "doc_stride", "max_answer_len",
             "max_seq_len", "handle_impossible_answer", "align_to_words")
    values = {n: getattr(args, n) for n in names if hasattr(args, n)}
    if getattr(args, "labels", None) is not None:
        values["labels"] = tuple(x.strip() for x in args.labels.split(",") if x.strip())
    return TaskOptions(**values, **fixed)


def _fill_mask(args: argparse.Namespace) -> int:
    from .tasks import FillMask
    from .tasks.results import json_results

    fm = _open(args, FillMask)
    if args.json:
        print(json.dumps(json_results(fm, args.texts, _options(args)), ensure_ascii=False))
        return 0
    _print_fill_mask(args.texts, fm.fill(args.texts, top_k=args.top_k))
    return 0


def _score(args: argparse.Namespace) -> int:
    from .tasks import FillMask
    from .tasks.results import json_results

    fm = _open(args, FillMask)
    if args.json:
        print(json.dumps(json_results(fm, args.texts, _options(args, score=True)), ensure_ascii=False))
        return 0
    tokens = fm.score(args.texts, per_token=True)
    width = max(_display_width(t) for t in args.texts)
    for text, row in zip(args.texts, tokens):
        total = sum(lp for _, lp in row)
        print(f"{_pad(text, width)}  PLL {total:9.3f}  pseudo-perplexity {math.exp(-total / len(row)):10.3f}")
        if args.per_token:
            for token, lp in row:
                print(f"    {_pad(token, 12)} {lp:8.3f}")
    return 0


def _display_width(text: str) -> int:
    """Columns a terminal gives ``text``: East Asian wide and full-width characters count double."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1
               for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _display_width(text))


def _print_fill_mask(texts: list[str], results: list[Any]) -> None:
    for text, masks in zip(texts, results):
        print(text)
        for m, cands in enumerate(masks, 1):
            print(f"  [MASK] #{m}:")
            for rank, c in enumerate(cands, 1):
                print(f"    {rank}. {_pad(c['token_str'], 12)} {c['score']:.4f}")


def _batch(args: argparse.Namespace) -> int:
    from .engine.encoder import check_positive_int

    options = _options(args, score=args.task == "score")
    for name in ("workers", "threads", "part_rows"):
        if getattr(args, name) is not None:
            check_positive_int(f"--{name.replace('_', '-')}", getattr(args, name))
    common = dict(options=options, precision=args.precision, text_column=args.text_column,
                  id_column=args.id_column, int8_weights=args.int8_weights)
    if args.engine == "local":
        from .batch import run_local

        summary = run_local(args.artifact, args.input, args.output, workers=args.workers, threads=args.threads,
                            provider=args.provider, part_rows=args.part_rows, progress=not args.quiet, **common)
    else:
        from .batch.engines import run_ray, run_spark

        workers, threads = args.workers or 2, args.threads or 1
        common.update(workers=workers, threads=threads, part_rows=args.part_rows, resume=args.resume)
        if args.engine == "ray":
            summary = run_ray(args.artifact, args.input, args.output, address=args.address,
                              runtime_env=_json_option("--runtime-env", args.runtime_env), **common)
        else:
            summary = run_spark(args.artifact, args.input, args.output, master=args.master,
                                conf=_conf_option(args.conf), **common)
    print(json.dumps(summary))
    return 0


def _json_option(name: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name} must be a JSON object ({exc.msg}), not {text!r}") from None
    if not isinstance(value, dict):
        raise InputError(f"{name} must be a JSON object, not {text!r}")
    return value


def _conf_option(items: list[str]) -> dict[str, str]:
    conf = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise InputError(f"--conf takes KEY=VALUE (for example spark.pyspark.python=/opt/venv/bin/python), "
                             f"not {item!r}")
        conf[name.strip()] = value
    return conf


def _bench(args: argparse.Namespace) -> int:
    from .bench import compare, markdown, run_bench
    from .engine.encoder import check_positive_int

    lengths = None
    if args.lengths is not None:
        try:
            lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
        except ValueError:
            raise InputError(f"--lengths must be comma-separated integers, not {args.lengths!r}") from None
        for n in lengths:
            check_positive_int("each of --lengths", n)
    if args.max_slowdown <= 0:
        raise InputError("--max-slowdown must be a positive ratio (1.2 = 20 % slower allowed), "
                         f"not {args.max_slowdown}")
    for name in ("batch", "calls", "rounds"):
        check_positive_int(f"--{name}", getattr(args, name))
    baseline = None
    if args.baseline:
        try:
            baseline = json.loads(Path(args.baseline).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the baseline {args.baseline}: {exc}") from None
    report = run_bench(args.artifact, precisions=args.precision or ["fp32"], lengths=lengths, batch=args.batch,
                       threads=args.threads, calls=args.calls, rounds=args.rounds, cold=not args.no_cold_start,
                       int8_weights=args.int8_weights)
    regressions = compare(report, baseline, args.max_slowdown) if baseline is not None else None
    if regressions is not None:
        report["regressions"] = regressions
    text = markdown(report, regressions)
    if args.json_file:
        Path(args.json_file).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    print(text, end="")
    return 1 if regressions else 0


def _serve(args: argparse.Namespace) -> int:
    from .serve import serve, serve_on_ray

    options = dict(task=args.task, precision=args.precision, provider=args.provider, int8_weights=args.int8_weights,
                   max_batch_size=args.max_batch_size, max_queue=args.max_queue, max_inputs=args.max_inputs,
                   max_body_bytes=args.max_body_bytes, api_key_env=args.api_key_env,
                   max_wait_ms=args.max_wait_ms)
    if args.engine == "ray":
        serve_on_ray(args.artifact, host=args.host, port=args.port, replicas=args.replicas, threads=args.threads or 1,
                     address=args.address, **options)
    else:
        serve(args.artifact, host=args.host, port=args.port, drain_s=args.drain_seconds, threads=args.threads,
              **options)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .tasks.results import json_results

    options = _options(args)
    predictor = _open(args, task=options.derived_task)
    texts: list[Any] = _predict_inputs(args, predictor.task)
    if args.text_pair is not None and len(args.text_pair) != len(texts):
        raise InputError(f"--text-pair was given {len(args.text_pair)} times for {len(texts)} texts; "
                         "give it once per TEXT")
    doc = json_results(predictor, texts, options, text_pairs=args.text_pair)
    if args.json or predictor.task in ("question-answering", "multiple-choice") or options.labels is not None:
        print(json.dumps(doc, ensure_ascii=False))
    elif predictor.task == "fill-mask":
        _print_fill_mask(texts, [[[{"token_str": c["token_str"], "score": c["score"]} for c in m] for m in t]
                                 for t in doc])
    elif predictor.task == "text-classification":
        for text, labels in zip(texts, doc):
            print(text)
            for item in labels:
                print(f"  {_pad(item['label'], 20)} {item['score']:.4f}")
    elif predictor.task == "token-classification":
        key = "entity" if args.aggregation_strategy == "none" else "entity_group"
        for text, entities in zip(texts, doc):
            print(text)
            for ent in entities:
                print(f"  {ent['start']:>4}-{ent['end']:<4} {_pad(ent[key], 12)} {ent['score']:.4f}  {ent['word']}")
    else:
        for text, v in zip(texts, doc):
            shape = f"{len(v)}x{len(v[0])}" if v and isinstance(v[0], list) else str(len(v))
            first = v[0][:4] if v and isinstance(v[0], list) else v[:4]
            print(f"{text}\n  {shape} float32, first values {' '.join(f'{x:.4f}' for x in first)} ...")
    return 0


def _predict_inputs(args: argparse.Namespace, task: str) -> list[Any]:
    """What ``predict`` runs on: TEXTs, or (question, context) / (question, choices) dicts."""
    if task == "question-answering":
        questions, contexts = args.question or [], args.context or []
        if args.texts or not questions or len(contexts) not in (1, len(questions)):
            raise InputError("a question-answering artifact takes --question Q (repeatable) and --context C "
                             "(once, or once per --question), no TEXT")
        return [{"question": q, "context": contexts[0] if len(contexts) == 1 else c}
                for q, c in zip(questions, contexts * len(questions) if len(contexts) == 1 else contexts)]
    if task == "multiple-choice":
        if not args.texts or not args.choices:
            raise InputError("a multiple-choice artifact takes the question as TEXT and its choices as "
                             "--choices A B ...")
        return [{"question": t, "choices": list(args.choices)} for t in args.texts]
    if args.question or args.context or args.choices:
        raise InputError(f"--question, --context and --choices are for question answering and multiple choice; "
                         f"this artifact holds {task!r}")
    if not args.texts:
        raise InputError("give at least one TEXT")
    return list(args.texts)


if __name__ == "__main__":
    raise SystemExit(main())
