"""The runtime must stay light: importing it loads none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["torch", "transformers", "sentencepiece", "tokenizers", "optimum", "onnx", "google.protobuf",
         "ray", "pyspark", "pyarrow", "pandas"]


def test_runtime_import_is_light() -> None:
    code = (
        "import sys, albert_onnx, albert_onnx.cli, albert_onnx.batch, albert_onnx.bench\n"
        "from albert_onnx import FillMask, Tokenizer\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
