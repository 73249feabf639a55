"""Reading a bulk job's input (.txt, .jsonl, .parquet files, or a folder of them) into rows: the
one reader of every engine (the cluster engines run it on segments). Parquet needs pyarrow
(``[batch]`` extra)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

SUFFIXES = (".txt", ".jsonl", ".parquet")
OUTPUT_COLUMNS = ("id", "text", "result", "error")
# tasks whose rows are several columns, carried as one JSON object in the text column
# what decoding with surrogateescape leaves for bytes that are not UTF-8, and NUL: no text has them
_BINARY = re.compile("[\\0\udc80-\udcff]")
STRUCTURED = {"question-answering": ("question", "context"), "multiple-choice": ("question", "choices")}


def task_columns(task: str, text_column: str) -> tuple[str, ...]:
    """The input columns a job of ``task`` reads: ``question``/``context`` (question
    answering), ``question``/``choices`` (multiple choice), else the text column."""
    return STRUCTURED.get(task, (text_column,))


def input_columns(artifact: str | Path, text_column: str) -> tuple[str, ...]:
    """The input columns a job on the artifact folder ``artifact`` reads (see :func:`task_columns`)."""
    from ..artifact import load_artifact

    return task_columns(load_artifact(artifact, verify=False).task["name"], text_column)


@dataclass(frozen=True)
class Row:
    """One input row: its id (the id column's value as text, else the row number), its text
    (None when the value is not a string), and why it cannot run, when it cannot."""

    id: str
    text: str | None
    error: str | None = None


def need_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.fs
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise InputError("bulk jobs read and write Parquet with pyarrow; install it with "
                         "pip install 'albert-onnx[batch]'") from None
    return pyarrow


def parquet_file(name: str, source: Any) -> Any:
    """``source`` (a path or an open file) as a ``pyarrow.parquet.ParquetFile``; one that is no
    Parquet (corrupt, cut short, another format) fails as InputError naming ``name``."""
    pa = need_pyarrow()
    try:
        return pa.parquet.ParquetFile(source)
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{name}: not a readable Parquet file ({reason}); inputs are UTF-8 .txt, .jsonl or "
                         ".parquet files") from None


def input_files(path: str | Path) -> list[Path]:
    """The files of a job's input: the file itself, or the supported files of a folder, sorted."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise InputError(f"{path}: no input files; expected files ending in {list(SUFFIXES)}")
        return files
    if not path.is_file():
        raise InputError(f"{path}: input not found")
    if path.suffix not in SUFFIXES:
        raise InputError(f"{path}: unknown input format {path.suffix!r}; valid: {list(SUFFIXES)} or a folder")
    return [path]


def count_rows(files: list[Path]) -> int:
    total = 0
    for f in files:
        if f.suffix == ".parquet":
            total += parquet_file(str(f), str(f)).metadata.num_rows
        else:
            total += sum(1 for _ in _lines(f, skip_blank=f.suffix == ".jsonl"))
    return total


def _lines(path: Path, skip_blank: bool) -> Iterator[str]:
    with open_text(path) as f:
        yield from split_lines(f, skip_blank, path.name)


def open_text(path: str | Path) -> Any:
    """``path`` opened for :func:`split_lines`: UTF-8, undecodable bytes kept for it to find."""
    return open(path, encoding="utf-8", errors="surrogateescape", newline="")


def decode_text(data: bytes) -> io.StringIO:
    """Bytes for :func:`split_lines`, as :func:`open_text` reads a file."""
    return io.StringIO(data.decode("utf-8", errors="surrogateescape"), newline="")


def split_lines(stream: Iterable[str], skip_blank: bool, name: str = "input",
                first_line: int | None = 1) -> Iterator[str]:
    """The lines of a text read as :func:`open_text` reads it (``\n``, ``\r\n`` and ``\r`` end
    a line), without their ends; ``skip_blank`` drops lines of only white space. A line with
    bytes that are not UTF-8, or with a NUL character, is no text: InputError names ``name`` and
    the line (``first_line`` is the first line's number; None: not known), so a binary file fails at once."""
    for number, line in enumerate(stream, first_line or 1):
        line = line[:-1] if line.endswith("\n") else line
        line = line[:-1] if line.endswith("\r") else line
        bad = _BINARY.search(line)
        if bad is not None:
            what = ("a NUL character" if bad.group() == "\0" else
                    f"the byte 0x{ord(bad.group()) - 0xDC00:02x}, which is not UTF-8")
            where = f"{name} line {number}" if first_line is not None else f"{name}: a line"
            raise InputError(f"{where} holds {what}: not a UTF-8 text file (a binary file?); "
                             "inputs are UTF-8 text, one a line, or .jsonl / .parquet")
        if skip_blank and not line.strip():
            continue
        yield line


def _row(number: int, values: list[Any], ident: Any, columns: tuple[str, ...]) -> Row:
    rid = str(number) if ident is None else str(ident)
    for name, value in zip(columns, values):
        if value is None:
            return Row(rid, None, f"no {name!r} value")
        if name == "choices":
            if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                return Row(rid, None, f"'choices' is not a list of strings (got {type(value).__name__})")
        elif not isinstance(value, str):
            return Row(rid, None, f"{name!r} is not a string (got {type(value).__name__})")
    if len(columns) == 1:
        return Row(rid, values[0])
    return Row(rid, json.dumps(dict(zip(columns, values)), ensure_ascii=False))


def check_txt(name: str, columns: tuple[str, ...]) -> None:
    if len(columns) > 1:
        raise InputError(f"{name}: a .txt file holds one text a line; this task reads the columns {list(columns)} "
                         "from .jsonl or .parquet")


def line_rows(name: str, suffix: str, lines: Iterable[str], number: int, line_no: int,
              columns: tuple[str, ...], id_column: str) -> Iterator[Row]:
    """Rows of the (non-blank, for .jsonl) lines of a .txt or .jsonl file: ``number`` is the
    first row's number in the job, ``line_no`` its number in the file (from 1)."""
    if suffix == ".txt":
        check_txt(name, columns)
        for line in lines:
            yield _row(number, [line], None, columns)
            number += 1
        return
    for k, line in enumerate(lines, line_no):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Row(str(number), None, f"{name} line {k} is not valid JSON ({exc.msg})")
        else:
            if not isinstance(obj, dict):
                yield Row(str(number), None, f"{name} line {k} is not a JSON object")
            else:
                yield _row(number, [obj.get(c) for c in columns], obj.get(id_column), columns)
        number += 1


def parquet_columns(name: str, names: list[str], columns: tuple[str, ...], id_column: str) -> list[str]:
    """The columns to read from a Parquet file: the task's, and the id column when there is one."""
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputError(f"{name}: no column {missing[0]!r}; columns: {names}"
                         + (" (use --text-column)" if len(columns) == 1 else ""))
    return list(columns) + ([id_column] if id_column in names else [])


def batch_rows(batches: Iterable[Any], number: int, columns: tuple[str, ...]) -> Iterator[Row]:
    """Rows of Arrow record batches holding ``columns`` and, after them, maybe the id column."""
    for batch in batches:
        values = [batch.column(k).to_pylist() for k in range(len(columns))]
        ids = batch.column(len(columns)).to_pylist() if batch.num_columns > len(columns) else [None] * batch.num_rows
        for k, ident in enumerate(ids):
            yield _row(number, [v[k] for v in values], ident, columns)
            number += 1


def check_inputs(files: list[Path], columns: tuple[str, ...], id_column: str) -> None:
    """Refuse, before anything is written, input files that cannot give the task's columns."""
    for f in files:
        if f.suffix == ".txt":
            check_txt(str(f), columns)
        elif f.suffix == ".parquet":
            parquet_columns(str(f), parquet_file(str(f), str(f)).schema_arrow.names, columns, id_column)


def read_rows(files: list[Path], text_column: str = "text", id_column: str = "id",
              columns: tuple[str, ...] | None = None) -> Iterator[Row]:
    """Every row of every file, in order; row numbers count from 0 across the files. With
    several ``columns`` (question answering, multiple choice), a row's text is the JSON object
    of those columns."""
    columns = columns or (text_column,)
    number = 0
    for f in files:
        if f.suffix in (".txt", ".jsonl"):
            if f.suffix == ".txt":
                check_txt(str(f), columns)
            for row in line_rows(f.name, f.suffix, _lines(f, skip_blank=f.suffix == ".jsonl"), number, 1,
                                 columns, id_column):
                yield row
                number += 1
        else:
            pq = parquet_file(str(f), str(f))
            read = parquet_columns(str(f), pq.schema_arrow.names, columns, id_column)
            for row in batch_rows(pq.iter_batches(columns=read, batch_size=4096), number, columns):
                yield row
                number += 1
