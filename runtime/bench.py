"""``albert-onnx bench``: latency, throughput, cold start and memory of an artifact, on the
light install, with a baseline check for CI (figures normalized by a reference workload timed
in the same run, so a baseline from another machine still means something)."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .engine.cpu import cpu_class, cpu_info
from .errors import InputError
from .tasks import timed_call

DEFAULT_LENGTHS = (8, 16, 32, 64, 128)


def _pieces(tokenizer: Any) -> list[str]:
    """Ordinary vocabulary pieces to build texts from (no specials, no bare ``▁``)."""
    out = []
    spm = tokenizer.spm
    for piece, ptype in zip(spm.pieces, spm.types):
        if ptype == 1 and piece.strip("\u2581") and "[" not in piece and "<" not in piece:
            out.append(piece.replace("\u2581", " "))
    if not out:
        raise InputError("the artifact's vocabulary has no ordinary pieces to build benchmark texts from")
    return out


def text_of_length(tokenizer: Any, tokens: int, seed: int, mask: bool) -> str:
    """A text that encodes to ``tokens`` ids at most ([CLS]/[SEP] included), with one
    ``[MASK]`` in the middle for fill-mask artifacts."""
    rng = np.random.default_rng(seed)
    pieces = _pieces(tokenizer)
    body = "".join(pieces[i] for i in rng.integers(0, len(pieces), tokens * 2)).strip()

    def build(n: int) -> str:
        return body[: n // 2] + tokenizer.mask_token + body[n // 2 : n] if mask else body[:n]

    lo, hi = 1, len(body)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(tokenizer.encode(build(mid))) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    return build(lo)


def latency_stats(samples: list[float]) -> dict[str, float]:
    """Median, p90 and p99 in ms of samples in seconds."""
    ms = sorted(x * 1e3 for x in samples)

    def q(p: float) -> float:
        return ms[min(len(ms) - 1, int(round(p * (len(ms) - 1))))]

    return {"median_ms": round(statistics.median(ms), 4), "p90_ms": round(q(0.9), 4), "p99_ms": round(q(0.99), 4)}


def reference_ms(rounds: int = 30) -> float:
    """A fixed NumPy workload (float32 matrix products) timed here: the yardstick that makes
    figures from two machines comparable."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((192, 192), dtype=np.float32), rng.standard_normal((192, 192), dtype=np.float32)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(20):
            a = np.tanh(a @ b * 0.01)
        times.append(time.perf_counter() - t)
    return float(statistics.median(times) * 1e3)


_COLD = """
import json, sys, time
t0 = time.perf_counter()
from albert_onnx import pipeline
from albert_onnx.tasks import timed_call as _call
p = pipeline(sys.argv[1], precision=sys.argv[2], threads=int(sys.argv[3]) or None, int8_weights=sys.argv[6])
_call(p)([sys.argv[4]])
cold = time.perf_counter() - t0
for _ in range(int(sys.argv[5])):
    _call(p)([sys.argv[4]])
peak = 0.0
try:
    peak = max(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
except (OSError, ValueError):
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
int8 = p.encoder.int8
print(json.dumps({"cold_start_s": cold, "peak_rss_mb": peak,
                  "int8_load_s": int8.seconds if int8 is not None else None}))
"""


