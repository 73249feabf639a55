"""A task's torch head -> one optimized ONNX graph (trace, fuse, de-duplicate: head-agnostic).

The graph interface is the runtime's table ``albert_onnx.engine.io.GRAPH_IO``: every graph
takes ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64 ``[batch, seq]``); the
fill-mask graph also ``mask_positions`` (int64 ``[masks]``, flat ``b * seq + s``) and
``top_k`` (int64 ``[1]``), and returns ``top_probs``/``top_ids`` ``[masks, k]`` and the
``logits`` ``[masks, vocab]`` at those positions (every position gives the full logits).
Text classification returns ``logits`` ``[batch, labels]``, token classification
``logits`` ``[batch, seq, labels]``, feature extraction ``last_hidden_state``
``[batch, seq, hidden]``.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from albert_onnx.engine.io import ENCODER_INPUTS, FILL_MASK, GRAPH_IO, POSITION, TEXT, TOKEN

from .heads import Head

_AXES = {POSITION: {0: "masks"}, TEXT: {0: "batch"}, TOKEN: {0: "batch", 1: "sequence"}}


def export_raw(head: Head, vocab_size: int, path: Path, opset: int) -> None:
    """Trace ``head`` with dynamic batch and sequence axes."""
    import torch

    ids = torch.randint(5, min(vocab_size, 100), (2, 11))
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids), *head.example_extra)
    seq_axes = {0: "batch", 1: "sequence"}
    inputs = [*ENCODER_INPUTS] + (["mask_positions"] if head.task == FILL_MASK else [])
    axes = {name: seq_axes for name in ENCODER_INPUTS}
    if head.task == FILL_MASK:
        axes["mask_positions"] = {0: "masks"}
    for name in head.outputs:
        axes[name] = _AXES[GRAPH_IO[head.task].outputs[name]]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(head.module.eval(), args, str(path), input_names=inputs,
                          output_names=list(head.outputs), dynamic_axes=axes, opset_version=opset,
                          do_constant_folding=True, dynamo=False)


def prepare_for_fusion(model: Any) -> None:
    """Clean the traced graph so ONNX Runtime's BERT fusions match on every layer.

    * ALBERT reuses one layer's weights in every layer; the tracer reads them through
      Identity nodes, which hide them from the fusion patterns: read the initializers directly.
    * In the first layer the residual input of the attention's Add is itself an Add (the
      embedding projection), and the attention pattern matcher takes the first Add parent it
      sees; put the attention output first, as it is in the other layers (Add commutes).
    """
    g = model.graph
    inits = {i.name for i in g.initializer}
    alias = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Identity" and n.input[0] in inits}
    outputs = {o.name for o in g.output}
    kept = [n for n in g.node if not (n.op_type == "Identity" and n.output[0] in alias
                                      and n.output[0] not in outputs)]
    for n in kept:
        for k, name in enumerate(n.input):
            if name in alias and name not in outputs:
                n.input[k] = alias[name]
    del g.node[:]
    g.node.extend(kept)

    consumers: dict[str, list[Any]] = {}
    for n in g.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    producer = {o: n for n in g.node for o in n.output}
    for n in g.node:
        if n.op_type != "Add" or len(n.input) != 2:
            continue
        if not any(c.op_type == "LayerNormalization" for c in consumers.get(n.output[0], [])):
            continue
        residual, other = n.input
        is_root = sum(c.op_type == "MatMul" for c in consumers.get(residual, [])) >= 3
        if is_root and residual in producer and producer[residual].op_type == "Add":
            n.input[0], n.input[1] = other, residual


def add_top_k(model: Any) -> None:
    """Append softmax and top-k over the vocabulary after the masked logits."""
    from onnx import TensorProto, helper

    g = model.graph
    g.input.append(helper.make_tensor_value_info("top_k", TensorProto.INT64, [1]))
    g.node.extend([
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="masked_softmax"),
        helper.make_node("TopK", ["probs", "top_k"], ["top_probs", "top_ids"], axis=-1,
                         largest=1, sorted=1, name="masked_top_k"),
    ])
    logits = [o for o in g.output if o.name == "logits"][0]
    elem = logits.type.tensor_type.elem_type
    del g.output[:]
    g.output.extend([
        helper.make_tensor_value_info("top_probs", elem, ["masks", "k"]),
        helper.make_tensor_value_info("top_ids", TensorProto.INT64, ["masks", "k"]),
        logits,
    ])


def optimize(path_in: Path, config: Any) -> Any:
    """ONNX Runtime's transformer fusions (attention, skip-layer-norm, GELU, embeddings)."""
    from onnxruntime.transformers import optimizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = optimizer.optimize_model(str(path_in), model_type="bert",
                                       num_heads=int(config.num_attention_heads),
                                       hidden_size=int(config.hidden_size), opt_level=0)
    return opt.model, opt.get_fused_operator_statistics()


