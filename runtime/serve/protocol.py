"""Uvicorn's httptools protocol with the limits it lacks: the size of a request's line and
headers (431 beyond, counted as the bytes arrive, so a never-ending header costs no memory past
the limit) and the time a client may take to send a request, headers and body (408 and a closed
connection beyond; a connection that sends nothing is closed after the same time)."""

from __future__ import annotations

import asyncio
import json
from typing import Any


def guarded_protocol(max_header_bytes: int, read_timeout_s: float) -> type:
    """The protocol class for ``uvicorn.Config(http=...)``."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpTools(HttpToolsProtocol):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_bytes = 0
            self._in_head = True  # the bytes arriving belong to a request line or headers
            self._timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._timer is None:  # the first bytes of a request: its clock starts
                self._arm()
            if self._in_head:  # the bytes up to the blank line that ends the headers (a body may follow)
                end = data.find(b"\r\n\r\n")
                self._head_bytes += len(data) if end < 0 else end + 4
                if self._head_bytes > max_header_bytes:
                    self._refuse(431, f"the request line and headers are over {max_header_bytes} bytes "
                                      "(--max-header-bytes)")
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            self._in_head, self._head_bytes = True, 0
            super().on_message_complete()

        def _arm(self) -> None:
            self._disarm()
            self._timer = self.loop.call_later(read_timeout_s, self._timed_out)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _timed_out(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            idle = self._in_head and self._head_bytes == 0 and (self.cycle is None or self.cycle.response_complete)
            if idle:
                self.transport.close()
            else:
                self._refuse(408, f"the request took over {read_timeout_s:g}s to arrive (--read-timeout)")

        def _refuse(self, status: int, message: str) -> None:
            """Answer ``status`` unless the app already answers, then close the connection."""
            self._disarm()
            if self.cycle is None or not self.cycle.response_started:
                body = json.dumps({"error": message, "error_type": "payload"}).encode()
                reason = {408: "Request Timeout", 431: "Request Header Fields Too Large"}[status]
                self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\nconnection: close\r\n"
                                     b"content-length: %d\r\n\r\n%s" % (status, reason.encode(), len(body), body))
                if self.cycle is not None:
                    self.cycle.response_started = self.cycle.response_complete = True
            self.transport.close()

    return GuardedHttpTools
