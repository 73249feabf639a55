"""Ray and Spark engines for ``albert-onnx batch``, at cluster scale: the workers index the input
and read their segments straight from storage, load the artifact the engine ships them, and
write their Parquet parts straight to the destination; the driver only plans and commits.
Ray and pyspark are imported here only."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import AlbertOnnxError, ArtifactError, InputError, ProviderError
from ..tasks.results import TaskOptions
from .output import Destination
from .remote import remote, remote_partition, remote_runner
from .rows import task_columns
from .segments import Piece, Segment, index_tasks, number_segments
from .storage import filesystem, is_uri, list_inputs
from .worker import artifact_files, content_key, job_settings

_MARK = re.compile(r"albert-onnx worker error: (\w+): ([^\n]*)")
_ERRORS = {c.__name__: c for c in (ArtifactError, InputError, ProviderError)}


def _manifest(artifact: str) -> bytes:
    """The artifact's manifest, from a folder or a URI."""
    fs, path = filesystem(artifact)
    try:
        with fs.open_input_stream(f"{path.rstrip('/')}/manifest.json") as f:
            data: bytes = f.read()
    except (FileNotFoundError, OSError):
        raise InputError(f"{artifact}: not an artifact (no manifest.json); expected a folder written by "
                         "albert-onnx export") from None
    return data


def _worker_error(exc: BaseException) -> AlbertOnnxError | None:
    """The error a worker stopped the job with, out of the engine's wrapping exception."""
    found = _MARK.findall(str(exc))
    if not found:
        return None
    name, message = found[-1]
    return _ERRORS.get(name, InputError)(message.strip())


