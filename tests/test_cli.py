"""The CLI, run in-process through main(argv)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from albert_onnx.cli import main


def test_fill_mask_json(tiny_artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = ["吾輩は[MASK]である。", "大学で[MASK]の研究を[MASK]しています"]
    assert main(["fill-mask", str(tiny_artifact), *texts, "--top-k", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc) == 2 and [len(t) for t in doc] == [1, 2]
    for text in doc:
        for mask in text:
            assert len(mask) == 3
            assert all(set(c) == {"token", "token_str", "score"} for c in mask)
            assert [c["score"] for c in mask] == sorted((c["score"] for c in mask), reverse=True)


def test_fill_mask_table_and_precision(tiny_artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fill-mask", str(tiny_artifact), "吾輩は[MASK]", "--precision", "int8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("吾輩は[MASK]\n  [MASK] #1:\n    1. ")
    assert out.count("\n    ") == 5


def test_errors_are_one_line(tiny_artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fill-mask", str(tiny_artifact), "no mask here"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("albert-onnx: error: text has no [MASK]") and "Traceback" not in err
    assert main(["fill-mask", str(tiny_artifact), "x[MASK]", "--provider", "cuda"]) == 1
    assert "available:" in capsys.readouterr().err
    assert main(["fill-mask", "/nonexistent", "x[MASK]"]) == 1
    with pytest.raises(SystemExit) as exc:
        main(["fill-mask", str(tiny_artifact), "x[MASK]", "--precision", "int3"])
    assert exc.value.code == 2


def test_export_command(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "art"
    assert main(["export", str(tiny_model), "-o", str(out), "--opset", "17"]) == 0
    text = capsys.readouterr().out
    assert "fp32 check against PyTorch: max|Δ| = " in text and (out / "manifest.json").exists()
    assert main(["export", str(tiny_model), "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(tiny_model), "-o", str(tmp_path / "b"), "--opset", "5"]) == 1


def test_export_without_heavy_side_names_the_extra(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "from albert_onnx.cli import main\n"
            f"raise SystemExit(main(['export', 'x', '-o', {str(tmp_path / 'o')!r}]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 1
    assert "pip install 'albert-onnx[export]'" in res.stderr and "Traceback" not in res.stderr
