"""Checks on an ONNX file made before ONNX Runtime opens it (no onnx package needed)."""

from __future__ import annotations

from pathlib import Path

from ._protobuf import ProtoReader
from .errors import ArtifactError

# ModelProto.graph = 7; GraphProto.initializer = 5, sparse_initializer = 15;
# TensorProto.external_data = 13 (StringStringEntryProto: key = 1, value = 2), data_location = 14.
_GRAPH, _INITIALIZER, _SPARSE, _EXTERNAL_DATA = 7, 5, 15, 13


def external_data_locations(path: Path) -> list[str]:
    """The ``location`` of every initializer stored outside the ONNX file."""
    data = path.read_bytes()
    src = str(path)
    out: list[str] = []
    kind = "ONNX file"
    for num, wt, span in ProtoReader(data, src, kind=kind).fields():
        if num != _GRAPH or wt != 2:
            continue
        for gnum, gwt, gspan in ProtoReader(data, src, span[0], span[1], kind).fields():
            if gwt != 2 or gnum not in (_INITIALIZER, _SPARSE):
                continue
            for tnum, twt, tspan in ProtoReader(data, src, gspan[0], gspan[1], kind).fields():
                if tnum != _EXTERNAL_DATA or twt != 2:
                    continue
                entry = {}
                for enum, ewt, espan in ProtoReader(data, src, tspan[0], tspan[1], kind).fields():
                    if ewt == 2:
                        entry[enum] = data[espan[0] : espan[1]].decode("utf-8", "replace")
                if entry.get(1) == "location":
                    out.append(entry.get(2, ""))
    return out


def check_external_data(path: Path, folder: Path) -> None:
    """Refuse a graph whose external data would be read from outside ``folder``."""
    root = folder.resolve()
    for loc in external_data_locations(path):
        target = (path.parent / loc).resolve()
        if root not in target.parents:
            raise ArtifactError(f"{path}: external data {loc!r} points outside the artifact "
                                f"folder {folder}; refusing to load it")
