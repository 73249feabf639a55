"""Dynamic int8 quantization of the fused graph."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

# Chosen by measurement (benchmarks/quant_study.py, docs/int8.md): per-channel weights over their
# full range, asymmetric (uint8 codes, a zero point per channel), uint8 activations (ONNX Runtime's
# dynamic quantization), and the word embeddings looked up in int8 (int8_embedding_lookup), shared
# with a tied decoder. The file stores those numbers in the form "weight_type" names: "int8" (the
# default: every top bit flipped, what VNNI / AMX and non-x86 CPUs multiply fastest, so they load
# it as it is) or "uint8"; the runtime converts at load where the CPU wants the other form.
INT8_WEIGHTS = ("int8", "uint8")
DEFAULT_INT8: dict[str, Any] = {"per_channel": True, "reduce_range": False, "weight_type": "int8",
                "quantized_as": "uint8", "op_types": ["Attention", "MatMul", "Gather"]}


def quantize_int8(src: Path, dst: Path, *, per_channel: bool, reduce_range: bool, weight_type: str,
                  op_types: list[str], exclude: list[str] | None = None, quantized_as: str | None = None) -> None:
    """Dynamic int8 quantization of the ONNX file ``src`` into ``dst``: weights quantized as
    ``quantized_as`` (``uint8``: asymmetric; ``int8``: symmetric; default ``weight_type``)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    own = _own_float_weights(src, dst, exclude or [])
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice about static pre-processing
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            weights = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[quantized_as or weight_type]
            quantize_dynamic(str(own or src), str(dst), weight_type=weights,
                             per_channel=per_channel, reduce_range=reduce_range,
                             op_types_to_quantize=op_types, nodes_to_exclude=exclude or [],
                             extra_options={"MatMulConstBOnly": True, "DefaultTensorType": 1})
    finally:
        root.setLevel(level)
        if own is not None:
            own.unlink(missing_ok=True)


WEIGHT_INPUT = {"MatMul": 1, "Attention": 1, "Gather": 0}


def _own_float_weights(src: Path, dst: Path, exclude: list[str]) -> Path | None:
    """ALBERT's layers share their weights: a node kept in float whose weight other nodes read
    quantized would get it back through a DequantizeLinear every run (slower than float, and the
    weight still rounded). Such nodes get their own float copy of the weight (one per weight);
    the graph to quantize, or None when no node needs one."""
    import onnx

    if not exclude:
        return None
    model = onnx.load(str(src))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    kept = set(exclude)
    uses: dict[str, list[tuple[Any, int]]] = {}
    for n in g.node:
        k = WEIGHT_INPUT.get(n.op_type)
        if k is not None and len(n.input) > k and n.input[k] in inits:
            uses.setdefault(n.input[k], []).append((n, k))
    changed = False
    for name, readers in uses.items():
        floats = [(n, k) for n, k in readers if n.name in kept]
        if floats and len(floats) < len(readers):
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[name])
            copy.name = f"{name}_float"
            g.initializer.append(copy)
            for n, k in floats:
                n.input[k] = copy.name
            changed = True
    if not changed:
        return None
    out = dst.with_name(dst.name + ".own-float.onnx")
    onnx.save(model, str(out))
    return out


def store_weight_form(path: Path, form: str) -> int:
    """Rewrite the int8 file at ``path`` with its product weights in ``form`` (the runtime's exact
    conversion); the number of tensors changed."""
    from albert_onnx.engine import int8_form

    data = path.read_bytes()
    chunks, count = int8_form.convert(data, int8_form.scan(data, str(path)), form)
    if count:
        tmp = path.with_name(path.name + ".form")
        with open(tmp, "wb") as out:
            int8_form.write_chunks(chunks, out)
        del chunks
        tmp.replace(path)
    return count


