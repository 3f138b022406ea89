"""Parameters and MACs of an ONNX file, read from its graph (fp32 or QDQ/int8).

Parameters: elements of the initializers that hold weights or biases, i.e. every initializer except
quantization scales/zero-points (inputs 1-2 of (De)QuantizeLinear, scale/zp inputs of QLinear ops)
and int64 shape constants.  MACs use the same formulas as counting.py on the shapes ONNX shape
inference gives for the requested input shape.
"""
from __future__ import annotations

import math
from pathlib import Path

from compress.profile.counting import LayerStat

from compress.errors import UserError

__all__ = ["load_onnx_checked", "onnx_input_shape", "check_onnx_input", "onnx_layers", "onnx_is_int8"]

_QDQ_PARAMS = {"QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2), "DynamicQuantizeLinear": (),
               "QLinearMatMul": (1, 2, 4, 5, 6, 7), "QLinearConv": (1, 2, 4, 5, 6, 7),
               "QGemm": (1, 2, 4, 5, 7, 8), "MatMulInteger": (2, 3), "ConvInteger": (2, 3)}
_INT_OPS = {"QLinearMatMul", "QLinearConv", "QGemm", "MatMulInteger", "ConvInteger", "QuantizeLinear",
            "DequantizeLinear", "DynamicQuantizeLinear"}


def load_onnx_checked(path: str | Path):
    """onnx.ModelProto or a one-line ValueError if the file is not an ONNX model."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    try:
        model = onnx.load(str(path))
    except Exception:  # noqa: BLE001 - protobuf raises several types
        raise UserError(f"{path} is not an ONNX model") from None
    if not model.graph.node and not model.graph.input:
        raise UserError(f"{path} is not an ONNX model (empty graph)")
    return model


def onnx_input_shape(model) -> list:
    """Shape of the first graph input that is not an initializer: ints, or names for symbolic dims."""
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = []
        for d in inp.type.tensor_type.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
        return dims
    raise UserError("ONNX graph has no input")


def check_onnx_input(model, shape: list[int], source: str = "model") -> list[int]:
    """Fill symbolic dims with 1 (batch) when shape is None; else check it fits; returns the shape."""
    expected = onnx_input_shape(model)
    if shape is None:
        return [d if isinstance(d, int) and d > 0 else 1 for d in expected]
    shape = [int(d) for d in shape]
    fits = len(shape) == len(expected) and all(
        not (isinstance(e, int) and e > 0) or e == s for e, s in zip(expected, shape))
    if not fits:
        raise UserError(f"input shape {shape} does not fit {source}: expected {expected}")
    return shape


def onnx_is_int8(model) -> bool:
    return any(n.op_type in _INT_OPS for n in model.graph.node)


def _numel(t) -> int:
    return math.prod(t.dims) if len(t.dims) else 1


def onnx_layers(model, shape: list[int]) -> list[LayerStat]:
    """Per compute node: weight/bias parameters and MACs for an input of ``shape``."""
    import onnx
    from onnx import TensorProto, shape_inference

    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name: i for i in m.graph.initializer}
    for inp in m.graph.input:
        if inp.name not in inits:
            dims = inp.type.tensor_type.shape.dim
            for d, v in zip(dims, shape):
                d.ClearField("dim_param")
                d.dim_value = int(v)
            break
    try:
        m = shape_inference.infer_shapes(m)
    except Exception:  # noqa: BLE001 - MACs then stay 0 where shapes are unknown
        pass
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for name, t in inits.items():
        shapes[name] = list(t.dims)

    excluded = set()
    for node in m.graph.node:
        for idx in _QDQ_PARAMS.get(node.op_type, ()):
            if idx < len(node.input):
                excluded.add(node.input[idx])
        if node.op_type in ("Reshape", "Expand", "Tile", "Slice", "Unsqueeze", "Squeeze", "Pad", "Resize"):
            excluded.update(node.input[1:])
    # producer of each tensor, to follow DequantizeLinear / Transpose / Cast back to an initializer
    producer = {o: n for n in m.graph.node for o in n.output}

    def source_init(name, depth=0):
        if name in inits:
            return name if name not in excluded and inits[name].data_type != TensorProto.INT64 else None
        n = producer.get(name)
        if n is None or depth > 3 or n.op_type not in ("DequantizeLinear", "Transpose", "Cast", "Identity"):
            return None
        return source_init(n.input[0], depth + 1)

    counted = set()
    layers = []
    for i, node in enumerate(m.graph.node):
        if node.op_type in ("DequantizeLinear", "QuantizeLinear", "Transpose", "Cast", "Identity", "Constant"):
            continue
        own = []
        for inp in node.input:
            src = source_init(inp) if inp else None
            if src is not None and src not in counted:
                own.append(src)
        params = sum(_numel(inits[s]) for s in own)
        counted.update(own)
        macs = _node_macs(node, shapes, inits)
        if params == 0 and macs == 0:
            continue
        out = shapes.get(node.output[0]) if node.output else None
        layers.append(LayerStat(node.name or f"{node.op_type}_{i}", node.op_type, params, macs, out or []))
    return layers


def _known(dims) -> bool:
    return dims is not None and len(dims) > 0 and all(isinstance(d, int) and d > 0 for d in dims)


def _node_macs(node, shapes, inits) -> int:
    op = node.op_type
    out = shapes.get(node.output[0]) if node.output else None
    a = shapes.get(node.input[0]) if node.input else None
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        if _known(out) and _known(a):
            return math.prod(out) * a[-1]
    elif op in ("Gemm", "QGemm"):
        trans_a = next((at.i for at in node.attribute if at.name == "transA"), 0)
        if _known(out) and _known(a):
            return math.prod(out) * (a[0] if trans_a else a[-1])
    elif op in ("Conv", "ConvInteger", "QLinearConv"):
        w = shapes.get(node.input[3 if op == "QLinearConv" else 1])
        if _known(out) and _known(w):
            return math.prod(out) * math.prod(w[1:])
    elif op == "ConvTranspose":
        w = shapes.get(node.input[1])
        if _known(a) and _known(w):
            return math.prod(a) * math.prod(w[1:])
    elif op in ("GRU", "LSTM", "RNN"):
        w, r = shapes.get(node.input[1]), shapes.get(node.input[2])
        if _known(w) and _known(r) and _known(a):
            steps, batch = a[0], a[1]  # ONNX default layout [seq, batch, input]
            layout = next((at.i for at in node.attribute if at.name == "layout"), 0)
            if layout == 1:
                batch, steps = a[0], a[1]
            return (math.prod(w) + math.prod(r)) * steps * batch
    return 0
