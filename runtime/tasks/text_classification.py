"""Text classification: a sequence-classification head on the encoder core, called exactly
like transformers' ``pipeline("text-classification")``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from ..engine.io import TEXT_CLASSIFICATION
from ..errors import InputError
from .base import Predictor, check_side

FUNCTIONS = ("softmax", "sigmoid", "none")
_UNSET: Any = object()  # top_k not given: the pipeline's legacy nesting


class LabelScore(TypedDict):
    label: str
    score: float


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class TextClassifier(Predictor):
    """Text (and text-pair) classification from a ``text-classification`` artifact.

    Takes the options of :class:`~albert_onnx.tasks.base.Predictor`.
    """

    task = TEXT_CLASSIFICATION
    merges_lists = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        info = self.manifest["task"]
        self.labels: list[str] = list(info["id2label"])
        self.problem_type: str | None = info.get("problem_type")

    def default_function(self) -> str:
        """The function applied to the logits when none is asked for (as the pipeline picks it)."""
        if self.problem_type == "regression":
            return "none"
        if self.problem_type == "multi_label_classification" or len(self.labels) == 1:
            return "sigmoid"
        return "softmax"

    def __call__(self, inputs: str | Mapping[str, str] | Sequence[str | Mapping[str, str]],
                 top_k: int | None = _UNSET, function_to_apply: str | None = None, truncation: bool = False,
                 truncation_side: str = "right") -> Any:
        """Classify texts, with the nesting of the transformers pipeline.

        Args:
            inputs: a str, a ``{"text": ..., "text_pair": ...}`` dict, or a list of either.
            top_k: how many labels, best first; ``None`` for all. Not given: the best label
                only, as a dict per text (a str input gives a list holding that dict).
            function_to_apply: ``"softmax"``, ``"sigmoid"`` or ``"none"``; ``None`` picks it
                from the model's problem type and number of labels.
            truncation: cut inputs longer than the model takes, as the pipeline's
                ``truncation=True`` (a pair loses tokens from its longer text first).
            truncation_side: ``"right"`` cuts the ends of texts, ``"left"`` their starts.
        """
        legacy = top_k is _UNSET
        k = self._check_top_k(1 if legacy else top_k)
        function = self._check_function(function_to_apply)
        single = isinstance(inputs, (str, Mapping))
        batch: Sequence[str | Mapping[str, str]] = [inputs] if single else inputs  # type: ignore[list-item,assignment]
        scores = self.scores(batch, function, truncation=truncation, truncation_side=truncation_side)
        results: list[Any] = []
        for row in scores:
            if legacy:
                best = int(row.argmax())
                results.append({"label": self.labels[best], "score": float(row[best])})
            else:
                ranked = sorted(range(len(row)), key=lambda i: -row[i])  # stable: ties keep label order
                results.append([{"label": self.labels[i], "score": float(row[i])}
                                for i in ranked[: len(row) if k is None else k]])
        if not single:
            return results
        return self.one_of_list(inputs, {} if legacy else {"top_k": top_k}, results[0])

    def one_of_list(self, inputs: Any, parameters: Mapping[str, Any], entry: Any) -> Any:
        # as the pipeline: a lone str without top_k gets its best label inside a list
        return [entry] if isinstance(inputs, str) and "top_k" not in parameters else entry

    def scores(self, inputs: Sequence[str | Mapping[str, str]],
               function_to_apply: str | None = None, truncation: bool = False,
               truncation_side: str = "right") -> list[np.ndarray]:
        """Per input, the ``[num_labels]`` float32 scores after ``function_to_apply``."""
        function = self._check_function(function_to_apply)
        logits = self.logits(inputs, truncation=truncation, truncation_side=truncation_side)
        if function == "softmax":
            return [softmax(x) for x in logits]
        if function == "sigmoid":
            return [sigmoid(x) for x in logits]
        return logits

    def logits(self, inputs: Sequence[str | Mapping[str, str]], truncation: bool = False,
               truncation_side: str = "right") -> list[np.ndarray]:
        """Per input, the ``[num_labels]`` float32 logits."""
        rows, types = self._encode(inputs, truncation, truncation_side)
        return [out[0] for out in self.encoder.run(rows, ["logits"], type_ids=types)]

    # ------------------------------------------------------------------ internals
    def _check_top_k(self, top_k: int | None) -> int | None:
        if top_k is None:
            return None
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise InputError(f"top_k must be None (every label) or a positive integer, not {top_k!r}")
        return int(top_k)

    def _check_function(self, function: str | None) -> str:
        if function is None:
            return self.default_function()
        if not isinstance(function, str) or function.lower() not in FUNCTIONS:
            raise InputError(f"unknown function_to_apply {function!r}; valid: {[None, *FUNCTIONS]}")
        return function.lower()

    def _encode(self, inputs: Sequence[str | Mapping[str, str]],
                truncation: bool = False, side: str = "right") -> tuple[list[list[int]], list[list[int]]]:
        if isinstance(inputs, (str, bytes, Mapping)) or not isinstance(inputs, Sequence):
            raise InputError("inputs must be a str, a {'text': ..., 'text_pair': ...} dict or a list "
                             f"of them, not {type(inputs).__name__}")
        if not inputs:
            raise InputError("no texts given")
        if not isinstance(truncation, bool):
            raise InputError(f"truncation must be True or False, not {truncation!r}")
        side = check_side(side)
        rows, types = [], []
        for n, item in enumerate(inputs):
            where = f"input {n}" if len(inputs) > 1 else "input"
            text, pair = self._parts(where, item)
            if pair is None:  # the plain encoder: no offsets needed, type ids all 0
                ids, type_ids = self.tokenizer.encode(text), None
            else:
                enc = self.tokenizer.encode_with_offsets(text, pair)
                ids, type_ids = enc.ids, enc.type_ids
            if truncation and len(ids) > self.truncation_length:
                enc = self.tokenizer.encode_truncated(text, pair, self.truncation_length, side=side)
                ids, type_ids = enc.ids, (None if pair is None else enc.type_ids)
            self.encoder.check_length(where, len(ids), truncatable=True)
            rows.append(ids)
            types.append([0] * len(ids) if type_ids is None else type_ids)
        return rows, types

    @staticmethod
    def _parts(where: str, item: object) -> tuple[str, str | None]:
        if isinstance(item, Mapping):
            unknown = set(item) - {"text", "text_pair"}
            if unknown or "text" not in item:
                raise InputError(f"{where}: a pair is a dict with the keys 'text' and optionally "
                                 f"'text_pair'; got keys {sorted(map(str, item))}")
            text, pair = item["text"], item.get("text_pair")
        elif isinstance(item, str):
            text, pair = item, None
        else:
            raise InputError(f"{where} must be a str or a {{'text': ..., 'text_pair': ...}} dict, "
                             f"not {type(item).__name__}")
        for name, value in (("text", text), ("text_pair", pair)):
            if value is None and name == "text_pair":
                continue
            if not isinstance(value, str):
                raise InputError(f"{where}: {name} must be a str, not {type(value).__name__}")
            if not value.strip():
                raise InputError(f"{where}: {name} is empty")
        return text, pair
