"""Which int8 settings keep the answers? Measured on the pretrained model in ../shared.

For each setting: top-1 agreement with fp32 and top-5 overlap at the masks of the held-out
sentences (every piece masked in turn, one text at a time), file size, and on the ALBERT-base
shape the model-only latency at 16 and 128 tokens. Three families:

- dynamic (what the export writes): weight type, per-channel or per-tensor, reduce_range,
  embeddings; activations get one scale per text at run time. Each graph is loaded as the
  runtime loads it (the product weights in the form that is exact and fastest on this CPU), and
  the export's own default also in each forced form, which shows what the other choice would
  cost on this CPU (saturation without VNNI, the slow 16-bit path with it);
- static: activation scales calibrated once on the project's corpus (QDQ graph, MinMax or
  Percentile), batch-independent by construction;
- per-token activation scales: ONNX Runtime has no kernel for them, so their accuracy is
  simulated with exact arithmetic (fake quantization in float), beside the same simulation with
  one scale per text, which checks the simulation against a real exact kernel (uint8 weights);
- OpenVINO's own int8 (NNCF, static scales, the transformer preset, calibrated on the same
  corpus windows as the static rows) of the plain exported model, for reference.

The figures depend on the CPU class (the products' kernels differ), so the report goes to
benchmarks/results/CLASS/quant_study.{json,md} with the class and the kernel of every row.

Run: python benchmarks/quant_study.py [--threads 2] [--only TEXT]
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


def _dyn(weights: str, per_channel: bool, reduce_range: bool, ops: list[str], share: bool,
         form: str = "auto", float_input: bool = False) -> dict[str, Any]:
    return dict(kind="dynamic", weight_type=weights, per_channel=per_channel, reduce_range=reduce_range,
                op_types=ops, share=share, form=form, float_input=float_input)


# (the int8 word-embedding lookup reads per-word scales, so per-tensor rows keep float embeddings)
CONFIGS: dict[str, dict[str, Any]] = {
    "export default: asymmetric per-channel, shared embeddings, float input projection":
        _dyn("uint8", True, False, OPS, True, float_input=True),
    "export default, forced int8_weights='int8' (uint8 x int8 products)":
        _dyn("uint8", True, False, OPS, True, form="int8", float_input=True),
    "export default, forced int8_weights='uint8' (uint8 x uint8 products)":
        _dyn("uint8", True, False, OPS, True, form="uint8", float_input=True),
    "uint8 weights, per-channel, shared embeddings": _dyn("uint8", True, False, OPS, True),
    "uint8 weights, per-tensor, float embeddings": _dyn("uint8", False, False, OPS, False),
    "int8 weights, per-channel, shared embeddings (--int8-weights int8)": _dyn("int8", True, False, OPS, True),
    "int8 weights, per-tensor, float embeddings": _dyn("int8", False, False, OPS, False),
    "int8 weights, per-channel, reduce_range, shared embeddings": _dyn("int8", True, True, OPS, True),
    "int8 weights, per-channel, float embeddings": _dyn("int8", True, False, OPS, False),
    "int8 weights, per-channel, int8 embeddings (QEmbedLayerNorm)": _dyn("int8", True, False, OPS_EMB, False),
    "static QDQ, MinMax calibration": dict(kind="static", method="MinMax"),
    "static QDQ, Percentile calibration": dict(kind="static", method="Percentile"),
    "simulated: one activation scale per text": dict(kind="simulated", scales="text"),
    "simulated: one activation scale per token": dict(kind="simulated", scales="token"),
    "OpenVINO int8 (NNCF, static scales, calibrated)": dict(kind="openvino"),
}


def quiet() -> None:
    logging.getLogger().setLevel(logging.ERROR)  # the quantizers log advice and shape notes
    warnings.simplefilter("ignore")


class Model:
    """One graph to measure, run as an ONNX Runtime session is (``run(["top_ids"], feed)``, what
    ``top_k_of`` calls): a session opened as the runtime opens it, or an OpenVINO compiled model
    of the plain export (``logits`` out, the top k taken at the mask here)."""

    def __init__(self, path: Path, cfg: dict[str, Any], threads: int | None) -> None:
        from albert_onnx.engine.session import create_int8_session, create_session

        self.kernel, self.request, self.session = "as stored", None, None
        if cfg["kind"] == "openvino":
            import openvino as ov

            core = ov.Core()
            config = {} if threads is None else {"INFERENCE_NUM_THREADS": threads}
            self.request = core.compile_model(core.read_model(str(path)), "CPU", config).create_infer_request()
            self.kernel = "OpenVINO CPU plugin"
        elif cfg["kind"] == "dynamic":
            self.session, choice = create_int8_session(path, "cpu", threads, cfg["form"])
            self.kernel = choice.kernel
        else:
            self.session = create_session(path, "cpu", threads)

    def run(self, outputs: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """``[top_ids]`` of a one-row ``feed`` with ``mask_positions`` and ``top_k``."""
        if self.request is None:
            return self.session.run(outputs, feed)  # type: ignore[union-attr]
        logits = next(iter(self.request.infer({k: feed[k] for k in PLAIN_INPUTS}).values()))
        row, k = logits[0, int(feed["mask_positions"][0])], int(feed["top_k"][0])
        best = np.argpartition(-row, k)[:k]
        return [best[np.argsort(-row[best], kind="stable")][None, :]]


PLAIN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


ROUNDS = 7


def latency(model: Model, seq: int, runs: int) -> float:
    ids = np.random.default_rng(0).integers(5, 8000, (1, seq)).astype(np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids),
            "mask_positions": np.array([seq // 2], dtype=np.int64), "top_k": np.array([5], dtype=np.int64)}
    for _ in range(5):
        model.run(["top_ids"], feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        model.run(["top_ids"], feed)
        times.append(time.perf_counter() - t)
    return summarize(times)["median_ms"]


def dynamic(src: Path, dst: Path, cfg: dict[str, Any]) -> None:
    import onnx

    from albert_onnx.export.graph import dedupe_initializers
    from albert_onnx.export.quantize import float_input_projection, int8_embedding_lookup, quantize_int8

    quantize_int8(src, dst, weight_type=cfg["weight_type"], per_channel=cfg["per_channel"],
                  reduce_range=cfg["reduce_range"], op_types=cfg["op_types"],
                  exclude=float_input_projection(src) if cfg["float_input"] else None)
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


def plain_export(folder: Path, out: Path) -> Path:
    """The model exported as optimum does it (``logits`` out, no fusions), once."""
    if not (out / "model.onnx").exists():
        from optimum.onnxruntime import ORTModelForMaskedLM

        ORTModelForMaskedLM.from_pretrained(str(folder), export=True).save_pretrained(str(out))
    return out / "model.onnx"


def openvino_int8(src: Path, dst: Path, tok: Any) -> None:
    """NNCF's post-training int8 of the plain export ``src``, calibrated on the static rows' windows."""
    import nncf
    import openvino as ov

    feeds = [{k: f[k] for k in PLAIN_INPUTS} for f in calibration_feeds(tok)]
    quantized = nncf.quantize(ov.Core().read_model(str(src)), nncf.Dataset(feeds),
                              model_type=nncf.ModelType.TRANSFORMER, subset_size=len(feeds))
    ov.save_model(quantized, str(dst))


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
    ap.add_argument("--only", default="", help="only the settings whose name holds this text (no report written)")
    args = ap.parse_args(argv)
    if not SHARED_MODEL.exists():
        print(f"{SHARED_MODEL} is absent: the study needs a trained model", file=sys.stderr)
        return 1
    quiet()
    from albert_onnx.engine.cpu import int8_weights_saturate
    from albert_onnx.export.validate import agreement, masked_rows, top_k_of
    from albert_onnx.tokenizer import Tokenizer

    cache = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    arts = {}
    folders = {"mini": SHARED_MODEL, "base": base_shape_model(cache)}
    for name, src in folders.items():
        arts[name] = cached_artifact(src, cache / f"study-{name}")
    toks = {name: Tokenizer.from_pretrained(art) for name, art in arts.items()}
    tok = toks["mini"]
    heldout = [x for x in (SHARED_MODEL / "heldout_sentences.txt").read_text(encoding="utf-8").split("\n") if x]
    rows = [r for r in masked_rows(tok, heldout) if len(r) <= 128]

    fp32 = dict(kind="fp32")
    ref = top_k_of(Model(arts["mini"] / "model.onnx", fp32, None), tok, rows)
    results = []
    timed_models: dict[str, Model] = {"fp32": Model(arts["base"] / "model.onnx", fp32, args.threads)}
    for row, (name, cfg) in enumerate(CONFIGS.items()):
        if args.only not in name:
            continue
        entry: dict[str, Any] = {"config": name, **cfg}
        for which in ("mini", "base"):
            q = cache / f"q{row}-{which}.onnx"
            if cfg["kind"] == "dynamic":
                dynamic(arts[which] / "model.onnx", q, cfg)
            elif cfg["kind"] == "static":
                static(arts[which] / "model.onnx", q, cfg, toks[which])
            elif cfg["kind"] == "openvino":
                try:
                    q = cache / f"q{row}-{which}-nncf.xml"
                    openvino_int8(plain_export(folders[which], cache / f"plain-{which}"), q, toks[which])
                except ImportError:
                    print("openvino, nncf or optimum is not installed: the OpenVINO row is skipped", file=sys.stderr)
                    break
            elif which == "mini":
                simulated(arts[which] / "model.onnx", q, cfg)
            else:
                continue  # no kernel to time
            model = Model(q, cfg, None if which == "mini" else args.threads)
            if which == "mini":
                entry.update(agreement(ref, top_k_of(model, tok, rows)))
            else:
                entry["kernel"] = model.kernel
                size = sum(f.stat().st_size for f in q.parent.glob(q.stem + ".*") if f.suffix in (".onnx", ".bin"))
                entry["base_size_mb"] = round(size / 1e6, 1)
                timed_models[name] = model
        if "top1_agreement" in entry:
            results.append(entry)
            print(entry, flush=True)
    # every base-shape graph timed in the same rounds, in turn, so that a slow spell of the machine
    # falls on all of them: the median of each graph's per-round medians
    rounds: dict[str, dict[int, list[float]]] = {name: {16: [], 128: []} for name in timed_models}
    for r in range(ROUNDS):
        for name in list(timed_models)[r % len(timed_models):] + list(timed_models)[:r % len(timed_models)]:
            for seq, runs in ((16, 30), (128, 8)):
                rounds[name][seq].append(latency(timed_models[name], seq, runs))
    ms = {name: {seq: round(float(np.median(v)), 2) for seq, v in per.items()} for name, per in rounds.items()}
    fp32_ms = ms["fp32"]
    for entry in results:
        if entry["config"] in ms:
            entry["base_ms_16_tokens"], entry["base_ms_128_tokens"] = ms[entry["config"]][16], ms[entry["config"]][128]
    if args.only:
        for entry in results:
            print(entry["config"], entry.get("kernel"), entry.get("base_ms_16_tokens"), entry.get("base_ms_128_tokens"))
        print("fp32", fp32_ms)
        return 0
    mc = machine(args.threads)
    data = {"machine": mc, "int8_products_saturate": int8_weights_saturate(), "masks": len(rows),
            "fp32_base_ms": fp32_ms, "fp32_base_size_mb": round((arts["base"] / "model.onnx").stat().st_size / 1e6, 1),
            "results": results}
    md = (f"# int8 settings study ({mc['date']}, {mc['cpu']}, {', '.join(mc['isa']) or 'no AVX'}, "
          f"{args.threads} threads)\n\nAgreement with fp32 at {len(rows)} masks of the held-out sentences of "
          f"albert-ja-mini-wagahai (one text at a time); size and model-only latency (batch 1) on the "
          f"ALBERT-base shape (fp32: {data['fp32_base_size_mb']} MB, {fp32_ms[16]:.1f} ms at 16 tokens, "
          f"{fp32_ms[128]:.1f} ms at 128). uint8 x int8 products saturate on this CPU: "
          f"{'yes (no VNNI)' if data['int8_products_saturate'] else 'no'}. Kernel: the int8 products' path as the "
          f"runtime loads the graph (static rows: as stored).\n\n")

    def cell(r: dict[str, Any], key: str) -> Any:
        return r.get(key, "no kernel")

    md += md_table(["setting", "top-1 agreement", "top-5 overlap", "kernel", "base int8 MB", "ms @16", "ms @128"],
                   [[r["config"], round(r["top1_agreement"], 3), round(r["top5_overlap"], 3), cell(r, "kernel"),
                     cell(r, "base_size_mb"),
                     cell(r, "base_ms_16_tokens"), cell(r, "base_ms_128_tokens")] for r in results])
    j, m = write_report("quant_study", data, md)
    print(md)
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
