"""Task results as JSON-ready values: what ``albert-onnx predict --json`` prints per text, and
what a bulk job stores per row. One place, so the two cannot differ."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .base import Predictor
from .feature_extraction import FeatureExtractor
from .fill_mask import FillMask
from .text_classification import TextClassifier
from .token_classification import TokenClassifier

SCORE = "score"  # masked-LM scoring, run on a fill-mask artifact


@dataclass(frozen=True)
class TaskOptions:
    """The per-task options of ``predict``/``batch`` (each task reads its own)."""

    score: bool = False  # fill-mask artifacts: pseudo-log-likelihood instead of filling masks
    per_token: bool = False  # scoring: every token's log-probability
    top_k: int | None = None  # fill-mask: 5; text classification: 1
    all_labels: bool = False  # text classification: every label
    function_to_apply: str | None = None
    aggregation_strategy: str = "none"
    pooling: str = "cls"
    normalize: bool = False

    def check(self, predictor: Predictor) -> None:
        if self.score and not isinstance(predictor, FillMask):
            raise InputError(f"scoring needs a fill-mask artifact; this one holds {predictor.task!r}")


def json_results(predictor: Predictor, texts: Sequence[str], options: TaskOptions,
                 text_pairs: Sequence[str] | None = None) -> list[Any]:
    """Per text, its result as plain JSON values (lists, dicts, str, int, float)."""
    options.check(predictor)
    if isinstance(predictor, FillMask):
        if options.score:
            rows = predictor.score(texts, per_token=True)
            if options.per_token:
                return [[{"token": t, "logprob": lp} for t, lp in row] for row in rows]
            totals = [sum(lp for _, lp in row) for row in rows]
            return [{"pll": total, "pseudo_perplexity": math.exp(-total / len(row)), "tokens": len(row)}
                    for total, row in zip(totals, rows)]
        results = predictor.fill(texts, top_k=5 if options.top_k is None else options.top_k)
        return [[[{"token": c["token"], "token_str": c["token_str"], "score": c["score"]} for c in mask]
                 for mask in text] for text in results]
    if isinstance(predictor, TextClassifier):
        inputs: list[Any] = list(texts)
        if text_pairs is not None:
            if len(text_pairs) != len(texts):
                raise InputError(f"{len(text_pairs)} pair texts for {len(texts)} texts; give one per text")
            inputs = [{"text": t, "text_pair": p} for t, p in zip(texts, text_pairs)]
        top_k = None if options.all_labels else (1 if options.top_k is None else options.top_k)
        return list(predictor(inputs, top_k=top_k, function_to_apply=options.function_to_apply))
    if isinstance(predictor, TokenClassifier):
        return list(predictor(list(texts), aggregation_strategy=options.aggregation_strategy))
    assert isinstance(predictor, FeatureExtractor)
    vectors = predictor(list(texts), pooling=options.pooling, normalize=options.normalize)
    return [v.tolist() for v in vectors]
