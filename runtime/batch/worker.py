"""What a Ray or Spark worker runs for a bulk job: index a stretch of input, or run one segment
(read it from storage, predict, write its Parquet part to the destination). The artifact comes
with the task (Ray's object store, Spark's ``addArchive``) or from a URI, into a local cache; its
SHA-256 is checked here, where it is loaded."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import AlbertOnnxError, InputError
from ..tasks.results import TaskOptions
from .predictor import BatchPredictor
from .segments import Piece, Segment, check_rows, index_range, segment_rows
from .storage import filesystem, write_part

ERROR_MARK = "albert-onnx worker error: "  # the driver finds this line in the engine's exception
_PREDICTORS: dict[tuple[Any, ...], BatchPredictor] = {}


def cache_root() -> Path:
    return Path(os.environ.get("ALBERT_ONNX_CACHE", Path(tempfile.gettempdir()) / "albert-onnx-artifacts"))


def artifact_files(folder: str | Path) -> dict[str, bytes]:
    """The files of an artifact folder, to ship through an engine's object store."""
    folder = Path(folder)
    if not (folder / "manifest.json").is_file():
        raise InputError(f"{folder}: not an artifact (no manifest.json); expected a folder written by "
                         "albert-onnx export")
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def content_key(files: dict[str, bytes]) -> str:
    """A short digest of an artifact's files: names and contents."""
    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:24]


def _cached(key: str, fill: Any) -> Path:
    """A node-local copy of an artifact under ``key``, filled once (atomically) by ``fill(folder)``."""
    target = cache_root() / key
    if (target / "manifest.json").is_file():
        return target
    tmp = cache_root() / f".{key}.{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    try:
        fill(tmp)
        os.replace(tmp, target)
    except OSError:
        if not (target / "manifest.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def local_artifact(spec: tuple[str, Any]) -> Path:
    """The artifact of a task as a local folder. ``spec``: ``("path", folder)`` (already on
    this machine), ``("files", {name: bytes})`` (shipped, as Ray's object store hands them
    over), ``("spark", name)`` (an archive Spark unpacked), ``("uri", uri)`` (downloaded from any
    filesystem the job can read)."""
    kind, value = spec
    if kind == "path":
        return Path(value)
    if kind == "spark":
        from pyspark import SparkFiles

        return Path(SparkFiles.get(value))
    if kind == "files":
        key = content_key(value)  # the content, not just the manifest: a damaged copy fails its own check

        def write(folder: Path) -> None:
            for name, data in value.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)

        return _cached(key, write)
    if kind == "uri":
        return _download(value)
    raise ValueError(f"unknown artifact spec {kind!r}")


def _download(uri: str) -> Path:
    from .rows import need_pyarrow

    pa = need_pyarrow()
    fs, root = filesystem(uri)
    root = root.rstrip("/")
    try:
        with fs.open_input_stream(f"{root}/manifest.json") as f:
            manifest = f.read()
    except (FileNotFoundError, OSError) as exc:
        raise InputError(f"{uri}: no artifact there (manifest.json: {str(exc).splitlines()[0]})") from None
    infos = [i for i in fs.get_file_info(pa.fs.FileSelector(root, recursive=True)) if i.type == pa.fs.FileType.File]
    digest = hashlib.sha256(manifest)
    for info in sorted(infos, key=lambda i: i.path):  # a file replaced since the last download is fetched again
        digest.update(f"{info.path}\0{info.size}\0{info.mtime_ns}".encode())
    key = digest.hexdigest()[:24]

    def fetch(folder: Path) -> None:
        for info in infos:
            dest = folder / info.path[len(root) + 1:]
            dest.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(info.path) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)

    return _cached(key, fetch)


def index(source: str, path: str, lo: int, hi: int, columns: tuple[str, ...], id_column: str,
          part_rows: int) -> list[Piece] | str:
    """An index task: the pieces of a stretch of input, or the input error that stops the job."""
    try:
        return index_range(source, path, lo, hi, columns, id_column, part_rows)
    except InputError as exc:
        return str(exc)


def predictor(spec: tuple[str, Any], settings: dict[str, Any]) -> BatchPredictor:
    """This worker process's predictor for a job: built once, kept for the job's next segments."""
    kind, value = spec  # the shipped files are known by their manifest (which holds every file's SHA-256)
    key = (kind, hashlib.sha256(value["manifest.json"]).hexdigest() if kind == "files" else repr(value),
           tuple(sorted((k, repr(v)) for k, v in settings.items())))
    if key not in _PREDICTORS:
        _PREDICTORS.clear()
        folder: Path | None = None
        try:
            folder = local_artifact(spec)
            _PREDICTORS[key] = BatchPredictor(folder, TaskOptions(**settings["options"]),
                                              precision=settings["precision"], threads=settings["threads"],
                                              int8_weights=settings["int8_weights"])
        except AlbertOnnxError as exc:  # a bad artifact or settings: the job stops with this message
            message = str(exc)  # named by where the user has it, not by the worker's copy
            if folder is not None and settings.get("artifact"):
                message = message.replace(str(folder), settings["artifact"])
            raise RuntimeError(f"{ERROR_MARK}{type(exc).__name__}: {message}") from None
    return _PREDICTORS[key]


def run_segment(spec: tuple[str, Any], settings: dict[str, Any], output: str, folder: str,
                segment: Segment | dict[str, Any]) -> dict[str, int]:
    """Run one segment (sent as a dict: plain data loads anywhere) and write its part into
    ``folder`` of ``output``'s filesystem; returns the part's index, rows and error rows."""
    if isinstance(segment, dict):
        segment = Segment(**segment)
    batch = predictor(spec, settings)
    try:
        rows = list(segment_rows(segment, tuple(settings["columns"]), settings["id_column"]))
        check_rows(segment, len(rows))
    except InputError as exc:
        raise RuntimeError(f"{ERROR_MARK}InputError: {exc}") from None
    columns = batch.predict([r.id for r in rows], [r.text for r in rows], [r.error for r in rows])
    fs, _ = filesystem(output)
    write_part(fs, folder, segment.part, columns)
    return {"index": segment.index, "rows": len(rows), "errors": sum(e is not None for e in columns["error"])}


def job_settings(artifact: str, options: TaskOptions, precision: str, threads: int, int8_weights: str,
                 columns: tuple[str, ...], id_column: str) -> dict[str, Any]:
    return {"artifact": artifact, "options": asdict(options), "precision": precision, "threads": threads,
            "int8_weights": int8_weights, "columns": list(columns), "id_column": id_column}
