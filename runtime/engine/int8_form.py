"""The int8 graph's weight form, chosen per CPU at load: one artifact, the exact and fastest kernel.

ONNX Runtime's dynamic int8 products multiply uint8 activations by weights stored as uint8 or
int8, and the weight type picks the kernel: uint8 x int8 is exact and fast with VNNI / AMX and
on non-x86 CPUs, but saturates on x86 without VNNI; uint8 x uint8 is exact everywhere, on a
slower widening path. The two forms are the same numbers: flipping the top bit of every weight
byte and of its zero point turns ``q - z`` (uint8) into ``(q - 128) - (z - 128)`` (int8), scales
unchanged. This module finds the weights of the int8 products in the ONNX bytes (no ``onnx``
package: the light install's protobuf reader) and rewrites them to the form asked for.
"""

from __future__ import annotations

import mmap
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from .._protobuf import Buffer, ProtoReader, varint_bytes
from ..errors import InputError
from .cpu import WEIGHT_FORMS, best_weight_form, int8_kernel

INT8_WEIGHTS = ("auto", *WEIGHT_FORMS)

# ModelProto.graph = 7; GraphProto.node = 1, initializer = 5; NodeProto.input = 1, op_type = 4;
# TensorProto.data_type = 2, int32_data = 5, name = 8, raw_data = 9, data_location = 14.
_GRAPH, _NODE, _INIT = 7, 1, 5
_N_INPUT, _N_OP = 1, 4
_T_TYPE, _T_INT32, _T_NAME, _T_RAW, _T_LOCATION = 2, 5, 8, 9, 14
_UINT8, _INT8 = 2, 3
_FORM_OF = {_UINT8: "uint8", _INT8: "int8"}
_TYPE_OF = {v: k for k, v in _FORM_OF.items()}

# The int8 products and the input slots of their constant weight and its zero point.
_PRODUCTS = {"MatMulInteger": (1, 3), "DynamicQuantizeMatMul": (1, 4), "MatMulIntegerToFloat": (1, 5),
             "QAttention": (1, 7)}
# Other readers a flipped tensor may have: the int8 embedding lookup gathers the decoder's codes and
# zero points and subtracts one from the other, which the flip leaves unchanged.
_ALSO_READ_BY = {("Gather", 0)}
_SUBGRAPH_OPS = {"If", "Loop", "Scan"}
_BLOCK = 1 << 16  # flipped in blocks this size while writing: no large temporary array


@dataclass(frozen=True)
class Flipped:
    """Bytes to write with every top bit flipped."""

    view: memoryview

    def __len__(self) -> int:
        return len(self.view)


Chunk = Union[bytes, memoryview, Flipped]


@dataclass(frozen=True)
class WeightScan:
    """What the int8 products of a graph read: the weight-form tensors and how they are stored."""

    forms: frozenset[str]  # "uint8" / "int8" of the product weights found
    tensors: dict[str, tuple[int, int, int]]  # name -> (key offset, content start, end) of the TensorProto
    types: dict[str, int]  # name -> its ONNX element type
    graph: tuple[int, int, int]  # (key offset, content start, content end) of ModelProto.graph
    refusal: str | None  # why this graph cannot be converted, if it cannot

    @property
    def stored(self) -> str:
        return next(iter(self.forms)) if len(self.forms) == 1 else "mixed" if self.forms else "none"


@dataclass(frozen=True)
class Int8Choice:
    """The weight form a session got: what was asked, what the file stores, what ran."""

    requested: str
    stored: str
    form: str
    kernel: str
    converted: int  # tensors rewritten at load (0: the file's own form)
    seconds: float  # reading, scanning and rewriting the file at load


def check_int8_weights(value: object) -> str:
    if value not in INT8_WEIGHTS:
        raise InputError(f"unknown int8_weights {value!r}; valid: {list(INT8_WEIGHTS)} "
                         "(auto: the form whose int8 products are exact and fastest on this CPU)")
    return str(value)


