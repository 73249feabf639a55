"""What every task shares: the options, the encoder core, and the checks on input texts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import onnxruntime as ort

from ..engine import Encoder
from ..engine.encoder import check_positive_int as check_positive
from ..errors import InputError
from ..tokenizer import Tokenizer


class Predictor:
    """Base of the task heads: loads an artifact of the head's task on an :class:`Encoder`.

    Args:
        artifact_dir: folder written by ``albert-onnx export``.
        precision: ``"fp32"``, ``"int8"`` (export with ``--quantize int8``) or ``"fp16"``.
        provider: ``"cpu"``, ``"cuda"`` (error if unavailable) or ``"auto"`` (CUDA if
            available, else the CPU, logged and kept in ``fallback_note``).
        threads: ONNX Runtime intra-op threads, ``None`` for its default.
        max_batch_size: the most texts run together; lists are split by length into batches.
        verify: check the SHA-256 of the files this precision uses before loading.
        mask_fix: tokenize without the stray ``▁`` after ``[MASK]`` (recommended).
        io_binding: run through ONNX Runtime I/O binding, fetching only what the head needs
            (default: on for CUDA, off for the CPU, where it gains nothing).
        int8_weights: the form the int8 graph's weights take in the session: ``"auto"`` (the
            exact and fastest on this CPU: int8 with VNNI / AMX and on non-x86 CPUs, uint8 on
            x86 without VNNI), ``"int8"`` or ``"uint8"``; converted at load, exactly, whichever
            form the file stores. ``int8_kernel`` says which product path runs.
    """

    task: ClassVar[str]
    # whether a list call answers each entry as a call with that entry alone would: the server
    # then merges concurrent requests into one list call, and ``one_of_list`` nests each answer
    merges_lists: ClassVar[bool] = False

    def __init__(self, artifact_dir: str | Path, precision: str = "fp32", provider: str = "cpu",
                 threads: int | None = None, *, max_batch_size: int = 32, verify: bool = True,
                 mask_fix: bool = True, io_binding: bool | None = None, int8_weights: str = "auto") -> None:
        self.encoder = Encoder(artifact_dir, precision, provider, threads, max_batch_size=max_batch_size,
                               verify=verify, mask_fix=mask_fix, io_binding=io_binding, int8_weights=int8_weights,
                               task=self.task)

    # the encoder's state, read-only, under the names FillMask has always had
    tokenizer: Tokenizer = property(lambda self: self.encoder.tokenizer)  # type: ignore[assignment]
    session: ort.InferenceSession = property(lambda self: self.encoder.session)  # type: ignore[assignment]
    precision: str = property(lambda self: self.encoder.precision)  # type: ignore[assignment]
    provider: str = property(lambda self: self.encoder.provider)  # type: ignore[assignment]
    fallback_note: str | None = property(lambda self: self.encoder.fallback_note)  # type: ignore[assignment]
    int8_note: str | None = property(lambda self: self.encoder.int8_note)  # type: ignore[assignment]
    io_binding: bool = property(lambda self: self.encoder.io_binding)  # type: ignore[assignment]
    max_length: int = property(lambda self: self.encoder.max_length)  # type: ignore[assignment]
    max_batch_size: int = property(lambda self: self.encoder.max_batch_size)  # type: ignore[assignment]

    def one_of_list(self, inputs: Any, parameters: Mapping[str, Any], entry: Any) -> Any:
        """The answer to a call on the single input ``inputs``, from its ``entry`` of a list call."""
        return entry

    @property
    def int8_kernel(self) -> str | None:
        """The int8 product path that runs (``"uint8 x int8, AVX-512 VNNI"``, ``"uint8 x uint8,
        exact 16-bit, AVX2"``, ...); None for a float precision."""
        return self.encoder.int8.kernel if self.encoder.int8 is not None else None

    @property
    def providers(self) -> list[str]:
        """The execution providers attached to the session."""
        return self.encoder.providers

    @property
    def manifest(self) -> Any:
        return self.encoder.artifact.manifest

    def _encode_texts(self, texts: Sequence[str], check: Callable[[str, str, list[int]], None] | None = None,
                      truncation: bool | None = None, side: str = "right") -> list[list[int]]:
        """Id rows of ``texts`` (``[CLS]``/``[SEP]`` included), after the input checks: the
        task's own ``check(where, text, ids)`` first, then the model's length limit (with
        ``truncation``, texts are cut to it instead; None: the task cannot cut, and says so)."""
        if truncation is not None and not isinstance(truncation, bool):
            raise InputError(f"truncation must be True or False, not {truncation!r}")
        side = check_side(side)
        rows = []
        for where, text in named_texts(texts):
            ids = self.tokenizer.encode(text)
            if check is not None:
                check(where, text, ids)
            if truncation and len(ids) > self.truncation_length:
                ids = self.tokenizer.encode_truncated(text, None, self.truncation_length, side=side).ids
            self.encoder.check_length(where, len(ids), truncatable=truncation is not None)
            rows.append(ids)
        return rows

    @property
    def truncation_length(self) -> int:
        """Where ``truncation=True`` cuts: the tokenizer's ``model_max_length`` (as the
        pipelines cut), never beyond the model's positions."""
        return min(self.tokenizer.model_max_length or self.max_length, self.max_length)


def check_side(side: object) -> str:
    """A ``truncation_side``: where truncation cuts a text, ``"right"`` (its end) or ``"left"``."""
    if side not in ("right", "left"):
        raise InputError(f"unknown truncation_side {side!r}; valid: ['right', 'left']")
    return str(side)


def named_texts(texts: Sequence[str]) -> list[tuple[str, str]]:
    """``(name for errors, text)`` pairs, after checking that ``texts`` is a non-empty list of
    non-empty str."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise InputError(f"texts must be a str or a list of str, not {type(texts).__name__}")
    if not texts:
        raise InputError("no texts given")
    out = []
    for n, text in enumerate(texts):
        where = f"text {n}" if len(texts) > 1 else "text"
        if not isinstance(text, str):
            raise InputError(f"{where} must be a str, not {type(text).__name__}")
        if not text.strip():
            raise InputError(f"{where} is empty")
        out.append((where, text))
    return out


__all__ = ["Predictor", "as_list", "check_item", "check_positive", "named_texts"]


def check_item(where: str, item: object, keys: tuple[str, ...]) -> None:
    """A structured input (question answering, multiple choice) must be a dict with exactly ``keys``."""
    if not isinstance(item, Mapping) or set(item) != set(keys):
        got = sorted(map(str, item)) if isinstance(item, Mapping) else type(item).__name__
        raise InputError(f"{where} must be a dict with the keys {' and '.join(map(repr, keys))}; got {got}")


def as_list(inputs: str | Sequence[str]) -> Sequence[str]:
    return [inputs] if isinstance(inputs, str) else inputs
