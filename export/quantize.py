"""Dynamic int8 quantization of the fused graph."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

# Chosen by measurement (README, "int8"): per-channel weights, full int8 range on VNNI CPUs.
DEFAULT_INT8 = {"per_channel": True, "reduce_range": False,
                "op_types": ["Attention", "MatMul", "Gather"]}


def quantize_int8(src: Path, dst: Path, *, per_channel: bool, reduce_range: bool,
                  op_types: list[str], exclude: list[str] | None = None) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
                         reduce_range=reduce_range, op_types_to_quantize=op_types,
                         nodes_to_exclude=exclude or [],
                         extra_options={"MatMulConstBOnly": True, "DefaultTensorType": 1})


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
