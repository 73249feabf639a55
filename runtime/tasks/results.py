"""Task results as JSON-ready values: what ``albert-onnx predict --json`` prints per text, and
what a bulk job stores per row. One place, so the two cannot differ."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .base import Predictor
from .feature_extraction import FeatureExtractor
from .fill_mask import FillMask
from .multiple_choice import MultipleChoice
from .question_answering import QuestionAnswerer
from .text_classification import TextClassifier
from .token_classification import TokenClassifier
from .zero_shot import DEFAULT_TEMPLATE, ZeroShotClassifier

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
    truncation: bool = False  # text classification, feature extraction: cut long inputs
    stride: int | None = None  # token classification: overlapping windows over long texts
    labels: tuple[str, ...] | None = None  # zero-shot classification on an NLI artifact
    hypothesis_template: str = DEFAULT_TEMPLATE
    multi_label: bool = False
    doc_stride: int | None = None  # question answering
    max_answer_len: int = 15
    max_seq_len: int | None = None
    handle_impossible_answer: bool = False
    align_to_words: bool = True

    def check(self, predictor: Predictor) -> None:
        if self.score and not isinstance(predictor, FillMask):
            raise InputError(f"scoring needs a fill-mask artifact; this one holds {predictor.task!r}")
        if self.labels is not None and not isinstance(predictor, ZeroShotClassifier):
            raise InputError(f"labels are for zero-shot classification on an NLI text-classification artifact; "
                             f"this one holds {predictor.task!r}")

    @property
    def derived_task(self) -> str | None:
        """The task to run on the artifact when it is not the artifact's own."""
        return "zero-shot-classification" if self.labels is not None else None

    def qa(self) -> dict[str, Any]:
        return {"top_k": 1 if self.top_k is None else self.top_k, "doc_stride": self.doc_stride,
                "max_answer_len": self.max_answer_len, "max_seq_len": self.max_seq_len,
                "handle_impossible_answer": self.handle_impossible_answer, "align_to_words": self.align_to_words}


def json_results(predictor: Predictor, texts: Sequence[Any], options: TaskOptions,
                 text_pairs: Sequence[str] | None = None) -> list[Any]:
    """Per input, its result as plain JSON values (lists, dicts, str, int, float). Inputs are
    texts, except for question answering (``{"question", "context"}`` dicts) and multiple
    choice (``{"question", "choices"}`` dicts)."""
    options.check(predictor)
    if isinstance(predictor, QuestionAnswerer):
        return [predictor(_item(x, ("question", "context")), **options.qa()) for x in texts]
    if isinstance(predictor, MultipleChoice):
        return [list(predictor(_item(x, ("question", "choices")))) for x in texts]
    if isinstance(predictor, ZeroShotClassifier):
        if options.labels is None:
            raise InputError("zero-shot classification needs candidate labels (--labels)")
        return [dict(r) for r in predictor(list(texts), list(options.labels), options.hypothesis_template,
                                           options.multi_label)]
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
        return list(predictor(inputs, top_k=top_k, function_to_apply=options.function_to_apply,
                              truncation=options.truncation))
    if isinstance(predictor, TokenClassifier):
        return list(predictor(list(texts), aggregation_strategy=options.aggregation_strategy, stride=options.stride))
    assert isinstance(predictor, FeatureExtractor)
    vectors = predictor(list(texts), pooling=options.pooling, normalize=options.normalize,
                        truncation=options.truncation)
    return [v.tolist() for v in vectors]


def _item(value: Any, keys: tuple[str, str]) -> Any:
    """A structured input: a dict, or its JSON text (how bulk jobs carry it in a text column)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InputError(f"expected a JSON object with the keys {list(keys)}, got {value[:40]!r}") from None
    return value
