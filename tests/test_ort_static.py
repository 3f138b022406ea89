"""compress.export.quantize_onnx_static: QDQ int8 around convolutions and GEMMs of any ONNX graph, recurrent
layers and excluded nodes kept fp32, outputs close to fp32."""
from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from compress.export import ort_session, run_onnx
from compress.export import quantize_onnx_static


class ConvGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.gru = nn.GRU(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):                                   # x (B, T, 1, 8, 8)
        b, t = x.shape[:2]
        f = torch.relu(self.dw(torch.relu(self.conv(x.reshape(b * t, 1, 8, 8))))).mean((2, 3)).reshape(b, t, 8)
        return self.fc(self.gru(f)[0])


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    torch.manual_seed(0)
    model = ConvGRU().eval()
    path = tmp_path_factory.mktemp("q") / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(1, 4, 1, 8, 8),), str(path), dynamo=False, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return model, path


def test_static_int8_keeps_the_gru_fp32_and_tracks_fp32(fp32, tmp_path):
    model, path = fp32
    calib = [torch.rand(1, 4, 1, 8, 8) for _ in range(8)]
    q = quantize_onnx_static(path, tmp_path / "m_int8.onnx", calib)
    graph = onnx.load(str(q)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("GRU") == 1 and "QuantizeLinear" in ops
    gru_inputs = next(n for n in graph.node if n.op_type == "GRU").input
    inits = {i.name: i for i in graph.initializer}
    assert all(inits[name].data_type == onnx.TensorProto.FLOAT for name in gru_inputs[1:3] if name in inits)
    weights = [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4]
    assert len(weights) == 2                                        # both conv weights stored as int8
    x = torch.rand(3, 4, 1, 8, 8)
    with torch.no_grad():
        ref = model(x).numpy()
    got = run_onnx(ort_session(q), x)
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max()
    dw = next(n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv" and
              any(a.name == "group" and a.i > 1 for a in n.attribute))
    q2 = quantize_onnx_static(path, tmp_path / "m_int8_dw.onnx", calib, nodes_to_exclude=[dw])
    weights2 = [i for i in onnx.load(str(q2)).graph.initializer
                if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4]
    assert len(weights2) == 1                                       # the depthwise conv stayed fp32


def test_static_int8_bad_input(tmp_path):
    with pytest.raises(ValueError, match="fp32 model not found"):
        quantize_onnx_static(tmp_path / "none.onnx", tmp_path / "o.onnx", [])
    (tmp_path / "x.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="must end in .onnx"):
        quantize_onnx_static(tmp_path / "x.onnx", tmp_path / "o.int8", [])
