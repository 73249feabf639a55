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
from albert_onnx.errors import InputError
from albert_onnx.serve import create_app

from .conftest import head_artifact
from .serving import Server, free_port

pytest.importorskip("uvicorn", reason="uvicorn is not installed: pip install -e '.[serve]'")

TEXTS = ["吾輩は[MASK]である。", "大学で[MASK]の研究をしています", "[MASK]は猫"]
PLAIN = ["吾輩は猫である。", "名前はまだ無い。", "どこで生れたかとんと見当がつかぬ。"]


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


def test_histogram_buckets_are_cumulative_with_inclusive_edges() -> None:
    from albert_onnx.serve.metrics import Histogram

    hist = Histogram((0.001, 0.01, 0.1))
    for value in (0.0005, 0.001, 0.002, 0.01, 0.05, 0.5, 3.0):
        hist.observe(value)
    lines = dict(line.rsplit(" ", 1) for line in hist.lines("t", 'route="/x"'))
    assert [lines[f't_bucket{{route="/x",le="{le}"}}'] for le in ("0.001", "0.01", "0.1", "+Inf")] == \
        ["2", "4", "5", "7"]
    assert lines['t_count{route="/x"}'] == "7" and float(lines['t_sum{route="/x"}']) == pytest.approx(3.5635)


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
    status, got, _ = servers[0].call("POST", "/v1/embeddings", {"input": PLAIN, "model": art.name})
    assert status == 200 and got["object"] == "list" and got["model"] == art.name
    assert [d["index"] for d in got["data"]] == [0, 1, 2]
    assert np.allclose([d["embedding"] for d in got["data"]], fe(PLAIN, pooling="mean", normalize=True), atol=1e-5)
    assert got["usage"]["prompt_tokens"] == sum(len(fe.tokenizer.encode(t)) for t in PLAIN)


