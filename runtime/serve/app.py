"""The HTTP app: routes shaped as the Hugging Face Inference API (``/predict``), TEI (``/embed``)
and OpenAI (``/v1/embeddings``), health, info and Prometheus metrics, as a plain ASGI app: a
request passes through one dispatcher and no framework layers (on Starlette, a request took 42 µs
of the event loop's time against 30 µs here)."""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from .. import __version__
from ..errors import AlbertOnnxError, InputError
from ..tasks import pipeline
from .metrics import Metrics
from .worker import ModelWorker, QueueFull

log = logging.getLogger("albert_onnx.serve")
access = logging.getLogger("albert_onnx.serve.access")  # one Common Log Format line per request, at INFO
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

DEFAULT_MAX_BODY_BYTES = 2_000_000  # TEI's default payload limit
DEFAULT_MAX_INPUTS = 64
DEFAULT_MAX_QUEUE = 64
OPEN_ROUTES = ("/health",)  # answered without the API key (load balancers probe it)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Any], Awaitable[Any]]  # a route: the JSON body (None for GET) to its answer


class HTTPError(Exception):
    def __init__(self, status: int, message: str, kind: str = "validation", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


@dataclass
class Text:
    """A plain-text answer (what ``/metrics`` returns); every other route answers JSON."""
    body: str
    media_type: str = "text/plain; charset=utf-8"


def create_app(artifact: str | Path, *, task: str | None = None, precision: str = "fp32", provider: str = "cpu",
               threads: int | None = None, max_batch_size: int = 32, max_queue: int = DEFAULT_MAX_QUEUE,
               max_inputs: int = DEFAULT_MAX_INPUTS, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               api_key_env: str | None = None, int8_weights: str = "auto", max_wait_ms: float = 0.0) -> ServingApp:
    """The ASGI app serving one artifact; mount it in your own ASGI app or run it with ``serve``.

    Args:
        artifact: folder written by ``albert-onnx export``.
        task: ``"zero-shot-classification"`` to serve an NLI classifier that way; default the
            artifact's own task.
        precision, provider, threads, max_batch_size, int8_weights: as for the predictors.
        max_queue: requests waiting for the model beyond which a request gets 503 and ``Retry-After``.
        max_inputs: inputs (texts, questions) one request may hold (413 beyond).
        max_body_bytes: the largest request body (413 beyond).
        api_key_env: the name of an environment variable holding a key every request but
            ``/health`` must send as ``Authorization: Bearer KEY`` (401 without it).
        max_wait_ms: float precisions: how long a request waits for others to share its run
            (default 0: none; the requests that queue during one run form the next).
    """
    for name, value in (("max_queue", max_queue), ("max_inputs", max_inputs), ("max_body_bytes", max_body_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, not {value!r}")
    if isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, (int, float)) or not 0 <= max_wait_ms <= 1000:
        raise InputError(f"max_wait_ms must be a number of milliseconds from 0 to 1000, not {max_wait_ms!r}")
    key = None
    if api_key_env is not None:
        key = os.environ.get(api_key_env, "")
        if not key:
            raise InputError(f"the API key variable {api_key_env!r} is unset or empty; set it, or serve without a key")
    predictor = pipeline(artifact, task, precision=precision, provider=provider, threads=threads,
                         max_batch_size=max_batch_size, int8_weights=int8_weights)
    served_task = task or predictor.task
    state: dict[str, Any] = {"draining": False, "inflight": 0}
    metrics: Metrics
    worker = ModelWorker(predictor, max_queue=max_queue, max_batch_size=max_batch_size,
                         merge=predictor.encoder.batch_independent_scales, max_wait_s=max_wait_ms / 1000,
                         on_batch=lambda n, tokens, seconds: metrics.batch(n, tokens, seconds))
    metrics = Metrics(lambda: worker.depth)
    allowed = _parameters(predictor)
    rerank_score = _rerank_score(predictor) if served_task == "text-classification" else None
    info = {"model": str(Path(artifact).resolve().name), "task": served_task, "precision": predictor.precision,
            "int8_kernel": predictor.int8_kernel, "providers": predictor.providers, "version": __version__,
            "max_length": predictor.max_length, "limits": {"max_inputs": max_inputs, "max_body_bytes": max_body_bytes,
                                                            "max_queue": max_queue, "max_batch_size": max_batch_size,
                                                            "max_wait_ms": max_wait_ms},
            "parameters": sorted(allowed),
            "routes": ["/predict", "/health", "/info", "/metrics"]
            + (["/embed", "/v1/embeddings"] if served_task == "feature-extraction" else [])
            + (["/rerank"] if rerank_score is not None else [])}

    async def run(inputs: Any, parameters: dict[str, Any], fn: Any = None) -> Any:
        count = len(inputs) if isinstance(inputs, list) else 1
        if count > max_inputs:
            raise HTTPError(413, f"{count} inputs in one request; this server takes at most {max_inputs}", "payload")
        if count == 0:
            raise HTTPError(422, "inputs is an empty list")
        try:
            future = worker.submit(inputs, parameters, fn)
        except QueueFull:
            raise HTTPError(503, f"the server is busy ({max_queue} requests waiting); retry shortly", "overloaded",
                            {"Retry-After": "1"}) from None
        return await future

    async def predict(body: dict[str, Any]) -> Any:
        unknown = sorted(set(body) - {"inputs", "parameters"})
        if unknown or "inputs" not in body:
            raise HTTPError(422, f"the body is {{'inputs': ..., 'parameters': {{...}}}}; got keys {sorted(body)}")
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise HTTPError(422, f"parameters must be an object, not {type(parameters).__name__}")
        bad = sorted(set(parameters) - allowed)
        if bad:
            raise HTTPError(422, f"unknown parameter {bad[0]!r} for {served_task}; valid: {sorted(allowed)}")
        return _plain(await run(body["inputs"], parameters))

    def embeddings_only() -> None:
        if served_task != "feature-extraction":
            raise HTTPError(404, f"this server's model does {served_task}; embedding routes serve feature-extraction "
                                 "artifacts (use /predict)", "not_found")

    async def embed(body: dict[str, Any]) -> Any:  # TEI's /embed
        embeddings_only()
        options = _options(body, {"inputs": None, "normalize": True, "truncate": False, "pooling": "mean"}, "inputs")
        inputs = options["inputs"]
        vectors = await run(inputs if isinstance(inputs, list) else [inputs],
                            {"pooling": options["pooling"], "normalize": options["normalize"],
                             "truncation": options["truncate"]})
        return _plain(vectors)

    async def openai_embeddings(body: dict[str, Any]) -> Any:  # OpenAI's /v1/embeddings
        embeddings_only()
        options = _options(body, {"input": None, "model": None, "encoding_format": "float", "user": None}, "input")
        if options["encoding_format"] != "float":
            raise HTTPError(422, f"encoding_format {options['encoding_format']!r} is not served; valid: ['float']")
        texts = options["input"] if isinstance(options["input"], list) else [options["input"]]
        vectors = await run(texts, {"pooling": "mean", "normalize": True})
        tokens = sum(len(predictor.tokenizer.encode(t)) for t in texts if isinstance(t, str))
        return {"object": "list", "model": options["model"] or info["model"],
                "data": [{"object": "embedding", "index": n, "embedding": v} for n, v in enumerate(_plain(vectors))],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def rerank(body: dict[str, Any]) -> Any:  # TEI's /rerank
        if rerank_score is None:
            raise HTTPError(404, f"this server's model does {served_task}; /rerank serves a text-classification "
                                 "artifact that scores pairs", "not_found")
        options = _options(body, {"query": None, "texts": None, "return_text": False, "raw_scores": False,
                                  "truncate": False}, "query")
        query, texts = options["query"], options["texts"]
        if not isinstance(query, str) or not query.strip():
            raise HTTPError(422, "query must be a non-empty str")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise HTTPError(422, "texts must be a non-empty list of str")
        for name in ("return_text", "raw_scores", "truncate"):
            if not isinstance(options[name], bool):
                raise HTTPError(422, f"{name} must be true or false")
        pairs = [{"text": query, "text_pair": t} for t in texts]
        scores = await run(pairs, {"raw": options["raw_scores"], "truncation": options["truncate"]}, rerank_score)
        order = sorted(range(len(texts)), key=lambda i: -scores[i])
        return [{"index": i, "score": float(scores[i]), **({"text": texts[i]} if options["return_text"] else {})}
                for i in order]

    async def health(body: None) -> Any:
        return {"status": "ok"}

    async def info_route(body: None) -> Any:
        return info

    async def metrics_route(body: None) -> Any:
        return Text(metrics.render(), "text/plain; version=0.0.4")

    routes: dict[str, tuple[str, Handler]] = {
        "/predict": ("POST", predict), "/embed": ("POST", embed), "/v1/embeddings": ("POST", openai_embeddings),
        "/rerank": ("POST", rerank), "/health": ("GET", health), "/info": ("GET", info_route),
        "/metrics": ("GET", metrics_route)}
    return ServingApp(routes, state, metrics, worker, key, max_body_bytes, info)



class ServingApp:
    """The ASGI app: one dispatcher that checks draining and the API key, counts requests in
    flight and in the metrics, reads the JSON body, calls the route and answers JSON.
    ``.state.serving`` holds ``draining`` and ``inflight`` (what a graceful shutdown watches)."""

    def __init__(self, routes: dict[str, tuple[str, Handler]], state: dict[str, Any], metrics: Metrics,
                 worker: ModelWorker, key: str | None, max_body_bytes: int, info: dict[str, Any]) -> None:
        self.routes, self.metrics, self.worker, self.key = routes, metrics, worker, key
        self.max_body_bytes, self.info = max_body_bytes, info  # info: what /info answers
        self.state = SimpleNamespace(serving=state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: not served
            return
        state, path = self.state.serving, scope["path"]
        started, status, sent = time.perf_counter(), 500, 0
        state["inflight"] += 1
        try:
            try:
                reply = await self._dispatch(scope, receive)
            except Exception as exc:
                error = _failure(exc, path)
                status, headers = error.status, error.headers
                payload = {"error": error.message, "error_type": error.kind}
            else:
                if reply is None:  # the client went away before its body arrived: nobody to answer
                    status = 499
                    return
                status, payload, headers = 200, reply, {}
            sent = await _respond(send, status, payload, headers, head=scope["method"] == "HEAD")
        finally:
            state["inflight"] -= 1
            self.metrics.request(path if path in self.routes else "other", status, time.perf_counter() - started)
            if access.isEnabledFor(logging.INFO):
                access.info(_access_line(scope, status, sent))

    async def _dispatch(self, scope: Scope, receive: Receive) -> Any:
        path, method = scope["path"], scope["method"]
        if self.state.serving["draining"]:
            raise HTTPError(503, "the server is shutting down", "unhealthy", {"Retry-After": "5"})
        if self.key is not None and path not in OPEN_ROUTES:
            sent = next((v for k, v in scope["headers"] if k.lower() == b"authorization"), b"")
            if not hmac.compare_digest(sent, f"Bearer {self.key}".encode()):
                raise HTTPError(401, "missing or wrong API key: send Authorization: Bearer KEY", "unauthorized",
                                {"WWW-Authenticate": "Bearer"})
        route = self.routes.get(path)
        if route is None:
            raise HTTPError(404, f"no route {path}; routes: {sorted(self.routes)}", "not_found")
        wanted, handler = route
        if method != wanted and not (wanted == "GET" and method == "HEAD"):
            raise HTTPError(405, f"{path} takes {wanted}, not {method}", "method_not_allowed",
                            {"Allow": wanted if wanted == "POST" else "GET, HEAD"})
        if wanted == "GET":
            return await handler(None)
        body = await _json_body(scope, receive, self.max_body_bytes)
        return None if body is None else await handler(body)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.worker.close)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _failure(exc: Exception, path: str) -> HTTPError:
    """The answer to an exception: its own status for ours, 422 for bad input, 500 (never a
    traceback or a path) for the rest."""
    if isinstance(exc, HTTPError):
        return exc
    if isinstance(exc, InputError):
        return HTTPError(422, str(exc))
    if isinstance(exc, AlbertOnnxError):
        return HTTPError(500, str(exc), "backend")
    log.error("unexpected error on %s: %s", path, type(exc).__name__, exc_info=exc)
    return HTTPError(500, "internal error", "backend")


def _access_line(scope: Scope, status: int, sent: int) -> str:
    """A request in the Common Log Format: host, time, request line, status, bytes of the body."""
    client = scope.get("client") or ("-", 0)
    target = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
    when = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    return (f'{client[0]} - - [{when}] "{scope["method"]} {target} HTTP/{scope.get("http_version", "1.1")}" '
            f"{status} {sent or '-'}")


async def _respond(send: Send, status: int, payload: Any, headers: dict[str, str], head: bool = False) -> int:
    """Send the answer; the bytes of its body."""
    if isinstance(payload, Text):
        body, media_type = payload.body.encode(), payload.media_type
    else:
        body = _JSON.encode(payload).encode()
        media_type = "application/json"
    raw = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if head else body})
    return 0 if head else len(body)


async def _json_body(scope: Scope, receive: Receive, limit: int) -> dict[str, Any] | None:
    """The request's JSON object, read up to ``limit`` bytes (413 beyond, 400 when not JSON);
    None when the client disconnected first."""
    declared = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), None)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"the body is {declared.decode()} bytes; this server takes at most {limit}", "payload")
    data = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        data += message.get("body", b"")
        if len(data) > limit:
            raise HTTPError(413, f"the body is over {limit} bytes, the most this server takes", "payload")
        if not message.get("more_body", False):
            break
    try:
        body = json.loads(bytes(data).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HTTPError(400, f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise HTTPError(400, f"the body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise HTTPError(422, f"the body must be a JSON object, not {type(body).__name__}")
    return body


def _options(body: dict[str, Any], defaults: dict[str, Any], required: str) -> dict[str, Any]:
    unknown = sorted(set(body) - set(defaults))
    if unknown:
        raise HTTPError(422, f"unknown field {unknown[0]!r}; valid: {sorted(defaults)}")
    if required not in body:
        raise HTTPError(422, f"the body needs {required!r}")
    return {**defaults, **body}


def _parameters(predictor: Any) -> set[str]:
    """The keyword options the predictor's call takes (what ``parameters`` may hold)."""
    names = list(inspect.signature(predictor.__call__).parameters.items())
    return {n for n, p in names[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and n not in ("question", "context", "choices")}


def _rerank_score(predictor: Any) -> Any:
    """How /rerank scores a (query, text) pair on a text classifier: a one-output model (a
    cross-encoder) by the sigmoid of its logit (``raw``: the logit), an NLI model by the
    probability of entailment; None for other classifiers."""
    labels = [label.lower() for label in predictor.labels]
    entail = next((i for i, label in enumerate(labels) if label.startswith("entail")), None)
    if len(labels) != 1 and entail is None:
        return None

    def score(pairs: list[dict[str, str]], raw: bool, truncation: bool) -> list[float]:
        logits = predictor.logits(pairs, truncation=truncation)
        if len(labels) == 1:
            return [float(x[0]) if raw else float(1 / (1 + np.exp(-x[0]))) for x in logits]
        if raw:
            return [float(x[entail]) for x in logits]
        return [float(np.exp(x[entail] - x.max()) / np.exp(x - x.max()).sum()) for x in logits]

    return score


def _plain(value: Any) -> Any:
    """JSON values of a predictor's result (arrays to lists, NumPy scalars to numbers)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