class _Engine:
    """What the job asks of an engine: run index tasks, run segments, say how it ships the artifact."""

    workers: int

    def ship(self, artifact: str) -> tuple[str, Any]:
        raise NotImplementedError

    def index(self, tasks: list[tuple[Any, ...]]) -> list[list[Piece] | str]:
        raise NotImplementedError

    def run(self, segments: list[Segment], spec: tuple[str, Any], settings: dict[str, Any], output: str,
            folder: str) -> list[dict[str, int]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def run_job(engine: _Engine, artifact: str | Path, input_path: str | Path, output: str | Path, *,
            threads: int, options: TaskOptions | None, precision: str, text_column: str, id_column: str,
            part_rows: int, resume: bool, int8_weights: str) -> dict[str, Any]:
    """A bulk job on ``engine``: plan, run, commit; returns the summary written to ``_SUCCESS``."""
    options = options or TaskOptions()
    artifact, source, out = os.fspath(artifact), os.fspath(input_path), os.fspath(output)
    if not is_uri(artifact):
        artifact = str(Path(artifact).resolve())
    manifest = _manifest(artifact)
    task = json.loads(manifest)["task"]["name"]
    columns = task_columns(task, text_column)
    files = list_inputs(source)
    settings = job_settings(artifact, options, precision, threads, int8_weights, columns, id_column)
    # what makes two runs the same job (where the artifact lies and the threads do not change a row)
    same = {k: v for k, v in settings.items() if k not in ("artifact", "threads")}
    key = {"artifact_manifest_sha256": hashlib.sha256(manifest).hexdigest(), "input": source,
           "inputs": [asdict(f) for f in files], "part_rows": part_rows, **same}
    started = time.perf_counter()
    dest = Destination(out, key, resume)
    try:
        tasks = index_tasks(files)
        found = engine.index([(source, path, lo, hi, columns, id_column, part_rows) for path, lo, hi in tasks])
        errors = [f for f in found if isinstance(f, str)]
        if errors:
            raise InputError(errors[0])
        segments = number_segments(source, files, tasks, found)  # type: ignore[arg-type]
        done = dest.parts_done()
        todo = [s for s in segments if s.part not in done]
        results = engine.run(todo, engine.ship(artifact), settings, out, dest.work) if todo else []
        ran = {r["index"] for r in results}
        if ran != {s.index for s in todo}:
            raise RuntimeError(f"the engine returned {len(ran)} of {len(todo)} parts")
        summary = {"rows": sum(s.rows for s in segments), "rows_run": sum(r["rows"] for r in results),
                   "rows_resumed": sum(s.rows for s in segments if s.part in done),
                   "errors_in_run": sum(r["errors"] for r in results), "parts": len(segments),
                   "seconds": round(time.perf_counter() - started, 2), "workers": engine.workers,
                   "threads": threads}
        dest.commit(summary)
    except BaseException as exc:
        dest.abort()
        clear = _worker_error(exc) if not isinstance(exc, AlbertOnnxError) else None
        if clear is not None:
            raise clear from None
        raise
    return summary


class _Ray(_Engine):
    def __init__(self, workers: int, threads: int, address: str | None, runtime_env: dict[str, Any] | None) -> None:
        if address is None and "ray" not in sys.modules:
            # a local Ray on the loopback: Ray otherwise gives its one node the machine's outward address
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ImportError:
            raise InputError("the ray engine needs Ray: pip install 'albert-onnx[ray]'") from None
        self.ray, self.workers, self.threads = ray, workers, threads
        self.owned = not ray.is_initialized()
        if self.owned:
            # a local Ray gets a CPU beyond the actors' for the index tasks and the driver
            local = {} if address else {"num_cpus": workers * threads + 1, "_node_ip_address": "127.0.0.1"}
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     runtime_env=runtime_env, **local)  # type: ignore[arg-type]

    def ship(self, artifact: str) -> tuple[str, Any]:
        if is_uri(artifact):
            return ("uri", artifact)
        return ("files", self.ray.put(artifact_files(artifact)))  # the actors get the files themselves

    def index(self, tasks: list[tuple[Any, ...]]) -> list[list[Piece] | str]:
        fn = self.ray.remote(num_cpus=1, max_retries=3)(remote("index"))
        return list(self.ray.get([fn.remote(*t) for t in tasks]))

    def run(self, segments: list[Segment], spec: tuple[str, Any], settings: dict[str, Any], output: str,
            folder: str) -> list[dict[str, int]]:
        # a pool of actors, one predictor each; an actor that dies is restarted and its segment
        # run again (Ray's own retries), an error in a segment stops the job
        runner: Any = self.ray.remote(num_cpus=self.threads, max_restarts=-1, max_task_retries=-1)(remote_runner())
        actors = [runner.remote(*spec, settings, output, folder) for _ in range(min(self.workers, len(segments)))]
        pool = self.ray.util.ActorPool(actors)
        try:
            return list(pool.map_unordered(lambda actor, segment: actor.run.remote(asdict(segment)), segments))
        finally:
            for actor in actors:
                self.ray.kill(actor)

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


