"""A cluster job's output and its commit: where renames are atomic (local disks, HDFS) the parts
go into a hidden folder beside the destination, renamed to it at the end; on object stores they
go to the destination and ``_SUCCESS`` is written last, as Spark does. A failed job leaves
nothing, unless it was asked to resume later."""

from __future__ import annotations

import json
import posixpath
from typing import Any

from ..errors import InputError
from .rows import need_pyarrow
from .storage import filesystem, renames_folders

JOB_FILE, DONE_FILE = "_job.json", "_SUCCESS"


class Destination:
    """Where a job's parts are written (``work``, a path on ``fs``) and how they are committed.

    Args:
        location: the output folder: a local path or a URI.
        key: what makes two runs the same job (written to ``_job.json``).
        resume: keep and finish an unfinished run of the same job (and keep this one's parts
            if it fails); without it an unfinished run's parts are discarded.
    """

    def __init__(self, location: str, key: dict[str, Any], resume: bool) -> None:
        pa = need_pyarrow()
        self.location, self.key, self.resume = location, key, resume
        self.fs, path = filesystem(location)
        self.path = path.rstrip("/") or "/"
        self.atomic = renames_folders(self.fs)
        info = self.fs.get_file_info(self.path)
        if self.atomic:
            if info.type != pa.fs.FileType.NotFound:
                raise InputError(f"{location} already exists; the ray and spark engines write a new folder "
                                 "(choose another output, or delete it to run the job again)")
            parent, name = posixpath.split(self.path)
            self.work = f"{parent}/.{name}.partial"
        else:
            if self._exists(f"{self.path}/{DONE_FILE}"):
                raise InputError(f"{location} already holds a finished job ({DONE_FILE} is there); choose "
                                 "another output, or delete it to run the job again")
            self.work = self.path
            if info.type == pa.fs.FileType.File:
                raise InputError(f"{location} is a file; the output is a folder")
        previous = self._previous_key()
        if previous is None and not self.atomic and self._has_files():  # (a hidden .partial is always ours)
            raise InputError(f"{location} is not empty and is not a bulk job's output; choose another folder")
        keep = resume and previous == key
        if resume and previous is not None and previous != key:
            raise InputError(f"{location}: the unfinished job there is another job (other artifact, input or "
                             "settings); --resume finishes the same job only")
        if not keep:
            self._clear()
        self.fs.create_dir(self.work, recursive=True)
        if not keep:
            self._write(JOB_FILE, json.dumps(key, indent=2))

    def _exists(self, path: str) -> bool:
        return bool(self.fs.get_file_info(path).type != need_pyarrow().fs.FileType.NotFound)

    def _has_files(self) -> bool:
        pa = need_pyarrow()
        if not self._exists(self.work):
            return False
        return any(True for _ in self.fs.get_file_info(pa.fs.FileSelector(self.work, allow_not_found=True)))

    def _previous_key(self) -> dict[str, Any] | None:
        try:
            with self.fs.open_input_stream(f"{self.work}/{JOB_FILE}") as f:
                value = json.loads(f.read())
        except (FileNotFoundError, OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def _clear(self) -> None:
        if self._exists(self.work):
            self.fs.delete_dir(self.work)

    def _write(self, name: str, text: str) -> None:
        with self.fs.open_output_stream(f"{self.work}/{name}") as f:
            f.write(text.encode("utf-8"))

    def parts_done(self) -> set[str]:
        """The parts an earlier run of this job wrote (with ``resume``)."""
        pa = need_pyarrow()
        infos = self.fs.get_file_info(pa.fs.FileSelector(self.work, allow_not_found=True))
        return {posixpath.basename(i.path) for i in infos
                if posixpath.basename(i.path).startswith("part-") and i.path.endswith(".parquet")}

    def commit(self, summary: dict[str, Any]) -> None:
        """``_SUCCESS`` with the summary, then (where renames are atomic) the folder renamed; the
        temporary files of workers killed while writing a part go first."""
        pa = need_pyarrow()
        for info in self.fs.get_file_info(pa.fs.FileSelector(self.work)):
            if posixpath.basename(info.path).startswith(".part-") and info.path.endswith(".tmp"):
                self.fs.delete_file(info.path)
        self._write(DONE_FILE, json.dumps(summary) + "\n")
        if self.atomic:
            self.fs.move(self.work, self.path)

    def abort(self) -> None:
        """A failed run: its parts go, unless it is to be resumed."""
        if not self.resume:
            try:
                self._clear()
            except OSError:
                pass