def cold_start(artifact: str, precision: str, threads: int | None, text: str, calls: int,
               int8_weights: str = "auto") -> dict[str, float]:
    """Import, load and first answer in a fresh process; its peak RSS after ``calls`` more, and
    the part of the load the int8 weight form took (reading, scanning, converting)."""
    res = subprocess.run([sys.executable, "-c", _COLD, artifact, precision, str(threads or 0), text, str(calls),
                          int8_weights], capture_output=True, text=True)
    if res.returncode != 0:
        last = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit status {res.returncode}"
        raise InputError(f"cold-start run failed: {last}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def machine(threads: int | None, packages: Sequence[str] = ("albert-onnx", "onnxruntime", "numpy")) -> dict[str, Any]:
    """The CPU, its vector extensions, the thread count and the versions of ``packages``."""
    cpu, flags = cpu_info()
    isa = sorted(f for f in flags if f.startswith(("avx512", "avx2", "amx", "avx_vnni")))
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": cpu, "cpu_class": cpu_class(), "isa": isa, "logical_cpus": os.cpu_count(), "threads": threads,
            "python": platform.python_version(), "platform": platform.platform(), "versions": versions,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


class _Bar:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled and sys.stderr.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        if self.enabled:
            bar = "#" * int(24 * self.done / self.total)
            print(f"\r[{bar:<24}] {self.done}/{self.total} {label:<30}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


def run_bench(artifact: str, *, precisions: Sequence[str] = ("fp32",), lengths: Sequence[int] | None = None,
              batch: int = 32, threads: int | None = None, calls: int = 30, rounds: int = 3,
              cold: bool = True, progress: bool = True, int8_weights: str = "auto") -> dict[str, Any]:
    """Measure an artifact; the report ``albert-onnx bench`` writes. ``lengths`` defaults to
    8, 16, 32, 64, 128 tokens, those the model takes."""
    from .tasks import pipeline

    results, throughput = [], []
    cold_figures: dict[str, Any] = {}
    kernels: dict[str, str] = {}
    bar = _Bar(len(precisions) * (len(lengths or DEFAULT_LENGTHS) + 1 + int(cold)), progress)
    for precision in precisions:
        predictor = pipeline(artifact, precision=precision, threads=threads, int8_weights=int8_weights)
        if predictor.int8_kernel is not None:
            kernels[precision] = predictor.int8_kernel
        call = timed_call(predictor)
        mask = predictor.task == "fill-mask"
        if lengths is None:
            usable = [n for n in DEFAULT_LENGTHS if n <= predictor.max_length]
        else:
            usable = list(lengths)
            for n in usable:
                if n > predictor.max_length:
                    raise InputError(f"length {n} is over the model's limit of {predictor.max_length} tokens")
        texts = {n: text_of_length(predictor.tokenizer, n, seed=n, mask=mask) for n in usable}
        for n in usable:
            call([texts[n]])
            call([texts[n]])
            samples: list[float] = []
            per_round = max(3, calls * 32 // max(n, 32))
            for _ in range(rounds):
                for _ in range(per_round):
                    t = time.perf_counter()
                    call([texts[n]])
                    samples.append(time.perf_counter() - t)
            tokens = len(predictor.tokenizer.encode(texts[n]))
            results.append({"precision": precision, "tokens": tokens, "batch": 1, **latency_stats(samples)})
            bar.step(f"{precision} {tokens} tokens")
        mixed = [texts[usable[i % len(usable)]] for i in range(batch)]
        call(mixed)
        samples = []
        for _ in range(rounds):
            t = time.perf_counter()
            call(mixed)
            samples.append(time.perf_counter() - t)
        stats = latency_stats(samples)
        throughput.append({"precision": precision, "texts": batch,
                           "texts_per_s": round(batch / (stats["median_ms"] / 1e3), 2), **stats})
        results.append({"precision": precision, "tokens": "mixed", "batch": batch, **stats})
        bar.step(f"{precision} batch {batch}")
        if cold:
            cold_figures[precision] = cold_start(artifact, precision, threads, texts[usable[0]], 20, int8_weights)
            bar.step(f"{precision} cold start")
    bar.close()
    first = cold_figures.get(precisions[0], {})
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"artifact": str(artifact), "task": predictor.task, "results": results, "throughput": throughput,
            "cold_start_s": first.get("cold_start_s"), "peak_rss_mb": first.get("peak_rss_mb", peak_self),
            "cold_start": cold_figures, "int8_kernel": kernels, "reference_ms": reference_ms(),
            "machine": machine(threads)}


def compare(current: dict[str, Any], baseline: dict[str, Any], max_slowdown: float) -> list[dict[str, Any]]:
    """Figures more than ``max_slowdown`` times slower than the baseline's, after dividing each
    run's figures by its own reference workload."""
    if max_slowdown <= 0:
        raise InputError(f"--max-slowdown must be a positive ratio (1.2 = 20 % slower allowed), not {max_slowdown}")
    for name, doc in (("current", current), ("baseline", baseline)):
        if not isinstance(doc.get("results"), list) or not doc.get("reference_ms"):
            raise InputError(f"{name} report has no results or reference_ms; make it with albert-onnx bench --json")
    scale = baseline["reference_ms"] / current["reference_ms"]
    base = {(r["precision"], str(r["tokens"]), r["batch"]): r for r in baseline["results"]}
    out = []
    for r in current["results"]:
        old = base.get((r["precision"], str(r["tokens"]), r["batch"]))
        if old is None:
            continue
        ratio = r["median_ms"] * scale / old["median_ms"]
        if ratio > max_slowdown:
            out.append({"precision": r["precision"], "tokens": r["tokens"], "batch": r["batch"],
                        "baseline_ms": old["median_ms"], "current_ms": r["median_ms"],
                        "normalized_ratio": round(ratio, 3)})
    return out


def markdown(report: dict[str, Any], regressions: list[dict[str, Any]] | None = None) -> str:
    m = report["machine"]
    lines = [f"## albert-onnx bench: `{Path(report['artifact']).name}` ({report['task']})", "",
             f"{m['cpu']}, CPU class {m.get('cpu_class', '?')} ({', '.join(m['isa']) or 'no AVX'}), "
             f"threads {m['threads'] or 'default'}, "
             f"onnxruntime {m['versions']['onnxruntime']}, albert-onnx {m['versions']['albert-onnx']}, {m['date']}; "
             f"reference workload {report['reference_ms']:.2f} ms.", "",
             "| precision | tokens | batch | median ms | p90 ms | p99 ms |", "|---|---|---|---|---|---|"]
    lines[3:3] = [f"int8 products: {k}." for k in report.get("int8_kernel", {}).values()]
    lines += [f"| {r['precision']} | {r['tokens']} | {r['batch']} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | "
              f"{r['p99_ms']:.2f} |" for r in report["results"]]
    lines += ["", "| precision | texts/s (batch) |", "|---|---|"]
    lines += [f"| {t['precision']} | {t['texts_per_s']:.1f} ({t['texts']}) |" for t in report["throughput"]]
    if report.get("cold_start_s") is not None:
        lines += ["", f"Cold start (import, load, first answer): {report['cold_start_s']:.2f} s; peak RSS "
                      f"{report['peak_rss_mb']:.0f} MB."]
    if regressions is not None:
        if regressions:
            lines += ["", "**Regressions** (normalized by the reference workload):", "",
                      "| precision | tokens | batch | baseline ms | current ms | normalized ratio |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {r['precision']} | {r['tokens']} | {r['batch']} | {r['baseline_ms']:.2f} | "
                      f"{r['current_ms']:.2f} | {r['normalized_ratio']:.2f} |" for r in regressions]
        else:
            lines += ["", "No regression against the baseline."]
    return "\n".join(lines) + "\n"
