"""``albert-onnx serve``: an HTTP server for an artifact (the ``[serve]`` extra: Starlette and
Uvicorn). Nothing here is imported by the light install."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["create_app", "serve"]


def create_app(artifact: str | Path, **options: Any) -> Any:
    """The ASGI app for ``artifact`` (see :func:`albert_onnx.serve.app.create_app`)."""
    _need_extra()
    from .app import create_app as make

    return make(artifact, **options)


def serve(artifact: str | Path, *, host: str = "127.0.0.1", port: int = 8000, drain_s: float = 30.0,
          log_level: str = "warning", **options: Any) -> None:
    """Serve ``artifact`` until SIGTERM or SIGINT. On the first signal the server drains: new
    requests get 503, those in flight finish (at most ``drain_s`` seconds), then it exits; a
    second signal exits at once."""
    _need_extra()
    import uvicorn

    app = create_app(artifact, **options)
    state = app.state.serving

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if state["draining"]:
                super().handle_exit(sig, frame)
                return
            state["draining"] = True
            threading.Thread(target=self._drain, args=(sig, frame), daemon=True).start()

        def _drain(self, sig: int, frame: Any) -> None:
            deadline = time.monotonic() + drain_s
            while state["inflight"] > 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=int(drain_s),
                            access_log=False)
    DrainingServer(config).run()


def _need_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise InputError(f"the server needs Starlette and Uvicorn ({exc.name} is missing): "
                         "pip install 'albert-onnx[serve]'") from None
