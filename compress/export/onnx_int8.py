"""int8 ONNX (QDQ format) from a QAT model, written directly with ``onnx.helper``.

Why build the graph ourselves instead of exporting the fake-quant model with ``torch.onnx``: the
exporter keeps float weights behind a QuantizeLinear (no int8 storage) and its output differs between
exporters and versions; writing the QDQ graph from the QAT tensors is short, deterministic and stores
exactly what the int8 runtime needs:

    x -> QuantizeLinear(s_in, zp_in) -> DequantizeLinear ----------\
    W int8 [O, K] -> DequantizeLinear(s_w per channel, zp 0, axis 0) -> Gemm(transB) -> [Q -> DQ] -> act
    b int32 [O]  -> DequantizeLinear(s_in * s_w, axis 0) ----------/

ONNX Runtime fuses each group into an integer kernel (QGemm for Gemm, QLinearConv for Conv; ReLU is
removed because the next QuantizeLinear has zero-point -128 and clips identically). The per-channel
weight zero-point (all 0) must be stored explicitly: without it ORT 1.31 does not fuse (measured).
A Flatten between a Conv and a Linear is moved to the Linear's input and wrapped as
Q -> DQ -> Flatten -> Q -> DQ (same scale): it commutes with the elementwise activations, ORT then
runs it on int8 and the Conv before it still fuses (otherwise that Conv stays in float).
Supported: the same chains as the C export, plus Conv1d/Conv2d (zero padding).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

from compress.quant.fake_quant import ActFakeQuant, is_qat_prepared

from compress.errors import UserError

INT8_KINDS = {"linear", "conv1d", "conv2d", "relu", "leaky_relu", "tanh", "sigmoid", "identity", "flatten"}


class _Graph:
    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op: str, inputs: list[str], name_hint: str, **attrs) -> str:
        self._n += 1
        out = f"{name_hint}_{self._n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self._n}", **attrs))
        return out

    def qdq(self, x: str, scale, zp, prefix: str) -> str:
        s = self.init(f"{prefix}.scale", np.array(float(scale), dtype=np.float32))
        z = self.init(f"{prefix}.zero_point", np.array(int(zp), dtype=np.int8))
        q = self.node("QuantizeLinear", [x, s, z], f"{prefix}.q")
        return self.node("DequantizeLinear", [q, s, z], f"{prefix}.dq")


def _conv_attrs(m: nn.Module, path: str) -> dict:
    from compress.export.layer_chain import UnsupportedLayerError

    nd = len(m.kernel_size)
    if isinstance(m.padding, str):
        if m.padding == "valid":
            pads = [0] * (2 * nd)
        elif all(s == 1 for s in m.stride):
            total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
            pads = [t // 2 for t in total] + [t - t // 2 for t in total]
        else:  # pragma: no cover - PyTorch itself rejects 'same' with stride > 1
            raise UnsupportedLayerError(f"layer {path!r}: padding='same' with stride > 1")
    else:
        pads = list(m.padding) * 2
    return dict(kernel_shape=list(m.kernel_size), strides=list(m.stride), pads=pads,
                dilations=list(m.dilation), group=m.groups)


def export_onnx_int8(qat_model: nn.Module, example_input: torch.Tensor | None, path, *, opset: int = 18,
                     dynamic_batch: bool = True, verify: bool = True) -> Path:
    """Write the int8 QDQ ONNX model of a trained/calibrated QAT model to ``path`` (one file).

    ``example_input`` (None: a (1, in_features) input from the first Linear) is used to observe the
    layer chain and, with ``verify``, to check in ONNX Runtime that the artifact matches the fake-quant
    model within two output quantization steps (the tests hold it to one). Raises ValueError for a model
    that is not QAT-prepared or whose observers saw no data, UnsupportedLayerError for layers outside
    Linear/Conv1d/Conv2d/ReLU/LeakyReLU/Tanh/Sigmoid/Identity/Dropout/Flatten.
    """
    from compress.export.layer_chain import UnsupportedLayerError, _label, trace_chain
    from compress.export.onnx_export import MAX_OPSET, run_onnx, ort_session

    if not isinstance(qat_model, nn.Module):
        raise UserError(f"export_onnx_int8: model must be an nn.Module, got {type(qat_model).__name__}")
    if not is_qat_prepared(qat_model):
        raise UserError("export_onnx_int8: model is not QAT-prepared (compress.quant.prepare_qat, then train)")
    if not isinstance(opset, int) or not 13 <= opset <= MAX_OPSET:
        raise UserError(f"export_onnx_int8: opset must be an int in [13, {MAX_OPSET}], got {opset!r}")
    for p, m in qat_model.named_modules():
        if isinstance(m, ActFakeQuant) and not bool(m.initialized):
            raise UserError(f"export_onnx_int8: QAT observer {_label(p)} has seen no data: train or "
                             "calibrate the model (a forward pass in train mode) first")
    path = Path(path)
    if path.suffix != ".onnx":
        raise UserError(f"export_onnx_int8: path must end in .onnx, got {path}")
    steps = trace_chain(qat_model, example_input)
    for s in steps:
        if s.kind not in INT8_KINDS:  # pragma: no cover - trace_chain only yields known kinds
            raise UnsupportedLayerError(f"layer {_label(s.path)} of type {type(s.module).__name__} is not supported")
        if s.kind == "flatten" and s.params["end_dim"] not in (-1, len(s.in_shape) - 1):
            raise UnsupportedLayerError(f"layer {_label(s.path)} (Flatten) with end_dim="
                                        f"{s.params['end_dim']} is not supported")

    g = _Graph()
    cur = "input"
    out_scale = None
    flatten_axis = None  # a Flatten waiting to be placed (it commutes with the elementwise ops)
    for i, s in enumerate(steps):
        m, tag = s.module, (s.path or "model")
        if s.kind in ("linear", "conv1d", "conv2d"):
            if s.quantized:
                t = m.quantized_tensors()
                xq = g.qdq(cur, t["in_scale"], t["in_zp"], f"{tag}.input")
                if flatten_axis is not None:  # Q -> DQ -> Flatten -> Q -> DQ: ORT runs Flatten on int8
                    xq = g.node("Flatten", [xq], f"{tag}.flatten", axis=flatten_axis)
                    xq = g.qdq(xq, t["in_scale"], t["in_zp"], f"{tag}.input_flat")
                    flatten_axis = None
                w_int8 = t["w_int8"].cpu().numpy()
                w_axis = 1 if (s.kind == "linear" and len(s.in_shape) != 2) else 0
                if w_axis == 1:  # MatMul layout [K, O] for N-D inputs
                    w_int8 = np.ascontiguousarray(w_int8.T)
                w = g.init(f"{tag}.weight_int8", w_int8)
                ws = g.init(f"{tag}.weight_scale", t["w_scale"].cpu().numpy().astype(np.float32))
                wz = g.init(f"{tag}.weight_zero_point", np.zeros(t["w_scale"].numel(), dtype=np.int8))
                wdq = g.node("DequantizeLinear", [w, ws, wz], f"{tag}.weight", axis=w_axis)
                bdq = None
                if t["b_int32"] is not None:
                    b = g.init(f"{tag}.bias_int32", t["b_int32"].cpu().numpy())
                    bs = g.init(f"{tag}.bias_scale", t["b_scale"].cpu().numpy().astype(np.float32))
                    bdq = g.node("DequantizeLinear", [b, bs], f"{tag}.bias", axis=0)
            else:  # layer kept in float by prepare_qat(skip=...)
                t = None
                if flatten_axis is not None:
                    cur = g.node("Flatten", [cur], f"{tag}.flatten", axis=flatten_axis)
                    flatten_axis = None
                xq = cur
                wt = m.weight.detach().float().cpu().numpy()
                if s.kind == "linear" and len(s.in_shape) != 2:
                    wt = np.ascontiguousarray(wt.T)
                wdq = g.init(f"{tag}.weight", wt)
                bdq = g.init(f"{tag}.bias", m.bias.detach().float().cpu().numpy()) if m.bias is not None else None
            if s.kind == "linear" and len(s.in_shape) == 2:
                y = g.node("Gemm", [xq, wdq] + ([bdq] if bdq else []), f"{tag}.gemm", transB=1)
            elif s.kind == "linear":
                y = g.node("MatMul", [xq, wdq], f"{tag}.matmul")
                if bdq:
                    y = g.node("Add", [y, bdq], f"{tag}.add")
            else:
                y = g.node("Conv", [xq, wdq] + ([bdq] if bdq else []), f"{tag}.conv", **_conv_attrs(m, tag))
            if t is not None and t["out_scale"] is not None:
                y = g.qdq(y, t["out_scale"], t["out_zp"], f"{tag}.output")
                out_scale = float(t["out_scale"])
            cur = y
        elif s.kind == "relu":
            cur = g.node("Relu", [cur], f"{tag}.relu")
        elif s.kind == "leaky_relu":
            cur = g.node("LeakyRelu", [cur], f"{tag}.leaky_relu", alpha=s.params["negative_slope"])
        elif s.kind == "tanh":
            cur = g.node("Tanh", [cur], f"{tag}.tanh")
        elif s.kind == "sigmoid":
            cur = g.node("Sigmoid", [cur], f"{tag}.sigmoid")
        elif s.kind == "flatten":
            if flatten_axis is not None:  # two Flattens in a row: place the first one now
                cur = g.node("Flatten", [cur], f"{tag}.flatten", axis=flatten_axis)
            flatten_axis = s.params["start_dim"]
        # identity / dropout: nothing to emit
    if flatten_axis is not None:
        cur = g.node("Flatten", [cur], "output.flatten", axis=flatten_axis)
    g.nodes.append(helper.make_node("Identity", [cur], ["output"], name="output_identity"))

    in_shape = list(steps[0].in_shape)
    out_shape = list(steps[-1].out_shape)
    if dynamic_batch:
        in_shape[0] = out_shape[0] = "batch"
    graph = helper.make_graph(
        g.nodes, "int8_qdq",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
        g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="compress.export.export_onnx_int8")
    proto.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
    proto.metadata_props.add(key="compress.format", value="qdq-int8")
    onnx.checker.check_model(proto, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))

    if verify:
        x = example_input
        if x is None:
            x = torch.randn(4, *steps[0].in_shape[1:], generator=torch.Generator().manual_seed(0))
        was_training = qat_model.training
        qat_model.eval()
        with torch.no_grad():
            ref = qat_model(x).cpu().numpy()
        qat_model.train(was_training)
        got = run_onnx(ort_session(path), x)
        tol = 2.0 * out_scale + 1e-5 if out_scale is not None else 1e-2 * max(1.0, float(np.abs(ref).max()))
        err = float(np.abs(got - ref).max())
        if got.shape != ref.shape or err > tol:
            raise RuntimeError(f"export_onnx_int8: ONNX Runtime output differs from the fake-quant model "
                               f"(max abs error {err:.3g} > {tol:.3g}); the artifact at {path} is wrong")
    return path
