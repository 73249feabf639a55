"""Bulk jobs: the local engine (workers, bad rows, resume after a kill), Ray and Spark on local
clusters; every engine's answers equal the predictor's, one text at a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from albert_onnx import FillMask, InputError
from albert_onnx.cli import main

from .conftest import corpus_lines, head_artifact

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed: pip install -e '.[batch]'")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow.parquet is not installed: pip install -e '.[batch]'")

GOOD = [t[: len(t) // 2] + "[MASK]" + t[len(t) // 2 :] for t in corpus_lines()[:40] if "[" not in t and "<" not in t]
BAD = ["マスクのない文", "", "猫" * 200 + "[MASK]"]


def read_output(folder: Path) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for f in sorted(folder.rglob("*.parquet")):
        for row in pq.read_table(f).to_pylist():
            assert row["id"] not in rows, f"row {row['id']} written twice"
            rows[row["id"]] = row
    return rows


def assert_fill_mask_rows(rows: dict[str, dict[str, Any]], texts: list[Any], artifact: Path,
                          ids: list[str] | None = None) -> None:
    fm = FillMask(artifact)
    ids = ids or [str(n) for n in range(len(texts))]
    assert set(rows) == set(ids)
    for rid, text in zip(ids, texts):
        row = rows[rid]
        if isinstance(text, str) and text in GOOD:
            assert row["error"] is None and row["text"] == text
            got, want = json.loads(row["result"]), fm.fill([text])[0]
            assert [[c["token"] for c in m] for m in got] == [[c["token"] for c in m] for m in want]
            np.testing.assert_allclose([[c["score"] for c in m] for m in got],
                                       [[c["score"] for c in m] for m in want], atol=1e-5)
        else:
            assert row["result"] is None and row["error"], row


def write_inputs(folder: Path) -> tuple[Path, list[Any]]:
    folder.mkdir()
    texts: list[Any] = GOOD[:15] + BAD[:2] + GOOD[15:25]
    (folder / "a.txt").write_text("\n".join(texts[:12]) + "\n", encoding="utf-8")
    jsonl = [json.dumps({"text": t}, ensure_ascii=False) for t in texts[12:20]] + ["{not json", json.dumps({"text": 5})]
    (folder / "b.jsonl").write_text("\n".join(jsonl) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"text": texts[20:] + [BAD[2]]}), str(folder / "c.parquet"))
    return folder, texts[:20] + ["{not json", 5] + texts[20:] + [BAD[2]]


def test_local_engine_rows_and_errors(tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, texts = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["batch", str(tiny_artifact), str(src), "-o", str(out), "--workers", "2", "--threads", "1",
                 "--part-rows", "7", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == len(texts) and summary["parts"] == -(-len(texts) // 7)
    rows = read_output(out)
    assert_fill_mask_rows(rows, texts, tiny_artifact)
    assert rows["15"]["error"].startswith("text has no [MASK] token") and rows["16"]["error"] == "text is empty"
    assert rows["20"]["error"].startswith("b.jsonl line 9 is not valid JSON")
    assert rows["21"]["error"] == "'text' is not a string (got int)"
    assert "at most 64" in rows[str(len(texts) - 1)]["error"]
    # the same job again: nothing to do, nothing doubled
    assert main(["batch", str(tiny_artifact), str(src), "-o", str(out), "--part-rows", "7", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_run"] == 0
    assert read_output(out) == rows
    # another job into the same folder is refused
    assert main(["batch", str(tiny_artifact), str(src), "-o", str(out), "--part-rows", "5", "--quiet"]) == 2
    assert "holds the output of another job" in capsys.readouterr().err


def test_local_engine_ids_scoring_and_other_tasks(tiny_artifact: Path, tmp_path: Path) -> None:
    from albert_onnx.batch import run_local
    from albert_onnx.tasks.results import TaskOptions

    plain = ["吾輩は猫である。", "今日は雨が降った。", "", "東京駅"]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"text": t, "key": f"k{n}"}, ensure_ascii=False)
                             for n, t in enumerate(plain)), encoding="utf-8")
    out = tmp_path / "out"
    run_local(tiny_artifact, src, out, workers=1, threads=1, options=TaskOptions(score=True), id_column="key",
              progress=False)
    rows = read_output(out)
    assert set(rows) == {"k0", "k1", "k2", "k3"} and rows["k2"]["error"] == "text is empty"
    fm = FillMask(tiny_artifact)
    for n in (0, 1, 3):
        assert abs(json.loads(rows[f"k{n}"]["result"])["pll"] - fm.score(plain[n])) < 1e-4


def test_resume_after_a_killed_run(tiny_artifact: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    texts = (GOOD * 40)[:1200]  # 240 parts: a kill after the third is part-way even on a fast CPU
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "albert_onnx.cli", "batch", str(tiny_artifact), str(src), "-o", str(out),
           "--workers", "1", "--threads", "1", "--part-rows", "5", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("part-*.parquet"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    written = len(list(out.glob("part-*.parquet")))
    assert 3 <= written < 240, written  # killed part-way
    assert not (out / "_SUCCESS").exists()
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    summary = json.loads((out / "_SUCCESS").read_text())
    assert summary["rows_resumed"] >= 5 * written and summary["rows_run"] + summary["rows_resumed"] == 1200
    assert_fill_mask_rows(read_output(out), texts, tiny_artifact)


def test_bad_job_arguments(tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", str(tiny_artifact), str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o")]) == 2
    assert "input not found" in capsys.readouterr().err
    (tmp_path / "x.csv").write_text("a\n")
    assert main(["batch", str(tiny_artifact), str(tmp_path / "x.csv"), "-o", str(tmp_path / "o")]) == 2
    assert "unknown input format '.csv'" in capsys.readouterr().err
    pq.write_table(pa.table({"sentence": ["a"]}), str(tmp_path / "p.parquet"))
    assert main(["batch", str(tiny_artifact), str(tmp_path / "p.parquet"), "-o", str(tmp_path / "o2")]) == 2
    assert "no column 'text'; columns: ['sentence'] (use --text-column)" in capsys.readouterr().err
    assert main(["batch", str(tiny_artifact), str(tmp_path / "p.parquet"), "-o", str(tmp_path / "o3"),
                 "--workers", "0"]) == 2
    assert "--workers must be a positive integer" in capsys.readouterr().err
    # the cluster engines' options are checked before any engine starts
    args = ["batch", str(tiny_artifact), str(tmp_path / "p.parquet"), "-o", str(tmp_path / "o4")]
    assert main([*args, "--engine", "ray", "--runtime-env", "[1]"]) == 2
    assert "--runtime-env must be a JSON object, not '[1]'" in capsys.readouterr().err
    assert main([*args, "--engine", "ray", "--runtime-env", "{pip"]) == 2
    assert "--runtime-env must be a JSON object (" in capsys.readouterr().err
    assert main([*args, "--engine", "spark", "--conf", "spark.executor.memory"]) == 2
    assert "--conf takes KEY=VALUE" in capsys.readouterr().err
    assert main(["batch", str(tiny_artifact), "s3://bucket/in.txt", "-o", str(tmp_path / "o5")]) == 2
    assert "the local engine reads and writes this machine's files" in capsys.readouterr().err
    assert not any(p.name.startswith("o") for p in tmp_path.iterdir())


def test_local_engine_takes_file_uris(tiny_artifact: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text(GOOD[0] + "\n" + BAD[0] + "\n", encoding="utf-8")
    assert main(["batch", str(tiny_artifact), (tmp_path / "in.txt").as_uri(), "-o", (tmp_path / "out").as_uri(),
                 "--quiet", "--workers", "1"]) == 0
    assert_fill_mask_rows(read_output(tmp_path / "out"), [GOOD[0], BAD[0]], tiny_artifact)


def test_batch_predictor_is_public(tiny_artifact: Path, spm_albert: Path, heads_root: Path) -> None:
    from albert_onnx.batch import BatchPredictor
    from albert_onnx.tasks.results import TaskOptions

    bp = BatchPredictor(tiny_artifact)
    cols = bp.predict(["a", "b"], [GOOD[0], None])
    assert cols["error"][0] is None and cols["error"][1] == "text is not a string (got NoneType)"
    with pytest.raises(InputError, match="scoring needs a fill-mask artifact; this one holds 'text-classification'"):
        BatchPredictor(head_artifact("cls", spm_albert, heads_root)[1], TaskOptions(score=True))


@pytest.mark.slow
def test_ray_engine(tiny_artifact: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
    from albert_onnx.batch.engines import run_ray

    src, texts = write_inputs(tmp_path / "in")
    summary = run_ray(tiny_artifact, src, tmp_path / "out", workers=2, threads=1, part_rows=4)
    assert summary["rows"] == len(texts)
    assert_fill_mask_rows(read_output(tmp_path / "out"), texts, tiny_artifact)


@pytest.mark.slow
def test_spark_engine(tiny_artifact: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]'")
    from albert_onnx.batch.engines import run_spark

    src, texts = write_inputs(tmp_path / "in")
    summary = run_spark(tiny_artifact, src, tmp_path / "out", workers=2, threads=1)
    assert summary["rows"] == len(texts)
    assert_fill_mask_rows(read_output(tmp_path / "out"), texts, tiny_artifact)