def test_error_paths(tiny_artifact: Path, spm_albert: Path, heads_root: Path, servers: list[Server]) -> None:
    server = Server(tiny_artifact, "--max-inputs", "4", "--max-body-bytes", "2000", "--api-key-env", "TEST_KEY",
                    env={"TEST_KEY": "s3cret"})
    servers.append(server)
    auth = {"Authorization": "Bearer s3cret"}
    cases: list[tuple[dict[str, str], Any, bytes | None, int, str]] = [
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
        error = got["error"]["message"] if path.startswith("/v1/") else got["error"]  # OpenAI's shape there
        assert got_status == status and message in error, (body, raw, got_status, got)
        assert "Traceback" not in json.dumps(got) and str(tiny_artifact) not in json.dumps(got)
    status, got, _ = server.call("GET", "/nowhere", headers=auth)
    assert status == 404 and "no route /nowhere; routes: ['/', '/decode', '/docs', '/health'" in got["error"]
    assert "/embed'" not in got["error"]  # a fill-mask server lists no embedding route
    status, got, headers = server.call("GET", "/predict", headers=auth)
    assert status == 405 and "/predict takes POST, not GET" in got["error"] and headers["allow"] == "POST"
    status, got, headers = server.call("POST", "/info", {}, headers=auth)
    assert status == 405 and headers["allow"] == "GET, HEAD"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("HEAD", "/health")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"" and resp.getheader("content-length") == str(len('{"status":"ok"}'))
    conn.close()
    assert server.call("GET", "/health")[0] == 200  # open without the key
    assert server.call("GET", "/info")[0] == 401
    status, text, _ = server.call("GET", "/metrics", headers=auth)
    assert status == 200 and 'albert_onnx_requests_total{route="/predict",status="401"} 2' in text
    assert 'albert_onnx_requests_total{route="/predict",status="413"} 2' in text and "albert_onnx_queue_depth" in text
    tokens, runs = _counter(text, "albert_onnx_tokens_total"), _counter(text, "albert_onnx_model_seconds_count")
    encode = pipeline(tiny_artifact).tokenizer.encode
    for inputs in (TEXTS[1], TEXTS[:3]):  # the tokens the model ran: every text, [CLS] and [SEP] included
        assert server.call("POST", "/predict", {"inputs": inputs}, headers=auth)[0] == 200
        # the model thread counts a run before it hands the answers over
        more = _counter(server.call("GET", "/metrics", headers=auth)[1], "albert_onnx_tokens_total")
        assert more - tokens == sum(len(encode(t)) for t in ([inputs] if isinstance(inputs, str) else inputs))
        tokens = more
    text = server.call("GET", "/metrics", headers=auth)[1]  # one model run a request, each timed
    assert _counter(text, "albert_onnx_model_seconds_count") == runs + 2
    assert _counter(text, "albert_onnx_model_seconds_sum") > 0
    assert server.call("POST", "/predict", {"inputs": TEXTS[0]}, headers=auth)[0] == 200


def _counter(metrics: str, name: str) -> float:
    return float(next(line for line in metrics.split("\n") if line.startswith(name)).split()[1])


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


def test_concurrent_text_classification_is_merged_with_each_requests_own_nesting(
        spm_albert: Path, heads_root: Path, servers: list[Server]) -> None:
    """A lone str, a pair and a list, with and without top_k, sent at once: merged into shared runs,
    each answer the predictor's, one list of labels per input as the Inference API nests it."""
    _, art = head_artifact("cls", spm_albert, heads_root)
    server = Server(art)
    servers.append(server)
    cls = pipeline(art)
    forms: list[Any] = [PLAIN[0], {"text": PLAIN[0], "text_pair": PLAIN[1]}, [PLAIN[1], PLAIN[2]], PLAIN[2]]
    cases = [(inputs, parameters) for inputs in forms for parameters in ({}, {"top_k": None})]

    def listed(answer: Any) -> list[Any]:  # as the Inference API answers: a list of labels per input
        return answer if isinstance(answer, list) else [answer]

    want = [[listed(a) for a in plain(cls(inputs if isinstance(inputs, list) else [inputs], **parameters))]
            for inputs, parameters in cases]
    got: list[tuple[int, Any]] = []

    def send(offset: int) -> None:
        for n in range(12):
            k = (offset + n) % len(cases)
            inputs, parameters = cases[k]
            got.append((k, server.call("POST", "/predict", {"inputs": inputs, "parameters": parameters})[1]))

    threads = [threading.Thread(target=send, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 96
    wrong = [(cases[k], answer) for k, answer in got if not close(answer, want[k])]
    assert not wrong, wrong[:2]
    metrics = {line.split()[0]: float(line.split()[1]) for line in server.call("GET", "/metrics")[1].split("\n")
               if line and not line.startswith("#")}
    runs, single = metrics["albert_onnx_batch_inputs_count"], metrics['albert_onnx_batch_inputs_bucket{le="1"}']
    assert runs < 96 and single < runs  # some runs held several requests


def test_max_wait_gathers_requests_that_arrive_apart(tiny_artifact: Path, servers: list[Server]) -> None:
    """With --max-wait-ms, requests sent 40 ms apart (each would run alone at once) share one run."""
    server = Server(tiny_artifact, "--max-wait-ms", "1000")
    servers.append(server)
    assert server.call("GET", "/info")[1]["limits"]["max_wait_ms"] == 1000
    fm = pipeline(tiny_artifact)
    got: dict[int, Any] = {}

    def send(k: int) -> None:
        got[k] = server.call("POST", "/predict", {"inputs": TEXTS[k % 3], "parameters": {"top_k": 2}})[1]

    threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.04)
    for t in threads:
        t.join()
    assert all(close(got[k], plain(fm(TEXTS[k % 3], top_k=2))) for k in range(4))
    text = server.call("GET", "/metrics")[1]
    assert _counter(text, "albert_onnx_batch_inputs_count") == 1 and _counter(text, "albert_onnx_batch_inputs_sum") == 4
    with pytest.raises(InputError, match="max_wait_ms must be a number of milliseconds from 0 to 1000, not -1"):
        create_app(tiny_artifact, max_wait_ms=-1)


def test_sigterm_drains(tiny_artifact: Path, servers: list[Server]) -> None:
    """SIGTERM under load loses no request: each gets its answer or a 503 (after which a client
    stops, as Retry-After asks); never a connection dropped with a request in it."""
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
            if status == 503:
                return

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    answered_before = len(answers)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0  # shut down as asked: status 0
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert answered_before > 0
    assert all(a[0] in (200, 503) for a in answers), [a for a in answers if a[0] not in (200, 503)][:3]
    assert all(close(body, want) for status, body in answers if status == 200)
    assert all(body["error"] == "the server is shutting down" for status, body in answers if status == 503)
    assert any(status == 503 for status, _ in answers)  # the drain answered the clients that kept coming


def fuzz_bodies(seed: int, count: int) -> Iterator[bytes]:
    """Random bodies: JSON of random shapes and sizes, odd encodings, broken and cut JSON."""
    rng = np.random.default_rng(seed)
    atoms: list[Any] = [None, True, 0, -1, 2**70, 1.5, float("nan"), "", "猫", "[MASK]", "吾輩は[MASK]である。",
                        "\ud800", "x" * 3000, [], {}, [TEXTS[0]] * 70]

    def value(depth: int) -> Any:
        kind = int(rng.integers(0, 4 if depth < 3 else 1))
        if kind == 0:
            return atoms[int(rng.integers(0, len(atoms)))]
        if kind == 1:
            return [value(depth + 1) for _ in range(int(rng.integers(0, 4)))]
        keys = ["inputs", "parameters", "top_k", "question", "context", "choices", "text", "text_pair", "x"]
        return {keys[int(rng.integers(0, len(keys)))]: value(depth + 1) for _ in range(int(rng.integers(0, 4)))}

    for _ in range(count):
        body: Any = {"inputs": value(1)}
        if rng.random() < 0.5:
            body["parameters"] = value(1)
        if rng.random() < 0.2:
            body = value(0)
        text = json.dumps(body, ensure_ascii=bool(rng.random() < 0.5), allow_nan=True)
        raw = text.encode("utf-8", "surrogatepass")
        cut = rng.random()
        if cut < 0.15:
            raw = raw[: int(rng.integers(0, len(raw) + 1))]
        elif cut < 0.25:
            raw = text.encode("utf-16", "surrogatepass")
        elif cut < 0.3:
            raw = bytes(rng.integers(0, 256, int(rng.integers(0, 200))).astype(np.uint8))
        yield raw


@pytest.mark.parametrize("route", ["/predict", "/embed", "/v1/embeddings"])
def test_http_fuzz_never_a_5xx(tiny_artifact: Path, spm_albert: Path, heads_root: Path, servers: list[Server],
                               route: str) -> None:
    art = tiny_artifact if route == "/predict" else head_artifact("encoder", spm_albert, heads_root)[1]
    server = Server(art, "--max-inputs", "64")
    servers.append(server)
    count = 300 if os.environ.get("ALBERT_ONNX_SOAK") else 80
    statuses: dict[int, int] = {}
    for n, raw in enumerate(fuzz_bodies(hash(route) % 1000, count)):
        status, body, _ = server.call("POST", route, raw=raw)
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, (raw[:200], status, body)
        assert isinstance(body, dict) or status == 200
    # a body cut off mid-send: the client goes away, the server carries on
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST " + route.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 500\r\n\r\n{\"inputs\": \"")
    status, body, _ = server.call("POST", "/predict", {"inputs": TEXTS[0]} if route == "/predict" else
                                  {"inputs": "猫"})
    assert status == 200 and server.call("GET", "/health")[0] == 200
    assert sum(statuses.values()) == count and set(statuses) <= {200, 400, 413, 422}, statuses
    if route.startswith("/v1/"):  # OpenAI answers every invalid request 400, in its error shape
        assert statuses.get(400, 0) == count, statuses
    else:
        assert statuses.get(400, 0) > 0 and statuses.get(422, 0) > 0, statuses  # both kinds of bad body were sent


@pytest.mark.parametrize("head", ["nli", "regression", "cls"])
def test_rerank(spm_albert: Path, heads_root: Path, servers: list[Server], head: str) -> None:
    _, art = head_artifact(head, spm_albert, heads_root)
    server = Server(art)
    servers.append(server)
    body: dict[str, Any] = {"query": "吾輩は猫である。", "texts": PLAIN + ["猫"], "return_text": True}
    status, got, _ = server.call("POST", "/rerank", body)
    if head == "cls":  # three labels, none of them entailment: nothing to rank by
        assert status == 404 and "/rerank serves a text-classification artifact that scores pairs" in got["error"]
        return
    clf = pipeline(art)
    logits = clf.logits([{"text": body["query"], "text_pair": t} for t in body["texts"]])
    if head == "regression":
        want = [float(1 / (1 + np.exp(-x[0]))) for x in logits]
    else:
        want = [float(np.exp(x[0]) / np.exp(x).sum()) for x in logits]  # entailment is label 0
    assert status == 200 and [r["index"] for r in got] == sorted(range(len(want)), key=lambda i: -want[i])
    assert all(abs(r["score"] - want[r["index"]]) < 1e-5 and r["text"] == body["texts"][r["index"]] for r in got)
    raw = server.call("POST", "/rerank", {**body, "raw_scores": True, "return_text": False})[1]
    assert "text" not in raw[0] and len(raw) == len(want)
    for bad, message in (({"query": "", "texts": ["a"]}, "query must be"), ({"query": "q", "texts": []}, "texts must"),
                         ({"query": "q", "texts": ["a"], "top": 1}, "unknown field 'top'")):
        status, got, _ = server.call("POST", "/rerank", bad)
        assert status == 422 and message in got["error"]


def test_serve_logs_start_access_and_shutdown(tiny_artifact: Path, tmp_path: Path) -> None:
    """The start line says where and what it serves (never the key), each request is one Common
    Log Format line on stdout (off with --no-access-log), and SIGTERM says what it drained."""
    import re

    port = free_port()
    out, err = tmp_path / "out", tmp_path / "err"
    env = {**os.environ, "TEST_KEY": "sekrit-value"}
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([sys.executable, "-m", "albert_onnx.cli", "serve", str(tiny_artifact), "--port",
                                 str(port), "--precision", "int8", "--api-key-env", "TEST_KEY", "--threads", "1"],
                                env=env, stdout=o, stderr=e)
        try:
            deadline = time.monotonic() + 60
            while "serving" not in err.read_text() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.1)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/predict", body=json.dumps({"inputs": TEXTS[0]}).encode(),
                         headers={"Authorization": "Bearer sekrit-value"})
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read()
            conn.request("GET", "/nowhere")
            conn.getresponse().read()
            conn.close()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    start, *rest = err.read_text().splitlines()
    assert start.startswith(f"albert-onnx: serving {tiny_artifact.name} (fill-mask, int8, int8 kernel ")
    assert f"on http://127.0.0.1:{port};" in start and "1 threads" in start
    assert "max_inputs 2048, max_request_tokens 131072" in start and "API key on (from $TEST_KEY)" in start
    assert "sekrit" not in err.read_text() + out.read_text()
    assert rest[0].startswith("albert-onnx: signal 15: draining 0 request(s)")
    assert rest[-2:] == [rest[-2], "albert-onnx: stopped"] and rest[-2].startswith("albert-onnx: drained 0 of 0")
    clf = r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "%s HTTP/1\.1" %d \d+'
    lines = out.read_text().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(clf % ("POST /predict", 200), lines[0]), lines[0]
    assert re.fullmatch(clf % ("GET /nowhere", 401), lines[1]), lines[1]  # no key sent


