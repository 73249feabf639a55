"""`albert-onnx serve`: the real server on a free loopback port, called with a real HTTP client;
answers equal the Python predictor's, every error path has its status and message, SIGTERM
drains, concurrent float requests are merged without changing an answer."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from albert_onnx import pipeline

from .conftest import head_artifact

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

TEXTS = ["吾輩は[MASK]である。", "大学で[MASK]の研究をしています", "[MASK]は猫"]
PLAIN = ["吾輩は猫である。", "名前はまだ無い。", "どこで生れたかとんと見当がつかぬ。"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``albert-onnx serve`` in a subprocess of its own."""

    def __init__(self, artifact: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "albert_onnx.cli", "serve", str(artifact),
                                      "--port", str(self.port), *args], env={**os.environ, **(env or {})},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read() if self.proc.stdout else ''}")
        raise RuntimeError("server did not start")

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = raw if raw is not None else (None if body is None else json.dumps(body, ensure_ascii=False).encode())
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        kind = resp.getheader("content-type", "")
        value = json.loads(payload) if kind.startswith("application/json") else payload.decode()
        return resp.status, value, {k.lower(): v for k, v in resp.getheaders()}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture()
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


def plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda a: a.tolist()))


def close(got: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and set(got) == set(want) and all(close(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(close, got, want))
    if isinstance(want, float):
        return abs(got - want) <= 1e-5
    return bool(got == want)


@pytest.mark.parametrize("head, inputs, parameters", [
    ("cls", [{"text": PLAIN[0], "text_pair": PLAIN[1]}, PLAIN[2]], {"top_k": None}),
    ("ner", PLAIN, {"aggregation_strategy": "simple", "ignore_labels": []}),
    ("encoder", PLAIN, {"pooling": "mean", "normalize": True}),
    ("qa", {"question": "猫は?", "context": "".join(PLAIN)}, {"top_k": 2, "align_to_words": False}),
    ("mc", [{"question": "吾輩は", "choices": ["猫である。", "犬だ。", "鳥"]}], {}),
])
def test_predict_equals_the_python_predictor(spm_albert: Path, heads_root: Path, servers: list[Server], head: str,
                                             inputs: Any, parameters: dict[str, Any]) -> None:
    _, art = head_artifact(head, spm_albert, heads_root)
    servers.append(Server(art))
    status, got, _ = servers[0].call("POST", "/predict", {"inputs": inputs, "parameters": parameters})
    assert status == 200, got
    assert close(got, plain(pipeline(art)(inputs, **parameters)))


def test_fill_mask_zero_shot_and_info(tiny_artifact: Path, spm_albert: Path, heads_root: Path,
                                      servers: list[Server]) -> None:
    servers.append(Server(tiny_artifact, "--precision", "int8"))
    fm = pipeline(tiny_artifact, precision="int8")
    status, got, _ = servers[0].call("POST", "/predict", {"inputs": TEXTS, "parameters": {"top_k": 3}})
    assert status == 200 and close(got, plain(fm(TEXTS, top_k=3)))
    status, info, _ = servers[0].call("GET", "/info")
    assert info["task"] == "fill-mask" and info["precision"] == "int8" and info["int8_kernel"] == fm.int8_kernel
    _, nli = head_artifact("nli", spm_albert, heads_root)
    servers.append(Server(nli, "--task", "zero-shot-classification"))
    body = {"inputs": PLAIN[:2], "parameters": {"candidate_labels": ["天気", "動物"], "multi_label": True}}
    status, got, _ = servers[1].call("POST", "/predict", body)
    zs = pipeline(nli, task="zero-shot-classification")
    assert status == 200 and close(got, plain(zs(PLAIN[:2], ["天気", "動物"], multi_label=True)))


def test_embedding_routes(spm_albert: Path, heads_root: Path, servers: list[Server]) -> None:
    _, art = head_artifact("encoder", spm_albert, heads_root)
    servers.append(Server(art))
    fe = pipeline(art)
    status, got, _ = servers[0].call("POST", "/embed", {"inputs": PLAIN[0]})
    assert status == 200 and np.allclose(got, fe([PLAIN[0]], pooling="mean", normalize=True), atol=1e-5)
    status, got, _ = servers[0].call("POST", "/v1/embeddings", {"input": PLAIN, "model": "albert"})
    assert status == 200 and got["object"] == "list" and got["model"] == "albert"
    assert [d["index"] for d in got["data"]] == [0, 1, 2]
    assert np.allclose([d["embedding"] for d in got["data"]], fe(PLAIN, pooling="mean", normalize=True), atol=1e-5)
    assert got["usage"]["prompt_tokens"] == sum(len(fe.tokenizer.encode(t)) for t in PLAIN)


def test_error_paths(tiny_artifact: Path, spm_albert: Path, heads_root: Path, servers: list[Server]) -> None:
    server = Server(tiny_artifact, "--max-inputs", "4", "--max-body-bytes", "2000", "--api-key-env", "TEST_KEY",
                    env={"TEST_KEY": "s3cret"})
    servers.append(server)
    auth = {"Authorization": "Bearer s3cret"}
    cases = [
        ({}, {"inputs": TEXTS[0]}, None, 401, "missing or wrong API key"),
        ({"Authorization": "Bearer nope"}, {"inputs": TEXTS[0]}, None, 401, "missing or wrong API key"),
        (auth, None, b'{"inputs": "x"', 400, "not valid JSON"),
        (auth, None, b"\xff\xfe", 400, "not UTF-8"),
        (auth, [1, 2], None, 422, "must be a JSON object"),
        (auth, {"text": "x"}, None, 422, "got keys ['text']"),
        (auth, {"inputs": TEXTS[0], "parameters": {"top_n": 2}}, None, 422, "unknown parameter 'top_n'"),
        (auth, {"inputs": TEXTS[0], "parameters": [1]}, None, 422, "parameters must be an object"),
        (auth, {"inputs": 5}, None, 422, "texts must be a str or a list of str"),
        (auth, {"inputs": "マスクがない"}, None, 422, "has no [MASK]"),
        (auth, {"inputs": "猫" * 90 + "[MASK]"}, None, 422, "the model takes at most 64"),
        (auth, {"inputs": [TEXTS[0]] * 5}, None, 413, "at most 4"),
        (auth, {"inputs": "猫" * 1000}, None, 413, "at most 2000"),
        (auth, {"inputs": []}, None, 422, "empty list"),
        (auth, {"input": "x"}, None, 404, "embedding routes serve feature-extraction"),
    ]
    for headers, body, raw, status, message in cases:
        path = "/v1/embeddings" if body == {"input": "x"} else "/predict"
        got_status, got, _ = server.call("POST", path, body, raw=raw, headers=headers)
        assert got_status == status and message in got["error"], (body, raw, got_status, got)
        assert "Traceback" not in json.dumps(got) and str(tiny_artifact) not in json.dumps(got)
    assert server.call("GET", "/health")[0] == 200  # open without the key
    assert server.call("GET", "/info")[0] == 401
    status, text, _ = server.call("GET", "/metrics", headers=auth)
    assert status == 200 and 'albert_onnx_requests_total{route="/predict",status="401"} 2' in text
    assert 'albert_onnx_requests_total{route="/predict",status="413"} 2' in text and "albert_onnx_queue_depth" in text
    assert server.call("POST", "/predict", {"inputs": TEXTS[0]}, headers=auth)[0] == 200


def test_bounded_queue_answers_503(tiny_artifact: Path, servers: list[Server]) -> None:
    server = Server(tiny_artifact, "--max-queue", "1", "--max-batch-size", "1", "--threads", "1")
    servers.append(server)
    body = {"inputs": [TEXTS[0] + "猫" * 40] * 64}
    results: list[tuple[int, dict[str, str]]] = []

    def send() -> None:
        status, _, headers = server.call("POST", "/predict", body)
        results.append((status, headers))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses[0] == 200 and statuses[-1] == 503, statuses
    assert all(h.get("retry-after") == "1" for s, h in results if s == 503)


def test_concurrent_float_requests_are_merged_with_the_same_answers(tiny_artifact: Path,
                                                                    servers: list[Server]) -> None:
    server = Server(tiny_artifact)
    servers.append(server)
    fm = pipeline(tiny_artifact)
    want = {t: plain(fm(t, top_k=2)) for t in TEXTS}
    got: list[tuple[str, Any]] = []

    def send(text: str) -> None:
        for _ in range(10):
            got.append((text, server.call("POST", "/predict", {"inputs": text, "parameters": {"top_k": 2}})[1]))

    threads = [threading.Thread(target=send, args=(t,)) for t in TEXTS * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 60 and all(close(answer, want[text]) for text, answer in got)
    metrics = {line.split()[0]: float(line.split()[1]) for line in server.call("GET", "/metrics")[1].split("\n")
               if line and not line.startswith("#")}
    runs, single = metrics["albert_onnx_batch_inputs_count"], metrics['albert_onnx_batch_inputs_bucket{le="1"}']
    assert runs < 60 and single < runs  # some runs held several requests


def test_sigterm_drains(tiny_artifact: Path, servers: list[Server]) -> None:
    """SIGTERM under load loses no request: each gets its answer or a 503; once the server has
    exited, connections are refused (never a connection dropped with a request in it)."""
    server = Server(tiny_artifact, "--threads", "1")
    servers.append(server)
    want = plain(pipeline(tiny_artifact)(TEXTS, top_k=1))
    answers: list[Any] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                status, body, _ = server.call("POST", "/predict", {"inputs": TEXTS, "parameters": {"top_k": 1}})
            except ConnectionRefusedError:
                return  # the server is gone: nothing was sent
            except OSError as exc:  # a request dropped in flight
                answers.append(("dropped", repr(exc)))
                return
            answers.append((status, body))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    answered_before = len(answers)
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert answered_before > 0
    assert all(a[0] in (200, 503) for a in answers), [a for a in answers if a[0] not in (200, 503)][:3]
    assert all(close(body, want) for status, body in answers if status == 200)
    assert all(body["error"] == "the server is shutting down" for status, body in answers if status == 503)
