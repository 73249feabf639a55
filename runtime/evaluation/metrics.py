"""The metrics JGLUE reports, in points (the metric x 100), computed with NumPy only.

- JSQuAD: exact match and character-level F1 as JGLUE's patch of the SQuAD v1.1 metric computes
  them: both strings normalized (lower-cased, ASCII punctuation removed, a trailing ``。``
  stripped, runs of whitespace collapsed to one space), F1 over the characters of the normalized
  strings, the best over the gold answers.
- JCommonsenseQA, JNLI, MARC-ja: accuracy.
- JSTS: Pearson and Spearman correlation (Spearman: Pearson of the ranks, ties ranked by their
  mean, as ``scipy.stats.spearmanr``).
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Sequence

import numpy as np

_ASCII_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """JSQuAD's normalization of an answer (see the module's docstring)."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCTUATION)
    text = " ".join(text.split())
    return text[:-1] if text.endswith("。") else text


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalized strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def char_f1(prediction: str, gold: str) -> float:
    """F1 over the characters of the normalized strings (counted as multisets)."""
    pred, ref = list(normalize_answer(prediction)), list(normalize_answer(gold))
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """``exact_match`` and ``f1`` in points, each the best over an example's gold answers."""
    if len(predictions) != len(golds) or not predictions:
        raise ValueError("squad_scores needs one or more predictions, one per gold list")
    em = [max(exact_match(p, g) for g in gs) for p, gs in zip(predictions, golds)]
    f1 = [max(char_f1(p, g) for g in gs) for p, gs in zip(predictions, golds)]
    return {"exact_match": 100.0 * float(np.mean(em)), "f1": 100.0 * float(np.mean(f1))}


def accuracy(predictions: Sequence[object], golds: Sequence[object]) -> float:
    """The share of equal predictions, in points."""
    if len(predictions) != len(golds) or not predictions:
        raise ValueError("accuracy needs one or more predictions, one per gold")
    return 100.0 * float(np.mean([p == g for p, g in zip(predictions, golds)]))


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson's correlation coefficient, in points (NaN when either side is constant)."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("pearson needs two sequences of the same length, two or more values")
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denominator == 0.0:
        return float("nan")
    return 100.0 * max(-1.0, min(1.0, float((a * b).sum()) / denominator))


def rank(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of the ranks they span (``scipy.stats.rankdata``)."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v), dtype=np.float64)
    sorted_v = v[order]
    start = 0
    while start < len(v):
        end = start
        while end + 1 < len(v) and sorted_v[end + 1] == sorted_v[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation, in points."""
    return pearson(rank(x), rank(y))