def test_serve_quiet_without_access_log(tiny_artifact: Path, servers: list[Server]) -> None:
    server = Server(tiny_artifact, "--log-level", "warning")
    servers.append(server)
    assert server.call("POST", "/predict", {"inputs": TEXTS[0]})[0] == 200
    server.proc.send_signal(signal.SIGTERM)
    output, _ = server.proc.communicate(timeout=30)
    assert output == ""


@pytest.mark.slow
def test_ray_serve_deployment(spm_albert: Path, heads_root: Path) -> None:
    """The same app as a Ray Serve application of two replicas, on a local Ray on the loopback."""
    pytest.importorskip("ray.serve", reason="ray.serve is not installed: pip install -e '.[ray]'")
    import ray
    from ray import serve as ray_serve

    from albert_onnx.serve import ray_deployment

    _, art = head_artifact("qa", spm_albert, heads_root)
    port = free_port()
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        ray_serve.start(http_options={"host": "127.0.0.1", "port": port})
        ray_serve.run(ray_deployment(art, replicas=2, threads=1, max_inputs=4))
        client = Server.__new__(Server)
        client.port = port
        qa = pipeline(art)
        item = {"question": "猫は?", "context": "".join(PLAIN)}
        for _ in range(6):  # requests land on both replicas
            status, got, _ = client.call("POST", "/predict", {"inputs": item, "parameters": {"top_k": 2}})
            assert status == 200 and close(got, plain(qa(item, top_k=2)))
        status, got, _ = client.call("POST", "/predict", {"inputs": [item] * 5})
        assert status == 413 and "at most 4" in got["error"]
        status, info, _ = client.call("GET", "/info")
        assert status == 200 and info["task"] == "question-answering"
    finally:
        ray_serve.shutdown()
        ray.shutdown()
