"""A float simulation of an int8 graph with exact integer arithmetic: the reference that an
exact int8 kernel must match, whatever the weight form.

Every ``MatMulInteger`` becomes ``(A - a_zp) @ (B - b_zp)`` in float64 (exact: the sums stay far
below 2**53), cast to int32 as the op returns it. Every ``QAttention`` computes its QKV product
the same way, scales and biases it, and hands it to the float ``Attention`` core. The rest of the
graph (dynamic activation quantization included) is unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def simulated_graph(path: Path) -> bytes:
    """The int8 graph at ``path`` with its integer products computed exactly in float."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}

    def array(name: str) -> Any:
        return numpy_helper.to_array(inits[name])

    nodes: list[Any] = []
    for k, n in enumerate(g.node):
        p = f"sim{k}_"
        if n.op_type == "MatMulInteger":
            a, b = n.input[0], n.input[1]
            a_zp = n.input[2] if len(n.input) > 2 and n.input[2] else None
            b_zp = n.input[3] if len(n.input) > 3 and n.input[3] else None
            centered_b = array(b).astype(np.float64) - (array(b_zp).astype(np.float64) if b_zp else 0.0)
            g.initializer.append(numpy_helper.from_array(centered_b, p + "b"))
            nodes.append(helper.make_node("Cast", [a], [p + "a"], to=TensorProto.DOUBLE))
            left = p + "a"
            if a_zp:
                nodes += [helper.make_node("Cast", [a_zp], [p + "azp"], to=TensorProto.DOUBLE),
                          helper.make_node("Sub", [p + "a", p + "azp"], [p + "ac"])]
                left = p + "ac"
            nodes += [helper.make_node("MatMul", [left, p + "b"], [p + "y"]),
                      helper.make_node("Cast", [p + "y"], [n.output[0]], to=TensorProto.INT32)]
        elif n.op_type == "QAttention":
            # the QKV product exactly, scaled and biased as the kernel does, then ONNX Runtime's own
            # float attention core on it (an identity weight and a zero bias change nothing)
            x, w, bias, x_scale, w_scale, mask, x_zp, w_zp = (list(n.input) + [""] * 9)[:8]
            centered_w = array(w).astype(np.float64) - array(w_zp).astype(np.float64)
            width = centered_w.shape[1]
            g.initializer.extend([numpy_helper.from_array(centered_w, p + "w"),
                                  numpy_helper.from_array(np.eye(width, dtype=np.float32), p + "eye"),
                                  numpy_helper.from_array(np.zeros(width, np.float32), p + "zeros")])
            nodes += [helper.make_node("Cast", [x], [p + "x"], to=TensorProto.DOUBLE),
                      helper.make_node("Cast", [x_zp], [p + "xzp"], to=TensorProto.DOUBLE),
                      helper.make_node("Sub", [p + "x", p + "xzp"], [p + "xc"]),
                      helper.make_node("MatMul", [p + "xc", p + "w"], [p + "acc"]),
                      helper.make_node("Cast", [p + "acc"], [p + "acc_i"], to=TensorProto.INT32),
                      helper.make_node("Cast", [p + "acc_i"], [p + "acc_f"], to=TensorProto.FLOAT),
                      helper.make_node("Mul", [x_scale, w_scale], [p + "scale"]),
                      helper.make_node("Mul", [p + "acc_f", p + "scale"], [p + "scaled"]),
                      helper.make_node("Add", [p + "scaled", bias], [p + "qkv"])]
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute if a.name == "num_heads"}
            nodes.append(helper.make_node("Attention", [p + "qkv", p + "eye", p + "zeros", mask], list(n.output),
                                          domain="com.microsoft", **attrs))
        else:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    return bytes(model.SerializeToString())


def run_graph(graph: bytes | Path, feed: dict[str, np.ndarray], output: str) -> np.ndarray:
    """One output of ``graph`` on the CPU, with ONNX Runtime's basic optimizations only (no fusion
    that could reintroduce an integer kernel)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.log_severity_level = 3
    source = graph if isinstance(graph, bytes) else str(graph)
    session = ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    return np.asarray(session.run([output], feed)[0])
