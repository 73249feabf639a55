"""`albert-onnx serve` against hostile or careless HTTP: bodies no parser should take (400, never
500), websocket upgrades, endless or slow headers and bodies, the Bearer scheme in any case,
readiness, and a shutdown that ends within --drain-seconds with status 0 whatever the clients do."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from albert_onnx.serve import create_app

from .conftest import head_artifact
from .serving import Server, asgi_call
from .test_serve import TEXTS

pytest.importorskip("uvicorn", reason="uvicorn is not installed: pip install -e '.[serve]'")



def raw_exchange(port: int, data: bytes, wait_s: float = 10.0) -> bytes:
    """Send bytes, then read until the server closes or ``wait_s`` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def test_unparseable_bodies_are_400(tiny_artifact: Path, servers: list[Server]) -> None:
    server = Server(tiny_artifact)
    servers.append(server)
    for raw, message in ((b"[" * 100_000 + b"]" * 100_000, "nests too deep"),
                         (b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nests too deep"),
                         (b'{"inputs": 1e999}', "beyond what a double holds"),
                         (b'{"inputs": NaN}', "NaN is not JSON"),
                         (b'{"inputs": -Infinity}', "Infinity is not JSON"),
                         (b'{"inputs": ' + b"9" * 5000 + b"}", "not valid JSON"),
                         (b"null", "must be a JSON object")):
        status, got, _ = server.call("POST", "/predict", raw=raw)
        assert status in (400, 422) and message in got["error"], (raw[:40], status, got)
        assert status == 400 or message == "must be a JSON object"
    assert server.call("POST", "/predict", {"inputs": TEXTS[0]})[0] == 200


def test_websocket_upgrade_is_refused(tiny_artifact: Path, servers: list[Server]) -> None:
    server = Server(tiny_artifact)
    servers.append(server)
    upgrade = (b"GET /predict HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    reply = raw_exchange(server.port, upgrade, wait_s=3)
    assert 400 <= status_of(reply) < 500, reply[:200]


def test_header_limit_and_slow_clients(tiny_artifact: Path, servers: list[Server]) -> None:
    psutil = pytest.importorskip("psutil", reason="psutil is not installed: pip install -e '.[test]'")
    server = Server(tiny_artifact, "--read-timeout", "1", "--max-header-bytes", "8192")
    servers.append(server)
    big = b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    reply = raw_exchange(server.port, big)
    assert status_of(reply) == 431 and b"--max-header-bytes" in reply
    # an endless header, sent without a key: refused at the limit, it costs no memory beyond it
    rss = psutil.Process(server.proc.pid).memory_info().rss
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nX-Endless: ")
        sent = 0
        try:
            while sent < 50_000_000:
                s.sendall(b"a" * 1_000_000)
                sent += 1_000_000
        except OSError:
            pass
    assert sent < 50_000_000  # the server closed the connection long before
    assert psutil.Process(server.proc.pid).memory_info().rss - rss < 20_000_000
    started = time.monotonic()
    reply = raw_exchange(server.port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Le")  # headers never end
    assert status_of(reply) == 408 and b"--read-timeout" in reply and time.monotonic() - started < 5
    started = time.monotonic()
    reply = raw_exchange(server.port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"in")
    assert status_of(reply) == 408 and time.monotonic() - started < 5  # the body never ends
    started = time.monotonic()
    assert raw_exchange(server.port, b"") == b"" and time.monotonic() - started < 5  # says nothing: closed
    assert server.call("POST", "/predict", {"inputs": TEXTS[0]})[0] == 200


def test_bearer_scheme_in_any_case(tiny_artifact: Path, servers: list[Server]) -> None:
    server = Server(tiny_artifact, "--api-key-env", "TEST_KEY", env={"TEST_KEY": "s3cret"})
    servers.append(server)
    for header in ("Bearer s3cret", "bearer s3cret", "BEARER  s3cret"):
        assert server.call("POST", "/predict", {"inputs": TEXTS[0]}, headers={"Authorization": header})[0] == 200
    for header in ("Basic s3cret", "s3cret", "Bearer s3cre", "Bearer"):
        assert server.call("POST", "/predict", {"inputs": TEXTS[0]}, headers={"Authorization": header})[0] == 401
    assert server.call("GET", "/ready")[0] == 200 and server.call("GET", "/docs")[0] == 200  # open routes


async def _asgi_get(app: Any, path: str) -> tuple[int, Any]:
    status, _, raw = await asgi_call(app, "GET", path)
    return status, json.loads(raw)


def test_ready_says_503_when_the_model_is_stuck_or_draining(tiny_artifact: Path) -> None:
    app = create_app(tiny_artifact, ready_deadline_s=0.5)
    try:
        assert asyncio.run(_asgi_get(app, "/ready")) == (200, {"status": "ready"})
        app.worker.busy_since = app.worker.progress_at = time.monotonic() - 1  # a run that never ends
        status, body = asyncio.run(_asgi_get(app, "/ready"))
        assert status == 503 and "finished no run for over 0.5s" in body["error"]
        assert asyncio.run(_asgi_get(app, "/health"))[0] == 200  # liveness stays as it is
        app.worker.busy_since = None
        app.begin_draining()
        assert asyncio.run(_asgi_get(app, "/ready"))[0] == 503
    finally:
        app.worker.close()


def test_a_stuck_model_thread_is_seen(tiny_artifact: Path) -> None:
    from albert_onnx import pipeline
    from albert_onnx.serve.worker import ModelWorker

    predictor = pipeline(tiny_artifact)
    worker = ModelWorker(predictor, max_queue=4, max_batch_size=1, merge=False)

    def stuck(text: str) -> list[Any]:
        time.sleep(0.6)
        return []

    async def run() -> None:
        slow = worker.submit(TEXTS[0], {}, fn=stuck)
        await asyncio.sleep(0.4)
        assert worker.stalled(0.3)
        await slow
        assert not worker.stalled(0.3)

    try:
        asyncio.run(run())
    finally:
        worker.close()


def test_shutdown_ends_within_the_drain_whatever_the_clients_do(tiny_artifact: Path, servers: list[Server]) -> None:
    """SIGTERM with an idle keep-alive connection, a half-sent body and half-sent headers open:
    the half-sent body gets 503, and the server exits 0 within --drain-seconds, no traceback."""
    server = Server(tiny_artifact, "--drain-seconds", "3", "--read-timeout", "60")
    servers.append(server)
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")
    body = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    body.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inputs\": \"")
    head = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    head.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-")
    time.sleep(0.3)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    status = server.proc.wait(timeout=15)
    took = time.monotonic() - started
    reply = body.recv(4096)
    for s in (idle, body, head):
        s.close()
    output = server.proc.stdout.read() if server.proc.stdout else ""
    assert status == 0 and took < 3.5, (status, took, output)
    assert status_of(reply) == 503 and b"shutting down" in reply
    assert "Traceback" not in output and "CancelledError" not in output, output


def test_small_requests_run_between_a_large_ones_batches(tiny_artifact: Path) -> None:
    """A small request sent while a large one runs is answered before it, with the predictor's
    answer; both answers are what each gives alone."""
    from albert_onnx import pipeline
    from albert_onnx.serve.worker import SMALL_REQUEST_TOKENS, ModelWorker

    predictor = pipeline(tiny_artifact, max_batch_size=1)  # a session run per text: many batches
    worker = ModelWorker(predictor, max_queue=8, max_batch_size=1, merge=True)
    large_texts = [TEXTS[n % 3] + "猫" * (n % 5) for n in range(3000)]
    finished: list[str] = []

    async def run() -> tuple[Any, Any]:
        large = worker.submit(large_texts, {"top_k": 2}, cost=SMALL_REQUEST_TOKENS + 1)
        large.add_done_callback(lambda f: finished.append("large"))
        while predictor.encoder.tokens_run == 0:  # the large one is on its batches
            await asyncio.sleep(0.001)
        small = worker.submit(TEXTS[1], {"top_k": 2}, cost=20)
        small.add_done_callback(lambda f: finished.append("small"))
        return await large, await small

    try:
        large_answer, small_answer = asyncio.run(run())
    finally:
        worker.close()
    assert finished == ["small", "large"]
    assert small_answer == predictor(TEXTS[1], top_k=2) and large_answer == predictor(large_texts, top_k=2)


def test_request_cost_counts_every_sequence() -> None:
    from albert_onnx.serve.cost import request_tokens

    assert request_tokens("fill-mask", "猫" * 10, {}, 512) == 12  # characters, [CLS] and [SEP]
    assert request_tokens("text-classification", [{"text": "ab", "text_pair": "cde"}, "x"], {}, 512) == 8 + 3
    labels = ["天気", "動物", "料理"]
    per_label = [2 + len("この例は{}です。".format(x)) + 3 for x in labels]
    template = {"candidate_labels": labels, "hypothesis_template": "この例は{}です。"}
    assert request_tokens("zero-shot-classification", "吾輩", template, 512) == sum(per_label)
    assert request_tokens("multiple-choice", {"question": "abc", "choices": ["d", "ef"]}, {}, 512) == 7 + 8
    # a long context: windows of the room left by the question, consecutive ones sharing doc_stride
    long = {"question": "q" * 10, "context": "c" * 1000}
    room = 100 - 10 - 3
    windows = 1 + -(-(1000 - room) // (room - 50))
    assert request_tokens("question-answering", long, {"max_seq_len": 100, "doc_stride": 50}, 512) == \
        windows * (10 + 3 + room)
    assert request_tokens("token-classification", "x" * 1000, {"stride": 16}, 128) == \
        (1 + -(-(1002 - 128) // (128 - 18))) * 128


def test_a_request_over_the_token_budget_is_413(tiny_artifact: Path, spm_albert: Path, heads_root: Path,
                                                servers: list[Server]) -> None:
    server = Server(tiny_artifact, "--max-request-tokens", "500")
    servers.append(server)
    status, got, _ = server.call("POST", "/predict", {"inputs": ["吾輩は[MASK]である。" + "猫" * 20] * 20})
    assert status == 413 and "costs 700 tokens" in got["error"] and "at most 500" in got["error"]
    assert "(--max-request-tokens)" in got["error"]
    assert server.call("POST", "/predict", {"inputs": [TEXTS[0]] * 5})[0] == 200
    _, nli = head_artifact("nli", spm_albert, heads_root)
    servers.append(Server(nli, "--task", "zero-shot-classification"))
    many = {"inputs": "吾輩は猫である。", "parameters": {"candidate_labels": [f"ラベル{n}" for n in range(20_000)]}}
    status, got, _ = servers[-1].call("POST", "/predict", many)  # 20,000 labels: refused before any work
    assert status == 413 and "--max-request-tokens" in got["error"]
    wide = {"inputs": "吾輩は猫である。",
            "parameters": {"candidate_labels": ["猫"], "hypothesis_template": "{:>999999999}"}}
    status, got, _ = servers[-1].call("POST", "/predict", wide)  # a format spec would build a 1 GB hypothesis
    assert status == 422 and "no names, indexes but 0, conversions or format specs" in got["error"]
