"""Load test of `albert-onnx serve` against a FastAPI + transformers server, on the loopback.

A closed-loop load generator in a process of its own: C keep-alive connections, each sending
its next request when the previous answer arrives, for a bounded time and count; requests/s,
p50 and p99 latency at concurrency 1, 8 and 32. The generator is wrk (C, one epoll thread;
`apt-get install wrk`) where it is installed, else a Python one (http.client, a thread per
connection), which spends more of the 2 cores itself; the report says which ran.

Models: every shared fine-tuned model (when ../shared exists: -cls and -nli text classification,
the NLI one on a pair, -ner token classification, -qa question answering, -mc multiple choice
with 5 choices) and the ALBERT-base shape with a random 3-label head; albert-onnx int8 and fp32
against the peer (PyTorch fp32, benchmarks/peer_server.py, the transformers pipeline of the task
or, for multiple choice, which has none, AlbertForMultipleChoice and a softmax), all with 2
threads. Also, for -cls and the base shape: the server's overhead over the in-process predictor
at concurrency 1 (40 rounds in turns against one warm in-process predictor, with a bare server of
the same design calling the same predictor beside it: benchmarks/floor_server.py) and each
serving process's peak RSS against an in-process predictor's.

  python benchmarks/bench_serve.py              # about 13 minutes on 2 cores

Results: benchmarks/results/CLASS/serve.{json,md}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, SHARED_MODEL, cached_artifact, machine, md_table, write_report  # noqa: E402

TEXT = "吾輩は猫である。名前はまだ無い。"  # 13 tokens with the shared vocabulary, [CLS] and [SEP] included
CONTEXT = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。三毛は隣の家にいる。"
CONCURRENCY = (1, 8, 32)
HERE = Path(__file__).resolve()


@dataclass(frozen=True)
class Model:
    label: str
    folder: str  # a Hugging Face folder: under ../shared/models/, or the base shape's (made on demand)
    task: str
    inputs: Any  # what one request's "inputs" holds
    overhead: bool  # whether to run the overhead rounds against an in-process predictor

    @property
    def body(self) -> str:
        return json.dumps({"inputs": self.inputs}, ensure_ascii=False)


SHARED_MODELS = [
    Model("shared -cls (mini)", "albert-ja-mini-wagahai-cls", "text-classification", TEXT, True),
    Model("shared -ner (mini)", "albert-ja-mini-wagahai-ner", "token-classification", TEXT, False),
    Model("shared -nli (mini), a pair", "albert-ja-mini-wagahai-nli", "text-classification",
          {"text": CONTEXT, "text_pair": "吾輩は猫である。"}, False),
    Model("shared -qa (mini)", "albert-ja-mini-wagahai-qa", "question-answering",
          {"question": "number?", "context": CONTEXT}, False),
    Model("shared -mc (mini), 5 choices", "albert-ja-mini-wagahai-mc", "multiple-choice",
          {"question": "吾輩は猫である。名前は",
           "choices": ["まだ無い。", "三毛である。", "どこにもない。", "隣の家にいる。", "見当がつかぬ。"]}, False),
]
BASE = Model("ALBERT-base shape, 3 labels", "base-text-classification", "text-classification", TEXT, True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(conn: http.client.HTTPConnection, body: bytes) -> int:
    conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def generate(port: int, concurrency: int, seconds: float, limit: int, request: str) -> dict[str, Any]:
    """The load generator (run in its own process): closed loop, bounded in time and count."""
    body = request.encode()
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < deadline:
            with lock:
                if len(latencies) + errors >= limit:
                    return
            t = time.perf_counter()
            status = call(conn, body)
            with lock:
                if status == 200:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors += 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    ms = sorted(x * 1e3 for x in latencies)
    return {"concurrency": concurrency, "requests": len(ms), "errors": errors, "seconds": elapsed,
            "requests_per_s": len(ms) / elapsed, "p50_ms": statistics.median(ms),
            "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))], "mean_ms": statistics.fmean(ms)}


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs so far: the time the hypervisor took is steal."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return fields[7], sum(fields)


def steal_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return 100.0 * (after[0] - before[0]) / total if total > 0 else 0.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start: {cmd}")


IN_PROCESS = """
import json, statistics, sys, time
from albert_onnx import pipeline
p = pipeline(sys.argv[1], precision=sys.argv[2], threads=2)
x = json.loads(sys.argv[3])["inputs"]
for _ in range(20): p(x)
for line in sys.stdin:  # one round per line, "round GAP_S": the median of 50 calls, each GAP_S after the last
    gap, ts = float(line.split()[1]), []
    for _ in range(50):
        if gap:
            time.sleep(gap)
        t = time.perf_counter(); p(x); ts.append(time.perf_counter() - t)
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
    print(json.dumps({"median_ms": statistics.median(ts) * 1e3, "peak_rss_mb": int(hwm.split()[1]) / 1024}), flush=True)
