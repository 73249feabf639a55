"""Ray and Spark engines for ``albert-onnx batch``: the engine distributes the rows, and every
worker builds one :class:`BatchPredictor` from the artifact path (12 MB in int8, and only
NumPy and ONNX Runtime on the workers). Ray and pyspark are imported here only."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..tasks.results import TaskOptions
from .predictor import BatchPredictor
from .rows import OUTPUT_COLUMNS, input_columns, input_files, need_pyarrow, read_rows

SCHEMA = "id string, text string, result string, error string"


def _input_table(artifact: str | Path, input_path: str | Path, text_column: str, id_column: str) -> Any:
    pa = need_pyarrow()
    rows = list(read_rows(input_files(input_path), text_column, id_column, input_columns(artifact, text_column)))
    return pa.table({"id": pa.array([r.id for r in rows], pa.string()),
                     "text": pa.array([r.text for r in rows], pa.string()),
                     "error": pa.array([r.error for r in rows], pa.string())})


@contextmanager
def _job(artifact: str | Path, input_path: str | Path, output: str | Path, text_column: str, id_column: str,
         summary: dict[str, Any]) -> Iterator[tuple[Any, Path]]:
    """The input rows as an Arrow table and a hidden folder to write into; renamed to
    ``output`` when the engine is done, removed if it fails. Fills ``rows`` and ``seconds``."""
    out = Path(output)
    if out.exists():
        raise InputError(f"{out} already exists; the ray and spark engines write a new folder "
                         "(the local engine resumes into an existing one)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    table = _input_table(artifact, input_path, text_column, id_column)
    started = time.perf_counter()
    try:
        yield table, tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.replace(tmp, out)
    summary.update(rows=len(table), seconds=round(time.perf_counter() - started, 2))


class _RayWorker:
    """A Ray actor: one predictor, loaded once, for every batch it is given."""

    def __init__(self, artifact: str, options: dict[str, Any], precision: str, threads: int,
                 int8_weights: str) -> None:
        self.predictor = BatchPredictor(artifact, TaskOptions(**options), precision=precision, threads=threads,
                                        int8_weights=int8_weights)

    def __call__(self, batch: Any) -> Any:
        return self.predictor(batch)


def run_ray(artifact: str | Path, input_path: str | Path, output: str | Path, *, workers: int = 2,
            threads: int = 1, options: TaskOptions | None = None, precision: str = "fp32",
            text_column: str = "text", id_column: str = "id", batch_rows: int = 256,
            address: str | None = None, int8_weights: str = "auto") -> dict[str, Any]:
    """Run a bulk job on Ray Data: rows to an actor pool (one predictor per actor), Parquet out.

    ``address`` joins an existing cluster; without it a local Ray starts (and stops after).
    """
    try:
        import ray
    except ImportError:
        raise InputError("the ray engine needs Ray: pip install 'albert-onnx[ray]'") from None
    summary: dict[str, Any] = {"workers": workers, "threads": threads}
    with _job(artifact, input_path, output, text_column, id_column, summary) as (table, tmp):
        owned = not ray.is_initialized()
        if owned:
            # a local Ray gets a CPU beyond the actors' for Ray Data's own read and write tasks
            local = {} if address else {"num_cpus": workers * threads + 1, "_node_ip_address": "127.0.0.1"}
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     **local)  # type: ignore[arg-type]
        try:
            ray.data.DataContext.get_current().enable_progress_bars = False
            ds = ray.data.from_arrow(table).repartition(max(1, min(len(table) // batch_rows + 1, 4 * workers)))
            args = (str(Path(artifact).resolve()), asdict(options or TaskOptions()), precision, threads, int8_weights)
            ds = ds.map_batches(_RayWorker, fn_constructor_args=args,
                                batch_format="pandas", batch_size=batch_rows, num_cpus=threads,
                                compute=ray.data.ActorPoolStrategy(size=workers))
            ds.select_columns(list(OUTPUT_COLUMNS)).write_parquet(str(tmp))
        finally:
            if owned:
                ray.shutdown()
    return summary


_SPARK_PREDICTORS: dict[tuple[Any, ...], BatchPredictor] = {}


def _spark_partition(key: tuple[Any, ...]) -> Any:
    """The mapInPandas function: one predictor per Python worker process, kept between tasks."""

    def run(frames: Any) -> Any:
        if key not in _SPARK_PREDICTORS:
            artifact, options, precision, threads, int8_weights = key
            _SPARK_PREDICTORS[key] = BatchPredictor(artifact, TaskOptions(**dict(options)), precision=precision,
                                                    threads=threads, int8_weights=int8_weights)
        predictor = _SPARK_PREDICTORS[key]
        for frame in frames:
            yield predictor(frame)

    return run


def run_spark(artifact: str | Path, input_path: str | Path, output: str | Path, *, workers: int = 2,
              threads: int = 1, options: TaskOptions | None = None, precision: str = "fp32",
              text_column: str = "text", id_column: str = "id", master: str | None = None,
              int8_weights: str = "auto") -> dict[str, Any]:
    """Run a bulk job on Spark: ``mapInPandas`` with one predictor per Python worker, Parquet out.

    ``master`` defaults to ``local[workers]``.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError("the spark engine needs pyspark (and Java 17): pip install 'albert-onnx[spark]'") from None
    summary: dict[str, Any] = {"workers": workers, "threads": threads}
    with _job(artifact, input_path, output, text_column, id_column, summary) as (table, tmp):
        if master is None or master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # a local Spark stays on the loopback
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this interpreter
        spark = (SparkSession.builder.master(master or f"local[{workers}]").appName("albert-onnx batch")
                 .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                 .config("spark.ui.enabled", "false").config("spark.python.worker.reuse", "true")
                 .config("spark.executorEnv.OMP_NUM_THREADS", str(threads)).getOrCreate())
        try:
            frame = spark.createDataFrame(table.to_pandas(), schema="id string, text string, error string")
            frame = frame.repartition(max(1, min(len(table) // 256 + 1, 4 * workers)))
            key = (str(Path(artifact).resolve()), tuple(sorted(asdict(options or TaskOptions()).items())),
                   precision, threads, int8_weights)
            frame.mapInPandas(_spark_partition(key), schema=SCHEMA).write.parquet(str(tmp))
        finally:
            spark.stop()
    return summary
