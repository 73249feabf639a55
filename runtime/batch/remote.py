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


def remote_runner() -> type:
    """A Ray actor class: built with the job's bound arguments, it runs one segment a call
    with ``worker.run_segment``."""

    class SegmentRunner:
        def __init__(self, kind: str, artifact: Any, *bound: Any) -> None:
            # the artifact is a top-level argument: Ray hands over its value, from the object store
            self.call = remote("run_segment", (kind, artifact), *bound)

        def run(self, segment: dict[str, Any]) -> Any:
            return self.call(segment)

    return SegmentRunner
