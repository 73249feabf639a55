"""The HTTP app: routes shaped as the Hugging Face Inference API (``/predict``), TEI (``/embed``)
and OpenAI (``/v1/embeddings``), health, info and Prometheus metrics, on Starlette."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import json
import logging
import os
import time
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .. import __version__
from ..errors import AlbertOnnxError, InputError
from ..tasks import pipeline
from .metrics import Metrics
from .worker import ModelWorker, QueueFull

log = logging.getLogger("albert_onnx.serve")

DEFAULT_MAX_BODY_BYTES = 2_000_000  # TEI's default payload limit
DEFAULT_MAX_INPUTS = 64
DEFAULT_MAX_QUEUE = 64
OPEN_ROUTES = ("/health",)  # answered without the API key (load balancers probe it)


class HTTPError(Exception):
    def __init__(self, status: int, message: str, kind: str = "validation", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


def create_app(artifact: str | Path, *, task: str | None = None, precision: str = "fp32", provider: str = "cpu",
               threads: int | None = None, max_batch_size: int = 32, max_queue: int = DEFAULT_MAX_QUEUE,
               max_inputs: int = DEFAULT_MAX_INPUTS, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               api_key_env: str | None = None, int8_weights: str = "auto") -> GuardedApp:
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
    """
    for name, value in (("max_queue", max_queue), ("max_inputs", max_inputs), ("max_body_bytes", max_body_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, not {value!r}")
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
    worker = ModelWorker(predictor, served_task, max_queue=max_queue, max_batch_size=max_batch_size,
                         merge=predictor.encoder.batch_independent_scales,
                         on_batch=lambda n, tokens: metrics.batch(n, tokens))
    metrics = Metrics(lambda: worker.depth)
    allowed = _parameters(predictor)
    rerank_score = _rerank_score(predictor) if served_task == "text-classification" else None
    info = {"model": str(Path(artifact).resolve().name), "task": served_task, "precision": predictor.precision,
            "int8_kernel": predictor.int8_kernel, "providers": predictor.providers, "version": __version__,
            "max_length": predictor.max_length, "limits": {"max_inputs": max_inputs, "max_body_bytes": max_body_bytes,
                                                            "max_queue": max_queue, "max_batch_size": max_batch_size},
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
        return await asyncio.wrap_future(future)

    async def predict(request: Request) -> Response:
        body = await _json_body(request, max_body_bytes)
        unknown = sorted(set(body) - {"inputs", "parameters"})
        if unknown or "inputs" not in body:
            raise HTTPError(422, f"the body is {{'inputs': ..., 'parameters': {{...}}}}; got keys {sorted(body)}")
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise HTTPError(422, f"parameters must be an object, not {type(parameters).__name__}")
        bad = sorted(set(parameters) - allowed)
        if bad:
            raise HTTPError(422, f"unknown parameter {bad[0]!r} for {served_task}; valid: {sorted(allowed)}")
        return JSONResponse(_plain(await run(body["inputs"], parameters)))

    def embeddings_only() -> None:
        if served_task != "feature-extraction":
            raise HTTPError(404, f"this server's model does {served_task}; embedding routes serve feature-extraction "
                                 "artifacts (use /predict)", "not_found")

    async def embed(request: Request) -> Response:  # TEI's /embed
        embeddings_only()
        body = await _json_body(request, max_body_bytes)
        options = _options(body, {"inputs": None, "normalize": True, "truncate": False, "pooling": "mean"}, "inputs")
        inputs = options["inputs"]
        vectors = await run(inputs if isinstance(inputs, list) else [inputs],
                            {"pooling": options["pooling"], "normalize": options["normalize"],
                             "truncation": options["truncate"]})
        return JSONResponse(_plain(vectors))

    async def openai_embeddings(request: Request) -> Response:  # OpenAI's /v1/embeddings
        embeddings_only()
        body = await _json_body(request, max_body_bytes)
        options = _options(body, {"input": None, "model": None, "encoding_format": "float", "user": None}, "input")
        if options["encoding_format"] != "float":
            raise HTTPError(422, f"encoding_format {options['encoding_format']!r} is not served; valid: ['float']")
        texts = options["input"] if isinstance(options["input"], list) else [options["input"]]
        vectors = await run(texts, {"pooling": "mean", "normalize": True})
        tokens = sum(len(predictor.tokenizer.encode(t)) for t in texts if isinstance(t, str))
        return JSONResponse({"object": "list", "model": options["model"] or info["model"],
                             "data": [{"object": "embedding", "index": n, "embedding": v}
                                      for n, v in enumerate(_plain(vectors))],
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def rerank(request: Request) -> Response:  # TEI's /rerank
        if rerank_score is None:
            raise HTTPError(404, f"this server's model does {served_task}; /rerank serves a text-classification "
                                 "artifact that scores pairs", "not_found")
        body = await _json_body(request, max_body_bytes)
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
        return JSONResponse([{"index": i, "score": float(scores[i]), **({"text": texts[i]} if options["return_text"]
                                                                        else {})} for i in order])

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def info_route(request: Request) -> Response:
        return JSONResponse(info)

    async def metrics_route(request: Request) -> Response:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    routes = [Route("/predict", predict, methods=["POST"]), Route("/embed", embed, methods=["POST"]),
              Route("/v1/embeddings", openai_embeddings, methods=["POST"]), Route("/rerank", rerank, methods=["POST"]),
              Route("/health", health),
              Route("/info", info_route), Route("/metrics", metrics_route)]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        worker.close()

    paths = {r.path for r in routes}

    async def guard(scope: Scope, receive: Receive, send: Send) -> None:
        """Draining, the API key, the in-flight count and the metrics, around every request."""
        if scope["type"] != "http":
            await router(scope, receive, send)
            return
        started, route = time.perf_counter(), scope["path"]
        status = 500

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        state["inflight"] += 1
        try:
            refusal = None
            if state["draining"]:
                refusal = HTTPError(503, "the server is shutting down", "unhealthy", {"Retry-After": "5"})
            elif key is not None and route not in OPEN_ROUTES:
                sent = Headers(scope=scope).get("authorization", "")
                if not hmac.compare_digest(sent.encode(), f"Bearer {key}".encode()):
                    refusal = HTTPError(401, "missing or wrong API key: send Authorization: Bearer KEY",
                                        "unauthorized", {"WWW-Authenticate": "Bearer"})
            if refusal is not None:
                await _error(refusal.status, refusal.message, refusal.kind, refusal.headers)(scope, receive, sending)
            else:
                await router(scope, receive, sending)
        finally:
            state["inflight"] -= 1
            metrics.request(route if route in paths else "other", status, time.perf_counter() - started)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPError)
        return _error(exc.status, exc.message, exc.kind, exc.headers)

    async def input_error(request: Request, exc: Exception) -> Response:
        return _error(422, str(exc))

    async def backend_error(request: Request, exc: Exception) -> Response:
        return _error(500, str(exc), "backend")

    async def unexpected(request: Request, exc: Exception) -> Response:  # never a traceback or a path
        log.error("unexpected error on %s: %s", request.url.path, type(exc).__name__, exc_info=exc)
        return _error(500, "internal error", "backend")

    router = Starlette(routes=routes, lifespan=lifespan,
                       exception_handlers={HTTPError: http_error, InputError: input_error,
                                           AlbertOnnxError: backend_error, Exception: unexpected})
    router.state.serving = state
    return GuardedApp(router, guard)


class GuardedApp:
    """The ASGI app: the guard around the router (``.state`` is the router's)."""

    def __init__(self, router: Starlette, guard: Any) -> None:
        self.router, self.guard, self.state = router, guard, router.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.guard(scope, receive, send)


def _error(status: int, message: str, kind: str = "validation", headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message, "error_type": kind}, status_code=status, headers=headers)


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object, read up to ``limit`` bytes (413 beyond, 400 when not JSON)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"the body is {declared} bytes; this server takes at most {limit}", "payload")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise HTTPError(413, f"the body is over {limit} bytes, the most this server takes", "payload")
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
