"""``evaluate``: an artifact's precisions on one data file, side by side, with JGLUE's metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from . import metrics
from .data import CHOICE, LABEL, QA, SCORE, EvalData, Example, location, read_eval_data
from .predict import CHUNK, Prediction, check_labels, gold_answer, kind_of, predict

PRIMARY = {QA: "f1", CHOICE: "accuracy", LABEL: "accuracy", SCORE: "pearson"}
METRICS = {QA: ("exact_match", "f1"), CHOICE: ("accuracy",), LABEL: ("accuracy",), SCORE: ("pearson", "spearman")}
SHOWN = 10  # disagreements listed in a report (all are counted)
ProgressFn = Callable[[str, int, int], None]


def score(kind: str, answers: Sequence[Any], golds: Sequence[Any]) -> dict[str, float]:
    """The metrics of ``kind`` in points."""
    if kind == QA:
        return metrics.squad_scores([str(a) for a in answers], golds)
    if kind == SCORE:
        return {"pearson": metrics.pearson(answers, golds), "spearman": metrics.spearman(answers, golds)}
    return {"accuracy": metrics.accuracy(answers, golds)}


def run_precision(predictor: Any, data: EvalData, progress: ProgressFn | None = None,
                  label: str = "") -> tuple[list[Prediction], float]:
    """Every example through ``predictor``: the predictions and the seconds they took."""
    out: list[Prediction] = []
    examples = data.examples
    started = time.perf_counter()
    for start in range(0, len(examples), CHUNK):
        chunk = examples[start:start + CHUNK]
        try:
            out += predict(predictor, data.kind, chunk)
        except InputError:
            for ex in chunk:  # name the example that cannot run
                try:
                    predict(predictor, data.kind, [ex])
                except InputError as exc:
                    raise InputError(f"{where(data, ex)}: {exc}") from None
            raise
        if progress is not None:
            progress(label, len(out), len(examples))
    return out, time.perf_counter() - started


def where(data: EvalData, ex: Example) -> str:
    return location(data.path, ex.where)


def evaluate(artifact: str | Path, data: str | Path, precisions: Sequence[str] | None = None, *,
             limit: int | None = None, threads: int | None = None, int8_weights: str = "auto",
             progress: ProgressFn | None = None) -> dict[str, Any]:
    """Evaluate an artifact on a data file with the metric JGLUE reports for its task.

    Args:
        artifact: folder written by ``albert-onnx export``.
        data: JSQuAD (SQuAD-style JSON), JCommonsenseQA, JNLI, JSTS or MARC-ja JSON lines as
            JGLUE ships them, or generic JSON lines / Parquet (``text``, optional ``text_pair``,
            ``label`` or ``answers``; ``choices`` for multiple choice).
        precisions: graphs to run (default: fp32, and int8 when the artifact has it).
        limit: only the first ``limit`` examples.
        threads: ONNX Runtime threads (default: every core).
        int8_weights: the int8 weight form in the session (see :class:`~albert_onnx.Predictor`).
        progress: called as ``progress(precision, done, total)`` after every chunk.

    Returns:
        A report: ``metrics`` per precision (points: the metric x 100), the ``drop`` from fp32
        to each other precision, the examples where they disagree, time per example, and the
        export's own accuracy record re-checked when the data is the one it used.
    """
    from ..artifact import load_artifact
    from ..tasks import pipeline

    art = load_artifact(artifact, verify=False)
    available = list(art.manifest["graphs"])
    if precisions is None:
        precisions = [p for p in ("fp32", "int8") if p in available]
    precisions = list(dict.fromkeys(precisions))
    if not precisions:
        raise InputError("no precision to evaluate")
    for p in precisions:
        if p not in available:
            raise InputError(f"precision {p!r}: the artifact has no such graph; it has {available}")
    predictors = {p: pipeline(artifact, precision=p, threads=threads, int8_weights=int8_weights) for p in precisions}
    first = predictors[precisions[0]]
    kind = kind_of(first)
    loaded = read_eval_data(data, kind, limit)
    if kind == LABEL:
        check_labels(first, loaded.examples, lambda ex: where(loaded, ex))
    golds = [gold_answer(first, kind, ex) for ex in loaded.examples]
    runs = {p: run_precision(predictors[p], loaded, progress, p) for p in precisions}
    report = compare(kind, loaded, golds, runs)
    report.update(artifact=str(artifact), task=first.task, machine=_machine(threads))
    recorded: Any = dict(art.manifest["graphs"]).get("int8", {}).get("accuracy")
    if recorded:
        report["export_record"] = recheck(recorded, report)
    return report


def compare(kind: str, data: EvalData, golds: list[Any], runs: dict[str, tuple[list[Prediction], float]],
            shown: int = SHOWN) -> dict[str, Any]:
    """The report's figures: metrics per precision, drops from the first, disagreements."""
    names = METRICS[kind]
    results: dict[str, Any] = {}
    for p, (preds, seconds) in runs.items():
        results[p] = {**score(kind, [x.answer for x in preds], golds), "seconds": round(seconds, 3),
                      "ms_per_example": round(1000 * seconds / len(preds), 3)}
    base = next(iter(runs))
    drop = {p: {m: results[base][m] - results[p][m] for m in names} for p in runs if p != base}
    report: dict[str, Any] = {"kind": kind, "data": data.describe(), "metric": PRIMARY[kind], "metrics": list(names),
                              "results": results, "baseline": base, "drop": drop}
    if len(runs) > 1:
        other = [p for p in runs if p != base][0]
        report["disagreements"] = disagreements(kind, data, golds, runs[base][0], runs[other][0], base, other, shown)
    return report


