"""The predictor every bulk engine runs: rows in, rows out, a bad row never stops the batch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..tasks import pipeline
from ..tasks.results import TaskOptions, json_results


class BatchPredictor:
    """Runs an artifact's task over columns of rows; what ``albert-onnx batch`` runs on every engine.

    Build one per worker (a Ray actor, a Spark Python worker, a process) from the artifact path,
    then call it on batches. Each output row holds ``id``, ``text``, ``result`` (JSON text:
    what ``albert-onnx predict --json`` prints for that one text) and ``error`` (None, or why
    this row failed).

    Args:
        artifact_dir: folder written by ``albert-onnx export``.
        options: the task's options (``TaskOptions(score=True)`` scores a fill-mask artifact).
        precision, provider, threads, max_batch_size, int8_weights: as for the predictors.
    """

    def __init__(self, artifact_dir: str | Path, options: TaskOptions | None = None, *, precision: str = "fp32",
                 provider: str = "cpu", threads: int | None = None, max_batch_size: int = 32,
                 int8_weights: str = "auto") -> None:
        self.options = options or TaskOptions()
        self.predictor = pipeline(artifact_dir, self.options.derived_task, precision=precision, provider=provider,
                                  threads=threads, max_batch_size=max_batch_size, int8_weights=int8_weights)
        self.options.check(self.predictor)

    def predict(self, ids: Sequence[str], texts: Sequence[str | None],
                errors: Sequence[str | None] | None = None) -> dict[str, list[Any]]:
        """Columns ``id``, ``text``, ``result``, ``error`` for the given rows, in order."""
        errors = list(errors) if errors is not None else [None] * len(texts)
        results: list[str | None] = [None] * len(texts)
        for n, text in enumerate(texts):
            if errors[n] is None and not isinstance(text, str):
                errors[n] = f"text is not a string (got {type(text).__name__})"
        todo = [n for n in range(len(texts)) if errors[n] is None]
        try:
            done = list(zip(todo, json_results(self.predictor, [texts[n] for n in todo], self.options)))  # type: ignore[misc]
        except InputError:  # some row is bad: run them one by one to say which
            done = []
            for n in todo:
                try:
                    done.append((n, json_results(self.predictor, [texts[n]], self.options)[0]))  # type: ignore[list-item]
                except InputError as exc:
                    errors[n] = str(exc)
        for n, value in done:
            results[n] = json.dumps(value, ensure_ascii=False)
        return {"id": [str(i) for i in ids], "text": [t if isinstance(t, str) else None for t in texts],
                "result": results, "error": errors}

    def __call__(self, batch: Any) -> Any:
        """A pandas DataFrame (Ray ``map_batches``, Spark ``mapInPandas``) with columns ``id``,
        ``text`` and optionally ``error``: the same frame shape with the four output columns."""
        import pandas as pd

        errors = batch["error"].tolist() if "error" in batch else None
        errors = None if errors is None else [e if isinstance(e, str) else None for e in errors]
        return pd.DataFrame(self.predict(batch["id"].tolist(), batch["text"].tolist(), errors))