def run_ray(artifact: str | Path, input_path: str | Path, output: str | Path, *, workers: int = 2,
            threads: int = 1, options: TaskOptions | None = None, precision: str = "fp32",
            text_column: str = "text", id_column: str = "id", part_rows: int = 2000,
            address: str | None = None, int8_weights: str = "auto", resume: bool = False,
            runtime_env: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a bulk job on Ray: index and segment tasks read the input from storage, an actor pool
    (one predictor per actor, the artifact through the object store) writes the parts.

    ``address`` joins an existing cluster (``"auto"``, ``ray://...``); without it a local Ray
    starts on the loopback (and stops after). ``runtime_env`` is Ray's, for the workers' Python.
    """
    engine = _Ray(workers, threads, address, runtime_env)
    try:
        return run_job(engine, artifact, input_path, output, threads=threads, options=options, precision=precision,
                       text_column=text_column, id_column=id_column, part_rows=part_rows, resume=resume,
                       int8_weights=int8_weights)
    finally:
        engine.close()


class _Spark(_Engine):
    def __init__(self, workers: int, threads: int, master: str | None, conf: dict[str, str] | None) -> None:
        try:
            from pyspark import SparkContext
            from pyspark.sql import SparkSession
        except ImportError:
            raise InputError("the spark engine needs pyspark (and Java 17): pip install 'albert-onnx[spark]'") from None
        self.workers, self.threads = workers, threads
        submitted = master is None and "PYSPARK_GATEWAY_PORT" in os.environ  # under spark-submit: its master
        if not submitted and (master is None or master.startswith("local")):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # a local Spark stays on the loopback
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this interpreter
        self.owned = SparkContext._active_spark_context is None
        python = (conf or {}).get("spark.pyspark.python")
        saved = os.environ.get("PYSPARK_PYTHON")
        if python and self.owned:  # PySpark's context takes the workers' Python from this variable, not the conf
            os.environ["PYSPARK_PYTHON"] = python
        builder = SparkSession.builder.appName("albert-onnx batch")
        if not submitted:
            # local mode retries a failed task as a cluster does (a killed Python worker costs a retry)
            builder = builder.master(master or f"local[{workers},4]")
        for name, value in {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                            "spark.python.worker.reuse": "true",
                            "spark.executorEnv.OMP_NUM_THREADS": str(threads), **(conf or {})}.items():
            builder = builder.config(name, value)
        try:
            self.spark = builder.getOrCreate()
        finally:
            if python and self.owned:
                if saved is None:
                    os.environ.pop("PYSPARK_PYTHON", None)
                else:
                    os.environ["PYSPARK_PYTHON"] = saved
        self.sc = self.spark.sparkContext
        self.shipped: tempfile.TemporaryDirectory[str] | None = None

    def ship(self, artifact: str) -> tuple[str, Any]:
        if is_uri(artifact):
            return ("uri", artifact)
        # an archive (addFile takes no local folder on a cluster), unpacked by every executor
        files = artifact_files(artifact)
        self.shipped = tempfile.TemporaryDirectory(prefix="albert-onnx-ship-")
        archive = Path(self.shipped.name) / f"albert-onnx-artifact-{content_key(files)}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
            for name, data in files.items():
                z.writestr(name, data)
        del files
        self.sc.addArchive(str(archive))
        return ("spark", archive.name)

    def index(self, tasks: list[tuple[Any, ...]]) -> list[list[Piece] | str]:
        rdd = self.sc.parallelize(tasks, len(tasks))
        return list(rdd.mapPartitions(remote_partition("index")).collect())

    def run(self, segments: list[Segment], spec: tuple[str, Any], settings: dict[str, Any], output: str,
            folder: str) -> list[dict[str, int]]:
        rdd = self.sc.parallelize([(asdict(s),) for s in segments], len(segments))
        return list(rdd.mapPartitions(remote_partition("run_segment", spec, settings, output, folder))
                    .collect())

    def close(self) -> None:
        if self.owned:
            self.spark.stop()
        if self.shipped is not None:
            self.shipped.cleanup()


def run_spark(artifact: str | Path, input_path: str | Path, output: str | Path, *, workers: int = 2,
              threads: int = 1, options: TaskOptions | None = None, precision: str = "fp32",
              text_column: str = "text", id_column: str = "id", part_rows: int = 2000,
              master: str | None = None, int8_weights: str = "auto", resume: bool = False,
              conf: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a bulk job on Spark: one task per input segment, reading it from storage and writing
    its part, one predictor per Python worker, the artifact shipped with ``addArchive``.

    ``master`` defaults to ``local[workers]`` (or spark-submit's); ``conf`` adds Spark settings
    (``spark.pyspark.python``, ``spark.archives``, ...).
    """
    engine = _Spark(workers, threads, master, conf)
    try:
        return run_job(engine, artifact, input_path, output, threads=threads, options=options, precision=precision,
                       text_column=text_column, id_column=id_column, part_rows=part_rows, resume=resume,
                       int8_weights=int8_weights)
    finally:
        engine.close()