def dedupe_initializers(model: Any) -> dict[str, int]:
    """Store identical initializers once (the fusions repeat ALBERT's shared layer weights)."""
    from onnx import numpy_helper

    g = model.graph
    first: dict[tuple[Any, ...], str] = {}
    rename: dict[str, str] = {}
    kept = []
    before = after = 0
    for init in g.initializer:
        raw = numpy_helper.to_array(init)
        before += raw.nbytes
        key = (init.data_type, tuple(init.dims), hashlib.sha256(raw.tobytes()).hexdigest())
        if key in first:
            rename[init.name] = first[key]
        else:
            first[key] = init.name
            kept.append(init)
            after += raw.nbytes
    for n in g.node:
        for k, name in enumerate(n.input):
            if name in rename:
                n.input[k] = rename[name]
    del g.initializer[:]
    g.initializer.extend(kept)
    return {"initializer_bytes_before": int(before), "initializer_bytes_after": int(after),
            "duplicates_removed": len(rename)}


def split_skip_layer_norms(model: Any, opset: int) -> int:
    """Each ``SkipLayerNormalization`` back to ``Add`` (+ bias ``Add``) + ``LayerNormalization``.

    ONNX Runtime 1.30 and later run the fused op several times slower than the plain pair
    (measured on AVX-512 VNNI and AMX: base shape int8 graph 15-20 % faster end to end split;
    earlier versions run both alike). Needs opset 17 (``LayerNormalization``); returns the
    number of nodes split.
    """
    from onnx import helper

    if opset < 17:
        return 0
    g = model.graph
    read = {name for n in g.node for name in n.input} | {o.name for o in g.output}
    nodes, split = [], 0
    for n in g.node:
        outs = list(n.output) + [""] * 4
        if n.op_type != "SkipLayerNormalization" or outs[1] in read or outs[2] in read:
            nodes.append(n)
            continue
        x, skip, gamma, beta, bias = (list(n.input) + [""] * 5)[:5]
        eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-12)
        p = f"split_sln_{split}_"
        total = outs[3] if outs[3] in read else p + "sum"
        if bias:
            nodes += [helper.make_node("Add", [x, skip], [p + "residual"]),
                      helper.make_node("Add", [p + "residual", bias], [total])]
        else:
            nodes.append(helper.make_node("Add", [x, skip], [total]))
        nodes.append(helper.make_node("LayerNormalization", [total, gamma] + ([beta] if beta else []), [outs[0]],
                                      axis=-1, epsilon=eps, name=p + "layer_norm"))
        split += 1
    del g.node[:]
    g.node.extend(nodes)
    return split


def fused_counts(stats: dict[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in stats.items() if v}


def build_graph(head: Head, config: Any, workdir: Path, opset: int, log: Any) -> tuple[Any, dict[str, Any]]:
    """Export, fuse and deduplicate; return the ONNX ModelProto and what was done."""
    import onnx

    raw = workdir / "raw.onnx"
    export_raw(head, int(config.vocab_size), raw, opset)
    proto = onnx.load(str(raw))
    prepare_for_fusion(proto)
    if head.task == FILL_MASK:
        add_top_k(proto)
    prepared = workdir / "prepared.onnx"
    onnx.save(proto, str(prepared))
    fused, stats = optimize(prepared, config)
    if not any(o.domain == "com.microsoft" for o in fused.opset_import):
        fused.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    dedupe = dedupe_initializers(fused)
    counts = fused_counts(stats)
    split = split_skip_layer_norms(fused, opset)
    layers = int(config.num_hidden_layers)
    log(f"fusions: {counts} ({counts.get('Attention', 0)}/{layers} attention layers fused; "
        f"{split} SkipLayerNormalization split into Add + LayerNormalization)")
    return fused, {"fusions": counts, "dedupe": dedupe, "opset": opset, "skip_layer_norms_split": split}


def tensor_bytes(model: Any) -> int:
    from onnx import numpy_helper

    return int(sum(numpy_helper.to_array(i).nbytes for i in model.graph.initializer))

