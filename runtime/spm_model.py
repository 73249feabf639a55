"""Reader for SentencePiece ``.model`` files (protobuf wire format, no protobuf library)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArtifactError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True)
class Piece:
    piece: str
    score: float
    type: int = NORMAL


@dataclass
class SpmModel:
    """The fields of a SentencePiece model that tokenization needs."""

    pieces: list[Piece]
    model_type: int = 1  # 1 = UNIGRAM
    byte_fallback: bool = False
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True
    precompiled_charsmap: bytes = field(default=b"", repr=False)


class _Reader:
    """Protobuf wire-format fields of ``buf[start:end]``; errors name ``source`` as a ``kind``."""

    __slots__ = ("buf", "pos", "end", "source", "kind")

    def __init__(self, buf: bytes, source: str, start: int = 0, end: int | None = None,
                 kind: str = "SentencePiece model") -> None:
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
        while self.pos < self.end:
            key = self.varint()
            num, wt = key >> 3, key & 7
            if num == 0:
                raise self.fail("field number 0")
            if wt == 0:
                yield num, wt, self.varint()
            elif wt == 1:
                yield num, wt, self._fixed(8)
            elif wt == 5:
                yield num, wt, self._fixed(4)
            elif wt == 2:
                n = self.varint()
                start = self.pos
                if start + n > self.end:
                    raise self.fail("length-delimited field runs past its end")
                self.pos = start + n
                yield num, wt, (start, start + n)
            else:
                raise self.fail(f"unsupported wire type {wt}")

    def _fixed(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise self.fail("truncated fixed-width field")
        value = self.buf[self.pos : self.pos + n]
        self.pos += n
        return value


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _text(r: _Reader, span: tuple[int, int]) -> str:
    try:
        return r.buf[span[0] : span[1]].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise r.fail(f"invalid UTF-8 in a string field ({exc.reason})") from None


def parse_spm_model(data: bytes, source: str = "<bytes>") -> SpmModel:
    """Parse the bytes of a SentencePiece ``ModelProto``."""
    r = _Reader(data, source)
    model = SpmModel(pieces=[])
    for num, wt, val in r.fields():
        if wt != 2:
            continue
        sub = _Reader(data, source, *val)
        if num == 1:
            model.pieces.append(_parse_piece(sub))
        elif num == 2:
            _parse_trainer(sub, model)
        elif num == 3:
            _parse_normalizer(sub, model)
    if not model.pieces:
        raise ArtifactError(f"{source}: not a valid SentencePiece model (no pieces)")
    n = len(model.pieces)
    if not 0 <= model.unk_id < n:
        raise ArtifactError(f"{source}: unk_id {model.unk_id} outside the vocabulary of {n}")
    return model


def _parse_piece(r: _Reader) -> Piece:
    piece, score, ptype = None, 0.0, NORMAL
    for num, wt, val in r.fields():
        if num == 1 and wt == 2:
            piece = _text(r, val)
        elif num == 2 and wt == 5:
            score = struct.unpack("<f", val)[0]
        elif num == 3 and wt == 0:
            ptype = val
    if piece is None:
        raise r.fail("piece without text")
    return Piece(piece, score, ptype)


def _parse_trainer(r: _Reader, model: SpmModel) -> None:
    for num, wt, val in r.fields():
        if wt != 0:
            continue
        if num == 3:
            model.model_type = val
        elif num == 35:
            model.byte_fallback = bool(val)
        elif num == 40:
            model.unk_id = _signed(val)
        elif num == 41:
            model.bos_id = _signed(val)
        elif num == 42:
            model.eos_id = _signed(val)
        elif num == 43:
            model.pad_id = _signed(val)


def _parse_normalizer(r: _Reader, model: SpmModel) -> None:
    for num, wt, val in r.fields():
        if num == 2 and wt == 2:
            model.precompiled_charsmap = r.buf[val[0] : val[1]]
        elif num == 3 and wt == 0:
            model.add_dummy_prefix = bool(val)
        elif num == 4 and wt == 0:
            model.remove_extra_whitespaces = bool(val)
        elif num == 5 and wt == 0:
            model.escape_whitespaces = bool(val)


def load_spm_model(path: str | Path) -> SpmModel:
    """Read and parse a ``spiece.model`` file, with errors that name the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: SentencePiece model file not found") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read SentencePiece model ({exc.strerror})") from None
    return parse_spm_model(data, str(path))
