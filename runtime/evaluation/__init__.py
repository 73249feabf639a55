"""Accuracy on real tasks: an artifact's precisions on JGLUE's data (or the generic form), with
the metrics JGLUE reports; NumPy only (Parquet needs pyarrow)."""

from .data import KINDS, EvalData, Example, read_eval_data
from .report import markdown
from .run import METRICS, PRIMARY, compare, evaluate, score

__all__ = ["KINDS", "METRICS", "PRIMARY", "EvalData", "Example", "compare", "evaluate", "markdown", "read_eval_data",
           "score"]
