"""Where a bulk job reads and writes: local paths, ``file://`` URIs and any filesystem that
pyarrow (``s3://``, ``gs://``, ``hdfs://``) or fsspec knows. Workers get URIs, never
filesystem objects, and open them themselves with their own credentials."""

from __future__ import annotations

import fnmatch
import os
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .rows import OUTPUT_COLUMNS, SUFFIXES, need_pyarrow

# the package each scheme needs where pyarrow cannot open it itself
PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "abfs": "adlfs", "abfss": "adlfs",
            "az": "adlfs", "hdfs": "pyarrow with libhdfs (HADOOP_HOME, JAVA_HOME)", "http": "aiohttp",
            "https": "aiohttp"}
_GLOB = set("*?[")


@dataclass(frozen=True)
class InputFile:
    """One input file: its path on the input's filesystem, its size and modification time."""

    path: str
    size: int
    mtime_ns: int | None

    @property
    def suffix(self) -> str:
        return posixpath.splitext(self.path)[1]

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


def is_uri(location: str) -> bool:
    return "://" in location


def filesystem(location: str) -> tuple[Any, str]:
    """The filesystem of ``location`` (a local path or a URI) and the path on it."""
    pa = need_pyarrow()
    location = os.fspath(location)
    if not is_uri(location):
        return pa.fs.LocalFileSystem(), os.path.abspath(location)
    if location.startswith("file://"):
        return pa.fs.LocalFileSystem(), location[len("file://"):] or "/"
    scheme = location.split("://", 1)[0].lower()
    try:
        return pa.fs.FileSystem.from_uri(location)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        arrow_error = str(exc).splitlines()[0]
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:
        raise InputError(f"{location}: pyarrow cannot open {scheme}:// ({arrow_error}); install fsspec and "
                         f"{PACKAGES.get(scheme, 'its package for ' + scheme + '://')}") from None
    need = PACKAGES.get(scheme, f"the fsspec package for {scheme}://")
    try:
        fs, path = url_to_fs(location)
    except (ImportError, OSError) as exc:
        raise InputError(f"{location}: cannot open {scheme}:// ({arrow_error}; fsspec: {exc}); "
                         f"it needs {need}") from None
    except ValueError as exc:  # fsspec: unknown protocol
        raise InputError(f"{location}: unknown filesystem {scheme}:// ({exc}); known to fsspec: "
                         f"{sorted(fsspec.available_protocols())}") from None
    return pa.fs.PyFileSystem(pa.fs.FSSpecHandler(fs)), path


def renames_folders(fs: Any) -> bool:
    """Whether a folder rename is one atomic step here (local disks, HDFS), not a copy (object stores)."""
    pa = need_pyarrow()
    return isinstance(fs, (pa.fs.LocalFileSystem, pa.fs.HadoopFileSystem))


def _info(fs: Any, path: str) -> Any:
    try:
        return fs.get_file_info(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None


def list_inputs(location: str) -> list[InputFile]:
    """The files of a job's input: a file, the supported files of a folder (sorted by name), or
    the files a glob in the last parts of the path matches (sorted)."""
    pa = need_pyarrow()
    fs, path = filesystem(location)
    parts = path.split("/")
    glob_at = next((k for k, p in enumerate(parts) if _GLOB & set(p)), None)
    if glob_at is not None:
        base = "/".join(parts[:glob_at]) or "/"
        infos = fs.get_file_info(pa.fs.FileSelector(base, recursive=glob_at < len(parts) - 1, allow_not_found=True))
        files = [i for i in infos if i.type == pa.fs.FileType.File and fnmatch.fnmatchcase(i.path, path)
                 and posixpath.splitext(i.path)[1] in SUFFIXES]
        if not files:
            raise InputError(f"{location}: the pattern matches no input file; expected files ending in "
                             f"{list(SUFFIXES)}")
    else:
        info = _info(fs, path)
        if info.type == pa.fs.FileType.Directory:
            files = [i for i in fs.get_file_info(pa.fs.FileSelector(path))
                     if i.type == pa.fs.FileType.File and posixpath.splitext(i.path)[1] in SUFFIXES]
            if not files:
                raise InputError(f"{location}: no input files; expected files ending in {list(SUFFIXES)}")
        elif info.type == pa.fs.FileType.File:
            if posixpath.splitext(path)[1] not in SUFFIXES:
                raise InputError(f"{location}: unknown input format {posixpath.splitext(path)[1]!r}; "
                                 f"valid: {list(SUFFIXES)}, a folder or a glob")
            files = [info]
        else:
            raise InputError(f"{location}: input not found")
    return [InputFile(i.path, i.size, i.mtime_ns) for i in sorted(files, key=lambda i: i.path)]


def write_part(fs: Any, folder: str, name: str, columns: dict[str, list[Any]]) -> None:
    """Write one Parquet output part so that it appears whole or not at all: a hidden file
    renamed where renames are atomic; on object stores the upload only shows once complete."""
    pa = need_pyarrow()
    table = pa.table({c: pa.array(columns[c], type=pa.string()) for c in OUTPUT_COLUMNS})
    final = f"{folder}/{name}"
    if not renames_folders(fs):
        with fs.open_output_stream(final) as f:
            pa.parquet.write_table(table, f)
        return
    tmp = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        with fs.open_output_stream(tmp) as f:
            pa.parquet.write_table(table, f)
        fs.move(tmp, final)
    except BaseException:
        try:
            fs.delete_file(tmp)
        except OSError:
            pass
        raise