def disagreements(kind: str, data: EvalData, golds: list[Any], a: list[Prediction], b: list[Prediction],
                  name_a: str, name_b: str, shown: int) -> dict[str, Any]:
    """Examples the two precisions answer differently (regression: by more than 0.05), the
    largest differences first for regression."""
    if kind == SCORE:
        gaps = [abs(x.answer - y.answer) for x, y in zip(a, b)]
        differ = [i for i in np.argsort(gaps)[::-1].tolist() if gaps[i] > 0.05]
    else:
        differ = [i for i, (x, y) in enumerate(zip(a, b)) if x.answer != y.answer]
    rows = []
    for i in differ[:shown]:
        ex = data.examples[i]
        rows.append({"where": ex.where, "input": _short(ex.inputs), "gold": golds[i], name_a: a[i].answer,
                     name_b: b[i].answer})
    return {"count": len(differ), "of": len(a), "examples": rows}


def recheck(recorded: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """The export's accuracy record against this run: the same data (by checksum), the same
    metrics; the drop within the export's limit."""
    same_data = recorded.get("data", {}).get("sha256") == report["data"]["sha256"] and \
        recorded.get("data", {}).get("examples") == report["data"]["examples"]
    out: dict[str, Any] = {"same_data": same_data, "max_drop": recorded.get("max_drop"),
                           "recorded": {p: recorded.get(p) for p in ("fp32", "int8")}}
    if same_data and "int8" in report["results"] and "fp32" in report["results"]:
        metric = recorded.get("metric", report["metric"])
        measured = {p: report["results"][p][metric] for p in ("fp32", "int8")}
        out["equal"] = all(abs(measured[p] - float(recorded[p])) <= 1e-6 for p in measured)
        out["within_max_drop"] = measured["fp32"] - measured["int8"] <= float(recorded["max_drop"]) + 1e-9
    return out


def _short(inputs: Any, width: int = 60) -> str:
    if isinstance(inputs, tuple):
        first, second = inputs
        text = first if second is None else f"{first} | {second if isinstance(second, str) else ' / '.join(second)}"
    else:
        text = str(inputs)
    return text if len(text) <= width else text[:width - 1] + "…"


def _machine(threads: int | None) -> dict[str, Any]:
    from ..bench import machine

    return machine(threads)
