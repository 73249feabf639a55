"""Which int8 settings keep the answers? Measured on the pretrained model in ../shared.

For each setting: top-1 agreement with fp32 and top-5 overlap at the masks of the held-out
sentences (every piece masked in turn), file size, and on the ALBERT-base shape the
model-only latency at 16 tokens. Writes benchmarks/results/quant_study.{json,md}.

Run: python benchmarks/quant_study.py [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_MODEL, base_shape_model, machine, md_table, summarize, write_report  # noqa: E402

OPS = ["Attention", "MatMul", "Gather"]
OPS_EMB = [*OPS, "EmbedLayerNormalization"]  # QEmbedLayerNorm: per-tensor int8 lookup table


def _cfg(per_channel: bool, reduce_range: bool, ops: list[str], share: bool = False) -> dict:
    return dict(per_channel=per_channel, reduce_range=reduce_range, op_types=ops, share=share)


CONFIGS = {
    "A per-channel, full range, float embeddings": _cfg(True, False, OPS),
    "B per-channel, full range, int8 embeddings": _cfg(True, False, OPS_EMB),
    "C per-tensor, full range, int8 embeddings": _cfg(False, False, OPS_EMB),
    "D per-channel, reduce_range, int8 embeddings": _cfg(True, True, OPS_EMB),
    "E per-tensor, reduce_range, float embeddings": _cfg(False, True, OPS),
    "F per-channel, full range, embeddings shared in int8 with the decoder (default)":
        _cfg(True, False, OPS, share=True),
    "G per-tensor, full range, embeddings shared in int8 with the decoder": _cfg(False, False, OPS, share=True),
}


def latency(path: Path, threads: int, seq: int = 16, runs: int = 60) -> float:
    from albert_onnx.engine.session import create_session

    s = create_session(path, "cpu", threads)
    ids = np.random.default_rng(0).integers(5, 8000, (1, seq)).astype(np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids),
            "mask_positions": np.array([seq // 2], dtype=np.int64), "top_k": np.array([5], dtype=np.int64)}
    for _ in range(10):
        s.run(["top_ids"], feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        s.run(["top_ids"], feed)
        times.append(time.perf_counter() - t)
    return summarize(times)["median_ms"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "albert-onnx-bench"))
    args = ap.parse_args(argv)
    if not SHARED_MODEL.exists():
        print(f"{SHARED_MODEL} is absent: the study needs a trained model", file=sys.stderr)
        return 1
    import onnx

    from albert_onnx.export import export_model
    from albert_onnx.export.graph import dedupe_initializers
    from albert_onnx.export.quantize import quantize_int8, share_int8_embeddings
    from albert_onnx.export.validate import agreement, masked_rows, top_k_of
    from albert_onnx.tokenizer import Tokenizer

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    arts = {}
    for name, src in (("mini", SHARED_MODEL), ("base", base_shape_model(cache))):
        arts[name] = cache / f"study-{name}"
        if not (arts[name] / "manifest.json").exists():
            export_model(str(src), arts[name], overwrite=True, log=lambda s: None)
    tok = Tokenizer.from_pretrained(SHARED_MODEL)
    heldout = [x for x in (SHARED_MODEL / "heldout_sentences.txt").read_text(encoding="utf-8").split("\n") if x]
    rows = [r for r in masked_rows(tok, heldout) if len(r) <= 128]
    from albert_onnx.engine.session import create_session

    def session(p: Path) -> Any:
        return create_session(p, "cpu", None)

    ref = top_k_of(session(arts["mini"] / "model.onnx"), tok, rows)
    results = []
    fp32_ms = latency(arts["base"] / "model.onnx", args.threads)
    for name, cfg in CONFIGS.items():
        entry = {"config": name, **cfg}
        for which in ("mini", "base"):
            q = cache / f"q-{which}.onnx"
            quantize_int8(arts[which] / "model.onnx", q, **{k: v for k, v in cfg.items() if k != "share"})
            model = onnx.load(str(q))
            if cfg.get("share"):
                share_int8_embeddings(model)
            dedupe_initializers(model)
            onnx.save(model, str(q))
            if which == "mini":
                entry.update(agreement(ref, top_k_of(session(q), tok, rows)))
            else:
                entry["base_size_mb"] = round(q.stat().st_size / 1e6, 1)
                entry["base_ms_16_tokens"] = latency(q, args.threads)
        results.append(entry)
        print(entry, flush=True)
    data = {"machine": machine(args.threads), "masks": len(rows), "fp32_base_ms_16_tokens": fp32_ms,
            "fp32_base_size_mb": round((arts["base"] / "model.onnx").stat().st_size / 1e6, 1),
            "results": results}
    md = (f"# int8 settings study ({data['machine']['date']}, {data['machine']['cpu']}, "
          f"{args.threads} threads)\n\nAgreement with fp32 at {len(rows)} masks of the held-out "
          f"sentences of albert-ja-mini-wagahai; size and model-only latency (16 tokens, batch 1) "
          f"on the ALBERT-base shape (fp32: {data['fp32_base_size_mb']} MB, {fp32_ms:.1f} ms).\n\n")
    md += md_table(["setting", "top-1 agreement", "top-5 overlap", "base int8 MB", "base ms @16"],
                   [[r["config"], r["top1_agreement"], r["top5_overlap"], r["base_size_mb"],
                     r["base_ms_16_tokens"]] for r in results])
    j, m = write_report("quant_study", data, md)
    print(md)
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
