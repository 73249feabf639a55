"""Two parts of bench_serve.py (`--part interleave`, `--part embeddings`), at the ALBERT-base shape.

interleave: a small request's latency (one 13-token text) alone, and while a maximum-size
request runs (2048 texts of 62 characters: 131,072 tokens as the server counts, its default
--max-request-tokens): the server runs small requests between the large one's batches, so a
small request waits for about one batch, not for the whole large request (whose time alone is
reported beside it: what a small request would wait without interleaving).

embeddings: `albert-onnx serve` (fp32 and int8) against infinity-emb (PyPI; an OpenAI-compatible
embeddings server, torch engine, in a virtual environment of its own: INFINITY_PYTHON, default
CACHE/infinity-venv/bin/python, made with `python -m venv VENV && VENV/bin/pip install
torch==2.13.0 'infinity-emb[server,torch]==0.0.78'`) on the same feature-extraction model (the base shape's
random encoder), both driven through the OpenAI SDK at concurrency 1, 8 and 32 for a fixed time
each: requests/s, p50/p99 latency, and each server's peak RSS.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

SMALL = "吾輩は猫である。名前はまだ無い。"
LARGE_TEXT = ("吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所で"
              "ニャーニャー泣いていた事だけは記憶")[:62]
CONCURRENCY = (1, 8, 32)


def _post(port: int, path: str, body: Any, timeout: float = 600) -> tuple[int, float]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body, ensure_ascii=False).encode(),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, time.perf_counter() - started


def quantiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(x * 1e3 for x in seconds)
    return {"count": len(ms), "p50_ms": statistics.median(ms), "p90_ms": ms[min(len(ms) - 1, int(0.9 * len(ms)))],
            "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))], "max_ms": ms[-1]}


def interleave(art: Path, precision: str, batch: int, start: Any, free_port: Any) -> dict[str, Any]:
    """Small-request latency alone and during a maximum-size request, on one server."""
    port = free_port()
    proc = start([sys.executable, "-m", "albert_onnx.cli", "serve", str(art), "--port", str(port),
                  "--precision", precision, "--threads", "2", "--no-access-log", "--max-batch-size", str(batch)], port)
    try:
        small = {"inputs": SMALL}
        for _ in range(20):
            _post(port, "/predict", small)
        alone = [_post(port, "/predict", small)[1] for _ in range(60)]
        large = {"inputs": [LARGE_TEXT] * 2048}
        done: dict[str, Any] = {}

        def run_large() -> None:
            done["status"], done["seconds"] = _post(port, "/predict", large)

        thread = threading.Thread(target=run_large)
        thread.start()
        time.sleep(0.5)  # the large request is parsed and queued, the model on its batches
        during = []
        while thread.is_alive():
            status, took = _post(port, "/predict", small)
            if thread.is_alive():  # only the requests that met the large one
                during.append(took)
            time.sleep(0.05)
        thread.join()
        large_alone = _post(port, "/predict", large)[1]
    finally:
        proc.terminate()
        proc.wait()
    return {"precision": precision, "max_batch_size": batch, "alone": quantiles(alone), "during": quantiles(during),
            "large_status": done["status"], "large_seconds_with_small": done["seconds"],
            "large_seconds_alone": large_alone}


CLIENT = """
import json, statistics, sys, threading, time
from openai import OpenAI
port, model, concurrency, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
texts = json.loads(sys.argv[5])
lat, errors, lock = [], 0, threading.Lock()
deadline = time.perf_counter() + seconds
def worker(n):
    global errors
    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    k = n
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        try:
            client.embeddings.create(model=model, input=texts[k % len(texts)])
            with lock: lat.append(time.perf_counter() - t)
        except Exception:
            with lock: errors += 1
        k += concurrency
for _ in range(5):
    OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x").embeddings.create(model=model, input=texts[0])
started = time.perf_counter()
threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
[t.start() for t in threads]; [t.join() for t in threads]
elapsed = time.perf_counter() - started
ms = sorted(x * 1e3 for x in lat)
print(json.dumps({"concurrency": concurrency, "requests": len(ms), "errors": errors,
                  "requests_per_s": len(ms) / elapsed, "p50_ms": statistics.median(ms),
                  "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))]}))
"""


def infinity_python(cache: Path) -> str | None:
    python = os.environ.get("INFINITY_PYTHON") or str(cache / "infinity-venv" / "bin" / "python")
    return python if Path(python).exists() else None


def embeddings(folder: Path, art: Path, seconds: float, start: Any, free_port: Any, peak_rss_mb: Any,
               infinity: str | None) -> list[dict[str, Any]]:
    """Ours (fp32, int8) and infinity-emb under the same OpenAI SDK load."""
    texts = [SMALL, "どこで生れたかとんと見当がつかぬ。",
             "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"]
    contenders: list[tuple[str, list[str], str]] = []
    for precision in ("fp32", "int8"):
        contenders.append((f"albert-onnx serve {precision}", [
            sys.executable, "-m", "albert_onnx.cli", "serve", str(art), "--precision", precision, "--threads", "2",
            "--no-access-log", "--model-name", "albert", "--port"], "albert"))
    if infinity:
        contenders.append(("infinity-emb (torch, fp32)", [
            infinity, "-m", "infinity_emb.cli", "v2", "--model-id", str(folder), "--served-model-name", "albert",
            "--engine", "torch", "--device", "cpu", "--no-bettertransformer", "--batch-size", "32",
            "--pooling-method", "mean", "--url-prefix", "/v1", "--port"],
            "albert"))
    out = []
    for name, cmd, model in contenders:
        port = free_port()
        env_cmd = [*cmd, str(port)]
        proc = start(env_cmd, port)
        try:
            rows = []
            for c in CONCURRENCY:
                run = subprocess.run([sys.executable, "-c", CLIENT, str(port), model, str(c), str(seconds),
                                      json.dumps(texts, ensure_ascii=False)], capture_output=True, text=True,
                                     timeout=seconds + 300)
                if run.returncode != 0:
                    raise RuntimeError(f"{name}: the client failed: {run.stderr[-2000:]}")
                rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
                print(name, rows[-1], flush=True)
            out.append({"name": name, "load": rows, "peak_rss_mb": peak_rss_mb(proc.pid)})
        finally:
            proc.terminate()
            proc.wait()
    return out
