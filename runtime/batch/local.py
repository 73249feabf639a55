"""The local engine: worker processes on this machine, output parts written atomically, and a
job that can be run again into the same folder to finish what an interrupted run left."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..tasks.results import TaskOptions
from .rows import Row, check_inputs, count_rows, input_columns, input_files, need_pyarrow, read_rows
from .storage import write_part

JOB_FILE, DONE_FILE = "_job.json", "_SUCCESS"

_worker: Any = None  # the BatchPredictor of this worker process
_worker_error: Exception | None = None  # why it could not be made: raised by every part it is given


def _init_worker(artifact: str, options: dict[str, Any], precision: str, provider: str, threads: int,
                 int8_weights: str) -> None:
    # An initializer that raises breaks the pool, and the parent sees only BrokenProcessPool:
    # keep the error, and let the first part raise it, so the parent gets it as it is.
    global _worker, _worker_error
    from .predictor import BatchPredictor

    try:
        _worker = BatchPredictor(artifact, TaskOptions(**options), precision=precision, provider=provider,
                                 threads=threads, int8_weights=int8_weights)
    except Exception as exc:
        _worker_error = exc


def _run_part(path: str, rows: list[tuple[str, str | None, str | None]]) -> tuple[int, int]:
    if _worker_error is not None:
        raise _worker_error
    columns = _worker.predict([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    write_part(need_pyarrow().fs.LocalFileSystem(), str(Path(path).parent), Path(path).name, columns)
    return len(rows), sum(e is not None for e in columns["error"])


def job_key(artifact: str | Path, files: list[Path], settings: dict[str, Any]) -> dict[str, Any]:
    """What makes two runs the same job: the artifact's manifest, the inputs, the settings."""
    manifest = Path(artifact) / "manifest.json"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None
    inputs = [{"file": str(f.resolve()), "bytes": f.stat().st_size, "mtime_ns": f.stat().st_mtime_ns} for f in files]
    return {"artifact_manifest_sha256": digest, "inputs": inputs, **settings}


def run_local(artifact: str | Path, input_path: str | Path, output: str | Path, *, workers: int | None = None,
              threads: int | None = None, options: TaskOptions | None = None, precision: str = "fp32",
              provider: str = "cpu", text_column: str = "text", id_column: str = "id", part_rows: int = 2000,
              progress: bool = True, int8_weights: str = "auto") -> dict[str, Any]:
    """Run a bulk job with worker processes; returns a summary (rows, errors, parts, seconds).

    Running it again into the same ``output`` skips the parts already written, so an
    interrupted job finishes with nothing lost and nothing doubled.
    """
    need_pyarrow()
    artifact, input_path, output = (_local_path(str(p)) for p in (artifact, input_path, output))
    options = options or TaskOptions()
    cores = os.cpu_count() or 1
    workers = max(1, workers or max(1, cores // (threads or 1)))
    threads = threads or max(1, cores // workers)
    files = input_files(input_path)
    columns = input_columns(artifact, text_column)
    check_inputs(files, columns, id_column)
    out = Path(output)
    settings = {"options": asdict(options), "precision": precision, "int8_weights": int8_weights,
                "text_column": text_column,
                "id_column": id_column, "part_rows": part_rows}
    key = job_key(artifact, files, settings)
    total = count_rows(files)  # reads every line: a file that is no text fails here, before any write
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    job = out / JOB_FILE
    if job.exists():
        if json.loads(job.read_text(encoding="utf-8")) != key:
            raise InputError(f"{out} holds the output of another job (other artifact, input or settings); "
                             "choose another output folder, or delete this one to start over")
    elif any(out.iterdir()):
        raise InputError(f"{out} is not empty and is not a bulk job's output; choose another folder")
    else:
        tmp = out / f".{JOB_FILE}.tmp"
        tmp.write_text(json.dumps(key, indent=2), encoding="utf-8")
        os.replace(tmp, job)
    started = time.perf_counter()
    done_rows = errors = skipped = 0
    parts = 0
    bar = _Progress(total, progress)
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                  initargs=(str(artifact), asdict(options), precision, provider, threads,
                                            int8_weights))
    pending: set[cf.Future[tuple[int, int]]] = set()
    try:
        def drain(block: bool) -> None:
            nonlocal done_rows, errors
            while pending and (block or len(pending) >= 2 * workers):
                finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    pending.discard(fut)
                    n, e = fut.result()
                    done_rows += n
                    errors += e
                    bar.update(done_rows + skipped)

        for index, chunk in enumerate(_chunks(read_rows(files, text_column, id_column, columns), part_rows)):
            parts += 1
            path = out / f"part-{index:05d}.parquet"
            if path.exists():  # written by an earlier run of this job
                skipped += len(chunk)
                bar.update(done_rows + skipped)
                continue
            pending.add(pool.submit(_run_part, str(path), [(r.id, r.text, r.error) for r in chunk]))
            drain(block=False)
        drain(block=True)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        _undo_start(out, created)
        raise
    pool.shutdown()
    bar.close()
    summary = {"rows": total, "rows_run": done_rows, "rows_resumed": skipped, "errors_in_run": errors,
               "parts": parts, "seconds": round(time.perf_counter() - started, 2), "workers": workers,
               "threads": threads}
    (out / DONE_FILE).write_text(json.dumps(summary) + "\n", encoding="utf-8")
    return summary


def _undo_start(out: Path, created: bool) -> None:
    """After a failed run that wrote no part, leave nothing that would refuse the rerun: no job
    file, and no folder where there was none."""
    if any(out.glob("part-*.parquet")):
        return  # an interrupted job: the rerun finishes it
    (out / JOB_FILE).unlink(missing_ok=True)
    if created and not any(out.iterdir()):
        out.rmdir()


def _local_path(location: str) -> str:
    if location.startswith("file://"):
        return location[len("file://"):]
    if "://" in location:
        raise InputError(f"{location}: the local engine reads and writes this machine's files; for other "
                         "filesystems use --engine ray or --engine spark")
    return location


def _chunks(rows: Any, size: int) -> Any:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Progress:
    """Rows done and rows/s on stderr: a bar on a terminal, a line every few seconds elsewhere."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.tty = sys.stderr.isatty()
        self.start = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not self.tty and now - self.last < 5 and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(30 * frac)
        end = "\r" if self.tty else "\n"
        print(f"[{bar:<30}] {done}/{self.total} rows, {rate:.0f} rows/s", end=end, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)
