"""Weight-only int8 ONNX: int8 weights on disk, float compute after ONNX Runtime folds them at load."""
import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from compress.export import ort_session, run_onnx
from compress.export.onnx_export import is_weight_only_int8
from compress.export import export_onnx_int8
from compress.quant import prepare_qat
from compress.quant.fake_quant import weight_qparams
from tests.helpers import mlp


def calibrated(dims=(21, 64, 64, 16), seed=0):
    torch.manual_seed(seed)
    model = prepare_qat(mlp(list(dims)))
    model.train()
    with torch.no_grad():
        for _ in range(20):
            model(torch.randn(64, dims[0]))
    return model.eval()


def hand_forward(model, x):
    """Float MLP with each weight rounded to int8 per output channel and each bias to its int32 grid."""
    h = x.double()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for i, lin in enumerate(linears):
        w_scale, _ = weight_qparams(lin.weight)
        w = torch.clamp(torch.round(lin.weight.detach() / w_scale[:, None]), -127, 127) * w_scale[:, None]
        b_scale = lin.input_quant.qparams()[0] * w_scale
        b = torch.round(lin.bias.detach() / b_scale) * b_scale
        h = h @ w.double().T + b.double()
        if i < len(linears) - 1:
            h = h.clamp_min(0)
    return h.numpy()


def test_weight_only_file_stores_int8_and_computes_the_rounded_float_model(tmp_path):
    model = calibrated()
    path = export_onnx_int8(model, torch.randn(4, 21), tmp_path / "wo.onnx", activations="float")
    proto = onnx.load(str(path))
    assert is_weight_only_int8(proto)
    ops = [n.op_type for n in proto.graph.node]
    assert "QuantizeLinear" not in ops and ops.count("DequantizeLinear") == 3      # weights only
    w = [i for i in proto.graph.initializer if i.name.endswith("weight_int8")]
    assert len(w) == 3 and all(i.data_type == onnx.TensorProto.INT8 for i in w)
    stored = sum(numpy_helper.to_array(i).nbytes for i in proto.graph.initializer)
    n_w = 21 * 64 + 64 * 64 + 64 * 16
    # int8 weights; per output channel an fp32 weight scale, an fp32 bias and the int8 zero-point (0)
    assert stored == n_w + (4 + 4 + 1) * (64 + 64 + 16)

    x = torch.randn(256, 21)
    got = run_onnx(ort_session(path), x)
    np.testing.assert_allclose(got, hand_forward(model, x), rtol=1e-4, atol=1e-4)
    # ... and it is not the full-integer model (activations are not rounded)
    with torch.no_grad():
        full = model(x).numpy()
    assert np.abs(got - full).max() > 1e-3


def test_session_folds_the_int8_weights(tmp_path):
    model = calibrated()
    path = export_onnx_int8(model, None, tmp_path / "wo.onnx", activations="float")
    opt = tmp_path / "opt.onnx"
    ort_session(path, optimized_model_filepath=opt)
    ops = [n.op_type for n in onnx.load(str(opt)).graph.node]
    assert "DequantizeLinear" not in ops and len(ops) == 3     # FusedGemm, FusedGemm, Gemm
    # a full-integer file keeps its integer kernels: the flag is for weight-only files alone
    qdq = export_onnx_int8(model, None, tmp_path / "qdq.onnx")
    ort_session(qdq, optimized_model_filepath=opt)
    assert [n.op_type for n in onnx.load(str(opt)).graph.node].count("QGemm") == 3


def test_bad_activations_value(tmp_path):
    with pytest.raises(ValueError, match="activations"):
        export_onnx_int8(calibrated(), None, tmp_path / "x.onnx", activations="fp16")
