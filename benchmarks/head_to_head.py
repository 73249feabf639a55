"""Fill-mask int8 against OpenVINO, each contender in a process of its own, timed in turn.

run.py times every contender in one process, in alternating blocks; on a 2-core machine
OpenVINO's thread pool keeps the cores busy after its own calls and slows whatever runs next
(ours measured 24.8 ms at 128 tokens there against 18.5 alone). Here each contender loads once
in a process of its own: albert-onnx int8 (the weight form the runtime picks, and the other form
for comparison), OpenVINO int8 (NNCF, calibrated as run.py does) and OpenVINO's default compile.
Then, in every round and at every length (8..512 tokens, the ALBERT-base shape, end to end), each
process times a block of calls in turn while the others wait, with a pause between blocks so
that no pool still spins. This VM's speed drifts by 20 % and more between minutes (a run that
timed each contender's whole sweep in one go put ours 1.01x ahead of NNCF at 512 tokens, the next
0.84x behind), so every ratio is taken within one round, between blocks seconds apart.

  python benchmarks/head_to_head.py          # about 5 minutes on 2 cores

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


SETTLE_S = 0.3  # between two contenders' blocks: OpenVINO's pool spins on after its calls


def child(which: str, threads: int) -> None:
    """In this process: load one contender, then time a block of calls for each line
    "LENGTH CALLS" read from stdin, answering its median ms as one line."""
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
    texts = {n: texts_of_length(tok, ours_tok, n, corpus, seed=n) for n in LENGTHS}
    for n in LENGTHS:  # warm up
        for _ in range(3):
            c.end_to_end(texts[n])
    kernel = getattr(getattr(c, "fm", None), "int8_kernel", None)
    print(json.dumps({"ready": which, "int8_kernel": kernel}), flush=True)
    for line in sys.stdin:
        n, calls = (int(x) for x in line.split())
        samples = []
        for _ in range(calls):
            t = time.perf_counter()
            c.end_to_end(texts[n])
            samples.append(time.perf_counter() - t)
        print(json.dumps({"median_ms": float(np.median(samples)) * 1e3}), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=8, help="rounds; in each, every contender times a block per length")
    ap.add_argument("--one", choices=CONTENDERS, help=argparse.SUPPRESS)  # a child process
    args = ap.parse_args(argv)
    if args.one:
        child(args.one, args.threads)
        return 0
    cached_artifact(base_shape_model(CACHE), CACHE / "artifact-base", quantize="int8")
    if not (CACHE / "optimum-base" / "model.onnx").exists():
        raise SystemExit("run benchmarks/run.py once first: it exports the plain ONNX file OpenVINO compiles")
    procs, kernels = {}, {}
    try:
        for which in CONTENDERS:  # one at a time: loading is not what is timed, but it should not overlap
            procs[which] = subprocess.Popen([sys.executable, __file__, "--one", which, "--threads", str(args.threads)],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            kernels[which] = json.loads(_line(procs[which]))["int8_kernel"]
        ms: dict[str, dict[int, list[float]]] = {w: {n: [] for n in LENGTHS} for w in CONTENDERS}
        for k in range(args.rounds):
            order = CONTENDERS[k % len(CONTENDERS):] + CONTENDERS[:k % len(CONTENDERS)]  # each first in turn
            for n in LENGTHS:
                calls = max(5, 30 * 32 // max(n, 32))
                for which in order:
                    time.sleep(SETTLE_S)
                    proc = procs[which]
                    assert proc.stdin is not None
                    proc.stdin.write(f"{n} {calls}\n")
                    proc.stdin.flush()
                    ms[which][n].append(json.loads(_line(proc))["median_ms"])
            print(f"round {k + 1}:", {w: round(ms[w][512][-1], 1) for w in CONTENDERS}, "ms at 512 tokens", flush=True)
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
    results = [{"name": w, "int8_kernel": kernels[w],
                "latency": {str(n): {"median_ms": float(np.median(ms[w][n])), "rounds_ms": ms[w][n]} for n in LENGTHS}}
               for w in CONTENDERS]
    info = machine(args.threads)
    rows = [[r["name"], *[f"{r['latency'][str(n)]['median_ms']:.2f}" for n in LENGTHS]] for r in results]
    ratios: dict[str, dict[str, list[float]]] = {}
    ours = CONTENDERS[0]
    for other in CONTENDERS[1:]:
        ratios[other] = {str(n): [b / a for a, b in zip(ms[ours][n], ms[other][n])] for n in LENGTHS}
        rows.append([f"albert-onnx int8 vs {other}",
                     *[f"{np.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})" for r in ratios[other].values()]])
    md = (f"# albert-onnx int8 against OpenVINO, each in its own process, timed in turn ({info['date']})\n\n"
          f"{info['cpu']}, CPU class **{info['cpu_class']}**, {args.threads} threads; onnxruntime "
          f"{info['versions']['onnxruntime']}, openvino {info['versions']['openvino']}. ALBERT-base shape, random "
          f"weights, fill-mask end to end (text to top-5), batch 1. {args.rounds} rounds; in each, at each length, "
          f"every contender's process times a block of calls in turn (each first in some rounds; {SETTLE_S} s "
          "between blocks). Median ms over the rounds of each block's median; each ratio is the median (range) "
          "over the rounds of the ratio within one round. int8 products: "
          f"{kernels[CONTENDERS[0]]} (the other form: {kernels[CONTENDERS[1]]}). A ratio above 1 means albert-onnx "
          "int8 is faster.\n\n"
          + md_table(["contender", *[f"{n} tok" for n in LENGTHS]], rows))
    j, m = write_report("head_to_head", {"machine": info, "rounds": args.rounds, "results": results,
                                         "ratios": ratios}, md)
    print(md)
    print(f"wrote {j} and {m}")
    return 0


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"a contender's process ended early: {proc.args!r}")
    return line


if __name__ == "__main__":
    raise SystemExit(main())
