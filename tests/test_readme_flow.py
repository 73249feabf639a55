"""The README's local-folder flow, on the pretrained model in ../shared when it is there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from albert_onnx.cli import main

from .conftest import NO_SHARED, SHARED_MODEL

ROOT = Path(__file__).resolve().parents[1]


def test_readme_commands_are_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.split("\n")
    i = lines.index("<!-- test-command -->")
    assert lines[i + 1] == "```bash" and "python -m pytest" in lines[i + 2]
    assert "constraints.txt" in lines[i + 2]
    assert "<!-- test-command -->" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.skipif(not SHARED_MODEL.exists(), reason=NO_SHARED)
def test_local_folder_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[export]'")
    out = tmp_path / "mini"
    assert main(["export", str(SHARED_MODEL), "-o", str(out), "--quantize", "int8"]) == 0
    capsys.readouterr()
    for precision in ("fp32", "int8"):
        assert main(["fill-mask", str(out), "吾輩は[MASK]である。", "--json",
                     "--precision", precision]) == 0
        doc = json.loads(capsys.readouterr().out)  # one JSON line: the text's masks
        assert doc[0][0]["token_str"] == "猫"  # as the model's README says
