"""The runtime must stay light: importing it loads none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["torch", "transformers", "sentencepiece", "tokenizers", "optimum", "onnx", "google.protobuf",
         "ray", "pyspark", "pyarrow", "pandas", "starlette", "uvicorn"]


def test_runtime_import_is_light() -> None:
    code = (
        "import sys, albert_onnx, albert_onnx.cli, albert_onnx.batch, albert_onnx.bench, albert_onnx.serve\n"
        "from albert_onnx import FillMask, Tokenizer\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_predictor_maps_no_openssl(tiny_artifact: object) -> None:
    """Loading and running an artifact (SHA-256 checks included) leaves hashlib's OpenSSL out:
    3.4 MB of resident memory in every serving process."""
    code = (
        "import sys\nfrom albert_onnx import pipeline\n"
        f"pipeline({str(tiny_artifact)!r}, precision='int8')(['吾輩は[MASK]である。'])\n"
        "print([m for m in ('hashlib', '_hashlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
