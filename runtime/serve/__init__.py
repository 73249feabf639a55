"""``albert-onnx serve``: an HTTP server for an artifact (the ``[serve]`` extra: Uvicorn with
httptools and uvloop). Nothing here is imported by the light install."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Generator, MutableMapping
from pathlib import Path
from typing import Any

from ..errors import InputError

log = logging.getLogger("albert_onnx.serve")
access = logging.getLogger("albert_onnx.serve.access")

__all__ = ["create_app", "ray_deployment", "serve", "serve_on_ray"]


def create_app(artifact: str | Path, **options: Any) -> Any:
    """The ASGI app for ``artifact`` (see :func:`albert_onnx.serve.app.create_app`)."""
    _need_extra()
    from .app import create_app as make

    return make(artifact, **options)


def serve(artifact: str | Path, *, host: str = "127.0.0.1", port: int = 8000, drain_s: float = 30.0,
          linger_s: float = 0.5, log_level: str = "info", access_log: bool = True, read_timeout_s: float = 30.0,
          max_header_bytes: int = 65536, **options: Any) -> None:
    """Serve ``artifact`` until SIGTERM or SIGINT, then shut down within ``drain_s`` seconds
    whatever the clients do, and return (a process exits with status 0): new requests get 503,
    bodies still arriving are cut with a 503, requests at the model finish (until the deadline),
    for ``linger_s`` more the server still answers 503 (clients learn it is going, rather than
    meeting a closed port mid-connect), then idle connections close; a second signal exits at once.

    It logs on stderr (``log_level``): at start the address, the model and the limits, at
    shutdown what it drained, and (``access_log``) a Common Log Format line per request.
    ``read_timeout_s`` and ``max_header_bytes`` bound what a slow or hostile client may hold."""
    _need_extra()
    import uvicorn

    from .protocol import guarded_protocol

    for name, value in (("drain_s", drain_s), ("read_timeout_s", read_timeout_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise InputError(f"{name} must be a positive number of seconds, not {value!r}")
    if isinstance(max_header_bytes, bool) or not isinstance(max_header_bytes, int) or max_header_bytes < 1024:
        raise InputError(f"max_header_bytes must be an integer of at least 1024, not {max_header_bytes!r}")
    _configure_logging(log_level, access_log)
    app = create_app(artifact, **options)
    state = app.state.serving
    linger_s = min(linger_s, drain_s / 4)

    class DrainingServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            self._loop = asyncio.get_running_loop()
            await super().startup(sockets)
            if self.started:
                bound = [s.getsockname() for server in self.servers for s in server.sockets]
                log.info("%s", _started_line(app.info, bound, options))

        async def shutdown(self, sockets: Any = None) -> None:
            await super().shutdown(sockets)
            log.info("stopped")

        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            # as Uvicorn's, but a handled signal is not raised again afterwards: a server that
            # shut down as asked exits with status 0
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

        def handle_exit(self, sig: int, frame: Any) -> None:
            if state["draining"]:  # a second signal: at once
                self.force_exit = self.should_exit = True
                return
            state["draining"] = True
            self._loop.call_soon_threadsafe(app.begin_draining)
            threading.Thread(target=self._drain, args=(sig,), daemon=True).start()

        def _drain(self, sig: int) -> None:
            started = time.monotonic()
            deadline = started + max(0.0, drain_s - linger_s - 1.0)  # a second for closing and the lifespan
            time.sleep(0.05)  # bodies still arriving are cut first: what is left is at the model
            waiting = state["inflight"] - state["reading"]
            log.info("signal %d: draining %d request(s) in flight (at most %gs); new ones get 503", sig, waiting,
                     drain_s)
            while state["inflight"] > 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            left = state["inflight"]
            log.info("drained %d of %d request(s) in %.2fs%s; stopping", max(0, waiting - left), waiting,
                     time.monotonic() - started, f", {left} cut off at the deadline" if left else "")
            time.sleep(linger_s)
            self.config.timeout_graceful_shutdown = max(  # type: ignore[assignment]  # asyncio.timeout takes a float
                0.2, started + drain_s - 0.5 - time.monotonic())
            self.should_exit = True

    # no proxy-header middleware (the app reads no client address) and no `server` header: less
    # work on each request's path; Uvicorn's own lines only at warning (ours say what it does)
    config = uvicorn.Config(app, host=host, port=port, log_level="debug" if log_level == "debug" else "warning",
                            timeout_graceful_shutdown=int(drain_s), access_log=False, proxy_headers=False,
                            server_header=False, log_config=None, ws="none",
                            http=guarded_protocol(max_header_bytes, read_timeout_s))
    DrainingServer(config).run()


def _started_line(info: dict[str, Any], bound: list[Any], options: dict[str, Any]) -> str:
    """The start line: address, artifact, task, precision, int8 kernel, threads, limits, key on or off."""
    urls = ", ".join(f"http://[{a[0]}]:{a[1]}" if ":" in a[0] else f"http://{a[0]}:{a[1]}" for a in bound)
    limits = ", ".join(f"{k} {v}" for k, v in info["limits"].items())
    kernel = f", int8 kernel {info['int8_kernel']}" if info.get("int8_kernel") else ""
    key = f"on (from ${options['api_key_env']})" if options.get("api_key_env") else "off"
    return (f"serving {info['model']} ({info['task']}, {info['precision']}{kernel}, "
            f"{options.get('threads') or 'all'} threads, providers {info['providers']}) on {urls}; "
            f"limits: {limits}; API key {key}")


def _configure_logging(level: str, access_log: bool) -> None:
    """The server's lines (``albert-onnx: ...``) at ``level`` on stderr, and the access log's bare
    Common Log Format lines on stdout, unless the application configured logging itself."""
    levels = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
    if level not in levels:
        raise InputError(f"unknown log level {level!r}; valid: {list(levels)}")
    log.setLevel(levels[level])
    if not log.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("albert-onnx: %(message)s"))
        log.addHandler(handler)
    access.setLevel(logging.INFO if access_log and levels[level] <= logging.INFO else logging.WARNING)
    if not access.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.propagate = False


def ray_deployment(artifact: str | Path, *, replicas: int = 1, threads: int = 1, **options: Any) -> Any:
    """The server as a Ray Serve application: ``replicas`` copies, each building the same ASGI app
    (every route, limit and error as ``serve``) with ``threads`` ONNX Runtime threads and one CPU
    reserved per thread. Run it with ``ray.serve.run(...)``."""
    _need_extra()
    try:
        from ray import serve as ray_serve
    except ImportError:
        raise InputError("the Ray Serve engine needs Ray Serve: pip install 'albert-onnx[serve]' "
                         "'ray[serve]'") from None
    artifact = str(Path(artifact).resolve())

    @ray_serve.deployment(num_replicas=replicas, ray_actor_options={"num_cpus": threads})
    class AlbertOnnxServer:
        def __init__(self) -> None:
            from .app import create_app as make

            self.app = make(artifact, threads=threads, **options)

        async def __call__(self, request: Any) -> Any:
            from starlette.responses import Response

            messages: list[MutableMapping[str, Any]] = []

            async def send(message: MutableMapping[str, Any]) -> None:
                messages.append(message)

            await self.app(request.scope, request.receive, send)
            start = next(m for m in messages if m["type"] == "http.response.start")
            body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])
                       if k.lower() != b"content-length"}
            return Response(body, status_code=start["status"], headers=headers)

    return AlbertOnnxServer.bind()  # type: ignore[attr-defined]


def serve_on_ray(artifact: str | Path, *, host: str = "127.0.0.1", port: int = 8000, replicas: int = 1,
                 threads: int = 1, address: str | None = None, **options: Any) -> None:
    """Serve ``artifact`` on Ray Serve (``address`` joins a cluster; else a local Ray on this
    machine's loopback) until interrupted."""
    import ray
    from ray import serve as ray_serve

    if not ray.is_initialized():
        local = {} if address else {"num_cpus": replicas * threads + 1, "_node_ip_address": "127.0.0.1"}
        ray.init(address=address, include_dashboard=False, configure_logging=False, **local)  # type: ignore[arg-type]
    ray_serve.start(http_options={"host": host, "port": port})
    ray_serve.run(ray_deployment(artifact, replicas=replicas, threads=threads, **options), blocking=True)


def _need_extra() -> None:
    try:
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise InputError(f"the server needs Uvicorn ({exc.name} is missing): "
                         "pip install 'albert-onnx[serve]'") from None
