"""The verbs: each a thin layer over the Python API, reading its inputs with :mod:`.inputs` and
printing with :mod:`.output`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import output
from .inputs import check_some_input, read_inputs

CHUNK = 64  # inputs run together, then printed: a long pipe streams


def export(args: argparse.Namespace) -> int:
    try:
        from albert_onnx.export import export_model
    except ImportError as exc:
        print(f"albert-onnx: error: the export needs the heavy dependencies ({exc.name} is "
              "missing); install them with: pip install 'albert-onnx[export]'", file=sys.stderr)
        return 1
    export_model(args.source, args.output, quantize=args.quantize, fp16=args.fp16, task=args.task,
                 int8_min_agreement=args.int8_min_agreement, int8_weights=args.int8_weights, opset=args.opset,
                 revision=args.revision, atol=args.atol, overwrite=args.force, web=args.web,
                 eval_data=args.eval_data, max_drop=args.max_drop)
    return 0


def _open(args: argparse.Namespace, cls: Any = None, task: str | None = None) -> Any:
    from ..tasks import pipeline

    options = dict(precision=args.precision, provider=args.provider, threads=args.threads,
                   int8_weights=args.int8_weights)
    return cls(args.artifact, **options) if cls is not None else pipeline(args.artifact, task, **options)


def _options(args: argparse.Namespace, **fixed: Any) -> Any:
    from ..tasks.results import TaskOptions

    names = ("per_token", "top_k", "all_labels", "function_to_apply", "aggregation_strategy", "pooling", "normalize",
             "truncation", "stride", "hypothesis_template", "multi_label", "doc_stride", "max_answer_len",
             "max_seq_len", "handle_impossible_answer", "align_to_words")
    values = {n: getattr(args, n) for n in names if hasattr(args, n)}
    if getattr(args, "labels", None) is not None:
        values["labels"] = tuple(x.strip() for x in args.labels.split(",") if x.strip())
    return TaskOptions(**values, **fixed)


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


def _run(args: argparse.Namespace, predictor: Any, options: Any, shown_as: str) -> int:
    """Run the inputs in chunks, printing each chunk's answers before reading on."""
    from ..tasks.results import json_results

    options.check(predictor)
    count = 0  # (stdin or a file may hold no line)
    for chunk in _chunks(read_inputs(args, predictor.task)):
        results = json_results(predictor, chunk, options)
        lines = [output.json_line(r) for r in results] if args.json else output.human_chunk(shown_as, chunk, results,
                                                                                           options)
        print("\n".join(lines), flush=True)
        count += len(chunk)
    if count == 0:
        raise InputError("no input: give TEXT arguments, -i FILE, or '-' to read stdin")
    return 0


def fill_mask(args: argparse.Namespace) -> int:
    from ..tasks import FillMask

    check_some_input(args)
    return _run(args, _open(args, FillMask), _options(args), "fill-mask")


def score(args: argparse.Namespace) -> int:
    from ..tasks import FillMask

    check_some_input(args)
    return _run(args, _open(args, FillMask), _options(args, score=True), "score")


def predict(args: argparse.Namespace) -> int:
    check_some_input(args)
    options = _options(args)
    predictor = _open(args, task=options.derived_task)
    shown_as = "score" if options.score else predictor.task
    return _run(args, predictor, options, shown_as)


def completion(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .completion import script

    print(script(parser, args.shell), end="")
    return 0


def batch(args: argparse.Namespace) -> int:
    from ..engine.encoder import check_positive_int

    options = _options(args, score=args.task == "score")
    for name in ("workers", "threads", "part_rows"):
        if getattr(args, name) is not None:
            check_positive_int(f"--{name.replace('_', '-')}", getattr(args, name))
    common = dict(options=options, precision=args.precision, text_column=args.text_column,
                  id_column=args.id_column, int8_weights=args.int8_weights)
    if args.engine == "local":
        from ..batch import run_local

        summary = run_local(args.artifact, args.input, args.output, workers=args.workers, threads=args.threads,
                            provider=args.provider, part_rows=args.part_rows, progress=not args.quiet, **common)
    else:
        from ..batch.engines import run_ray, run_spark

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


def bench(args: argparse.Namespace) -> int:
    from ..bench import compare, markdown, run_bench
    from ..engine.encoder import check_positive_int

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


def serve(args: argparse.Namespace) -> int:
    from ..serve import serve, serve_on_ray

    options = dict(task=args.task, precision=args.precision, provider=args.provider, int8_weights=args.int8_weights,
                   max_batch_size=args.max_batch_size, max_queue=args.max_queue, max_inputs=args.max_inputs,
                   max_body_bytes=args.max_body_bytes, api_key_env=args.api_key_env,
                   max_wait_ms=args.max_wait_ms, max_request_tokens=args.max_request_tokens,
                   model_name=args.model_name, ready_deadline_s=args.ready_deadline, ui=args.ui)
    if args.engine == "ray":
        serve_on_ray(args.artifact, host=args.host, port=args.port, replicas=args.replicas, threads=args.threads or 1,
                     address=args.address, **options)
    else:
        serve(args.artifact, host=args.host, port=args.port, drain_s=args.drain_seconds, threads=args.threads,
              log_level=args.log_level, access_log=args.access_log, read_timeout_s=args.read_timeout,
              max_header_bytes=args.max_header_bytes, **options)
    return 0




def evaluate(args: argparse.Namespace) -> int:
    from ..engine.encoder import check_positive_int
    from ..evaluation import evaluate as run_evaluation
    from ..evaluation import markdown
    from ..evaluation.report import gate_line, summary_lines
    from .output import ProgressBar, write_atomically

    if args.limit is not None:
        check_positive_int("--limit", args.limit)
    if args.fail_over is not None and not args.fail_over >= 0:
        raise InputError(f"--fail-over takes the points int8 may lose (0 or more, e.g. 0.5), not {args.fail_over}")
    precisions = args.precision or None
    if args.fail_over is not None and precisions is not None and precisions[0] != "fp32":
        raise InputError("--fail-over compares with fp32: give --precision fp32 first (or no --precision)")
    bar = ProgressBar(enabled=not args.quiet)
    try:
        report = run_evaluation(args.artifact, args.data, precisions, limit=args.limit, threads=args.threads,
                                int8_weights=args.int8_weights, progress=bar.update)
    finally:
        bar.close()
    failed = False
    if args.fail_over is not None:
        others = [p for p in report["results"] if p != report["baseline"]]
        if not others:
            raise InputError("--fail-over needs a second precision to compare with fp32; this artifact has only "
                             f"{list(report['results'])} (export with --quantize int8)")
        drop = report["drop"][others[0]][report["metric"]]
        failed = drop > args.fail_over
        report["gate"] = {"precision": others[0], "metric": report["metric"], "drop": drop,
                          "max_drop": args.fail_over, "failed": failed}
    if args.json_file:
        write_atomically(args.json_file, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    if args.markdown:
        write_atomically(args.markdown, markdown(report))
    if args.json_file != "-":  # stdout holds the JSON report alone
        print("\n".join(summary_lines(report)))
        dis = report.get("disagreements")
        for row in (dis or {}).get("examples", [])[:args.show]:
            answers = " | ".join(f"{p}: {row[p]}" for p in report["results"])
            print(f"    {row['where']}: {row['input']}  gold: {row['gold']}  {answers}")
        if "gate" in report:
            print(gate_line(report["gate"]))
    if failed:
        print(f"albert-onnx: error: {gate_line(report['gate'])}", file=sys.stderr)
        return 1
    return 0
