"""The runtime must stay light: importing it loads none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["torch", "transformers", "sentencepiece", "tokenizers", "optimum", "onnx", "google.protobuf",
         "ray", "pyspark", "pyarrow", "pandas", "starlette", "uvicorn", "scipy"]


def test_runtime_import_is_light() -> None:
    code = (
        "import sys, albert_onnx, albert_onnx.cli, albert_onnx.batch, albert_onnx.bench, albert_onnx.serve\n"
        "import albert_onnx.evaluation\n"
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


def test_evaluate_on_json_lines_is_light(tiny_artifact: object, spm_albert: object, heads_root: object,
                                         tmp_path: object) -> None:
    """`albert-onnx evaluate` on JSON lines runs with NumPy alone: no scipy, pandas or pyarrow."""
    import json
    from pathlib import Path

    from .conftest import head_artifact

    _, art = head_artifact("regression", spm_albert, heads_root)  # type: ignore[arg-type]
    data = Path(str(tmp_path)) / "jsts.json"
    data.write_text("".join(json.dumps({"sentence1": f"猫{i}。", "sentence2": "犬。", "label": i / 2}) + "\n"
                            for i in range(8)), encoding="utf-8")
    code = (
        "import sys\nfrom albert_onnx.cli import main\n"
        f"status = main(['evaluate', {str(art)!r}, {str(data)!r}, '--quiet'])\n"
        f"print(status, [m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr
