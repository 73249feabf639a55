"""Command line: ``albert-onnx export`` (needs the [export] extra) and ``albert-onnx fill-mask``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import __version__
from .artifact import PRECISIONS
from .errors import AlbertOnnxError
from .session import PROVIDER_NAMES

DEFAULT_SOURCE = "ken11/albert-base-japanese-v1"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="albert-onnx", description=__doc__)
    p.add_argument("--version", action="version", version=f"albert-onnx {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("export", help="export a Hugging Face ALBERT MLM to an artifact folder")
    e.add_argument("source", nargs="?", default=DEFAULT_SOURCE,
                   help=f"hub id or local model folder (default {DEFAULT_SOURCE})")
    e.add_argument("-o", "--output", required=True, help="artifact folder to create")
    e.add_argument("--quantize", choices=["int8"], help="also write a dynamic int8 graph")
    e.add_argument("--fp16", action="store_true", help="also write a float16 graph (for CUDA)")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    e.add_argument("--revision", help="hub revision: branch, tag or commit")
    e.add_argument("--atol", type=float, default=1e-4,
                   help="largest |Δ logits| against PyTorch accepted (default 1e-4)")
    e.add_argument("--force", action="store_true", help="replace an existing output folder")

    f = sub.add_parser("fill-mask", help="predict the [MASK] tokens of texts")
    f.add_argument("artifact", help="artifact folder written by `albert-onnx export`")
    f.add_argument("texts", nargs="+", metavar="TEXT")
    f.add_argument("--top-k", type=int, default=5)
    f.add_argument("--precision", choices=PRECISIONS, default="fp32")
    f.add_argument("--provider", choices=PROVIDER_NAMES, default="cpu")
    f.add_argument("--threads", type=int, default=None)
    f.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 error, 2 usage)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "export":
            return _export(args)
        return _fill_mask(args)
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
    export_model(args.source, args.output, quantize=args.quantize, fp16=args.fp16,
                 opset=args.opset, revision=args.revision, atol=args.atol, overwrite=args.force)
    return 0


def _fill_mask(args: argparse.Namespace) -> int:
    from .fill_mask import FillMask

    fm = FillMask(args.artifact, precision=args.precision, provider=args.provider,
                  threads=args.threads)
    if fm.fallback_note:
        print(f"albert-onnx: {fm.fallback_note}", file=sys.stderr)
    results = fm.fill(args.texts, top_k=args.top_k)
    if args.json:
        doc: list[Any] = [[[{"token": c["token"], "token_str": c["token_str"], "score": c["score"]}
                            for c in mask] for mask in text] for text in results]
        print(json.dumps(doc, ensure_ascii=False))
        return 0
    for text, masks in zip(args.texts, results):
        print(text)
        for m, cands in enumerate(masks, 1):
            print(f"  [MASK] #{m}:")
            for rank, c in enumerate(cands, 1):
                print(f"    {rank}. {c['token_str']:<12} {c['score']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
