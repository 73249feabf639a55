"""Bulk jobs: rows from .txt/.jsonl/.parquet to Parquet, on this machine, Ray or Spark.

Needs pyarrow (``[batch]``); Ray and Spark come with the ``[ray]`` and ``[spark]`` extras.
"""

from .local import run_local
from .predictor import BatchPredictor
from .rows import Row, input_files, read_rows

__all__ = ["BatchPredictor", "Row", "input_files", "read_rows", "run_local"]
