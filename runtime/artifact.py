"""The artifact folder that ``albert-onnx export`` writes and the runtime loads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ArtifactError

MANIFEST_NAME = "manifest.json"
SPIECE_NAME = "spiece.model"
FORMAT_NAME = "albert-onnx-artifact"
FORMAT_VERSION = 1
PRECISIONS = ("fp32", "int8", "fp16")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Artifact:
    """A verified artifact folder: its manifest and the paths of its files."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def precisions(self) -> list[str]:
        return list(self.manifest["graphs"])

    def graph_path(self, precision: str) -> Path:
        graphs = self.manifest["graphs"]
        if precision not in graphs:
            raise ArtifactError(f"{self.folder}: no {precision!r} graph; this artifact has "
                                f"{sorted(graphs)} (export with --quantize int8 for int8)")
        return self.folder / graphs[precision]["file"]

    def verify(self, names: Iterable[str] | None = None) -> None:
        """Check size and SHA-256 of the listed files (all by default) against the manifest."""
        files = self.manifest["files"]
        for name in files if names is None else names:
            info, file = files[name], self.folder / name
            size = file.stat().st_size
            if size != info.get("bytes"):
                raise ArtifactError(f"{self.folder}: {name} is {size} bytes, the manifest says "
                                    f"{info.get('bytes')}: the file is truncated or altered")
            if sha256_file(file) != info.get("sha256"):
                raise ArtifactError(f"{self.folder}: {name} fails its SHA-256 check: the file is "
                                    "corrupt or altered")

    @property
    def max_length(self) -> int:
        return int(self.manifest["model"]["max_position_embeddings"])


def load_artifact(folder: str | Path, *, verify: bool = True) -> Artifact:
    """Read an artifact's manifest, check that every file it lists is there and, with
    ``verify``, the size and SHA-256 of every file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: artifact folder not found")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ArtifactError(f"{folder}: not an albert-onnx artifact (no {MANIFEST_NAME}); "
                            "create one with `albert-onnx export SOURCE -o FOLDER`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ArtifactError(f"{path}: not an albert-onnx manifest (format is "
                            f"{manifest.get('format') if isinstance(manifest, dict) else None!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{path}: artifact format version {version!r}, but this albert-onnx "
                            f"reads version {FORMAT_VERSION}; re-export the model with this version")
    for key in ("files", "graphs", "model", "tokenizer"):
        if not isinstance(manifest.get(key), dict):
            raise ArtifactError(f"{path}: manifest has no {key!r} section")
    root = folder.resolve()
    for name in manifest["files"]:
        file = (folder / name).resolve()
        if root not in file.parents:
            raise ArtifactError(f"{path}: file {name!r} points outside the artifact folder")
        if not file.is_file():
            raise ArtifactError(f"{folder}: {name} is missing")
    for precision, graph in manifest["graphs"].items():
        if graph.get("file") not in manifest["files"]:
            raise ArtifactError(f"{path}: graph {precision!r} names a file the manifest does not list")
    if SPIECE_NAME not in manifest["files"]:
        raise ArtifactError(f"{path}: manifest does not list {SPIECE_NAME}")
    artifact = Artifact(folder, manifest)
    if verify:
        artifact.verify()
    return artifact
