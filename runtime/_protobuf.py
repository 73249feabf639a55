"""A minimal protobuf wire-format reader, shared by the spiece.model and ONNX file scans."""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any, Union

from .errors import ArtifactError

Buffer = Union[bytes, mmap.mmap]  # what a reader reads: file bytes, or a file mapped read-only


class ProtoReader:
    """Protobuf wire-format fields of ``buf[start:end]``; errors name ``source`` as a ``kind``."""

    __slots__ = ("buf", "pos", "end", "source", "kind")

    def __init__(self, buf: Buffer, source: str, start: int = 0, end: int | None = None,
                 kind: str = "protobuf message") -> None:
        self.buf = buf
        self.pos = start
        self.end = len(buf) if end is None else end
        self.source = source
        self.kind = kind

    def fail(self, what: str) -> ArtifactError:
        return ArtifactError(f"{self.source}: not a valid {self.kind} ({what} at byte {self.pos})")

    def varint(self) -> int:
        result = shift = 0
        buf = self.buf
        while True:
            if self.pos >= self.end:
                raise self.fail("truncated varint")
            b = buf[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise self.fail("varint longer than 10 bytes")

    def fields(self) -> Iterator[tuple[int, int, Any]]:
        """Yield (field_number, wire_type, value): an int (varint), bytes (fixed width) or
        the (start, end) span of a length-delimited field."""
        for num, wt, value, _ in self.fields_at():
            yield num, wt, value

    def fields_at(self) -> Iterator[tuple[int, int, Any, int]]:
        """As :meth:`fields`, with the offset where each field's key starts (the field ends
        where the next one starts, or at ``end``): what a rewriter copies unchanged."""
        while self.pos < self.end:
            at = self.pos
            key = self.varint()
            num, wt = key >> 3, key & 7
            if num == 0:
                raise self.fail("field number 0")
            if wt == 0:
                yield num, wt, self.varint(), at
            elif wt == 1:
                yield num, wt, self._fixed(8), at
            elif wt == 5:
                yield num, wt, self._fixed(4), at
            elif wt == 2:
                n = self.varint()
                start = self.pos
                if start + n > self.end:
                    raise self.fail("length-delimited field runs past its end")
                self.pos = start + n
                yield num, wt, (start, start + n), at
            else:
                raise self.fail(f"unsupported wire type {wt}")

    def _fixed(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise self.fail("truncated fixed-width field")
        value = self.buf[self.pos : self.pos + n]
        self.pos += n
        return value


def varint_bytes(value: int) -> bytes:
    """``value`` (>= 0) as a protobuf varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
