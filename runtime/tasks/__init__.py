"""The task heads, and ``pipeline()`` that picks the one an artifact holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..artifact import load_artifact
from ..errors import InputError
from .base import Predictor
from .feature_extraction import FeatureExtractor
from .fill_mask import Candidate, FillMask
from .multiple_choice import MultipleChoice
from .question_answering import QuestionAnswerer
from .text_classification import TextClassifier
from .token_classification import TokenClassifier
from .zero_shot import ZeroShotClassifier

PREDICTORS: dict[str, type[Predictor]] = {c.task: c for c in (FillMask, TextClassifier, TokenClassifier,
                                                              FeatureExtractor, QuestionAnswerer, MultipleChoice)}
ZERO_SHOT = "zero-shot-classification"
# tasks served on an artifact of another task: the zero-shot head reads an NLI classifier
DERIVED: dict[str, tuple[str, type[Predictor]]] = {ZERO_SHOT: ("text-classification", ZeroShotClassifier)}


def timed_call(predictor: Any) -> Any:
    """The call a benchmark times for a predictor: fill-mask top-5 ids, token classification
    with simple aggregation, else the plain call; it takes a list of texts."""
    if isinstance(predictor, FillMask):
        return lambda texts: predictor.predict_ids(texts, top_k=5)
    if isinstance(predictor, TokenClassifier):
        return lambda texts: predictor(texts, aggregation_strategy="simple")
    return lambda texts: predictor(texts)


def pipeline(artifact_dir: str | Path, task: str | None = None, **options: Any) -> Predictor:
    """The predictor for the task an artifact holds (``FillMask``, ``TextClassifier``,
    ``TokenClassifier``, ``FeatureExtractor``, ``QuestionAnswerer`` or ``MultipleChoice``), or
    for ``task="zero-shot-classification"`` on an NLI text-classification artifact, built with
    ``options`` (precision, provider, threads, max_batch_size, verify, mask_fix, io_binding,
    int8_weights)."""
    held = load_artifact(artifact_dir, verify=False).task["name"]
    if task is None or task == held:
        return PREDICTORS[held](artifact_dir, **options)
    if task in DERIVED and DERIVED[task][0] == held:
        return DERIVED[task][1](artifact_dir, **options)
    valid = [held] + [name for name, (base, _) in DERIVED.items() if base == held]
    raise InputError(f"{artifact_dir}: this artifact holds a {held!r} model; task {task!r} cannot run on it "
                     f"(valid here: {valid})")


__all__ = ["Candidate", "FeatureExtractor", "FillMask", "MultipleChoice", "PREDICTORS", "Predictor",
           "QuestionAnswerer", "TextClassifier", "TokenClassifier", "ZeroShotClassifier", "pipeline", "timed_call"]
