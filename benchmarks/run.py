"""Latency, throughput, cold start, memory and size of albert-onnx against its peers.

One command, one process tree, the same inputs and thread count for every contender: the
model card's PyTorch recipe (eager fp32), optimum's ORTModelForMaskedLM on its default
export, this runtime in fp32 and int8, and OpenVINO compiling optimum's plain ONNX file
(default precision, f32, and its own int8: NNCF post-training quantization calibrated on 16
texts that are never timed) where openvino and nncf are installed. Model: the ALBERT-base shape (12 layers,
hidden 768, embedding 128, 12 heads, FFN 3072, vocab 32000) with random weights.

Each contender is timed in blocks of consecutive calls, over several rounds, never one call
of each in turn: on a small machine one framework's spinning thread pool slows the next
one's call. Results: benchmarks/results/CLASS/benchmark.{json,md} and latency.png, CLASS the CPU
class (avx2, avx512-vnni, amx: int8 kernels differ per class).

  python benchmarks/run.py                 # full run (about 10 minutes on 2 cores)
  python benchmarks/run.py --quick --baseline benchmarks/results/avx2/benchmark.json --margin 0.25
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
from common import (  # noqa: E402
    CACHE,
    ROOT,
    base_shape_model,
    cached_artifact,
    machine,
    md_table,
    summarize,
    timed,
    write_report,
)
from contenders import AlbertOnnx, K, OpenVINO, OpenVINOInt8, OptimumDefault, PyTorchRecipe, pad, recipe_ids  # noqa: E402

LENGTHS = [8, 16, 32, 64, 128, 256, 512]
QUICK_LENGTHS = [16, 128]
BATCH_LENGTHS = [8, 16, 24, 32, 48, 64, 96, 128]
CALIBRATION_TEXTS = 16  # OpenVINO int8: NNCF's calibration set


class Progress:
    def __init__(self, total: int) -> None:
        try:
            from tqdm import tqdm

            self.bar: Any = tqdm(total=total, desc="benchmark", unit="block", file=sys.stderr)
        except ImportError:
            self.bar, self.done, self.total = None, 0, total

    def step(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(label[:40])
            self.bar.update(1)
        else:
            self.done += 1
            print(f"\r[{self.done}/{self.total}] {label[:50]:<50}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            print(file=sys.stderr)


def texts_of_length(tokenizer: Any, ours: Any, n: int, corpus: list[str], seed: int) -> str:
    """A text of ``n`` tokens ([CLS], [SEP] included) with one mask where the model card's
    recipe is right, so every contender sees the same ids."""
    rng = np.random.default_rng(seed)
    lines = [corpus[i] for i in rng.permutation(len(corpus))]
    pool = "".join(lines)
    lo, hi = 1, len(pool)
    while lo < hi:  # longest prefix whose masked form fits n tokens
        mid = (lo + hi + 1) // 2
        if len(ours.encode(pool[:mid] + "[MASK]")) <= n:
            lo = mid
        else:
            hi = mid - 1
    for size in range(lo, max(1, lo - 60), -1):
        body = pool[:size]
        for shift in range(0, len(body) // 2, max(1, len(body) // 40)):
            for cut in (len(body) // 2 + shift, len(body) // 2 - shift):
                if not 0 < cut < len(body):
                    continue
                text = body[:cut] + "[MASK]" + body[cut:]
                toks = tokenizer.tokenize(text)
                if "[MASK]" not in toks or toks.index("[MASK]") + 1 >= len(toks) \
                        or toks[toks.index("[MASK]") + 1] != "\u2581":
                    continue
                ids = recipe_ids(tokenizer, text)
                if len(ids) == n and ids == ours.encode(text):
                    return text
    raise RuntimeError(f"could not build a {n}-token text")


def timed_block(fn: Any, arg: Any, calls: int) -> list[float]:
    return timed(fn, calls, arg)


def calls_for(length: int, quick: bool) -> int:
    base = 15 if quick else 40
    return max(3, min(base, int(base * 32 / max(length, 32))))


COLD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
kind, path, text, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if kind.startswith("albert-onnx"):
    from albert_onnx import FillMask
    fm = FillMask(path, precision=kind.split()[-1], threads=threads)
    int8_load = fm.encoder.int8.seconds if fm.encoder.int8 is not None else None
    answer = lambda: fm.predict_ids([text], top_k=5)
else:
    import torch
    from transformers import AlbertForMaskedLM, AlbertTokenizerFast
    sys.path.insert(0, sys.argv[6])
    from contenders import recipe_ids
    torch.set_num_threads(threads)
    tok = AlbertTokenizerFast.from_pretrained(path)
    model = AlbertForMaskedLM.from_pretrained(path).eval()
    def answer():
        ids = recipe_ids(tok, text)
        with torch.inference_mode():
            return model(torch.tensor([ids])).logits[0, ids.index(tok.mask_token_id)].topk(5)
answer()
cold = time.perf_counter() - t0
for _ in range(int(sys.argv[5])):
    answer()
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"cold_start_s": cold, "peak_rss_mb": peak, "int8_load_s": globals().get("int8_load")}))
"""


