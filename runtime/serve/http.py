"""The server's HTTP plumbing: errors and their two shapes (TEI's and OpenAI's), reading a JSON
body safely, and sending an answer. No route logic lives here."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

# what OpenAI's API calls each status's error type
_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                 405: "invalid_request_error", 408: "invalid_request_error", 413: "invalid_request_error",
                 422: "invalid_request_error", 429: "rate_limit_error", 503: "server_error"}


class HTTPError(Exception):
    """An answer other than 200: status, message, TEI's ``error_type``, extra headers, and (for
    OpenAI's shape) the request field at fault and a machine-readable code."""

    def __init__(self, status: int, message: str, kind: str = "validation", headers: dict[str, str] | None = None,
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}
        self.param, self.code = param, code

    def tei(self) -> dict[str, Any]:
        """``{"error": message, "error_type": kind}``, as TEI answers errors."""
        return {"error": self.message, "error_type": self.kind}

    def openai(self) -> dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}``, as OpenAI answers errors."""
        return {"error": {"message": self.message,
                          "type": _OPENAI_TYPES.get(self.status, "server_error" if self.status >= 500
                                                    else "invalid_request_error"),
                          "param": self.param, "code": self.code}}


@dataclass
class Text:
    """A non-JSON answer (Prometheus text, an HTML page)."""
    body: str
    media_type: str = "text/plain; charset=utf-8"


GONE = object()  # what read_json gives when the client went away before its body arrived


class Draining(Exception):
    """The server began to shut down while the request's body was still arriving."""


async def read_json(scope: Scope, receive: Receive, limit: int, draining: asyncio.Event) -> Any:
    """The request's JSON value, read up to ``limit`` bytes (413 beyond, 400 when it is not
    JSON, nests too deep or holds a number no float can hold); ``GONE`` when the client left first.
    A shutdown that begins while the body arrives ends the wait (:class:`Draining`)."""
    declared = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), None)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"the body is {declared.decode()} bytes; this server takes at most {limit} "
                             "(--max-body-bytes)", "payload")
    data = bytearray()
    stop = asyncio.ensure_future(draining.wait())
    try:
        while True:
            message_task = asyncio.ensure_future(receive())
            done, _ = await asyncio.wait({message_task, stop}, return_when=asyncio.FIRST_COMPLETED)
            if message_task not in done:
                message_task.cancel()
                raise Draining()
            message = message_task.result()
            if message["type"] == "http.disconnect":
                return GONE
            data += message.get("body", b"")
            if len(data) > limit:
                raise HTTPError(413, f"the body is over {limit} bytes, the most this server takes "
                                     "(--max-body-bytes)", "payload")
            if not message.get("more_body", False):
                break
    finally:
        stop.cancel()
    return parse_json(bytes(data))


def parse_json(data: bytes) -> Any:
    """JSON from bytes; every way it can fail is a 400 that says what was wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPError(400, f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise HTTPError(400, "the body is not valid JSON: it nests too deep") from None
    except ValueError as exc:
        raise HTTPError(400, f"the body is not valid JSON ({exc})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is beyond what a double holds")
    return value


async def respond(send: Send, status: int, payload: Any, headers: dict[str, str], head: bool = False) -> int:
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


def options(body: Any, defaults: dict[str, Any], required: str) -> dict[str, Any]:
    """The body's fields over ``defaults``; 422 for a body that is not an object, an unknown
    field (naming the valid ones) or a missing required one."""
    if not isinstance(body, dict):
        raise HTTPError(422, f"the body must be a JSON object, not {type(body).__name__}")
    unknown = sorted(set(body) - set(defaults))
    if unknown:
        raise HTTPError(422, f"unknown field {unknown[0]!r}; valid: {sorted(defaults)}", param=unknown[0])
    if required not in body:
        raise HTTPError(422, f"the body needs {required!r}", param=required)
    return {**defaults, **body}


def need_bool(fields: dict[str, Any], *names: str) -> None:
    for name in names:
        if not isinstance(fields[name], bool):
            raise HTTPError(422, f"{name} must be true or false, not {fields[name]!r}", param=name)


def truncation_side(value: Any) -> str:
    """TEI's ``truncation_direction`` (``Right``/``Left``, any case) as the runtime's side."""
    if value is None:
        return "right"
    if not isinstance(value, str) or value.lower() not in ("right", "left"):
        raise HTTPError(422, f"unknown truncation_direction {value!r}; valid: ['Right', 'Left']",
                        param="truncation_direction")
    return value.lower()


def no_prompt(value: Any) -> None:
    """TEI's ``prompt_name``: this model has no prompts, so only null is valid."""
    if value is not None:
        raise HTTPError(422, f"prompt_name {value!r} is unknown: this model has no prompts (send null)",
                        param="prompt_name")
