"""Post-training static int8 quantization of an fp32 ONNX graph (QDQ format) with ONNX Runtime's quantizer.

``compress.quant.export_onnx_int8`` writes QDQ graphs for layer chains (MLPs, plain CNNs) from a QAT
model.  Models with branches, attention gates or recurrent layers (e.g. CNN + GRU beam predictors) are
exported to fp32 ONNX first (``compress.export.export_onnx``) and quantized here, with
``onnxruntime.quantization.quantize_static``: activations calibrated on sample inputs (min-max by
default), weights int8 per output channel, QDQ pairs around the chosen operator types.  Only
``op_types`` are quantized (default: ``Conv``, ``MatMul``, ``Gemm``, the ones ORT runs as
QLinearConv / QGemm / MatMulInteger kernels); everything else -- ``GRU`` in particular, for which ORT has
no int8 kernel -- stays fp32.  ``nodes_to_exclude`` keeps chosen nodes fp32 as well (where int8 does not
pay, measure with ``compress.profile.profile_artifact``).  The result is checked to load and run, and
written atomically.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from compress.errors import UserError

__all__ = ["quantize_onnx_static"]


class _Reader:
    def __init__(self, name: str, batches: Iterable):
        self.name = name
        self.it = iter(batches)

    def get_next(self):
        x = next(self.it, None)
        if x is None:
            return None
        arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        return {self.name: np.ascontiguousarray(arr, dtype=np.float32)}

    def rewind(self):  # pragma: no cover - only some calibrators call it
        raise RuntimeError("calibration batches can be read once")


def quantize_onnx_static(fp32_path, out_path, calibration: Iterable, *,
                         op_types: Sequence[str] = ("Conv", "MatMul", "Gemm"), per_channel: bool = True,
                         nodes_to_exclude: Sequence[str] = (), method: str = "minmax") -> Path:
    """Quantize ``fp32_path`` to a QDQ int8 ONNX file at ``out_path``, calibrated on ``calibration``
    (an iterable of input arrays/tensors with the model's input shape)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if not fp32_path.is_file():
        raise UserError(f"quantize_onnx_static: fp32 model not found: {fp32_path}")
    if out_path.suffix != ".onnx":
        raise UserError(f"quantize_onnx_static: out_path must end in .onnx, got {out_path}")
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise UserError(f"quantize_onnx_static: method must be one of {', '.join(methods)}, got {method!r}")
    name = onnx.load(str(fp32_path)).graph.input[0].name
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent) as td:
        pre = Path(td) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        tmp = Path(td) / "int8.onnx"
        quantize_static(str(pre), str(tmp), _Reader(name, calibration), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(op_types), per_channel=per_channel,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=list(nodes_to_exclude), calibrate_method=methods[method])
        proto = onnx.load(str(tmp))
        kept = [(m.key, m.value) for m in proto.metadata_props if m.key != "compress.format"]
        del proto.metadata_props[:]
        for key, value in kept + [("compress.format", "qdq-int8-static")]:
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(tmp))
        ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])   # it must load
        os.replace(tmp, out_path)
    return out_path
