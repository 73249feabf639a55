"""Reading a bulk job's input (.txt, .jsonl, .parquet files, or a folder of them) into rows,
and writing output parts as Parquet, atomically. Parquet needs pyarrow (``[batch]`` extra)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

SUFFIXES = (".txt", ".jsonl", ".parquet")
OUTPUT_COLUMNS = ("id", "text", "result", "error")
# tasks whose rows are several columns, carried as one JSON object in the text column
STRUCTURED = {"question-answering": ("question", "context"), "multiple-choice": ("question", "choices")}


def input_columns(artifact: str | Path, text_column: str) -> tuple[str, ...]:
    """The input columns a job on ``artifact`` reads: ``question``/``context`` (question
    answering), ``question``/``choices`` (multiple choice), else the text column."""
    from ..artifact import load_artifact

    return STRUCTURED.get(load_artifact(artifact, verify=False).task["name"], (text_column,))


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
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise InputError("bulk jobs read and write Parquet with pyarrow; install it with "
                         "pip install 'albert-onnx[batch]'") from None
    return pyarrow


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
            total += need_pyarrow().parquet.ParquetFile(str(f)).metadata.num_rows
        else:
            total += sum(1 for _ in _lines(f, skip_blank=f.suffix == ".jsonl"))
    return total


def _lines(path: Path, skip_blank: bool) -> Iterator[str]:
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for line in f:
            line = line[:-1] if line.endswith("\n") else line
            line = line[:-1] if line.endswith("\r") else line
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


def read_rows(files: list[Path], text_column: str = "text", id_column: str = "id",
              columns: tuple[str, ...] | None = None) -> Iterator[Row]:
    """Every row of every file, in order; row numbers count from 0 across the files. With
    several ``columns`` (question answering, multiple choice), a row's text is the JSON object
    of those columns."""
    columns = columns or (text_column,)
    number = 0
    for f in files:
        if f.suffix == ".txt" and len(columns) > 1:
            raise InputError(f"{f}: a .txt file holds one text a line; this task reads the columns {list(columns)} "
                             "from .jsonl or .parquet")
        if f.suffix == ".txt":
            for line in _lines(f, skip_blank=False):
                yield _row(number, [line], None, columns)
                number += 1
        elif f.suffix == ".jsonl":
            for k, line in enumerate(_lines(f, skip_blank=True), 1):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield Row(str(number), None, f"{f.name} line {k} is not valid JSON ({exc.msg})")
                else:
                    if not isinstance(obj, dict):
                        yield Row(str(number), None, f"{f.name} line {k} is not a JSON object")
                    else:
                        yield _row(number, [obj.get(c) for c in columns], obj.get(id_column), columns)
                number += 1
        else:
            pq = need_pyarrow().parquet.ParquetFile(str(f))
            names = pq.schema_arrow.names
            missing = [c for c in columns if c not in names]
            if missing:
                raise InputError(f"{f}: no column {missing[0]!r}; columns: {names}"
                                 + (" (use --text-column)" if len(columns) == 1 else ""))
            read = list(columns) + ([id_column] if id_column in names else [])
            for batch in pq.iter_batches(columns=read, batch_size=4096):
                values = [batch.column(k).to_pylist() for k in range(len(columns))]
                ids = batch.column(len(columns)).to_pylist() if len(read) > len(columns) else [None] * batch.num_rows
                for k, ident in enumerate(ids):
                    yield _row(number, [v[k] for v in values], ident, columns)
                    number += 1


def write_part(path: Path, columns: dict[str, list[Any]]) -> None:
    """Write one output part atomically: a hidden temporary file, then a rename."""
    pa = need_pyarrow()
    table = pa.table({name: pa.array(columns[name], type=pa.string()) for name in OUTPUT_COLUMNS})
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pa.parquet.write_table(table, str(tmp))
    os.replace(tmp, path)
