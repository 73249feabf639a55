"""The least any server of this design adds on this machine: a bare ASGI app on the stack
`albert-onnx serve` runs on (Uvicorn, httptools, uvloop) whose only work is what a model run
costs, done where `serve` does it (on a thread of its own, so that the event loop is free).

  python benchmarks/floor_server.py PORT

POST /predict {"inputs": ..., "wait_ms": W}: hands the request to the thread, which busy-waits W
ms (a model run that long), and answers a fixed classifier-shaped JSON. bench_serve.py sets W to
the in-process predictor's time, so the served latency minus W is the floor of the overhead: the
HTTP stack, the two thread hand-offs and the wake-ups after W ms idle, with no work of ours.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sys
import threading
import time
from typing import Any

ANSWER = json.dumps([{"label": "LABEL_0", "score": 0.5}]).encode()


def main() -> None:
    import uvicorn

    jobs: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[None], float]] = queue.SimpleQueue()

    def model_thread() -> None:
        while True:
            loop, future, wait_s = jobs.get()
            deadline = time.perf_counter() + wait_s
            while time.perf_counter() < deadline:
                pass
            loop.call_soon_threadsafe(future.set_result, None)

    threading.Thread(target=model_thread, daemon=True).start()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if scope["method"] == "POST":
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            jobs.put((loop, future, float(json.loads(body).get("wait_ms", 0)) / 1e3))
            await future
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": ANSWER})

    # as `serve` configures Uvicorn (which picks uvloop and httptools where installed)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error", access_log=False,
                proxy_headers=False, server_header=False)


if __name__ == "__main__":
    main()
