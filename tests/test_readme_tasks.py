"""README's example of every task, run as written on the models in ../shared, each result
compared with the output the README prints under it (floats within 2e-3)."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import NO_SHARED, SHARED

README = Path(__file__).resolve().parents[1] / "README.md"
EXPORTS = {"mini": ("albert-ja-mini-wagahai", "auto"), "wagahai-cls": ("albert-ja-mini-wagahai-cls", "auto"),
           "wagahai-ner": ("albert-ja-mini-wagahai-ner", "auto"),
           "wagahai-fe": ("albert-ja-mini-wagahai", "feature-extraction"),
           "wagahai-qa": ("albert-ja-mini-wagahai-qa", "auto"), "wagahai-mc": ("albert-ja-mini-wagahai-mc", "auto"),
           "wagahai-nli": ("albert-ja-mini-wagahai-nli", "auto")}


def examples() -> list[tuple[str, str]]:
    """(code, printed output) pairs of the README's task examples: each expression statement
    followed by a comment line holding its output."""
    block = re.search(r"<!-- examples -->\n```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block, "README has no task examples"
    pairs: list[tuple[str, str]] = []
    code: list[str] = []
    for line in block.group(1).split("\n"):
        if line.startswith("# ") and code:
            pairs.append(("\n".join(code), line[2:]))
            code = []
        elif line.strip():
            code.append(line)
    assert not code, f"README example without its output: {code}"
    return pairs


def same(got: Any, want: Any) -> bool:
    if isinstance(got, np.ndarray):
        got = got.tolist() if got.ndim else got.item()
    if isinstance(want, dict):
        return isinstance(got, dict) and set(got) == set(want) and all(same(got[k], want[k]) for k in want)
    if isinstance(want, (list, tuple)):
        return isinstance(got, (list, tuple)) and len(got) == len(want) and all(map(same, got, want))
    if isinstance(want, float):
        return isinstance(got, float) and abs(got - want) <= 2e-3
    return bool(got == want)


@pytest.mark.skipif(not SHARED.is_dir(), reason=NO_SHARED)
def test_readme_task_examples(tmp_path_factory: pytest.TempPathFactory) -> None:
    pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[export]'")
    from albert_onnx.export import export_model

    root = tmp_path_factory.mktemp("readme")
    for name, (model, task) in EXPORTS.items():
        export_model(str(SHARED / "models" / model), root / name, quantize="int8", task=task, log=lambda s: None)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        scope: dict[str, Any] = {}
        for code, printed in examples():
            *setup, last = code.split("\n")
            exec("\n".join(setup), scope)  # noqa: S102
            got = eval(last, scope)  # noqa: S307
            assert same(got, ast.literal_eval(printed)), f"README: {last}\n  prints {printed}\n  gives  {got!r}"
    finally:
        os.chdir(cwd)