"""

# wrk's script: POST the body, stop after `limit` answers, print one JSON line (latencies are in us)
WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
local limit, count = %d, 0
response = function(status, headers, body)
  count = count + 1
  if count >= limit then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "errors": %%d, "seconds": %%.6f, "p50_ms": %%.4f, "p99_ms": %%.4f, '
    .. '"mean_ms": %%.4f}\\n',
    summary.requests, e.status + e.connect + e.read + e.write + e.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.mean / 1e3))
end
"""


def load_wrk(port: int, concurrency: int, seconds: float, request: str, limit: int = 200_000) -> dict[str, Any]:
    body = json.dumps(json.loads(request))  # ASCII escapes: the Lua string holds no multi-byte text
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA % (body, limit))
    try:
        res = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
                              "-s", f.name, f"http://127.0.0.1:{port}/predict"],
                             capture_output=True, text=True, check=True, timeout=seconds + 60)
    finally:
        Path(f.name).unlink()
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out["requests"] >= limit:  # wrk still reports the whole duration: the rate would be wrong
        raise RuntimeError(f"wrk hit its bound of {limit} requests within {seconds} s; run fewer seconds")
    ok = out["requests"] - out["errors"]
    return {"concurrency": concurrency, "requests": ok, "errors": out["errors"], "seconds": out["seconds"],
            "requests_per_s": ok / out["seconds"], "p50_ms": out["p50_ms"], "p99_ms": out["p99_ms"],
            "mean_ms": out["mean_ms"]}


GENERATOR = "wrk" if shutil.which("wrk") else "python"


