"""Reader for SentencePiece ``.model`` files (protobuf wire format, no protobuf library)."""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from .._protobuf import ProtoReader
from ..errors import ArtifactError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True)
class Piece:
    piece: str
    score: float
    type: int = NORMAL


@dataclass
class SpmModel:
    """The fields of a SentencePiece model that tokenization needs. The vocabulary is held as
    three flat columns (piece strings, float32 scores, type bytes): no object per piece, so a
    32,000-piece vocabulary costs its strings and little more."""

    pieces: list[str]
    scores: array = field(default_factory=lambda: array("f"), repr=False)  # type: ignore[type-arg]
    types: bytearray = field(default_factory=bytearray, repr=False)
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

    def piece(self, i: int) -> Piece:
        """Piece ``i`` with its score and type."""
        return Piece(self.pieces[i], float(self.scores[i]), self.types[i])


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _text(r: ProtoReader, span: tuple[int, int]) -> str:
    try:
        return r.buf[span[0] : span[1]].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise r.fail(f"invalid UTF-8 in a string field ({exc.reason})") from None


def parse_spm_model(data: bytes, source: str = "<bytes>") -> SpmModel:
    """Parse the bytes of a SentencePiece ``ModelProto``."""
    r = ProtoReader(data, source, kind="SentencePiece model")
    model = SpmModel(pieces=[])
    for num, wt, val in r.fields():
        if wt != 2:
            continue
        sub = ProtoReader(data, source, val[0], val[1], kind="SentencePiece model")
        if num == 1:
            _parse_piece(sub, model)
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


def _parse_piece(r: ProtoReader, model: SpmModel) -> None:
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
    if not 0 <= ptype < 256:
        raise r.fail(f"piece type {ptype} out of range")
    model.pieces.append(piece)
    model.scores.append(score)
    model.types.append(ptype)


def _parse_trainer(r: ProtoReader, model: SpmModel) -> None:
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


def _parse_normalizer(r: ProtoReader, model: SpmModel) -> None:
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
