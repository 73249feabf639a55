"""`albert-onnx serve` in a subprocess on a free loopback port, for the server's tests."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``albert-onnx serve`` in a subprocess of its own."""

    def __init__(self, artifact: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        # no access log by default: nobody reads the pipe while the server runs, and a full pipe blocks
        self.proc = subprocess.Popen([sys.executable, "-m", "albert_onnx.cli", "serve", str(artifact),
                                      "--port", str(self.port), "--no-access-log", *args],
                                     env={**os.environ, **(env or {})},
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


async def asgi_call(app: Any, method: str, path: str, body: Any = None) -> tuple[int, str, bytes]:
    """One request straight to an ASGI app (no server): status, content type and body."""
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": raw, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop() if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": method, "headers": [], "query_string": b""}, receive, send)
    headers = dict(sent[0]["headers"])
    return sent[0]["status"], headers[b"content-type"].decode(), sent[1]["body"]
