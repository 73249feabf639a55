"""The cluster engines' input path: files cut into segments by index tasks, each segment read
on its own, give exactly the local engine's rows (ids, texts, errors), whatever the cut."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from albert_onnx import InputError
from albert_onnx.batch import segments as seg
from albert_onnx.batch.rows import read_rows
from albert_onnx.batch.storage import list_inputs

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed: pip install -e '.[batch]'")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow.parquet is not installed: pip install -e '.[batch]'")


def plan_rows(source: str, columns: tuple[str, ...], part_rows: int) -> list[tuple[str, str | None, str | None]]:
    files = list_inputs(source)
    tasks = seg.index_tasks(files)
    found = [seg.index_range(source, p, lo, hi, columns, "id", part_rows) for p, lo, hi in tasks]
    segments = seg.number_segments(source, files, tasks, found)
    rows: list[Any] = []
    for s in segments:
        got = list(seg.segment_rows(s, columns, "id"))
        assert len(got) == s.rows
        assert 0 < s.rows
        rows.extend((r.id, r.text, r.error) for r in got)
    assert [s.index for s in segments] == list(range(len(segments)))
    return rows


def local_rows(folder: Path, columns: tuple[str, ...]) -> list[tuple[str, str | None, str | None]]:
    files = sorted(p for p in folder.iterdir() if p.suffix in (".txt", ".jsonl", ".parquet"))
    return [(r.id, r.text, r.error) for r in read_rows(files, columns=columns)]


def random_text(rng: random.Random) -> bytes:
    pieces = ["猫が[MASK]を食べた", "", "   ", "\u3000", "a\rb", "x", "{\"text\": \"t\"}", "{bad json",
              "{\"text\": 5, \"id\": \"k\"}", "[1, 2]", "\ufeff頭", "{\"text\": \"句\", \"id\": 7}"]
    ends = ["\n", "\r\n", "\r", "\n\n"]
    out = b"".join((rng.choice(pieces) + rng.choice(ends)).encode() for _ in range(rng.randint(0, 60)))
    if rng.random() < 0.3:
        out += b"\xe7\x8c"  # a cut UTF-8 character
    if rng.random() < 0.5:
        out += rng.choice(pieces).encode()  # no end of line at the end
    return out


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("seed", range(12))
def test_text_segments_equal_the_local_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(seg, "READ_BLOCK", rng.choice([7, 16, 64, 1 << 20]))
    monkeypatch.setattr(seg, "INDEX_BYTES", rng.choice([5, 33, 200, 1 << 20]))
    for name in ("a.txt", "b.jsonl", "c.jsonl", "d.txt"):
        (tmp_path / name).write_bytes(random_text(rng))
    for suffix in (".txt", ".jsonl"):
        folder = tmp_path / suffix[1:]
        folder.mkdir()
        for f in tmp_path.glob(f"*{suffix}"):
            (folder / f.name).write_bytes(f.read_bytes())
        binary = not all(is_utf8(f.read_bytes()) for f in folder.iterdir())
        for part_rows in (1, 3, 1000):
            if binary:  # a cut UTF-8 character: both readers refuse the file, neither reads on
                with pytest.raises(InputError, match="which is not UTF-8: not a UTF-8 text file"):
                    local_rows(folder, ("text",))
                with pytest.raises(InputError, match="which is not UTF-8: not a UTF-8 text file"):
                    plan_rows(str(folder), ("text",), part_rows)
            else:
                want = local_rows(folder, ("text",))
                assert plan_rows(str(folder), ("text",), part_rows) == want, (suffix, part_rows)


def test_parquet_segments_cross_row_groups(tmp_path: Path) -> None:
    texts = [f"文{n}" if n % 7 else None for n in range(103)]
    table = pa.table({"id": [f"id-{n}" for n in range(103)], "text": texts, "other": list(range(103))})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=10)
    pq.write_table(table.slice(0, 5).drop_columns(["id"]), tmp_path / "b.parquet")
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "x"}) + "\n", encoding="utf-8")
    for part_rows in (1, 4, 10, 25, 1000):
        assert plan_rows(str(tmp_path), ("text",), part_rows) == local_rows(tmp_path, ("text",))
    qa = pa.table({"question": ["q1", "q2"], "context": ["c1", None]})
    (tmp_path / "qa").mkdir()
    pq.write_table(qa, tmp_path / "qa" / "qa.parquet")
    qa_columns = ("question", "context")
    assert plan_rows(str(tmp_path / "qa"), qa_columns, 1) == local_rows(tmp_path / "qa", qa_columns)
    with pytest.raises(InputError, match="no column 'question'"):
        plan_rows(str(tmp_path / "a.parquet"), ("question", "context"), 5)


def test_inputs_by_uri_glob_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("一\n二\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("三\n", encoding="utf-8")
    (tmp_path / "skip.csv").write_text("x\n", encoding="utf-8")
    assert [f.name for f in list_inputs(tmp_path.as_uri())] == ["a.txt", "b.txt"]
    assert [f.name for f in list_inputs(str(tmp_path / "b*"))] == ["b.txt"]
    assert plan_rows(f"{tmp_path.as_uri()}/*.txt", ("text",), 1) == [("0", "一", None), ("1", "二", None),
                                                                   ("2", "三", None)]
    with pytest.raises(InputError, match="matches no input file"):
        list_inputs(str(tmp_path / "z*.txt"))
    with pytest.raises(InputError, match="input not found"):
        list_inputs(str(tmp_path / "missing"))
    with pytest.raises(InputError, match="unknown input format '.csv'"):
        list_inputs(str(tmp_path / "skip.csv"))
    with pytest.raises(InputError, match="nosuchfs://"):
        list_inputs("nosuchfs://bucket/x")
    with pytest.raises(InputError, match="reads the columns"):
        plan_rows(str(tmp_path / "a.txt"), ("question", "context"), 5)