def float_input_projection(path: Path) -> list[str]:
    """The node to leave in float: ALBERT's input projection (embedding -> hidden size, the
    ``MatMul`` reading ``EmbedLayerNormalization``'s output). Its rounding would pass through
    every layer; it is about 1 % of a layer's products (shared multiple-choice model: best-choice
    agreement with fp32 0.958 -> 1.000 on the export's questions, 0.99 -> 1.00 on 100 held-out ones)."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    embedded = {n.output[0] for n in g.node if n.op_type == "EmbedLayerNormalization"}
    return [n.name for n in g.node if n.op_type == "MatMul" and n.input[0] in embedded and n.name]


def float_tensors(model: Any) -> dict[str, int]:
    """Bytes of the float initializers left after quantization, by op type that reads them."""
    from onnx import TensorProto, numpy_helper

    users: dict[str, str] = {}
    for n in model.graph.node:
        for name in n.input:
            users.setdefault(name, n.op_type)
    out: dict[str, int] = {}
    for init in model.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            size = numpy_helper.to_array(init).nbytes
            if size >= 4096:
                key = f"{init.name} ({users.get(init.name, '?')})"
                out[key] = int(size)
    return out


def _uint8_rows(table: Any) -> tuple[Any, Any, Any]:
    """Asymmetric uint8 per row of ``table`` [V, E] (as ONNX Runtime quantizes a uint8 weight per
    channel): the codes transposed to [E, V], the scales [V] and zero points [V]."""
    import numpy as np

    lo = np.minimum(table.min(axis=1), 0.0)
    hi = np.maximum(table.max(axis=1), 0.0)
    scale = ((hi - lo) / 255.0).astype(np.float32)
    scale[scale == 0] = 1.0
    zero = np.clip(np.round(-lo / scale), 0, 255).astype(np.uint8)
    codes = np.clip(np.round(table / scale[:, None]) + zero[:, None], 0, 255).astype(np.uint8)
    return np.ascontiguousarray(codes.T), scale, zero


def int8_embedding_lookup(model: Any) -> dict[str, Any]:
    """Look the word vectors up in int8 instead of a float matrix.

    The fused ``EmbedLayerNormalization`` reads a float ``[vocab, embedding]`` matrix. Here it
    becomes the same computation in plain ops on int8 codes: gather the ids' columns of an
    ``[embedding, vocab]`` uint8 matrix with per-word scales and zero points, dequantize only
    those, add the position and token-type vectors, ``LayerNormalization``; the attention
    mask index is the mask's row sums, as the fused op gives it. With a tied decoder the
    matrix is the decoder's own quantized copy (the file holds the words once); otherwise the
    word embeddings are quantized per word here. No float copy of the matrix exists at run time
    (folding one at session creation cost about 45 MB of peak memory at the base shape).
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    embed = next((n for n in g.node if n.op_type == "EmbedLayerNormalization"), None)
    if embed is None:
        return {"int8_lookup": False, "reason": "no EmbedLayerNormalization node"}
    ids, types, word, position, token_type, gamma, beta = embed.input[:7]
    mask = embed.input[7] if len(embed.input) > 7 else ""
    extra = [x for x in embed.input[8:] if x]
    if word not in inits or not types or extra or (len(embed.output) > 1 and embed.output[1] and not mask):
        return {"int8_lookup": False, "reason": "EmbedLayerNormalization without the inputs this rewrite expects"}
    p = "int8_lookup_"
    codes, scale, zero = f"{word}_Transposed_quantized", f"{word}_Transposed_scale", f"{word}_Transposed_zero_point"
    tied = all(name in inits for name in (codes, scale, zero)) \
        and inits[codes].data_type in (TensorProto.UINT8, TensorProto.INT8) \
        and list(inits[codes].dims)[::-1] == list(inits[word].dims)
    if not tied:
        codes, scale, zero = p + "word_codes", p + "word_scale", p + "word_zero_point"
        arrays = _uint8_rows(numpy_helper.to_array(inits[word]).astype(np.float32))
        g.initializer.extend(numpy_helper.from_array(a, n) for a, n in zip(arrays, (codes, scale, zero)))
    g.initializer.extend([numpy_helper.from_array(np.array([1], dtype=np.int64), p + "axis1"),
                          numpy_helper.from_array(np.array(0, dtype=np.int64), p + "zero"),
                          numpy_helper.from_array(np.array(1, dtype=np.int64), p + "one")])
    eps = next((a.f for a in embed.attribute if a.name == "epsilon"), 1e-12)
    nodes = [
        helper.make_node("Gather", [codes, ids], [p + "codes"], axis=1),  # [E, B, S]
        helper.make_node("Cast", [p + "codes"], [p + "codes_f"], to=TensorProto.FLOAT),
        helper.make_node("Gather", [zero, ids], [p + "zp"], axis=0),  # [B, S]
        helper.make_node("Cast", [p + "zp"], [p + "zp_f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", [p + "codes_f", p + "zp_f"], [p + "centered"]),
        helper.make_node("Gather", [scale, ids], [p + "scale"], axis=0),
        helper.make_node("Mul", [p + "centered", p + "scale"], [p + "words_t"]),
        helper.make_node("Transpose", [p + "words_t"], [p + "words"], perm=[1, 2, 0]),  # [B, S, E]
        helper.make_node("Gather", [token_type, types], [p + "types"], axis=0),
        helper.make_node("Shape", [ids], [p + "shape"]),
        helper.make_node("Gather", [p + "shape", p + "one"], [p + "length"], axis=0),
        helper.make_node("Range", [p + "zero", p + "length", p + "one"], [p + "positions"]),
        helper.make_node("Gather", [position, p + "positions"], [p + "position_vectors"], axis=0),
        helper.make_node("Add", [p + "words", p + "types"], [p + "sum0"]),
        helper.make_node("Add", [p + "sum0", p + "position_vectors"], [p + "sum"]),
        helper.make_node("LayerNormalization", [p + "sum", gamma, beta], [embed.output[0]], axis=-1,
                         epsilon=eps, name=p + "layer_norm"),
    ]
    if len(embed.output) > 1 and embed.output[1]:
        nodes.append(helper.make_node("ReduceSum", [mask, p + "axis1"], [embed.output[1]], keepdims=0))
    at = list(g.node).index(embed)
    g.node.remove(embed)
    for k, node in enumerate(nodes):
        g.node.insert(at + k, node)
    saved = 0
    if not any(word in n.input for n in g.node):
        saved = int(numpy_helper.to_array(inits[word]).nbytes)
        g.initializer.remove(inits[word])
    return {"int8_lookup": True, "tied_decoder": tied, "float_bytes_removed": saved}
