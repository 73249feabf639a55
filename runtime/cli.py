"""Command line: ``albert-onnx export`` (needs the [export] extra), ``fill-mask`` and ``predict``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import __version__
from .artifact import DEFAULT_SOURCE, PRECISIONS
from .engine.io import TASKS
from .engine.session import PROVIDER_NAMES
from .errors import AlbertOnnxError, InputError

EXPORT_TASKS = ("auto", *TASKS)


def _runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifact", help="artifact folder written by `albert-onnx export`")
    p.add_argument("texts", nargs="+", metavar="TEXT")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--provider", choices=PROVIDER_NAMES, default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON document")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="albert-onnx", description=__doc__)
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
    e.add_argument("--fp16", action="store_true", help="also write a float16 graph (for CUDA)")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    e.add_argument("--revision", help="hub revision: branch, tag or commit")
    e.add_argument("--atol", type=float, default=1e-4,
                   help="largest |Δ| of the outputs against PyTorch accepted (default 1e-4)")
    e.add_argument("--force", action="store_true", help="replace an existing output folder")

    f = sub.add_parser("fill-mask", help="predict the [MASK] tokens of texts (fill-mask artifacts)")
    _runtime_options(f)
    f.add_argument("--top-k", type=int, default=5)

    r = sub.add_parser("predict", help="run whatever task the artifact holds on texts")
    _runtime_options(r)
    r.add_argument("--top-k", type=int, default=None,
                   help="fill-mask: candidates per mask (default 5); text classification: labels "
                        "per text (default: the best one)")
    r.add_argument("--all-labels", action="store_true", help="text classification: every label, best first")
    r.add_argument("--function-to-apply", choices=["softmax", "sigmoid", "none"], default=None,
                   help="text classification: default from the model's problem type")
    r.add_argument("--text-pair", action="append", default=None, metavar="PAIR",
                   help="text classification: second text of each pair, once per TEXT")
    r.add_argument("--aggregation-strategy", choices=["none", "simple", "first", "average", "max"],
                   default="none", help="token classification (default none)")
    r.add_argument("--pooling", choices=["cls", "mean", "none"], default="cls",
                   help="feature extraction (default cls)")
    r.add_argument("--normalize", action="store_true", help="feature extraction: unit-length vectors")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 error, 2 usage)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "export":
            return _export(args)
        if args.command == "fill-mask":
            return _fill_mask(args)
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
                 int8_min_agreement=args.int8_min_agreement, opset=args.opset, revision=args.revision,
                 atol=args.atol, overwrite=args.force)
    return 0


def _open(args: argparse.Namespace, cls: Any = None) -> Any:
    from .tasks import pipeline

    options = dict(precision=args.precision, provider=args.provider, threads=args.threads)
    predictor = cls(args.artifact, **options) if cls is not None else pipeline(args.artifact, **options)
    if predictor.fallback_note:
        print(f"albert-onnx: {predictor.fallback_note}", file=sys.stderr)
    return predictor


def _fill_mask(args: argparse.Namespace) -> int:
    from .tasks import FillMask

    fm = _open(args, FillMask)
    results = fm.fill(args.texts, top_k=args.top_k)
    if args.json:
        print(json.dumps(_fill_mask_json(results), ensure_ascii=False))
        return 0
    _print_fill_mask(args.texts, results)
    return 0


def _fill_mask_json(results: list[Any]) -> list[Any]:
    return [[[{"token": c["token"], "token_str": c["token_str"], "score": c["score"]}
              for c in mask] for mask in text] for text in results]


def _print_fill_mask(texts: list[str], results: list[Any]) -> None:
    for text, masks in zip(texts, results):
        print(text)
        for m, cands in enumerate(masks, 1):
            print(f"  [MASK] #{m}:")
            for rank, c in enumerate(cands, 1):
                print(f"    {rank}. {c['token_str']:<12} {c['score']:.4f}")


def _predict(args: argparse.Namespace) -> int:
    from .tasks import FeatureExtractor, FillMask, TextClassifier, TokenClassifier

    predictor = _open(args)
    texts: list[str] = args.texts
    doc: list[Any]
    if isinstance(predictor, FillMask):
        results = predictor.fill(texts, top_k=5 if args.top_k is None else args.top_k)
        if not args.json:
            _print_fill_mask(texts, results)
            return 0
        doc = _fill_mask_json(results)
    elif isinstance(predictor, TextClassifier):
        inputs: list[Any] = texts
        if args.text_pair is not None:
            if len(args.text_pair) != len(texts):
                raise InputError(f"--text-pair was given {len(args.text_pair)} times for {len(texts)} texts; "
                             "give it once per TEXT")
            inputs = [{"text": t, "text_pair": p} for t, p in zip(texts, args.text_pair)]
        top_k = None if args.all_labels else (1 if args.top_k is None else args.top_k)
        doc = predictor(inputs, top_k=top_k, function_to_apply=args.function_to_apply)
        if not args.json:
            for text, labels in zip(texts, doc):
                print(text)
                for item in labels:
                    print(f"  {item['label']:<20} {item['score']:.4f}")
            return 0
    elif isinstance(predictor, TokenClassifier):
        doc = predictor(texts, aggregation_strategy=args.aggregation_strategy)
        if not args.json:
            key = "entity" if args.aggregation_strategy == "none" else "entity_group"
            for text, entities in zip(texts, doc):
                print(text)
                for ent in entities:
                    print(f"  {ent['start']:>4}-{ent['end']:<4} {ent[key]:<12} {ent['score']:.4f}  {ent['word']}")
            return 0
    else:
        assert isinstance(predictor, FeatureExtractor)
        vectors = predictor(texts, pooling=args.pooling, normalize=args.normalize)
        doc = [v.tolist() for v in vectors]
        if not args.json:
            for text, v in zip(texts, vectors):
                print(f"{text}\n  {'x'.join(map(str, v.shape))} float32, first values "
                      f"{' '.join(f'{x:.4f}' for x in v.reshape(-1)[:4])} ...")
            return 0
    print(json.dumps(doc, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
