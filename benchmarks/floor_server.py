"""The least a server of `albert-onnx serve`'s design costs on this machine: a bare ASGI app on
the same stack (Uvicorn, with httptools and uvloop where installed) that hands each request to a
thread of its own, which calls the same in-process predictor and answers its result as JSON. No
routes, checks, limits, queue bound, batching or metrics: what is left is what any server that
keeps its event loop free of the model pays (the HTTP stack, two thread hand-offs, waking after
the model's run, and the model run slowed by what happens between runs).

  python benchmarks/floor_server.py ARTIFACT PRECISION THREADS PORT

POST (any path) {"inputs": ...} -> the predictor's result for inputs, as JSON; GET -> {}.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sys
import threading
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


def main() -> None:
    import uvicorn

    from albert_onnx import pipeline

    artifact, precision, threads, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    predictor = pipeline(artifact, precision=precision, threads=threads)
    jobs: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[bytes], Any]] = queue.SimpleQueue()

    def model_thread() -> None:
        while True:
            loop, future, inputs = jobs.get()
            answer = json.dumps(predictor(inputs), default=plain, ensure_ascii=False).encode()
            loop.call_soon_threadsafe(future.set_result, answer)

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
        answer = b"{}"
        if scope["method"] == "POST":
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            jobs.put((loop, future, json.loads(body)["inputs"]))
            answer = await future
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    # as `serve` configures Uvicorn
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False,
                proxy_headers=False, server_header=False)


if __name__ == "__main__":
    main()
