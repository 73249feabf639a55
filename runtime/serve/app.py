"""The HTTP app, a plain ASGI app: one dispatcher (draining, the API key, errors, access log,
metrics) over the routes of three protocols, the Hugging Face Inference API (``/predict``), TEI
(``/embed``, ``/embed_all``, ``/tokenize``, ``/decode``, ``/rerank``, ``/info``) and OpenAI
(``/v1/embeddings``, ``/v1/models``), plus health, readiness, Prometheus metrics, the OpenAPI
document, an API page and a page to try the model. A request passes through no framework
layers (on Starlette, a request took 42 µs of the event loop's time against 30 µs here)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import __version__
from ..errors import AlbertOnnxError, InputError
from ..tasks import pipeline
from . import pages, routes_hf, routes_openai, routes_tei
from .cost import DEFAULT_MAX_REQUEST_TOKENS
from .http import GONE, Draining, HTTPError, Receive, Scope, Send, Text, read_json, respond
from .metrics import Metrics
from .openapi import openapi_document
from .served import Limits, Served, predictor_parameters
from .worker import ModelWorker

log = logging.getLogger("albert_onnx.serve")
access = logging.getLogger("albert_onnx.serve.access")  # one Common Log Format line per request, at INFO

DEFAULT_MAX_BODY_BYTES = 2_000_000  # TEI's default payload limit
DEFAULT_MAX_INPUTS = 2048  # OpenAI's embeddings endpoint takes 2048 inputs
DEFAULT_MAX_QUEUE = 64
DEFAULT_READY_DEADLINE_S = 30.0
OPEN_ROUTES = ("/health", "/ready", "/", "/docs", "/openapi.json")  # answered without the API key

Handler = Callable[[Any], Awaitable[Any]]  # a route: the JSON body (None for GET) to its answer


def create_app(artifact: str | Path, *, task: str | None = None, precision: str = "fp32", provider: str = "cpu",
               threads: int | None = None, max_batch_size: int = 32, max_queue: int = DEFAULT_MAX_QUEUE,
               max_inputs: int = DEFAULT_MAX_INPUTS, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_request_tokens: int = DEFAULT_MAX_REQUEST_TOKENS, api_key_env: str | None = None,
               int8_weights: str = "auto", max_wait_ms: float = 0.0, model_name: str | None = None,
               ready_deadline_s: float = DEFAULT_READY_DEADLINE_S, ui: bool = True) -> ServingApp:
    """The ASGI app serving one artifact; mount it in your own ASGI app or run it with ``serve``.

    Args:
        artifact: folder written by ``albert-onnx export``.
        task: ``"zero-shot-classification"`` to serve an NLI classifier that way; default the
            artifact's own task.
        precision, provider, threads, max_batch_size, int8_weights: as for the predictors.
        max_queue: requests waiting for the model beyond which a request gets 503 and ``Retry-After``.
        max_inputs: inputs (texts, questions) one request may hold (413 beyond).
        max_body_bytes: the largest request body (413 beyond).
        max_request_tokens: what one request may cost, in tokens (see ``serve/cost.py``; 413 beyond).
        api_key_env: the name of an environment variable holding a key every request but the
            open routes (health, readiness, the pages) must send as ``Authorization: Bearer KEY``.
        max_wait_ms: float precisions: how long a request waits for others to share its run
            (default 0: none; the requests that queue during one run form the next).
        model_name: the name OpenAI's routes and ``/info`` serve (default: the artifact folder's).
        ready_deadline_s: ``/ready`` answers 503 once the model thread has had work and finished
            no session run for this long.
        ui: serve the page to try the model at ``/``.
    """
    for name, value in (("max_queue", max_queue), ("max_inputs", max_inputs), ("max_body_bytes", max_body_bytes),
                        ("max_request_tokens", max_request_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, not {value!r}")
    if isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, (int, float)) or not 0 <= max_wait_ms <= 1000:
        raise InputError(f"max_wait_ms must be a number of milliseconds from 0 to 1000, not {max_wait_ms!r}")
    if isinstance(ready_deadline_s, bool) or not isinstance(ready_deadline_s, (int, float)) or ready_deadline_s <= 0:
        raise InputError(f"ready_deadline_s must be a positive number of seconds, not {ready_deadline_s!r}")
    if model_name is not None and (not isinstance(model_name, str) or not model_name.strip()):
        raise InputError(f"model_name must be a non-empty str, not {model_name!r}")
    key = None
    if api_key_env is not None:
        key = os.environ.get(api_key_env, "")
        if not key:
            raise InputError(f"the API key variable {api_key_env!r} is unset or empty; set it, or serve without a key")
    predictor = pipeline(artifact, task, precision=precision, provider=provider, threads=threads,
                         max_batch_size=max_batch_size, int8_weights=int8_weights)
    served_task = task or predictor.task
    metrics: Metrics
    worker = ModelWorker(predictor, max_queue=max_queue, max_batch_size=max_batch_size,
                         merge=predictor.encoder.batch_independent_scales, max_wait_s=max_wait_ms / 1000,
                         on_batch=lambda n, tokens, seconds: metrics.batch(n, tokens, seconds))
    metrics = Metrics(lambda: worker.depth)
    limits = Limits(max_inputs=max_inputs, max_request_tokens=max_request_tokens, max_body_bytes=max_body_bytes,
                    max_queue=max_queue, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                    ready_deadline_s=float(ready_deadline_s))
    name = model_name or str(Path(artifact).resolve().name)
    s = Served(predictor, served_task, name, worker, limits, predictor_parameters(predictor))
    score = routes_tei.rerank_score(predictor) if served_task == "text-classification" else None
    embeds = served_task == "feature-extraction"

    async def health(body: None) -> Any:
        return {"status": "ok"}

    async def ready(body: None) -> Any:
        if state["draining"]:
            raise HTTPError(503, "the server is shutting down", "unhealthy", {"Retry-After": "5"})
        if worker.stalled(limits.ready_deadline_s):
            raise HTTPError(503, f"the model thread has finished no run for over {limits.ready_deadline_s:g}s",
                            "unhealthy", {"Retry-After": "5"})
        return {"status": "ready"}

    routes: dict[str, tuple[str, Handler]] = {
        "/predict": ("POST", lambda body: routes_hf.predict(s, body)),
        "/health": ("GET", health), "/ready": ("GET", ready),
        "/info": ("GET", lambda body: _async(info)),
        "/metrics": ("GET", lambda body: _async(Text(metrics.render(), "text/plain; version=0.0.4"))),
        "/openapi.json": ("GET", lambda body: _async(document)),
        "/docs": ("GET", lambda body: _async(Text(pages.page("docs"), "text/html; charset=utf-8"))),
        "/tokenize": ("POST", lambda body: routes_tei.tokenize(s, body)),
        "/decode": ("POST", lambda body: routes_tei.decode(s, body)),
    }
    if ui:
        routes["/"] = ("GET", lambda body: _async(Text(pages.page("index"), "text/html; charset=utf-8")))
    # every server has the embedding and rerank routes, so that asking the wrong model for them
    # gets a 404 that says which artifacts serve them; /info and /openapi.json list what it serves
    routes |= {"/embed": ("POST", lambda body: routes_tei.embed_route(s, body)),
               "/embed_all": ("POST", lambda body: routes_tei.embed_all(s, body)),
               "/v1/embeddings": ("POST", lambda body: routes_openai.embeddings(s, body)),
               "/v1/models": ("GET", lambda body: routes_openai.models(s, body)),
               "/rerank": ("POST", lambda body: routes_tei.rerank(s, body, score))}
    unserved = ({"/embed", "/embed_all", "/v1/embeddings", "/v1/models"} if not embeds else set()) \
        | ({"/rerank"} if score is None else set())
    served_routes = sorted(set(routes) - unserved) + (["/v1/models/{model}"] if embeds else [])
    dtype = {"fp32": "float32", "fp16": "float16", "int8": "int8"}[predictor.precision]
    info = {"model": name, "task": served_task, "precision": predictor.precision,
            "int8_kernel": predictor.int8_kernel, "providers": predictor.providers,
            "max_length": predictor.max_length, "limits": limits.as_dict(), "parameters": sorted(s.parameters),
            "routes": served_routes,
            **routes_tei.tei_info(s, score is not None, dtype)}
    document = openapi_document(s, served_routes)
    app = ServingApp(routes, metrics, worker, key, max_body_bytes, info, s)
    state = app.state.serving
    return app


async def _async(value: Any) -> Any:
    return value


class ServingApp:
    """The ASGI app: one dispatcher that checks draining and the API key, counts requests in
    flight and in the metrics, reads the JSON body, calls the route and answers JSON.
    ``.state.serving`` holds ``draining`` and ``inflight`` (what a graceful shutdown watches);
    ``.draining`` is set when a shutdown begins, so bodies still arriving stop being awaited."""

    def __init__(self, routes: dict[str, tuple[str, Handler]], metrics: Metrics, worker: ModelWorker,
                 key: str | None, max_body_bytes: int, info: dict[str, Any], served: Served) -> None:
        self.routes, self.metrics, self.worker, self.key = routes, metrics, worker, key
        self.max_body_bytes, self.info, self.served = max_body_bytes, info, served  # info: what /info answers
        self.state = SimpleNamespace(serving={"draining": False, "inflight": 0, "reading": 0})
        self.draining: asyncio.Event | None = None  # made on the server's loop

    def begin_draining(self) -> None:
        """Called on the event loop when a shutdown begins."""
        self.state.serving["draining"] = True
        if self.draining is not None:
            self.draining.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "websocket":  # not served: closing before accepting answers 403
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        if self.draining is None:
            self.draining = asyncio.Event()
            if self.state.serving["draining"]:
                self.draining.set()
        state, path = self.state.serving, scope["path"]
        started, status, sent = time.perf_counter(), 500, 0
        state["inflight"] += 1
        try:
            headers: dict[str, str] = {}
            try:
                reply = await self._dispatch(scope, receive)
            except Draining:
                error = HTTPError(503, "the server is shutting down", "unhealthy", {"Connection": "close"})
                status, headers, payload = error.status, error.headers, self._error_body(path, error)
            except asyncio.CancelledError:  # the shutdown's deadline passed: answer if the client still listens
                error = HTTPError(503, "the server is shutting down", "unhealthy", {"Connection": "close"})
                status = error.status
                sent = await respond(send, status, self._error_body(path, error), error.headers)
                return
            except Exception as exc:
                error = _failure(exc, path)
                status, headers, payload = error.status, error.headers, self._error_body(path, error)
            else:
                if reply is None:  # the client went away before its body arrived: nobody to answer
                    status = 499
                    return
                status, payload = 200, reply
            sent = await respond(send, status, payload, headers, head=scope["method"] == "HEAD")
        finally:
            state["inflight"] -= 1
            self.metrics.request(path if path in self.routes else "other", status, time.perf_counter() - started)
            if access.isEnabledFor(logging.INFO):
                access.info(_access_line(scope, status, sent))

    @staticmethod
    def _error_body(path: str, error: HTTPError) -> dict[str, Any]:
        return error.openai() if path.startswith("/v1/") else error.tei()

    async def _dispatch(self, scope: Scope, receive: Receive) -> Any:
        path, method = scope["path"], scope["method"]
        if self.state.serving["draining"] and path not in ("/health", "/ready"):
            raise HTTPError(503, "the server is shutting down", "unhealthy", {"Retry-After": "5"})
        if self.key is not None and path not in OPEN_ROUTES:
            sent = next((v for k, v in scope["headers"] if k.lower() == b"authorization"), b"")
            scheme, _, token = sent.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode("latin-1"),
                                                                     self.key.encode()):
                raise HTTPError(401, "missing or wrong API key: send Authorization: Bearer KEY", "unauthorized",
                                {"WWW-Authenticate": "Bearer"}, code="invalid_api_key")
        if path.startswith("/v1/models/"):
            routes_tei.embeddings_only(self.served)
            if method not in ("GET", "HEAD"):
                raise HTTPError(405, f"{path} takes GET, not {method}", "method_not_allowed", {"Allow": "GET, HEAD"})
            return await routes_openai.model(self.served, path[len("/v1/models/"):])
        route = self.routes.get(path)
        if route is None:
            raise HTTPError(404, f"no route {path}; routes: {self.info['routes']}", "not_found")
        wanted, handler = route
        if method != wanted and not (wanted == "GET" and method == "HEAD"):
            raise HTTPError(405, f"{path} takes {wanted}, not {method}", "method_not_allowed",
                            {"Allow": wanted if wanted == "POST" else "GET, HEAD"})
        if wanted == "GET":
            return await handler(None)
        assert self.draining is not None
        state = self.state.serving
        state["reading"] += 1
        try:
            body = await read_json(scope, receive, self.max_body_bytes, self.draining)
        finally:
            state["reading"] -= 1
        return None if body is GONE else await handler(body)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # the model thread ends after its queue; a run cut off by a shutdown's deadline is not waited for
                await asyncio.get_running_loop().run_in_executor(None, self.worker.close, 1.0)
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


__all__ = ["create_app", "ServingApp", "HTTPError", "Text", "__version__"]
