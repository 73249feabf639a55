"""The task heads, and ``pipeline()`` that picks the one an artifact holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..artifact import load_artifact
from .base import Predictor
from .feature_extraction import FeatureExtractor
from .fill_mask import Candidate, FillMask
from .text_classification import TextClassifier
from .token_classification import TokenClassifier

PREDICTORS: dict[str, type[Predictor]] = {c.task: c for c in (FillMask, TextClassifier, TokenClassifier,
                                                              FeatureExtractor)}


def timed_call(predictor: Any) -> Any:
    """The call a benchmark times for a predictor: fill-mask top-5 ids, token classification
    with simple aggregation, else the plain call; it takes a list of texts."""
    if isinstance(predictor, FillMask):
        return lambda texts: predictor.predict_ids(texts, top_k=5)
    if isinstance(predictor, TokenClassifier):
        return lambda texts: predictor(texts, aggregation_strategy="simple")
    return lambda texts: predictor(texts)


def pipeline(artifact_dir: str | Path, **options: Any) -> Predictor:
    """The predictor for the task an artifact holds (``FillMask``, ``TextClassifier``,
    ``TokenClassifier`` or ``FeatureExtractor``), built with ``options`` (precision,
    provider, threads, max_batch_size, verify, mask_fix, io_binding, int8_weights)."""
    task = load_artifact(artifact_dir, verify=False).task["name"]
    return PREDICTORS[task](artifact_dir, **options)


__all__ = ["Candidate", "FeatureExtractor", "FillMask", "PREDICTORS", "Predictor", "TextClassifier",
           "TokenClassifier", "pipeline", "timed_call"]
