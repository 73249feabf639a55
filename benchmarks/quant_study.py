"""Which int8 settings keep the answers? Measured on the pretrained model in ../shared.

For each setting: top-1 agreement with fp32 and top-5 overlap at the masks of the held-out
sentences (every piece masked in turn, one text at a time), file size, and on the ALBERT-base
shape the model-only latency at 16 and 128 tokens. Three families:

- dynamic (what the export writes): weight type, per-channel or per-tensor, reduce_range,
  embeddings; activations get one scale per text at run time;
- static: activation scales calibrated once on the project's corpus (QDQ graph, MinMax or
  Percentile), batch-independent by construction;
- per-token activation scales: ONNX Runtime has no kernel for them, so their accuracy is
  simulated with exact arithmetic (fake quantization in float), beside the same simulation with
  one scale per text, which checks the simulation against a real exact kernel (uint8 weights).

The figures depend on the CPU: without VNNI, ONNX Runtime adds uint8 x int8 products in
16 bits, which saturate with full-range int8 weights. Writes benchmarks/results/CLASS/quant_study.{json,md}.

Run: python benchmarks/quant_study.py [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CACHE,
    ROOT,
    SHARED_MODEL,
    base_shape_model,
    cached_artifact,
    machine,
    md_table,
    summarize,
    write_report,
)

OPS = ["Attention", "MatMul", "Gather"]
OPS_EMB = [*OPS, "EmbedLayerNormalization"]  # QEmbedLayerNorm: per-tensor int8 lookup table


def _dyn(weights: str, per_channel: bool, reduce_range: bool, ops: list[str], share: bool) -> dict[str, Any]:
    return dict(kind="dynamic", weight_type=weights, per_channel=per_channel, reduce_range=reduce_range,
                op_types=ops, share=share)


CONFIGS: dict[str, dict[str, Any]] = {
    "uint8 weights, per-channel, shared embeddings (default)": _dyn("uint8", True, False, OPS, True),
    "uint8 weights, per-tensor, shared embeddings": _dyn("uint8", False, False, OPS, True),
    "int8 weights, per-channel, shared embeddings (--int8-weights int8)": _dyn("int8", True, False, OPS, True),
    "int8 weights, per-tensor, shared embeddings": _dyn("int8", False, False, OPS, True),
    "int8 weights, per-channel, reduce_range, shared embeddings": _dyn("int8", True, True, OPS, True),
    "int8 weights, per-channel, float embeddings": _dyn("int8", True, False, OPS, False),
    "int8 weights, per-channel, int8 embeddings (QEmbedLayerNorm)": _dyn("int8", True, False, OPS_EMB, False),
    "static QDQ, MinMax calibration": dict(kind="static", method="MinMax"),
    "static QDQ, Percentile calibration": dict(kind="static", method="Percentile"),
    "simulated: one activation scale per text": dict(kind="simulated", scales="text"),
    "simulated: one activation scale per token": dict(kind="simulated", scales="token"),
}


def quiet() -> None:
    logging.getLogger().setLevel(logging.ERROR)  # the quantizers log advice and shape notes
    warnings.simplefilter("ignore")


def latency(path: Path, threads: int, seq: int, runs: int) -> float:
    from albert_onnx.engine.session import create_session

    s = create_session(path, "cpu", threads)
    ids = np.random.default_rng(0).integers(5, 8000, (1, seq)).astype(np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids),
            "mask_positions": np.array([seq // 2], dtype=np.int64), "top_k": np.array([5], dtype=np.int64)}
    for _ in range(5):
        s.run(["top_ids"], feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        s.run(["top_ids"], feed)
        times.append(time.perf_counter() - t)
    return summarize(times)["median_ms"]


def dynamic(src: Path, dst: Path, cfg: dict[str, Any]) -> None:
    import onnx

    from albert_onnx.export.graph import dedupe_initializers
    from albert_onnx.export.quantize import int8_embedding_lookup, quantize_int8

    quantize_int8(src, dst, weight_type=cfg["weight_type"], per_channel=cfg["per_channel"],
                  reduce_range=cfg["reduce_range"], op_types=cfg["op_types"])
    model = onnx.load(str(dst))
    if cfg["share"]:
        int8_embedding_lookup(model)
    dedupe_initializers(model)
    onnx.save(model, str(dst))


def calibration_feeds(tok: Any, rows: int = 64, width: int = 30) -> list[dict[str, np.ndarray]]:
    """Windows of ``width`` pieces of the project's corpus, one mask each (equal shapes: the
    histogram calibrators need them)."""
    from albert_onnx.engine.io import flat_positions

    text = (ROOT / "tests" / "data" / "corpus_ja.txt").read_text(encoding="utf-8").split("\n")
    body = [i for t in text if t and "[" not in t for i in tok.encode(t)[1:-1]]
    feeds = []
    for k in range(0, min(len(body) - width, rows * width), width):
        ids = [tok.cls_token_id, *body[k:k + width], tok.sep_token_id]
        ids[len(ids) // 2] = tok.mask_token_id
        feed = tok.pad([ids])
        feed["mask_positions"] = flat_positions([[len(ids) // 2]], len(ids))
        feed["top_k"] = np.array([5], dtype=np.int64)
        feeds.append(feed)
    return feeds


def static(src: Path, dst: Path, cfg: dict[str, Any], tok: Any) -> None:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(calibration_feeds(tok))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    # the quantizer needs every tensor's type, contrib ops included
    inferred = dst.with_suffix(".inferred.onnx")
    onnx.save(SymbolicShapeInference.infer_shapes(onnx.load(str(src)), auto_merge=True), str(inferred))
    quantize_static(str(inferred), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                    op_types_to_quantize=["MatMul"], calibrate_method=getattr(CalibrationMethod, cfg["method"]),
                    extra_options={"MatMulConstBOnly": True})
    inferred.unlink()


def simulated(src: Path, dst: Path, cfg: dict[str, Any]) -> None:
    """Fake quantization: each product's constant weight rounded to per-channel int8 (as the
    default, in place, which also covers the tied embeddings), and its activation input to
    asymmetric uint8 with one scale per text or per token, computed in float."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    g.initializer.extend(numpy_helper.from_array(np.array(v, dtype=np.float32), n)
                         for n, v in (("fq_zero", 0.0), ("fq_255", 255.0), ("fq_eps", 1e-12)))
    axes: dict[str, Any] = {"axes": [-1]} if cfg["scales"] == "token" else {}
    nodes, rounded = [], set()
    for n in list(g.node):
        if n.op_type not in ("MatMul", "Attention", "Gemm") or n.input[1] not in inits:
            nodes.append(n)
            continue
        w = n.input[1]
        if w not in rounded:
            arr = numpy_helper.to_array(inits[w])
            axis = 1 if n.op_type == "Gemm" and any(a.name == "transB" and a.i for a in n.attribute) else 0
            s = np.abs(arr).max(axis=axis, keepdims=True) / 127.0
            s[s == 0] = 1.0
            inits[w].CopyFrom(numpy_helper.from_array((np.round(arr / s) * s).astype(np.float32), w))
            rounded.add(w)
        p, x = f"fq{len(nodes)}_", n.input[0]
        nodes += [helper.make_node("ReduceMax", [x], [p + "hi"], keepdims=1, **axes),
                  helper.make_node("ReduceMin", [x], [p + "lo"], keepdims=1, **axes),
                  helper.make_node("Max", [p + "hi", "fq_zero"], [p + "hi0"]),
                  helper.make_node("Min", [p + "lo", "fq_zero"], [p + "lo0"]),
                  helper.make_node("Sub", [p + "hi0", p + "lo0"], [p + "range"]),
                  helper.make_node("Div", [p + "range", "fq_255"], [p + "s0"]),
                  helper.make_node("Max", [p + "s0", "fq_eps"], [p + "s"]),
                  helper.make_node("Div", [p + "lo0", p + "s"], [p + "z0"]),
                  helper.make_node("Round", [p + "z0"], [p + "z1"]),
                  helper.make_node("Neg", [p + "z1"], [p + "zp"]),
                  helper.make_node("Div", [x, p + "s"], [p + "xs"]),
                  helper.make_node("Round", [p + "xs"], [p + "xr"]),
                  helper.make_node("Add", [p + "xr", p + "zp"], [p + "xq"]),
                  helper.make_node("Clip", [p + "xq", "fq_zero", "fq_255"], [p + "xc"]),
                  helper.make_node("Sub", [p + "xc", p + "zp"], [p + "xd"]),
                  helper.make_node("Mul", [p + "xd", p + "s"], [p + "x"])]
        n.input[0] = p + "x"
        nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    onnx.save(model, str(dst))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args(argv)
    if not SHARED_MODEL.exists():
        print(f"{SHARED_MODEL} is absent: the study needs a trained model", file=sys.stderr)
        return 1
    quiet()
    from albert_onnx.engine.cpu import int8_weights_saturate
    from albert_onnx.engine.session import create_session
    from albert_onnx.export.validate import agreement, masked_rows, top_k_of
    from albert_onnx.tokenizer import Tokenizer

    cache = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    arts = {}
    for name, src in (("mini", SHARED_MODEL), ("base", base_shape_model(cache))):
        arts[name] = cached_artifact(src, cache / f"study-{name}")
    toks = {name: Tokenizer.from_pretrained(art) for name, art in arts.items()}
    tok = toks["mini"]
    heldout = [x for x in (SHARED_MODEL / "heldout_sentences.txt").read_text(encoding="utf-8").split("\n") if x]
    rows = [r for r in masked_rows(tok, heldout) if len(r) <= 128]

    ref = top_k_of(create_session(arts["mini"] / "model.onnx", "cpu", None), tok, rows)
    results = []
    fp32_ms = {n: latency(arts["base"] / "model.onnx", args.threads, n, 60 if n == 16 else 15) for n in (16, 128)}
    for name, cfg in CONFIGS.items():
        entry: dict[str, Any] = {"config": name, **cfg}
        for which in ("mini", "base"):
            q = cache / f"q-{which}.onnx"
            if cfg["kind"] == "dynamic":
                dynamic(arts[which] / "model.onnx", q, cfg)
            elif cfg["kind"] == "static":
                static(arts[which] / "model.onnx", q, cfg, toks[which])
            elif which == "mini":
                simulated(arts[which] / "model.onnx", q, cfg)
            else:
                continue  # no kernel to time
            if which == "mini":
                entry.update(agreement(ref, top_k_of(create_session(q, "cpu", None), tok, rows)))
            else:
                entry["base_size_mb"] = round(q.stat().st_size / 1e6, 1)
                entry["base_ms_16_tokens"] = latency(q, args.threads, 16, 60)
                entry["base_ms_128_tokens"] = latency(q, args.threads, 128, 15)
        results.append(entry)
        print(entry, flush=True)
    mc = machine(args.threads)
    data = {"machine": mc, "int8_products_saturate": int8_weights_saturate(), "masks": len(rows),
            "fp32_base_ms": fp32_ms, "fp32_base_size_mb": round((arts["base"] / "model.onnx").stat().st_size / 1e6, 1),
            "results": results}
    md = (f"# int8 settings study ({mc['date']}, {mc['cpu']}, {', '.join(mc['isa']) or 'no AVX'}, "
          f"{args.threads} threads)\n\nAgreement with fp32 at {len(rows)} masks of the held-out sentences of "
          f"albert-ja-mini-wagahai (one text at a time); size and model-only latency (batch 1) on the "
          f"ALBERT-base shape (fp32: {data['fp32_base_size_mb']} MB, {fp32_ms[16]:.1f} ms at 16 tokens, "
          f"{fp32_ms[128]:.1f} ms at 128). uint8 x int8 products saturate on this CPU: "
          f"{'yes (no VNNI)' if data['int8_products_saturate'] else 'no'}.\n\n")

    def cell(r: dict[str, Any], key: str) -> Any:
        return r.get(key, "no kernel")

    md += md_table(["setting", "top-1 agreement", "top-5 overlap", "base int8 MB", "ms @16", "ms @128"],
                   [[r["config"], round(r["top1_agreement"], 3), round(r["top5_overlap"], 3), cell(r, "base_size_mb"),
                     cell(r, "base_ms_16_tokens"), cell(r, "base_ms_128_tokens")] for r in results])
    j, m = write_report("quant_study", data, md)
    print(md)
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