def scan(data: Buffer, source: str = "ONNX file") -> WeightScan:
    """Find the constant weights (and zero points) of ``data``'s int8 products."""
    kind = "ONNX file"
    graph = None
    for num, wt, span, at in ProtoReader(data, source, kind=kind).fields_at():
        if num == _GRAPH and wt == 2:
            graph = (at, span[0], span[1])
    if graph is None:
        return WeightScan(frozenset(), {}, {}, (0, 0, 0), "no graph")
    inits: dict[str, tuple[int, int, int]] = {}
    readers: dict[str, list[tuple[str, int]]] = {}
    products: list[tuple[str, list[str]]] = []
    subgraphs = False
    for num, wt, span, at in ProtoReader(data, source, graph[1], graph[2], kind).fields_at():
        if wt != 2:
            continue
        if num == _INIT:
            inits[_tensor_name(data, span, source)] = (at, *span)
        elif num == _NODE:
            op, inputs = _node(data, span, source)
            subgraphs |= op in _SUBGRAPH_OPS
            for slot, name in enumerate(inputs):
                readers.setdefault(name, []).append((op, slot))
            if op in _PRODUCTS:
                products.append((op, inputs))
    weights: set[str] = set()
    refusal = "the graph has subgraphs (If / Loop / Scan)" if subgraphs else None
    for op, inputs in products:
        slots = _PRODUCTS[op]
        names = [inputs[s] if s < len(inputs) else "" for s in slots]
        if not all(n in inits for n in names):
            if names[0] in inits:
                refusal = refusal or f"a {op} weight without a constant zero point"
            continue  # a product of two activations: nothing stored to convert
        weights.update(names)
    forms = set()
    types = {}
    for name in weights:
        info = _tensor_info(data, inits[name][1:], source)
        types[name] = info["type"]
        if info["type"] not in _FORM_OF:
            refusal = refusal or f"weight {name!r} is neither uint8 nor int8"
            continue
        forms.add(_FORM_OF[info["type"]])
        if info["external"]:
            refusal = refusal or f"weight {name!r} is stored outside the ONNX file"
        for op, slot in readers.get(name, []):
            if slot not in _PRODUCTS.get(op, ()) and (op, slot) not in _ALSO_READ_BY:
                refusal = refusal or f"weight {name!r} is also read by {op} (input {slot})"
    return WeightScan(frozenset(forms), {n: inits[n] for n in weights}, types, graph, refusal)


def convert(data: Buffer, found: WeightScan, form: str) -> tuple[list[Chunk], int]:
    """``data`` with every product weight and zero point in ``form``, as chunks to write in
    order (:func:`write_chunks`), and how many tensors changed. Exact: the top bit of each
    byte flips."""
    view = memoryview(data)
    key, start, end = found.graph
    changed = sorted(span for name, span in found.tensors.items() if found.types[name] != _TYPE_OF[form])
    if not changed:
        return [view], 0
    body: list[Chunk] = []
    at = start
    for field_at, content_start, content_end in changed:
        tensor = _flipped_tensor(data, (content_start, content_end), _TYPE_OF[form])
        size = sum(len(c) for c in tensor)
        body += [view[at:field_at], varint_bytes(_INIT << 3 | 2) + varint_bytes(size), *tensor]
        at = content_end
    body.append(view[at:end])
    size = sum(len(b) for b in body)
    head: list[Chunk] = [view[:key], varint_bytes(_GRAPH << 3 | 2) + varint_bytes(size)]
    return [*head, *body, view[end:]], len(changed)


def write_chunks(chunks: Sequence[Chunk], out: BinaryIO) -> None:
    """Write what :func:`convert` returned."""
    block = np.empty(_BLOCK, np.uint8)
    for chunk in chunks:
        if not isinstance(chunk, Flipped):
            out.write(chunk)
            continue
        src = np.frombuffer(chunk.view, np.uint8)
        for at in range(0, src.size, _BLOCK):
            part = src[at : at + _BLOCK]
            np.bitwise_xor(part, np.uint8(0x80), out=block[: part.size])
            out.write(block[: part.size].data)
        del src, part


@contextmanager
def int8_graph(path: Path, requested: str, stored: str | None = None) -> Iterator[tuple[Path, Int8Choice]]:
    """The int8 graph at ``path`` in the weight form ``requested`` (``auto``: the best for this
    CPU): yields the file to open and what was chosen. ``stored`` is the form the manifest
    records: where it is the one wanted, the file is used as it is, unread. A converted graph
    lives in a temporary file for the ``with`` block only (ONNX Runtime opening a file holds less
    memory at its peak than opening bytes)."""
    requested = check_int8_weights(requested)
    started = time.perf_counter()
    want = best_weight_form() if requested == "auto" else requested
    if stored == want:
        yield path, Int8Choice(requested, stored, want, _kernel(want), 0, time.perf_counter() - started)
        return
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        found = scan(data, str(path))
        name, count = _converted_copy(data, found, requested, want, path) if found.forms else (None, 0)
    seconds = time.perf_counter() - started
    if name is None:  # the file as it is
        form = found.stored if found.refusal is not None or not found.forms else want
        kernel = _kernel(form) if found.forms else "no int8 weight products"
        yield path, Int8Choice(requested, found.stored, form, kernel, 0, seconds)
        return
    try:
        yield Path(name), Int8Choice(requested, found.stored, want, _kernel(want), count, seconds)
    finally:
        os.unlink(name)


