"""Feature extraction: the encoder's last hidden state, pooled or per token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine.io import FEATURE_EXTRACTION
from ..errors import InputError
from .base import Predictor, as_list

POOLINGS = ("cls", "mean", "none")


class FeatureExtractor(Predictor):
    """Sentence and token embeddings from a ``feature-extraction`` artifact (any ALBERT
    checkpoint exported with ``--task feature-extraction``).

    Takes the options of :class:`~albert_onnx.tasks.base.Predictor`.
    """

    task = FEATURE_EXTRACTION
    merges_lists = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hidden_size = int(self.manifest["model"]["hidden_size"])

    def __call__(self, inputs: str | Sequence[str], pooling: str = "cls",
                 normalize: bool = False, truncation: bool = False, truncation_side: str = "right") -> Any:
        """Embed texts.

        Args:
            inputs: a str or a list of str.
            pooling: ``"cls"``, the last hidden state at ``[CLS]`` (not ALBERT's pooler);
                ``"mean"``, the mean over every token of the text, ``[CLS]`` and ``[SEP]``
                included; ``"none"``, one ``[tokens, hidden]`` array per text, as
                ``pipeline("feature-extraction")`` gives it (without its batch axis).
            normalize: scale each vector to unit length (for cosine similarity by dot product).
            truncation: cut texts longer than the model takes to its limit (as the pipeline's
                ``truncation=True``) instead of refusing them.
            truncation_side: ``"right"`` cuts the ends of texts, ``"left"`` their starts.

        Returns:
            ``cls``/``mean``: a float32 array ``[texts, hidden]`` (``[hidden]`` for a str);
            ``none``: a list of float32 arrays (one array for a str).
        """
        result, _ = self.embed_with_lengths(inputs, pooling, normalize, truncation, truncation_side)
        return result

    def embed_with_lengths(self, inputs: str | Sequence[str], pooling: str = "cls", normalize: bool = False,
                           truncation: bool = False, truncation_side: str = "right") -> tuple[Any, list[int]]:
        """What the call gives, and the tokens of each text that ran (``[CLS]`` and ``[SEP]`` included)."""
        if pooling not in POOLINGS:
            raise InputError(f"unknown pooling {pooling!r}; valid: {list(POOLINGS)}")
        if not isinstance(normalize, bool):
            raise InputError(f"normalize must be True or False, not {normalize!r}")
        rows = self._encode_texts(as_list(inputs), truncation=truncation, side=truncation_side)
        return self._pool(inputs, rows, pooling, normalize), [len(r) for r in rows]

    def _pool(self, inputs: str | Sequence[str], rows: list[list[int]], pooling: str, normalize: bool) -> Any:
        states = [out[0] for out in self.encoder.run(rows, ["last_hidden_state"])]
        if pooling == "none":
            tokens = [np.array(s, dtype=np.float32) for s in states]
            if normalize:
                tokens = [t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), 1e-12) for t in tokens]
            return tokens[0] if isinstance(inputs, str) else tokens
        if pooling == "cls":
            pooled = np.stack([s[0] for s in states]).astype(np.float32)
        else:
            pooled = np.stack([s.mean(axis=0, dtype=np.float64) for s in states]).astype(np.float32)
        if normalize:
            pooled /= np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
        return pooled[0] if isinstance(inputs, str) else pooled
