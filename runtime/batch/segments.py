"""A job's input cut into segments, each one output part: byte ranges of whole lines in .txt and
.jsonl files, row ranges of Parquet files. Workers index the files in parallel (how many rows
each range holds), the driver numbers the segments (a few numbers each, never the rows), and a
worker reads its segment straight from storage with the local engine's reader: same row ids,
same error rows, on every engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .rows import (
    Row,
    batch_rows,
    check_txt,
    decode_text,
    line_rows,
    parquet_columns,
    parquet_file,
    split_lines,
)
from .storage import InputFile, filesystem

INDEX_BYTES = 64 << 20  # a text file is indexed in ranges of this size, by as many tasks
READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Piece:
    """A stretch of one input file that an index task found: ``start``..``end`` (bytes for
    text, rows for Parquet) holding ``rows`` rows."""

    start: int
    end: int
    rows: int


@dataclass(frozen=True)
class Segment:
    """One output part's input: ``rows`` rows of ``path`` on ``source``'s filesystem, from
    ``start`` to ``end`` (bytes or rows); its first row is row ``number`` of the job and row
    ``file_row`` of its file."""

    index: int
    source: str
    path: str
    start: int
    end: int
    number: int
    file_row: int
    rows: int

    @property
    def part(self) -> str:
        return f"part-{self.index:05d}.parquet"


def index_tasks(files: list[InputFile]) -> list[tuple[str, int, int]]:
    """The index tasks of a job: (file path, first byte, last byte) per range of a text file,
    one per Parquet file (its footer says the rest)."""
    tasks: list[tuple[str, int, int]] = []
    for f in files:
        if f.suffix == ".parquet" or f.size <= INDEX_BYTES:
            tasks.append((f.path, 0, f.size))
        else:
            tasks.extend((f.path, lo, min(lo + INDEX_BYTES, f.size)) for lo in range(0, f.size, INDEX_BYTES))
    return tasks


def _line_start(f: Any, at: int, size: int) -> int:
    """The first position at or after ``at`` where a line begins (just after a ``\\n``)."""
    if at == 0:
        return 0
    pos = at - 1
    while pos < size:
        block = f.read_at(min(READ_BLOCK, size - pos), pos)
        k = block.find(b"\n")
        if k >= 0:
            return pos + k + 1
        pos += len(block)
    return size


def _count(data: bytes, skip_blank: bool, name: str) -> int:
    return sum(1 for _ in split_lines(decode_text(data), skip_blank, name, None))


def index_range(source: str, path: str, lo: int, hi: int, columns: tuple[str, ...], id_column: str,
                part_rows: int) -> list[Piece]:
    """Cut ``lo``..``hi`` of an input file into pieces of about ``part_rows`` rows (text: whole
    lines that begin in the range; Parquet: the whole file, ``lo``/``hi`` unused)."""
    fs, _ = filesystem(source)
    name = path.rsplit("/", 1)[-1]
    if path.endswith(".parquet"):
        with fs.open_input_file(path) as f:
            meta = parquet_file(name, f)
            parquet_columns(name, meta.schema_arrow.names, columns, id_column)
            total = meta.metadata.num_rows
        return [Piece(a, min(a + part_rows, total), min(a + part_rows, total) - a)
                for a in range(0, total, part_rows)]
    if path.endswith(".txt"):
        check_txt(name, columns)
    skip_blank = path.endswith(".jsonl")
    pieces: list[Piece] = []
    with fs.open_input_file(path) as f:
        size = f.size()
        start, end = _line_start(f, lo, size), _line_start(f, hi, size)
        pos, rows, piece_start, tail = start, 0, start, b""
        while pos < end:
            data = f.read_at(min(READ_BLOCK, end - pos), pos)
            pos += len(data)
            block = tail + data
            cut = len(block) if pos >= end else block.rfind(b"\n") + 1
            whole, tail = block[:cut], block[cut:]
            offset = pos - len(block)  # where block[0] lies in the file
            n = _count(whole, skip_blank, name) if whole else 0
            if rows + n < part_rows:
                rows += n
                continue
            i = 0  # the block fills a piece: find the line where it does
            while i < len(whole):
                j = whole.find(b"\n", i)
                j = len(whole) if j < 0 else j + 1
                rows += _count(whole[i:j], skip_blank, name)
                i = j
                if rows >= part_rows:
                    pieces.append(Piece(piece_start, offset + j, rows))
                    piece_start, rows = offset + j, 0
        if rows:
            pieces.append(Piece(piece_start, end, rows))
    return pieces


def number_segments(source: str, files: list[InputFile], tasks: list[tuple[str, int, int]],
                    pieces: list[list[Piece]]) -> list[Segment]:
    """The job's segments in input order, with row numbers: pieces of empty ranges dropped."""
    segments: list[Segment] = []
    number = 0
    file_rows: dict[str, int] = {f.path: 0 for f in files}
    for (path, _, _), found in zip(tasks, pieces):
        for p in found:
            if p.rows == 0:
                continue
            segments.append(Segment(len(segments), source, path, p.start, p.end, number, file_rows[path], p.rows))
            number += p.rows
            file_rows[path] += p.rows
    return segments


def segment_rows(segment: Segment, columns: tuple[str, ...], id_column: str) -> Iterator[Row]:
    """The rows of one segment, read from storage, numbered as the local engine numbers them."""
    fs, _ = filesystem(segment.source)
    name = segment.path.rsplit("/", 1)[-1]
    suffix = "." + name.rsplit(".", 1)[-1]
    with fs.open_input_file(segment.path) as f:
        if suffix == ".parquet":
            pq = parquet_file(name, f)
            read = parquet_columns(name, pq.schema_arrow.names, columns, id_column)
            rows = _parquet_range(pq, read, segment.start, segment.end)
            yield from batch_rows(rows, segment.number, columns)
            return
        data = f.read_at(segment.end - segment.start, segment.start)
    lines = split_lines(decode_text(data), suffix == ".jsonl", name, segment.file_row + 1)
    yield from line_rows(name, suffix, lines, segment.number, segment.file_row + 1, columns, id_column)


def _parquet_range(pq: Any, read: list[str], start: int, end: int) -> Iterator[Any]:
    """Record batches of rows ``start``..``end`` of a Parquet file: only the row groups they lie in."""
    meta = pq.metadata
    first = 0
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        lo, hi = max(start, first), min(end, first + n)
        if lo < hi:
            table = pq.read_row_group(g, columns=read).slice(lo - first, hi - lo)
            yield from table.to_batches()
        first += n
        if first >= end:
            break


def check_rows(segment: Segment, got: int) -> None:
    if got != segment.rows:
        raise InputError(f"{segment.path} changed while the job ran: {got} rows where the index found "
                         f"{segment.rows}")
