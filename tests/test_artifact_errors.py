"""Damaged, foreign or incompatible artifacts fail before any inference, with clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from albert_onnx import ArtifactError, FillMask


@pytest.fixture()
def copy(tiny_artifact: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "art"
    shutil.copytree(tiny_artifact, dst)
    return dst


def _manifest(folder: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((folder / "manifest.json").read_text())


def _write(folder: Path, manifest: dict) -> None:  # type: ignore[type-arg]
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_missing_file(copy: Path) -> None:
    (copy / "spiece.model").unlink()
    with pytest.raises(ArtifactError, match="spiece.model is missing"):
        FillMask(copy)


@pytest.mark.parametrize("name", ["model.onnx", "spiece.model"])
def test_truncated_file(copy: Path, name: str) -> None:
    data = (copy / name).read_bytes()
    (copy / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=f"{name} is .* bytes.*truncated or altered"):
        FillMask(copy)


@pytest.mark.parametrize("name", ["model.onnx", "spiece.model"])
def test_altered_file(copy: Path, name: str) -> None:
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{name} fails its SHA-256 check"):
        FillMask(copy)


def test_manifest_lies_about_checksum(copy: Path) -> None:
    m = _manifest(copy)
    m["files"]["model.onnx"]["sha256"] = "0" * 64
    _write(copy, m)
    with pytest.raises(ArtifactError, match="model.onnx fails its SHA-256 check"):
        FillMask(copy)


def test_other_version(copy: Path) -> None:
    m = _manifest(copy)
    m["format_version"] = 99
    _write(copy, m)
    with pytest.raises(ArtifactError, match="format version 99.*re-export"):
        FillMask(copy)


def test_not_an_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not an albert-onnx artifact"):
        FillMask(tmp_path)
    with pytest.raises(ArtifactError, match="artifact folder not found"):
        FillMask(tmp_path / "nope")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable manifest"):
        FillMask(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(ArtifactError, match="not an albert-onnx manifest"):
        FillMask(tmp_path)


def test_paths_cannot_leave_the_folder(copy: Path, tmp_path: Path) -> None:
    m = _manifest(copy)
    (tmp_path / "outside.onnx").write_bytes(b"x")
    m["files"]["../outside.onnx"] = {"sha256": "0", "bytes": 1}
    _write(copy, m)
    with pytest.raises(ArtifactError, match="outside the artifact folder"):
        FillMask(copy)


def test_missing_precision(copy: Path) -> None:
    m = _manifest(copy)
    del m["graphs"]["int8"]
    _write(copy, m)
    with pytest.raises(ArtifactError, match="no 'int8' graph.*--quantize int8"):
        FillMask(copy, precision="int8")


def test_unverified_corrupt_graph_still_fails_cleanly(copy: Path) -> None:
    (copy / "model.onnx").write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ArtifactError, match="model.onnx: not a valid ONNX file"):
        FillMask(copy, verify=False)


def test_graph_that_only_onnx_runtime_rejects(copy: Path) -> None:
    (copy / "model.onnx").write_bytes(b"\x08\x07")  # a well-formed but empty ModelProto
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot load this graph"):
        FillMask(copy, verify=False)


def test_only_the_files_used_are_hashed(copy: Path) -> None:
    """A damaged int8 graph stops int8, not fp32 (each precision checks what it reads)."""
    data = bytearray((copy / "model_int8.onnx").read_bytes())
    data[100] ^= 0xFF
    (copy / "model_int8.onnx").write_bytes(bytes(data))
    assert FillMask(copy, precision="fp32")("吾輩は[MASK]", top_k=1)
    with pytest.raises(ArtifactError, match="model_int8.onnx fails its SHA-256 check"):
        FillMask(copy, precision="int8")
