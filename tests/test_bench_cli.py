"""``albert-onnx bench``: the report, the baseline check with normalization, bad arguments."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from albert_onnx.bench import compare
from albert_onnx.cli import main

QUICK = ["--lengths", "8,16", "--calls", "3", "--rounds", "1", "--batch", "4"]


@pytest.fixture(scope="module")
def report(tiny_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("bench")
    assert main(["bench", str(tiny_artifact), *QUICK, "--precision", "fp32", "--precision", "int8",
                 "--json", str(out / "r.json"), "--markdown", str(out / "r.md")]) == 0
    doc = json.loads((out / "r.json").read_text())
    doc["_md"] = (out / "r.md").read_text()
    return doc


def test_report(report: dict) -> None:  # type: ignore[type-arg]
    keys = {"precision", "tokens", "batch", "median_ms", "p90_ms", "p99_ms"}
    assert all(keys <= set(r) for r in report["results"])
    assert {(r["precision"], r["tokens"]) for r in report["results"] if r["batch"] == 1} == {
        ("fp32", 8), ("fp32", 16), ("int8", 8), ("int8", 16)}
    assert all(r["median_ms"] <= r["p90_ms"] <= r["p99_ms"] for r in report["results"])
    assert report["cold_start_s"] > 0 and report["peak_rss_mb"] > 10 and report["reference_ms"] > 0
    assert report["machine"]["versions"]["onnxruntime"] and report["task"] == "fill-mask"
    assert "| fp32 | 8 | 1 |" in report["_md"] and "Cold start" in report["_md"]


def test_baseline(report: dict, tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[type-arg]
    slower = copy.deepcopy(report)
    for r in slower["results"]:
        r["median_ms"] *= 100
    faster = copy.deepcopy(report)
    for r in faster["results"]:
        r["median_ms"] /= 100
    (tmp_path / "slow.json").write_text(json.dumps(slower))
    (tmp_path / "fast.json").write_text(json.dumps(faster))
    args = ["bench", str(tiny_artifact), *QUICK, "--no-cold-start"]
    assert main([*args, "--baseline", str(tmp_path / "slow.json"), "--max-slowdown", "2"]) == 0
    assert "No regression" in capsys.readouterr().out
    assert main([*args, "--baseline", str(tmp_path / "fast.json"), "--max-slowdown", "2"]) == 1
    out = capsys.readouterr().out
    assert "**Regressions**" in out and "| fp32 | 8 | 1 |" in out


def test_normalized_by_the_reference_workload(report: dict) -> None:  # type: ignore[type-arg]
    """A machine twice as slow on the reference is allowed twice the latency."""
    other = copy.deepcopy(report)
    other["reference_ms"] *= 2
    for r in other["results"]:
        r["median_ms"] *= 2
    assert compare(other, report, 1.05) == []
    other["reference_ms"] = report["reference_ms"]
    assert len(compare(other, report, 1.05)) == len(report["results"])


@pytest.mark.parametrize("extra, match", [
    (["--lengths", "a,b"], "--lengths must be comma-separated integers"),
    (["--lengths", "8,0"], "each of --lengths must be a positive integer"),
    (["--lengths", "8,4096"], "length 4096 is over the model's limit of 64 tokens"),
    (["--baseline", "/nonexistent.json"], "cannot read the baseline"),
    (["--max-slowdown", "0", "--baseline", "{b}"], "--max-slowdown must be a positive ratio"),
])
def test_bad_arguments(report: dict, tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # type: ignore[type-arg]
                       extra: list[str], match: str) -> None:
    (tmp_path / "b.json").write_text(json.dumps(report))
    extra = [x.replace("{b}", str(tmp_path / "b.json")) for x in extra]
    assert main(["bench", str(tiny_artifact), "--calls", "1", "--rounds", "1", "--no-cold-start", *extra]) == 2
    assert match in capsys.readouterr().err