def cold_start(kind: str, path: Path, text: str, threads: int, calls: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(2):  # the first run also warms the page cache
        res = subprocess.run([sys.executable, "-c", COLD, kind, str(path), text, str(threads), str(calls),
                              str(Path(__file__).resolve().parent)],
                             capture_output=True, text=True, check=True)
        cur = json.loads(res.stdout.strip().splitlines()[-1])
        best = cur if not best or cur["cold_start_s"] < best["cold_start_s"] else best
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="16 and 128 tokens, fewer calls (< 3 min)")
    ap.add_argument("--baseline", type=Path, help="earlier JSON to compare with, by ratio to PyTorch")
    ap.add_argument("--margin", type=float, default=0.25,
                    help="fail when a ratio falls more than this fraction below the baseline's")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--output", default=None, help="report name under benchmarks/results")
    args = ap.parse_args(argv)
    started = time.perf_counter()

    from transformers import AlbertTokenizerFast

    from albert_onnx import Tokenizer

    args.cache.mkdir(parents=True, exist_ok=True)
    folder = base_shape_model(args.cache)
    artifact = cached_artifact(folder, args.cache / "artifact-base", quantize="int8")
    optimum_dir = args.cache / "optimum-base"
    if not (optimum_dir / "model.onnx").exists():
        from optimum.onnxruntime import ORTModelForMaskedLM

        ORTModelForMaskedLM.from_pretrained(str(folder), export=True).save_pretrained(str(optimum_dir))

    tokenizer = AlbertTokenizerFast.from_pretrained(str(folder))
    ours_tok = Tokenizer.from_pretrained(folder)
    contenders: list[Any] = [PyTorchRecipe(folder, tokenizer, args.threads),
                             OptimumDefault(optimum_dir, tokenizer, args.threads),
                             AlbertOnnx(artifact, "fp32", args.threads),
                             AlbertOnnx(artifact, "int8", args.threads)]
    if contenders[-1].fm.int8_kernel != AlbertOnnx.kernel("uint8"):  # the other weight form, same artifact
        contenders.append(AlbertOnnx(artifact, "int8", args.threads, int8_weights="uint8"))
    try:
        for precision in (None, "f32"):
            contenders.append(OpenVINO(optimum_dir / "model.onnx", tokenizer, args.threads, precision))
    except ImportError:
        print("openvino is not installed: skipped", file=sys.stderr)

    corpus = [x for x in (ROOT / "tests" / "data" / "corpus_ja.txt").read_text(encoding="utf-8").split("\n")
              if x and "[" not in x and "<" not in x]
    lengths = QUICK_LENGTHS if args.quick else LENGTHS
    texts = {n: texts_of_length(tokenizer, ours_tok, n, corpus, seed=n) for n in lengths}
    feeds = {n: pad([ours_tok.encode(texts[n])]) for n in lengths}
    batch_texts = [texts_of_length(tokenizer, ours_tok, BATCH_LENGTHS[i % len(BATCH_LENGTHS)], corpus, seed=100 + i)
                   for i in range(32)]
    try:  # calibrated on texts that are never timed
        calibration = [texts_of_length(tokenizer, ours_tok, BATCH_LENGTHS[i % len(BATCH_LENGTHS)], corpus, seed=200 + i)
                       for i in range(CALIBRATION_TEXTS)]
        contenders.append(OpenVINOInt8(optimum_dir / "model.onnx", args.cache, tokenizer, args.threads, calibration))
    except ImportError:
        print("openvino or nncf is not installed: OpenVINO int8 skipped", file=sys.stderr)

    # every contender must give the same answers before it is timed
    ref = contenders[0]
    for c in contenders[1:]:
        for n in lengths[:2]:
            same = c.end_to_end(texts[n])[0] == ref.end_to_end(texts[n])[0]
            print(f"{c.name}: top-1 at {n} tokens {'equals' if same else 'DIFFERS FROM'} PyTorch's",
                  file=sys.stderr)

    rounds = 2 if args.quick else args.rounds
    jobs = [(kind, n) for n in lengths for kind in ("end_to_end", "model_only")] + [("batch32", 0)]
    progress = Progress(rounds * len(jobs) * len(contenders))
    samples: dict[tuple[str, str, int], list[float]] = {}
    for _ in range(rounds):
        for kind, n in jobs:
            for c in contenders:
                fn, arg = {"end_to_end": (c.end_to_end, texts.get(n)),
                           "model_only": (c.model_only, feeds.get(n)),
                           "batch32": (c.batch, batch_texts)}[kind]
                calls = 3 if kind == "batch32" else calls_for(n, args.quick)
                time.sleep(0.2)  # let the previous contender's spinning thread pool go idle
                fn(arg)  # warm-up call of this block
                samples.setdefault((c.name, kind, n), []).extend(timed_block(fn, arg, calls))
                progress.step(f"{c.name} {kind} {n}")
    progress.close()

    results: dict[str, Any] = {"machine": machine(args.threads), "quick": args.quick,
                               "model": "ALBERT-base shape, random weights", "top_k": K,
                               "contenders": [c.name for c in contenders], "latency": {}, "batch32": {},
                               "int8_kernel": {c.name: c.fm.int8_kernel for c in contenders
                                               if isinstance(c, AlbertOnnx) and c.fm.int8_kernel}}
    for (name, kind, n), s in samples.items():
        if kind == "batch32":
            st = summarize(s)
            results["batch32"][name] = {**st, "texts_per_s": 32 / (st["median_ms"] / 1e3)}
        else:
            results["latency"].setdefault(name, {}).setdefault(kind, {})[str(n)] = summarize(s)
    torch_name = contenders[0].name
    for name, kinds in results["latency"].items():
        for kind, per_len in kinds.items():
            for n, st in per_len.items():
                st["speedup_vs_pytorch"] = results["latency"][torch_name][kind][n]["median_ms"] / st["median_ms"]
    for name, st in results["batch32"].items():
        st["speedup_vs_pytorch"] = st["texts_per_s"] / results["batch32"][torch_name]["texts_per_s"]

    cold_text = texts[16]
    results["cold_start"] = {}
    for name, kind, path in ((torch_name, "pytorch", folder), ("albert-onnx fp32", "albert-onnx fp32", artifact),
                             ("albert-onnx int8", "albert-onnx int8", artifact)):
        results["cold_start"][name] = cold_start(kind, path, cold_text, args.threads, 5 if args.quick else 20)
    results["sizes_mb"] = {
        torch_name: round(sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1e6, 1),
        "optimum default export": round((optimum_dir / "model.onnx").stat().st_size / 1e6, 1),
        "albert-onnx fp32": round((artifact / "model.onnx").stat().st_size / 1e6, 1),
        "albert-onnx int8": round((artifact / "model_int8.onnx").stat().st_size / 1e6, 1),
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    name = args.output or ("benchmark_quick" if args.quick else "benchmark")
    j, m = write_report(name, results, render_markdown(results, lengths))
    if not args.quick:
        plot(results, lengths, j.parent / "latency.png")
    print(render_markdown(results, lengths))
    print(f"wrote {j} and {m} in {results['seconds']} s")
    if args.baseline:
        return compare(results, json.loads(args.baseline.read_text()), args.margin)
    return 0


def render_markdown(r: dict[str, Any], lengths: list[int]) -> str:
    mc = r["machine"]
    out = [f"# albert-onnx benchmark, {mc['date']}", "",
           f"{r['model']}; CPU {mc['cpu']}, class **{mc.get('cpu_class', '?')}** ({', '.join(mc['isa'])}), "
           f"{mc['threads']} threads; "
           f"onnxruntime {mc['versions']['onnxruntime']}, torch {mc['versions']['torch']}, "
           f"transformers {mc['versions']['transformers']}, openvino {mc['versions']['openvino']}; "
           f"Python {mc['python']}. Batch 1, top-{r['top_k']} at one mask; median ms "
           "(p90) and speed-up against the PyTorch recipe.", ""]
    out += [f"- {name}: int8 products {kernel}" for name, kernel in r.get("int8_kernel", {}).items()] + [""]
    for kind, title in (("end_to_end", "End to end (text to top-k, tokenizing included)"),
                        ("model_only", "Model only (prepared ids)")):
        out += [f"## {title}", ""]
        rows = []
        for name, kinds in r["latency"].items():
            row = [name]
            for n in lengths:
                st = kinds[kind][str(n)]
                row.append(f"{st['median_ms']:.1f} ({st['p90_ms']:.1f}) {st['speedup_vs_pytorch']:.1f}x")
            rows.append(row)
        out += [md_table(["contender", *[f"{n} tok" for n in lengths]], rows)]
    out += ["## p99 latency, end to end (ms)", ""]
    out += [md_table(["contender", *[f"{n} tok" for n in lengths]],
                     [[name, *[round(k["end_to_end"][str(n)]["p99_ms"], 1) for n in lengths]]
                      for name, k in r["latency"].items()])]
    out += ["## Throughput: 32 texts of mixed lengths (8-128 tokens) per call", ""]
    out += [md_table(["contender", "texts/s", "vs PyTorch"],
                     [[n, round(s["texts_per_s"], 1), f"{s['speedup_vs_pytorch']:.1f}x"]
                      for n, s in r["batch32"].items()])]
    out += ["## Cold start (import, load, first answer) and peak memory", ""]
    cold = r["cold_start"]
    first = next(iter(cold.values()))
    out += [md_table(["contender", "cold start s", "vs PyTorch", "peak RSS MB", "vs PyTorch", "int8 form at load"],
                     [[n, round(s["cold_start_s"], 2), f"{first['cold_start_s'] / s['cold_start_s']:.1f}x",
                       round(s["peak_rss_mb"]), f"{s['peak_rss_mb'] / first['peak_rss_mb']:.2f}",
                       f"{s['int8_load_s'] * 1e3:.0f} ms ({s['int8_load_s'] / s['cold_start_s']:.1%})"
                       if s.get("int8_load_s") else ""]
                      for n, s in cold.items()])]
    out += ["## File sizes (MB)", ""]
    sizes = r["sizes_mb"]
    torch_mb = next(iter(sizes.values()))
    out += [md_table(["model file", "MB", "vs PyTorch"],
                     [[n, v, f"{v / torch_mb:.2f}"] for n, v in sizes.items()])]
    return "\n".join(out)


def plot(r: dict[str, Any], lengths: list[int], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, kind in zip(axes, ("end_to_end", "model_only")):
        for name, kinds in r["latency"].items():
            ax.plot(lengths, [kinds[kind][str(n)]["median_ms"] for n in lengths], marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length (tokens)")
        ax.set_ylabel("median latency (ms)")
        ax.set_title(kind.replace("_", " "))
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"ALBERT-base shape, batch 1, {r['machine']['threads']} threads, {r['machine']['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def compare(cur: dict[str, Any], base: dict[str, Any], margin: float) -> int:
    """Fail (1) where a contender's speed-up against PyTorch fell beyond ``margin``."""
    failures = []
    for name, kinds in cur["latency"].items():
        for kind, per_len in kinds.items():
            for n, st in per_len.items():
                old = base.get("latency", {}).get(name, {}).get(kind, {}).get(n)
                if old and st["speedup_vs_pytorch"] < old["speedup_vs_pytorch"] * (1 - margin):
                    failures.append(f"{name} {kind} {n} tokens: {st['speedup_vs_pytorch']:.2f}x "
                                    f"vs baseline {old['speedup_vs_pytorch']:.2f}x")
    for line in failures:
        print(f"REGRESSION {line}")
    print(f"baseline comparison: {len(failures)} regression(s) beyond {margin:.0%}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
