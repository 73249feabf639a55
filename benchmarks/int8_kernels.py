"""How much faster the int8 weight form can be than the uint8 form on this CPU, and why.

The two forms of an int8 artifact differ only in the kernel of their integer products (uint8 x
int8 against uint8 x uint8); every other op is the same. So the products alone bound the whole
model's ratio: this script times, in the same rounds, in turn,

- the base shape's integer products alone (12 layers of the QKV, attention output and two FFN
  products, ALBERT's one set of shared weights, as ``DynamicQuantizeMatMul``) in each form;
- the whole int8 base-shape graph (model only, batch 1) in each form, loaded as the runtime
  loads it with ``int8_weights`` forced;

at 16, 128 and 512 tokens, and writes benchmarks/results/CLASS/int8_kernels.{json,md}.

Run: python benchmarks/int8_kernels.py [--threads 2] [--rounds 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, base_shape_model, cached_artifact, machine, md_table, summarize, write_report  # noqa: E402

LENGTHS = (16, 128, 512)
# (rows, columns) of each product's weight in one ALBERT-base layer
PRODUCTS = {"qkv": (768, 2304), "attention_output": (768, 768), "ffn_in": (768, 3072), "ffn_out": (3072, 768)}


def products_graph(form: str, threads: int) -> Any:
    """The 48 products of the base shape in the weight ``form``, random codes (speed does not
    depend on them): inputs ``x768`` and ``x3072``, one output per product."""
    from onnx import TensorProto, helper, numpy_helper

    from albert_onnx.engine.session import create_session

    rng = np.random.default_rng(0)
    inits, nodes, outputs = [], [], []
    for name, (k, n) in PRODUCTS.items():
        codes, zero = rng.integers(0, 256, (k, n)).astype(np.uint8), rng.integers(100, 156, n).astype(np.uint8)
        if form == "int8":  # the same numbers: the top bit of codes and zero points flipped
            codes, zero = (codes ^ 0x80).view(np.int8), (zero ^ 0x80).view(np.int8)
        scale = (rng.random(n) * 0.01 + 0.001).astype(np.float32)
        inits += [numpy_helper.from_array(codes, f"{name}_w"), numpy_helper.from_array(zero, f"{name}_zp"),
                  numpy_helper.from_array(scale, f"{name}_scale")]
    for layer in range(12):
        for name, (k, _) in PRODUCTS.items():
            out = f"layer{layer}_{name}"
            inputs = [f"x{k}", f"{name}_w", f"{name}_scale", f"{name}_zp"]
            nodes.append(helper.make_node("DynamicQuantizeMatMul", inputs, [out], domain="com.microsoft"))
            outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "products", [helper.make_tensor_value_info(f"x{k}", TensorProto.FLOAT, [1, "S", k])
                                                  for k in (768, 3072)], outputs, inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    path = CACHE / f"int8-products-{form}.onnx"
    path.write_bytes(model.SerializeToString())
    return create_session(path, "cpu", threads)


def multiply_adds(tokens: int) -> int:
    return 12 * tokens * sum(k * n for k, n in PRODUCTS.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args(argv)
    from albert_onnx.engine.session import create_int8_session

    CACHE.mkdir(parents=True, exist_ok=True)
    artifact = cached_artifact(base_shape_model(CACHE), CACHE / "artifact-base", quantize="int8")
    runs: dict[tuple[str, str], Any] = {}
    kernels = {}
    for form in ("int8", "uint8"):
        runs[("products", form)] = products_graph(form, args.threads)
        runs[("model", form)], choice = create_int8_session(artifact / "model_int8.onnx", "cpu", args.threads, form)
        kernels[form] = choice.kernel
    rng = np.random.default_rng(1)
    rows = []
    for tokens in LENGTHS:
        activations = {f"x{k}": rng.standard_normal((1, tokens, k)).astype(np.float32) for k in (768, 3072)}
        feeds: dict[str, dict[str, np.ndarray]] = {"products": activations}
        ids = rng.integers(5, 8000, (1, tokens)).astype(np.int64)
        feeds["model"] = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids),
                          "mask_positions": np.array([tokens // 2], dtype=np.int64),
                          "top_k": np.array([5], dtype=np.int64)}
        calls = max(4, 1920 // tokens)
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
        order = list(runs)
        for r in range(args.rounds):  # every graph in each round, the order turning: a slow spell hits all
            for key in order[r % len(order):] + order[: r % len(order)]:
                session, feed = runs[key], feeds[key[0]]
                outputs = None if key[0] == "products" else ["top_ids"]
                for _ in range(3):
                    session.run(outputs, feed)
                for _ in range(calls):
                    t = time.perf_counter()
                    session.run(outputs, feed)
                    samples[key].append(time.perf_counter() - t)
        stats = {f"{what}_{form}": summarize(samples[(what, form)]) for what, form in runs}
        median = {key: value["median_ms"] for key, value in stats.items()}
        row: dict[str, Any] = {"tokens": tokens, **stats,
                               "products_ratio": median["products_uint8"] / median["products_int8"],
                               "model_ratio": median["model_uint8"] / median["model_int8"],
                               "products_share_int8": median["products_int8"] / median["model_int8"],
                               "int8_multiply_adds_per_s": multiply_adds(tokens) / (median["products_int8"] / 1e3)}
        rows.append(row)
        print({k: (round(v["median_ms"], 2) if isinstance(v, dict) else v) for k, v in row.items()}, flush=True)
    mc = machine(args.threads)
    data = {"machine": mc, "kernels": kernels, "rounds": args.rounds, "results": rows}
    md = (f"# int8 weight forms: the products alone and the whole model ({mc['date']}, {mc['cpu']}, "
          f"class {mc['cpu_class']}, {args.threads} threads)\n\nALBERT-base shape, batch 1, model only; median ms "
          f"(p90) over {args.rounds} rounds in which every graph runs in turn. int8 form: {kernels['int8']}; "
          f"uint8 form: {kernels['uint8']}. The forms differ only in the products' kernel, so the products' "
          "ratio bounds the model's.\n\n")
    md += md_table(["tokens", "products int8", "products uint8", "products ratio", "model int8", "model uint8",
                    "model ratio", "products / model (int8)", "int8 G mult-adds/s"],
                   [[r["tokens"], *(f"{r[k]['median_ms']:.2f} ({r[k]['p90_ms']:.2f})"
                                    for k in ("products_int8", "products_uint8")), f"{r['products_ratio']:.2f}x",
                     *(f"{r[k]['median_ms']:.2f} ({r[k]['p90_ms']:.2f})" for k in ("model_int8", "model_uint8")),
                     f"{r['model_ratio']:.2f}x", f"{r['products_share_int8']:.0%}",
                     round(r["int8_multiply_adds_per_s"] / 1e9)] for r in rows])
    j, m = write_report("int8_kernels", data, md)
    print(md)
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
