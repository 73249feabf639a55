"""Fill-mask int8 against OpenVINO, each contender alone in its own process.

run.py times every contender in one process, in alternating blocks; on a 2-core machine
OpenVINO's thread pool keeps the cores busy after its own calls and slows whatever runs next
(ours measured 24.8 ms at 128 tokens there against 18.5 alone). This script gives each
contender a fresh process and the machine to itself: albert-onnx int8 (the weight form the
runtime picks, and the other form for comparison), OpenVINO int8 (NNCF, calibrated as run.py
does) and OpenVINO's default compile, end to end at 8..512 tokens, the ALBERT-base shape.

  python benchmarks/head_to_head.py          # about 3 minutes on 2 cores

Results: benchmarks/results/CLASS/head_to_head.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, ROOT, base_shape_model, cached_artifact, machine, md_table, write_report  # noqa: E402

LENGTHS = (8, 16, 32, 64, 128, 256, 512)
CONTENDERS = ("albert-onnx int8", "albert-onnx int8, uint8 weights", "openvino int8 (NNCF)", "openvino default")


def measure(which: str, threads: int, rounds: int) -> dict[str, Any]:
    """In this process: one contender's end-to-end medians (ms) per length."""
    import warnings

    warnings.simplefilter("ignore")
    from contenders import AlbertOnnx, OpenVINO, OpenVINOInt8
    from run import BATCH_LENGTHS, CALIBRATION_TEXTS, texts_of_length
    from transformers import AlbertTokenizerFast

    from albert_onnx import Tokenizer

    folder = base_shape_model(CACHE)
    tok, ours_tok = AlbertTokenizerFast.from_pretrained(str(folder)), Tokenizer.from_pretrained(folder)
    corpus = [x for x in (ROOT / "tests" / "data" / "corpus_ja.txt").read_text(encoding="utf-8").split("\n")
              if x and "[" not in x and "<" not in x]
    onnx_file = CACHE / "optimum-base" / "model.onnx"
    if which.startswith("albert-onnx"):
        c: Any = AlbertOnnx(CACHE / "artifact-base", "int8", threads, "uint8" if "uint8" in which else "auto")
    elif which == "openvino int8 (NNCF)":
        calibration = [texts_of_length(tok, ours_tok, BATCH_LENGTHS[i % len(BATCH_LENGTHS)], corpus, seed=200 + i)
                       for i in range(CALIBRATION_TEXTS)]
        c = OpenVINOInt8(onnx_file, CACHE, tok, threads, calibration)
    else:
        c = OpenVINO(onnx_file, tok, threads, None)
    out: dict[str, Any] = {}
    for n in LENGTHS:
        text = texts_of_length(tok, ours_tok, n, corpus, seed=n)
        calls = max(5, 30 * 32 // max(n, 32))
        for _ in range(3):
            c.end_to_end(text)
        samples = []
        for _ in range(rounds):
            for _ in range(calls):
                t = time.perf_counter()
                c.end_to_end(text)
                samples.append(time.perf_counter() - t)
        out[str(n)] = {"median_ms": float(np.median(samples)) * 1e3, "p90_ms": float(np.percentile(samples, 90)) * 1e3}
    kernel = getattr(getattr(c, "fm", None), "int8_kernel", None)
    return {"name": which, "latency": out, "int8_kernel": kernel}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--one", choices=CONTENDERS, help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.threads, args.rounds)))
        return 0
    cached_artifact(base_shape_model(CACHE), CACHE / "artifact-base", quantize="int8")
    if not (CACHE / "optimum-base" / "model.onnx").exists():
        raise SystemExit("run benchmarks/run.py once first: it exports the plain ONNX file OpenVINO compiles")
    results = []
    for which in CONTENDERS:
        res = subprocess.run([sys.executable, __file__, "--one", which, "--threads", str(args.threads),
                              "--rounds", str(args.rounds)], capture_output=True, text=True, check=True)
        results.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(results[-1]["name"], {n: round(v["median_ms"], 2) for n, v in results[-1]["latency"].items()},
              flush=True)
    info = machine(args.threads)
    rows = [[r["name"], *[f"{r['latency'][str(n)]['median_ms']:.2f}" for n in LENGTHS]] for r in results]
    ours = results[0]["latency"]
    for r in results[1:]:
        rows.append([f"albert-onnx int8 vs {r['name']}",
                     *[f"{r['latency'][str(n)]['median_ms'] / ours[str(n)]['median_ms']:.2f}x" for n in LENGTHS]])
    md = (f"# albert-onnx int8 against OpenVINO, each alone in its own process ({info['date']})\n\n"
          f"{info['cpu']}, CPU class **{info['cpu_class']}**, {args.threads} threads; onnxruntime "
          f"{info['versions']['onnxruntime']}, openvino {info['versions']['openvino']}. ALBERT-base shape, random "
          f"weights, fill-mask end to end (text to top-5), batch 1; median ms over {args.rounds} rounds. "
          f"int8 products: {results[0]['int8_kernel']} (the other form: {results[1]['int8_kernel']}). A ratio above "
          "1 means albert-onnx int8 is faster.\n\n"
          + md_table(["contender", *[f"{n} tok" for n in LENGTHS]], rows))
    j, m = write_report("head_to_head", {"machine": info, "results": results}, md)
    print(md)
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
