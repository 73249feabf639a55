"""Dynamic int8 quantization of the fused graph."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

# Chosen by measurement (benchmarks/quant_study.py, README "int8"): per-channel weights over
# their full range, uint8 activations (ONNX Runtime's dynamic quantization), and the word
# embeddings shared in int8 with the tied decoder (share_int8_embeddings). Weights are uint8
# by default: ONNX Runtime computes uint8 x int8 on x86 CPUs without VNNI with 16-bit sums
# that saturate (shared model, held-out masks, AVX2: top-1 agreement 0.908 against 0.975 with
# uint8 weights, which every CPU computes exactly); "int8" weights are faster on VNNI CPUs.
INT8_WEIGHTS = ("uint8", "int8")
DEFAULT_INT8: dict[str, Any] = {"per_channel": True, "reduce_range": False, "weight_type": "uint8",
                "op_types": ["Attention", "MatMul", "Gather"]}


def quantize_int8(src: Path, dst: Path, *, per_channel: bool, reduce_range: bool, weight_type: str,
                  op_types: list[str], exclude: list[str] | None = None) -> None:
    """Dynamic int8 quantization of the ONNX file ``src`` into ``dst`` (weights ``uint8`` or
    ``int8``)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice about static pre-processing
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            weights = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[weight_type]
            quantize_dynamic(str(src), str(dst), weight_type=weights,
                             per_channel=per_channel, reduce_range=reduce_range,
                             op_types_to_quantize=op_types, nodes_to_exclude=exclude or [],
                             extra_options={"MatMulConstBOnly": True, "DefaultTensorType": 1})
    finally:
        root.setLevel(level)


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


def share_int8_embeddings(model: Any) -> dict[str, Any]:
    """Let the embedding lookup read the decoder's int8 copy of the tied word embeddings.

    Dynamic quantization turns the tied decoder (Gemm with transB on the embedding matrix)
    into an int8, per-vocabulary-row quantized ``[embedding, vocab]`` copy, while the lookup
    keeps the float ``[vocab, embedding]`` matrix: the file then holds the matrix twice. Here
    the lookup table becomes Transpose(Cast(int8) * scale), a subgraph of initializers only,
    which ONNX Runtime folds once when the session is created: the file holds the int8 matrix
    once, and each word vector is its per-row int8 reconstruction.
    """
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    embed = next((n for n in g.node if n.op_type == "EmbedLayerNormalization"), None)
    if embed is None:
        return {"shared": False, "reason": "no EmbedLayerNormalization node"}
    word = embed.input[2]
    qname, sname, zname = (f"{word}_Transposed_quantized", f"{word}_Transposed_scale",
                           f"{word}_Transposed_zero_point")
    if qname not in inits or sname not in inits or word not in inits:
        return {"shared": False, "reason": "decoder was not quantized from the tied weights"}
    users = [n for n in g.node if word in n.input]
    if users != [embed]:
        return {"shared": False, "reason": "the float embedding matrix has other users"}
    zp = numpy_helper.to_array(inits[zname]) if zname in inits else None
    cast = f"{word}_int8_as_float"
    nodes = [helper.make_node("Cast", [qname], [cast], to=1, name="shared_embedding_cast")]
    source = cast
    if zp is not None and zp.any():
        zf = f"{zname}_as_float"
        nodes.append(helper.make_node("Cast", [zname], [zf], to=1, name="shared_embedding_zp_cast"))
        nodes.append(helper.make_node("Sub", [cast, zf], [f"{cast}_centered"], name="shared_embedding_zp"))
        source = f"{cast}_centered"
    nodes += [
        helper.make_node("Mul", [source, sname], [f"{word}_scaled_t"], name="shared_embedding_scale"),
        helper.make_node("Transpose", [f"{word}_scaled_t"], [f"{word}_from_int8"], perm=[1, 0],
                         name="shared_embedding_transpose"),
    ]
    embed.input[2] = f"{word}_from_int8"
    saved = int(numpy_helper.to_array(inits[word]).nbytes)
    g.initializer.remove(inits[word])
    # put the new nodes first: they depend on initializers only
    old = list(g.node)
    del g.node[:]
    g.node.extend(nodes + old)
    return {"shared": True, "float_bytes_removed": saved}