def load(port: int, concurrency: int, seconds: float, request: str) -> dict[str, Any]:
    if GENERATOR == "wrk":
        return load_wrk(port, concurrency, seconds, request)
    res = subprocess.run([sys.executable, str(HERE), "--generate", str(port), str(concurrency), str(seconds), request],
                         capture_output=True, text=True, check=True)
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def model_time(port: int) -> tuple[float, int]:
    """The server's ``albert_onnx_model_seconds`` sum and count (its model runs so far)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    values = {k: float(v) for k, v in (line.split() for line in text.splitlines()
                                       if line.startswith(("albert_onnx_model_seconds_sum",
                                                           "albert_onnx_model_seconds_count")))}
    return values["albert_onnx_model_seconds_sum"], int(values["albert_onnx_model_seconds_count"])


# between the in-process predictor's calls and the server's served second: on 2 cores the one's
# ONNX Runtime thread pool, spinning after its last run, would slow the other's first requests
SETTLE_S = 0.3


def overhead(port: int, in_process: list[str], request: str, rounds: int = 40,
             floor_port: int | None = None) -> dict[str, Any]:
    """Served p50 at concurrency 1 against the in-process median of one warm in-process
    predictor. This machine's speed drifts by 20 % and more between minutes, so each round is
    in-process, served, in-process again (50 calls, 1 s, 50 calls): its overhead is the served p50
    minus the mean of the two in-process medians around it; the result is the rounds' median.

    The in-process calls come two ways: back to back, and paced as the server's model runs are
    (each call after a pause as long as the time between two runs in the server: the served mean
    latency minus the model mean of the previous served second). On a VM an idle pause before a
    call slows the call itself, so back-to-back calls are faster than any paced caller's.

    Beside it, free of the drift: the served mean latency minus the mean time of the same
    requests' model runs inside the server (its ``albert_onnx_model_seconds``, read before and
    after the served second).

    And the floor (``floor_port``: benchmarks/floor_server.py, a bare server of the same design
    calling the same predictor): in each round, its served p50 in a second of its own, taken
    before or after ours in turn, minus the same in-process median: what any such server adds
    on this machine, by the same comparison."""
    rounds_out: list[dict[str, Any]] = []
    proc = subprocess.Popen(in_process, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def in_process_round(gap_s: float = 0.0) -> dict[str, float]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"round {gap_s}\n")
        proc.stdin.flush()
        return dict(json.loads(proc.stdout.readline()))

    try:
        gap = None
        for _ in range(rounds):
            before = in_process_round()
            paced_before: dict[str, float] | None = in_process_round(gap) if gap is not None else None
            time.sleep(SETTLE_S)
            floor_p50 = None
            if floor_port is not None and len(rounds_out) % 2 == 0:
                floor_p50 = load(floor_port, 1, 1.0, request)["p50_ms"]
                time.sleep(SETTLE_S)
            ticks = cpu_ticks()
            (sum0, count0), served, (sum1, count1) = model_time(port), load(port, 1, 1.0, request), model_time(port)
            steal = steal_pct(ticks, cpu_ticks())
            if floor_port is not None and floor_p50 is None:
                time.sleep(SETTLE_S)
                floor_p50 = load(floor_port, 1, 1.0, request)["p50_ms"]
            model_ms = (sum1 - sum0) / (count1 - count0) * 1e3
            gap = max(served["mean_ms"] - model_ms, 0.0) / 1e3
            time.sleep(SETTLE_S)
            paced_after = in_process_round(gap)
            after = in_process_round()
            inproc = (before["median_ms"] + after["median_ms"]) / 2
            paced = [r["median_ms"] for r in (paced_before, paced_after) if r is not None]
            rounds_out.append({"in_process_ms": inproc, "served_p50_ms": served["p50_ms"],
                               "overhead_ms": served["p50_ms"] - inproc, "peak_rss_mb": after["peak_rss_mb"],
                               "paced_in_process_ms": sum(paced) / len(paced), "pause_ms": gap * 1e3,
                               "paced_overhead_ms": served["p50_ms"] - sum(paced) / len(paced),
                               "served_mean_ms": served["mean_ms"], "model_mean_ms": model_ms,
                               "paired_overhead_ms": served["mean_ms"] - model_ms, "steal_pct": steal,
                               "floor_overhead_ms": None if floor_p50 is None else floor_p50 - inproc})
    finally:
        proc.kill()
        proc.wait()
    return {"rounds": rounds_out, "overhead_ms": statistics.median(r["overhead_ms"] for r in rounds_out),
            "paired_overhead_ms": statistics.median(r["paired_overhead_ms"] for r in rounds_out),
            "paced_overhead_ms": statistics.median(r["paced_overhead_ms"] for r in rounds_out),
            "paced_in_process_ms": statistics.median(r["paced_in_process_ms"] for r in rounds_out),
            "in_process_ms": statistics.median(r["in_process_ms"] for r in rounds_out),
            "floor_overhead_ms": (statistics.median(r["floor_overhead_ms"] for r in rounds_out)
                                  if floor_port is not None else None),
            "steal_pct": statistics.fmean(r["steal_pct"] for r in rounds_out),
            "steal_max_pct": max(r["steal_pct"] for r in rounds_out),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds_out)}


def run_contender(name: str, cmd: list[str], port: int, seconds: float, request: str,
                  in_process: list[str] | None = None, rounds: int = 40,
                  floor_cmd: list[str] | None = None) -> dict[str, Any]:
    """Loads at each concurrency; with ``in_process``, first the overhead rounds, with the bare
    server ``floor_cmd`` (its port appended) beside ours."""
    proc = start(cmd, port)
    floor = None
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(20):  # warm up
            if call(conn, request.encode()) != 200:
                raise RuntimeError(f"{name} does not answer {request}")
        extra: dict[str, Any] = {"in_process": None}
        if in_process:
            floor_port = None
            if floor_cmd is not None:
                floor_port = free_port()
                floor = start([*floor_cmd, str(floor_port)], floor_port)
                floor_conn = http.client.HTTPConnection("127.0.0.1", floor_port, timeout=60)
                for _ in range(20):  # warm up
                    call(floor_conn, request.encode())
            extra["in_process"] = overhead(port, in_process, request, rounds, floor_port)
            if floor is not None:
                floor.terminate()
        rows = []
        for c in CONCURRENCY:
            ticks = cpu_ticks()
            rows.append({**load(port, c, seconds, request), "steal_pct": steal_pct(ticks, cpu_ticks())})
            print(f"  {name} c={c}: {rows[-1]['requests_per_s']:.1f} req/s, p50 {rows[-1]['p50_ms']:.1f} ms, "
                  f"p99 {rows[-1]['p99_ms']:.1f} ms", flush=True)
        return {"name": name, "load": rows, "peak_rss_mb": peak_rss_mb(proc.pid), **extra}
    finally:
        for p in (proc, floor):
            if p is not None:
                p.terminate()
                p.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="load per concurrency level")
    ap.add_argument("--rounds", type=int, default=40, help="rounds of the overhead comparison")
    ap.add_argument("--models", choices=("all", "mini", "base"), default="all", help="which models to run")
    ap.add_argument("--part", choices=("load", "interleave", "embeddings"), default="load",
                    help="load: the servers under load (default); interleave: a small request's latency during "
                         "a maximum-size one; embeddings: against infinity-emb through the OpenAI SDK")
    ap.add_argument("--generate", nargs=4, help=argparse.SUPPRESS)  # the load generator process
    args = ap.parse_args(argv)
    if args.generate:
        port, c, seconds = int(args.generate[0]), int(args.generate[1]), float(args.generate[2])
        print(json.dumps(generate(port, c, seconds, limit=20000, request=args.generate[3])))
        return 0
    sys.path.insert(0, str(HERE.parent))
    from bench_tasks import head_folder

    if args.part != "load":
        return peers_part(args.part, args.seconds, head_folder)

    models: list[tuple[Model, Path]] = []
    if args.models != "base":
        models += [(m, SHARED_MODEL.parent / m.folder) for m in SHARED_MODELS
                   if (SHARED_MODEL.parent / m.folder).exists()]
    if args.models != "mini":
        models.append((BASE, head_folder(BASE.task, CACHE)))
    results: list[dict[str, Any]] = []
    for model, folder in models:
        art = cached_artifact(folder, CACHE / f"serve-{folder.name}", quantize="int8", int8_min_agreement=0.0)
        print(model.label, flush=True)
        for precision in ("int8", "fp32"):
            port = free_port()
            cmd = [sys.executable, "-m", "albert_onnx.cli", "serve", str(art), "--port", str(port),
                   "--precision", precision, "--threads", "2"]
            in_process = [sys.executable, "-c", IN_PROCESS, str(art), precision, model.body] if model.overhead else None
            floor_cmd = [sys.executable, str(HERE.parent / "floor_server.py"), str(art), precision, "2"]
            results.append({"model": model.label, "task": model.task,
                            **run_contender(f"albert-onnx serve {precision}", cmd, port, args.seconds, model.body,
                                            in_process, args.rounds, floor_cmd)})
        port = free_port()
        peer = [sys.executable, str(HERE.parent / "peer_server.py"), str(folder), model.task, str(port), "2"]
        results.append({"model": model.label, "task": model.task,
                        **run_contender("FastAPI + transformers (PyTorch fp32)", peer, port, args.seconds, model.body)})
    info = machine(2)
    peer_name = "FastAPI + transformers (PyTorch fp32)"
    rows = []
    for r in results:
        for row in r["load"]:
            rows.append([r["model"], r["name"], row["concurrency"], round(row["requests_per_s"], 1),
                         round(row["p50_ms"], 2), round(row["p99_ms"], 2), row["errors"], round(row["steal_pct"], 1)])
    extra, spread = [], []
    for r in results:
        if r["in_process"] is None:
            continue
        ov = r["in_process"]
        extra.append([r["model"], r["name"], round(ov["in_process_ms"], 2), round(ov["overhead_ms"], 2),
                      round(ov["paced_in_process_ms"], 2), round(ov["paced_overhead_ms"], 2),
                      round(ov["paired_overhead_ms"], 2), round(ov["floor_overhead_ms"], 2),
                      f"{ov['steal_pct']:.1f} ({ov['steal_max_pct']:.0f})",
                      round(ov["peak_rss_mb"]), round(r["peak_rss_mb"]),
                      round(r["peak_rss_mb"] / ov["peak_rss_mb"], 2)])
        spread.append([r["model"], r["name"], *(", ".join(f"{x[k]:.2f}" for x in ov["rounds"])
                                                for k in ("overhead_ms", "paced_overhead_ms", "paired_overhead_ms",
                                                          "floor_overhead_ms", "steal_pct"))])
    peers = {r["model"]: r for r in results if r["name"] == peer_name}
    ratios = []
    for r in results:
        if r["name"] == peer_name:
            continue
        p = peers[r["model"]]
        for row, prow in zip(r["load"], p["load"]):
            ratios.append([r["model"], r["name"], row["concurrency"],
                           f"{row['requests_per_s'] / prow['requests_per_s']:.1f}x",
                           f"{row['p99_ms']:.1f} vs {prow['p99_ms']:.1f}"])
    memory = [[r["model"], r["name"], round(r["peak_rss_mb"])] for r in results]
    inputs = [[m.label, m.task, f"`{m.body}`"] for m, _ in models]
    md = (f"# albert-onnx serve under load ({info['date']})\n\n{info['cpu']}, CPU class **{info['cpu_class']}**, "
          f"2 threads per server, load generator ({GENERATOR}) in its own process on the same 2 cores, "
          f"{args.seconds:g} s per level; every request of a model the same:\n\n"
          + md_table(["model", "task", "request body"], inputs) + "\n"
          + "CPU steal: the share of the machine's CPU time the hypervisor took during that load (/proc/stat); "
          "figures taken under steal are slower and noisier.\n\n"
          + md_table(["model", "server", "concurrency", "requests/s", "p50 ms", "p99 ms", "errors", "steal %"], rows)
          + "\n## Against the FastAPI + transformers server\n\n"
          + md_table(["model", "server", "concurrency", "requests/s ratio", "p99 ms (ours vs peer)"], ratios)
          + "\n## Overhead over the in-process predictor (concurrency 1) and memory\n\n"
          + f"Served p50 at concurrency 1 minus the in-process median, {args.rounds} rounds against one warm "
          "in-process predictor, each in-process (50 calls), served (1 s), in-process again, with "
          f"{SETTLE_S} s between the in-process calls and the served second (so that neither meets the other's "
          "spinning thread pool); the median of the rounds. The in-process calls two ways: back to back, and "
          "paced as the server's model runs are (each "
          "call after a pause as long as the time between two runs in the served second). Beside them, free of "
          "the machine's drift: per round, the served mean latency minus the mean of the same requests' model "
          "runs inside the server (`albert_onnx_model_seconds`), and the median of those. Last, the floor: in "
          "each round, a second of the same load against a bare server of the same design calling the same "
          "predictor (benchmarks/floor_server.py: Uvicorn, the request handed to a thread and back, no "
          "routes, checks, queue bound, batching or metrics), before or after ours in turn, its p50 minus the "
          "same back-to-back in-process median: what any such server adds on this machine:\n\n"
          + md_table(["model", "server", "in-process ms, back to back", "overhead ms", "in-process ms, paced",
                      "overhead ms (paced)", "served - model ms", "bare server's overhead ms",
                      "steal % in served seconds, mean (max)",
                      "in-process RSS MB", "server RSS MB", "RSS ratio"], extra)
          + "\nEach round's figures, in order:\n\n"
          + md_table(["model", "server", "overhead (back to back) ms", "overhead (paced) ms", "served - model ms",
                      "bare server's overhead ms", "steal %"], spread)
          + "\nPeak RSS of every serving process after its load:\n\n"
          + md_table(["model", "server", "peak RSS MB"], memory))
    name = "serve" if args.models == "all" else f"serve-{args.models}"  # a partial run beside the whole one
    j, m = write_report(name, {"machine": info, "generator": GENERATOR, "results": results,
                                 "requests": {m.label: m.body for m, _ in models}}, md)
    print(md)
    print(f"wrote {j} and {m}")
    return 0


def peers_part(part: str, seconds: float, head_folder: Any) -> int:
    """``--part interleave`` or ``--part embeddings`` (benchmarks/serve_peers.py), at the base shape."""
    import serve_peers

    info = machine(2)
    head = f"{info['cpu']}, CPU class **{info['cpu_class']}**, 2 threads per server, {info['date']}"
    if part == "interleave":
        folder = head_folder("text-classification", CACHE)
        art = cached_artifact(folder, CACHE / "serve-base-text-classification", quantize="int8",
                              int8_min_agreement=0.0)
        results = [serve_peers.interleave(art, p, b, start, free_port) for p, b in (("fp32", 32), ("fp32", 4),
                                                                                    ("int8", 32))]
        rows = [[r["precision"], r["max_batch_size"], what, r[what]["count"], round(r[what]["p50_ms"], 1),
                 round(r[what]["p90_ms"], 1), round(r[what]["p99_ms"], 1), round(r[what]["max_ms"], 1)]
                for r in results for what in ("alone", "during")]
        large = [[r["precision"], r["max_batch_size"], r["large_status"], round(r["large_seconds_alone"], 2),
                  round(r["large_seconds_with_small"], 2)] for r in results]
        md = (f"# A small request during a maximum-size one ({info['date']})\n\n{head}. ALBERT-base shape, "
              "3-label classifier. Small: one 13-token text, sent one after another; large: 2048 texts of 62 "
              "characters (131,072 tokens as the server counts them, the default --max-request-tokens).\n\n"
              + md_table(["precision", "--max-batch-size", "small request", "requests", "p50 ms", "p90 ms",
                          "p99 ms", "max ms"], rows)
              + "\nThe large request itself (without interleaving, a small request arriving during it would "
              "wait for the rest of it):\n\n"
              + md_table(["precision", "--max-batch-size", "status", "seconds alone",
                          "seconds with the small ones between"], large)
              + "\nint8 (dynamic activation scales) runs one text a session run whatever --max-batch-size, so "
              "its batches are one text long; an fp32 batch of 32 such texts takes over a second at this "
              "shape on 2 cores, and --max-batch-size bounds what a small request can wait.\n")
        data: dict[str, Any] = {"machine": info, "results": results}
    else:
        folder = head_folder("feature-extraction", CACHE)
        art = cached_artifact(folder, CACHE / "serve-base-feature-extraction", quantize="int8",
                              int8_min_agreement=0.0)
        infinity = serve_peers.infinity_python(CACHE)
        results = serve_peers.embeddings(folder, art, seconds, start, free_port, peak_rss_mb, infinity)
        rows = [[r["name"], row["concurrency"], round(row["requests_per_s"], 1), round(row["p50_ms"], 1),
                 round(row["p99_ms"], 1), row["errors"], round(r["peak_rss_mb"])] for r in results for row in r["load"]]
        peer = next((r for r in results if r["name"].startswith("infinity")), None)
        ratios = [[r["name"], a["concurrency"], f"{a['requests_per_s'] / b['requests_per_s']:.2f}x",
                   f"{a['p99_ms']:.1f} vs {b['p99_ms']:.1f}"]
                  for r in results if peer is not None and r is not peer for a, b in zip(r["load"], peer["load"])]
        md = (f"# Embeddings through the OpenAI SDK: albert-onnx serve against infinity-emb ({info['date']})\n\n"
              f"{head}. ALBERT-base shape encoder (random weights), mean-pooled unit vectors; each request one "
              f"short Japanese sentence via `client.embeddings.create`, {seconds:g} s per concurrency level, "
              "the client in its own process on the same 2 cores.\n\n"
              + md_table(["server", "concurrency", "requests/s", "p50 ms", "p99 ms", "errors", "peak RSS MB"], rows)
              + ("\n## Against infinity-emb\n\n" + md_table(["server", "concurrency", "requests/s ratio",
                                                               "p99 ms (ours vs infinity)"], ratios)
                 if peer else "\ninfinity-emb is not installed (INFINITY_PYTHON): only ours ran.\n"))
        data = {"machine": info, "results": results, "infinity": infinity}
    j, m = write_report(f"serve-{part}", data, md)
    print(md)
    print(f"wrote {j} and {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