def _converted_copy(data: mmap.mmap, found: WeightScan, requested: str, want: str,
                    path: Path) -> tuple[str | None, int]:
    """A temporary file holding the graph in the form ``want`` and the tensors converted; no
    file where the graph itself will do."""
    if found.refusal is not None:
        if requested != "auto" and found.forms != {want}:
            raise InputError(f"{path}: int8_weights={requested!r} needs a weight conversion this graph does "
                             f"not allow ({found.refusal}); use int8_weights='auto'")
        return None, 0
    chunks, count = convert(data, found, want)
    if not count:
        return None, 0
    fd, name = tempfile.mkstemp(prefix=f"albert-onnx-{want}-", suffix=".onnx")
    try:
        with os.fdopen(fd, "wb") as out:
            write_chunks(chunks, out)
    except BaseException:
        os.unlink(name)
        raise
    finally:
        del chunks  # the views into the mapped file go before it closes
    return name, count


def _kernel(form: str) -> str:
    return int8_kernel(form) if form in WEIGHT_FORMS else f"mixed weight forms ({form})"


def _tensor_name(data: Buffer, span: tuple[int, int], source: str) -> str:
    for num, wt, value in ProtoReader(data, source, span[0], span[1], "ONNX tensor").fields():
        if num == _T_NAME and wt == 2:
            return bytes(data[value[0] : value[1]]).decode("utf-8", "replace")
    return ""


def _node(data: Buffer, span: tuple[int, int], source: str) -> tuple[str, list[str]]:
    op, inputs = "", []
    for num, wt, value in ProtoReader(data, source, span[0], span[1], "ONNX node").fields():
        if wt == 2 and num in (_N_INPUT, _N_OP):
            text = bytes(data[value[0] : value[1]]).decode("utf-8", "replace")
            if num == _N_OP:
                op = text
            else:
                inputs.append(text)
    return op, inputs


def _tensor_info(data: Buffer, span: tuple[int, int], source: str) -> dict[str, int]:
    info = {"type": 0, "external": 0}
    for num, wt, value in ProtoReader(data, source, span[0], span[1], "ONNX tensor").fields():
        if num == _T_TYPE and wt == 0:
            info["type"] = value
        elif num == _T_LOCATION and wt == 0:
            info["external"] = int(value == 1)
    return info


def _flipped_tensor(data: Buffer, span: tuple[int, int], new_type: int) -> list[Chunk]:
    """The TensorProto at ``span``, as chunks, with its type set to ``new_type`` and every byte's
    top bit flipped; values held as int32_data come out as raw_data (one byte each)."""
    out: list[Chunk] = []
    fields = list(ProtoReader(data, "ONNX file", span[0], span[1], "ONNX tensor").fields_at())
    codes: list[np.ndarray] = []  # the low bytes of int32_data values, packed or not
    for k, (num, wt, value, at) in enumerate(fields):
        stop = fields[k + 1][3] if k + 1 < len(fields) else span[1]
        if num == _T_TYPE and wt == 0:
            out.append(varint_bytes(_T_TYPE << 3) + varint_bytes(new_type))
        elif num == _T_RAW and wt == 2:
            out += [varint_bytes(_T_RAW << 3 | 2) + varint_bytes(value[1] - value[0]),
                    Flipped(memoryview(data)[value[0] : value[1]])]
        elif num == _T_INT32 and wt == 0:
            codes.append(np.array([value & 0xFF], np.uint8))
        elif num == _T_INT32 and wt == 2:
            codes.append(_low_bytes(np.frombuffer(data, np.uint8, value[1] - value[0], value[0])))
        else:
            out.append(memoryview(data)[at:stop])
    if codes:  # int32 holds one sign-extended byte each: keep the low byte; flip every top bit
        raw = (codes[0] if len(codes) == 1 else np.concatenate(codes)) ^ np.uint8(0x80)
        out += [varint_bytes(_T_RAW << 3 | 2) + varint_bytes(raw.size), raw.tobytes()]
    return out


def _low_bytes(packed: np.ndarray) -> np.ndarray:
    """The low 8 bits of each varint in ``packed``: 7 bits from its first byte, 1 from its second."""
    ends = np.flatnonzero(packed < 0x80)
    starts = np.concatenate(([0], ends[:-1] + 1))
    second = np.where(ends > starts, packed[np.minimum(starts + 1, packed.size - 1)] & 1, 0)
    return ((packed[starts] & 0x7F) | (second << 7)).astype(np.uint8)
