"""The functions a bulk job sends to Ray and Spark workers. They are built inside a function,
so the engines serialize them by value (code and all): a worker whose Python lacks albert_onnx
runs them and says what to install, instead of failing to load them with a bare
``ModuleNotFoundError``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any


def remote(name: str, *bound: Any) -> Callable[..., Any]:
    """``albert_onnx.batch.worker.<name>(*bound, *args)``, callable on a worker."""

    def call(*args: Any) -> Any:
        try:
            from albert_onnx.batch import worker
        except ImportError as exc:
            import socket
            import sys

            raise RuntimeError(
                "albert-onnx worker error: InputError: the workers' Python "
                f"({sys.executable} on {socket.gethostname()}) cannot import albert_onnx ({exc}); install it "
                "there (pip install 'albert-onnx[batch]'), or "
                "point the engine at a Python that has it: spark.pyspark.python / PYSPARK_PYTHON or a packed "
                "environment in spark.archives for Spark, the cluster's Python or a runtime_env for Ray"
            ) from None
        return getattr(worker, name)(*bound, *args)

    return call


def remote_partition(name: str, *bound: Any) -> Callable[[Iterable[Any]], Iterator[Any]]:
    """A Spark ``mapPartitions`` function: ``worker.<name>(*bound, *item)`` for each item."""
    call = remote(name, *bound)

    def partition(items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            yield call(*item)

    return partition


def remote_runner(*bound: Any) -> type:
    """A Ray Data callable class: runs each segment of a batch with ``worker.run_segment``."""
    run = remote("run_segment_batch", *bound)

    class SegmentRunner:
        def __call__(self, batch: Any) -> Any:
            return run(batch)

    return SegmentRunner
