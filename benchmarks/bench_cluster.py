"""Bulk jobs at cluster scale: the driver's peak memory against the input's size, and rows/s of
the Ray and Spark engines at 1 and 2 workers, with the projection to N nodes.

Memory: 600 rows against 300,000 rows with 250-character ids, most of them without text (error
rows), each job's driver in its own process (its peak RSS: ``VmHWM``). Speed: 10,000 texts
with one mask each, the shared mini model (else the ALBERT-base shape) in int8, Parquet written;
rows/s of the job (plan, run, commit) and of the whole run with the engine's start-up.

  python benchmarks/bench_cluster.py [--rows 10000] [--skip-memory] [--skip-speed] [--model mini|base]

Results: benchmarks/results/CLASS/cluster.{json,md} (cluster-base.* for the base shape).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, SHARED_MODEL, base_shape_model, cached_artifact, machine, masked_texts, md_table, write_report  # noqa: E402

# the driver's own peak: VmHWM of its fresh address space (ru_maxrss would start from the
# parent's size at fork, which Linux carries over exec)
_DRIVER = """
import json, sys, time
from albert_onnx.batch.engines import run_ray, run_spark
engine, artifact, src, out, kwargs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
t = time.perf_counter()
summary = (run_ray if engine == "ray" else run_spark)(artifact, src, out, **kwargs)
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:"))
print(json.dumps({"summary": summary, "wall_s": time.perf_counter() - t, "peak_rss_mb": hwm / 1024}))
"""


def run_driver(engine: str, artifact: Path, src: Path, out: Path, **kwargs: Any) -> dict[str, Any]:
    """One job, its driver in a fresh process: the summary, wall seconds (engine start-up
    included) and the driver's peak RSS in MB."""
    proc = subprocess.run([sys.executable, "-c", _DRIVER, engine, str(artifact), str(src), str(out),
                           json.dumps(kwargs)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} job failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def memory_input(path: Path, rows: int, text: str) -> Path:
    """``rows`` JSON lines with 250-character ids; one row in 100 has a text, the rest none."""
    with open(path, "w", encoding="utf-8") as f:
        for n in range(rows):
            rid = f"{n:010d}-" + "x" * 239
            f.write(json.dumps({"id": rid, "text": text} if n % 100 == 0 else {"id": rid}) + "\n")
    return path


def driver_memory(engine: str, artifact: Path, work: Path, text: str,
                  sizes: tuple[int, int] = (600, 300_000)) -> dict[str, Any]:
    """The driver's peak RSS for a small and a large input, and the difference."""
    peaks = {}
    for rows in sizes:
        src = memory_input(work / f"mem-{rows}.jsonl", rows, text)
        out = work / f"mem-{engine}-{rows}"
        result = run_driver(engine, artifact, src, out, workers=2, threads=1, precision="int8")
        assert result["summary"]["rows"] == rows, result
        peaks[rows] = result["peak_rss_mb"]
        shutil.rmtree(out, ignore_errors=True)
    small, large = sizes
    return {"engine": engine, f"peak_mb_{small}": round(peaks[small], 1), f"peak_mb_{large}": round(peaks[large], 1),
            "delta_mb": round(peaks[large] - peaks[small], 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--model", choices=["mini", "base"], default="mini",
                    help="mini: the shared model (when there); base: the ALBERT-base shape, random weights")
    args = ap.parse_args(argv)
    mini = args.model == "mini" and SHARED_MODEL.is_dir()
    source = SHARED_MODEL if mini else base_shape_model(args.cache)
    art = cached_artifact(source, args.cache / f"artifact-batch-{source.name}", quantize="int8",
                          int8_min_agreement=0.0)
    texts = masked_texts(args.rows)
    work = Path(tempfile.mkdtemp(prefix="albert-onnx-cluster-"))
    memory: list[dict[str, Any]] = []
    speed: list[dict[str, Any]] = []
    try:
        if not args.skip_memory:
            for engine in ("ray", "spark"):
                memory.append(driver_memory(engine, art, work, texts[0]))
                print(memory[-1], flush=True)
        if not args.skip_speed:
            part_rows = max(50, len(texts) // 20)  # 20 segments: both workers busy to the end
            src = work / "input.txt"
            src.write_text("\n".join(texts) + "\n", encoding="utf-8")
            for engine in ("ray", "spark"):
                for workers in (1, 2):
                    out = work / f"speed-{engine}-{workers}"
                    r = run_driver(engine, art, src, out, workers=workers, threads=1, precision="int8",
                                   part_rows=part_rows)
                    job_s = r["summary"]["seconds"]
                    speed.append({"engine": engine, "workers": workers, "threads": 1, "rows": len(texts),
                                  "job_s": job_s, "wall_s": round(r["wall_s"], 2),
                                  "rows_per_s_job": round(len(texts) / job_s, 1),
                                  "rows_per_s_wall": round(len(texts) / r["wall_s"], 1),
                                  "rows_per_s_per_worker": round(len(texts) / job_s / workers, 1)})
                    print(speed[-1], flush=True)
                    shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = machine(2)
    md = [f"# Bulk jobs at cluster scale\n\n{info['cpu']} ({', '.join(info['isa'])}), 2 cores, {info['date']}.\n"]
    if memory:
        md.append("## The driver's peak memory\n\nJSON lines with 250-character ids, one row in 100 with a "
                  "text (the rest are error rows), int8, 2 workers; each driver in its own process.\n\n"
                  + md_table(["engine", "600 rows (MB)", "300,000 rows (MB)", "difference (MB)"],
                             [[m["engine"], m["peak_mb_600"], m["peak_mb_300000"], m["delta_mb"]] for m in memory]))
    if speed:
        md.append(f"## Rows/s at 1 and 2 workers\n\n{len(texts):,} texts with one mask each, model "
                  f"`{source.name}` fill-mask int8, 1 thread a worker, Parquet written. *Job*: plan, run, "
                  "commit; *wall*: with the engine's start-up. 20 segments (`--part-rows "
                  f"{max(50, len(texts) // 20)}`).\n\n"
                  + md_table(["engine", "workers", "job s", "rows/s (job)", "rows/s a worker", "wall s",
                              "rows/s (wall)"],
                             [[s["engine"], s["workers"], s["job_s"], s["rows_per_s_job"], s["rows_per_s_per_worker"],
                               s["wall_s"], s["rows_per_s_wall"]] for s in speed]))
    data = {"machine": info, "model": source.name, "memory": memory, "speed": speed}
    j, m = write_report("cluster" if mini else "cluster-base", data,
                        "\n\n".join(md) + "\n")
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
