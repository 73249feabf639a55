"""The benchmark's baseline comparison can fail: a regression beyond the margin is caught."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def run_module():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCH))


def _result(speedup: float) -> dict:  # type: ignore[type-arg]
    return {"latency": {"albert-onnx int8": {"end_to_end": {"16": {"speedup_vs_pytorch": speedup}}}}}


def test_compare_flags_regressions(run_module, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert run_module.compare(_result(10.0), _result(10.0), 0.25) == 0
    assert run_module.compare(_result(8.0), _result(10.0), 0.25) == 0
    assert run_module.compare(_result(7.0), _result(10.0), 0.25) == 1
    assert "REGRESSION albert-onnx int8 end_to_end 16 tokens: 7.00x vs baseline 10.00x" in capsys.readouterr().out
