"""The artifact folder that ``albert-onnx export`` writes and the runtime loads."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from .errors import ArtifactError

# The model an export starts from when none is named: the Japanese ALBERT of the model card.
DEFAULT_SOURCE = "ken11/albert-base-japanese-v1"
MANIFEST_NAME = "manifest.json"
SPIECE_NAME = "spiece.model"
FORMAT_NAME = "albert-onnx-artifact"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: fill-mask only, no "task" section
PRECISIONS = ("fp32", "int8", "fp16")


class TaskInfo(TypedDict):
    """What the graph's head is: the task, and for classification heads their labels."""

    name: str
    num_labels: int | None
    id2label: list[str] | None
    problem_type: str | None


class ModelInfo(TypedDict):
    vocab_size: int
    max_position_embeddings: int
    hidden_size: int
    embedding_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str


class GraphEntry(TypedDict, total=False):
    file: str  # always present; the rest is the export's record
    validation: dict[str, Any]
    activation_scales: str  # "dynamic-per-tensor" for ONNX Runtime's dynamic int8
    settings: dict[str, Any]  # int8: how it was quantized ("weight_type": "uint8" or "int8")


class Manifest(TypedDict, total=False):
    """``manifest.json``: written by ``albert-onnx export``, read here."""

    format: str
    format_version: int
    task: TaskInfo
    source: dict[str, Any]
    model: ModelInfo
    tokenizer: dict[str, Any]
    graphs: dict[str, GraphEntry]
    files: dict[str, dict[str, Any]]
    graph_info: dict[str, Any]
    tools: dict[str, str | None]


def _sha256() -> Any:
    """CPython's own SHA-256 (``_sha2`` from 3.12, ``_sha256`` before): hashlib's OpenSSL build
    is faster but maps libcrypto, 3.4 MB of resident memory in every process that loads a model."""
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found,no-redef]
        except ImportError:  # an interpreter without the built-in module
            from hashlib import sha256
    return sha256()


def sha256_file(path: Path) -> str:
    h = _sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Artifact:
    """A verified artifact folder: its manifest and the paths of its files."""

    folder: Path
    manifest: Manifest

    @property
    def precisions(self) -> list[str]:
        return list(self.manifest["graphs"])

    def graph_path(self, precision: str) -> Path:
        graphs = self.manifest["graphs"]
        if precision not in graphs:
            how = {"int8": "--quantize int8", "fp16": "--fp16"}.get(precision)
            raise ArtifactError(f"{self.folder}: no {precision!r} graph; this artifact has {sorted(graphs)}"
                                + (f" (export with {how} for {precision})" if how else ""))
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

    @property
    def task(self) -> TaskInfo:
        return self.manifest["task"]


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
    if version not in READABLE_VERSIONS:
        raise ArtifactError(f"{path}: artifact format version {version!r}, but this albert-onnx "
                            f"reads versions {list(READABLE_VERSIONS)}; re-export the model with this version")
    if version == 1:
        manifest["task"] = {"name": "fill-mask", "num_labels": None, "id2label": None, "problem_type": None}
    for key in ("files", "graphs", "model", "tokenizer", "task"):
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
    _check_task(manifest["task"], path)
    if SPIECE_NAME not in manifest["files"]:
        raise ArtifactError(f"{path}: manifest does not list {SPIECE_NAME}")
    artifact = Artifact(folder, manifest)  # type: ignore[arg-type]
    if verify:
        artifact.verify()
    return artifact


def _check_task(task: dict[str, Any], path: Path) -> None:
    from .engine.io import TASKS

    if task.get("name") not in TASKS:
        raise ArtifactError(f"{path}: unknown task {task.get('name')!r}; this albert-onnx serves {list(TASKS)}")
    labels = task.get("id2label")
    if task["name"] in ("text-classification", "token-classification"):
        if not isinstance(labels, list) or not labels or len(labels) != task.get("num_labels") \
                or not all(isinstance(x, str) for x in labels):
            raise ArtifactError(f"{path}: task {task['name']!r} needs id2label, a list of "
                                f"num_labels label strings; found {labels!r}")
