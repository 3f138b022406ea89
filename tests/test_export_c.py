"""C export: fp32 and int8 round trips through the compiled harness, errors, shared library, bench mode."""

import ctypes
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from compress.errors import UserError
import torch
import torch.nn as nn

from tests.helpers import mlp

from compress.export import UnsupportedLayerError, compile_c, export_c
from compress.quant import prepare_qat

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")




def run_harness(exe, x: np.ndarray, n_out: int) -> np.ndarray:
    res = subprocess.run([str(exe)], input=np.ascontiguousarray(x, np.float32).tobytes(), capture_output=True,
                         check=True)
    return np.frombuffer(res.stdout, np.float32).reshape(len(x), n_out)


def test_fp32_roundtrip_and_header(tmp_path):
    torch.manual_seed(0)
    model = mlp([16, 64, 64, 28])
    paths = export_c(model, tmp_path, name="student")
    assert {p.name for p in paths.values()} == {"student.c", "student.h", "student_harness.c"}
    header = paths["h"].read_text()
    assert re.search(r"#define student_IN 16\b", header) and re.search(r"#define student_OUT 28\b", header)
    assert "void student_forward(const float *in, float *out);" in header
    src = paths["c"].read_text()
    assert src.count("static const float") == 6 and "#include <stdio.h>" not in src  # no runtime deps
    exe = compile_c(paths, tmp_path / "student_harness")
    x = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = run_harness(exe, x, 28)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_fp32_all_supported_layers(tmp_path):
    torch.manual_seed(0)

    class Net(nn.Module):  # nested containers, activation before the first Linear, dropout, flatten
        def __init__(self):
            super().__init__()
            self.pre = nn.Sequential(nn.Flatten(), nn.Tanh())
            self.body = nn.Sequential(nn.Linear(12, 20), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                                      nn.Linear(20, 10), nn.Sigmoid(), nn.Identity())
            self.head = nn.Sequential(nn.Linear(10, 5), nn.Tanh())

        def forward(self, x):
            return self.head(self.body(self.pre(x)))

    model = Net().eval()
    paths = export_c(model, tmp_path, name="net", example_input=torch.randn(1, 3, 4))
    assert "#define net_IN 12" in paths["h"].read_text()
    exe = compile_c(paths, tmp_path / "net")
    x = np.random.default_rng(1).standard_normal((40, 3, 4)).astype(np.float32) * 3
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_harness(exe, x.reshape(40, 12), 5), ref, rtol=1e-5, atol=1e-6)


def _qat_model():
    torch.manual_seed(0)
    model = prepare_qat(mlp([16, 64, 64, 28]))
    model.train()
    with torch.no_grad():
        for _ in range(20):
            model(torch.randn(64, 16) * 2)
    return model.eval()


@pytest.mark.parametrize("flags", [("-O3", "-march=native"), ("-O2",)], ids=["native", "portable"])
def test_int8_matches_fake_quant_within_one_step(tmp_path, flags):
    model = _qat_model()
    paths = export_c(model, tmp_path, name="q8", int8=True)
    src = paths["c"].read_text()
    assert "static const int8_t L0_W[1024]" in src and "static const int32_t L0_B[64]" in src
    assert "static const int8_t L2_W[2048]" in src  # 28 outputs padded to 32 for the 16-wide blocks
    exe = compile_c(paths, tmp_path / "q8", flags=flags)
    x = np.random.default_rng(2).standard_normal((300, 16)).astype(np.float32) * 2
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    step = float(model[4].output_quant.qparams()[0])
    err = np.abs(run_harness(exe, x, 28) - ref).max()
    assert err <= step * 1.001 + 1e-6, f"C int8 differs by {err / step:.2f} output steps"


def test_shared_library_and_bench_mode(tmp_path):
    torch.manual_seed(0)
    model = mlp([8, 16, 4])
    paths = export_c(model, tmp_path, name="tiny")
    lib = ctypes.CDLL(str(compile_c(paths, tmp_path / "libtiny.so", shared=True)))
    x = np.random.default_rng(3).standard_normal(8).astype(np.float32)
    y = np.zeros(4, np.float32)
    fp = ctypes.POINTER(ctypes.c_float)
    lib.tiny_forward(x.ctypes.data_as(fp), y.ctypes.data_as(fp))
    with torch.no_grad():
        np.testing.assert_allclose(y, model(torch.from_numpy(x)[None])[0].numpy(), rtol=1e-5, atol=1e-6)
    exe = compile_c(paths, tmp_path / "tiny")
    out = subprocess.run([str(exe), "--bench", "200", "8"], capture_output=True, text=True, check=True).stdout
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["calls"] == 8 and stats["reps"] == 200 and 0 < stats["min_us"] <= stats["p50_us"] <= stats["p99_us"]
    bad = subprocess.run([str(exe)], input=np.zeros(5, np.float32).tobytes(), capture_output=True)
    assert bad.returncode == 3 and b"partial row (5 of 8 floats)" in bad.stderr


def test_unsupported_layers_and_structures(tmp_path):
    with pytest.raises(UnsupportedLayerError, match=r"layer '1' of type BatchNorm1d is not supported"):
        export_c(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)), tmp_path)
    conv = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedLayerError, match=r"layer '0' of type Conv1d is not supported by the C export"):
        export_c(conv, tmp_path, example_input=torch.randn(1, 1, 4))

    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            return self.b(self.a(x)) + x

    with pytest.raises(UnsupportedLayerError, match="model output is not the output of its last layer 'b'"):
        export_c(Skip(), tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written on error


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="name must be a C identifier"):
        export_c(mlp([4, 2]), tmp_path, name="my-model")
    with pytest.raises(ValueError, match="int8=True needs a QAT-prepared model"):
        export_c(mlp([4, 2]), tmp_path, int8=True)
    q = prepare_qat(mlp([4, 2]))
    with pytest.raises(ValueError, match="QAT-prepared; export it with int8=True"):
        export_c(q, tmp_path)
    with pytest.raises(ValueError, match=r"observer '0.input_quant' has seen no data"):
        export_c(q, tmp_path, int8=True)
    with pytest.raises(UserError, match="source not found"):
        compile_c([tmp_path / "nope.c"], tmp_path / "x")
    (tmp_path / "broken.c").write_text("int main(void) { return }\n")
    with pytest.raises(RuntimeError, match="compile_c: gcc failed"):
        compile_c([tmp_path / "broken.c"], tmp_path / "x")
    with pytest.raises(UserError, match="C compiler 'no-such-cc' not found"):
        compile_c([tmp_path / "broken.c"], tmp_path / "x", cc="no-such-cc")


def test_int8_with_a_float_layer_matches_and_onnx_agrees(tmp_path):
    from compress.export import run_onnx
    from compress.export import export_onnx_int8

    torch.manual_seed(0)
    model = prepare_qat(mlp([12, 32, 32, 6]), skip=("4",))  # head kept in float
    model.train()
    with torch.no_grad():
        for _ in range(10):
            model(torch.randn(64, 12))
    model.eval()
    paths = export_c(model, tmp_path, name="mixed", int8=True)
    assert "#define mixed_PARAMS 1670" in paths["h"].read_text()  # 12*32+32 + 32*32+32 + 32*6+6
    src = paths["c"].read_text()
    assert src.count("cx_dense_i8(L") == 2 and src.count("cx_dense_f32(L") == 1
    exe = compile_c(paths, tmp_path / "mixed")
    x = np.random.default_rng(4).standard_normal((200, 12)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    # the float head sees the quantized layer-2 output: a value rounding the other way at a float-order
    # tie moves it by one step of that quantizer, so the bound is that step times the head's weights
    step = float(model[2].output_quant.qparams()[0])
    bound = step * float(model[4].weight.detach().abs().sum(1).max()) + 1e-5
    onnx_path = export_onnx_int8(model, torch.from_numpy(x[:4]), tmp_path / "mixed.onnx")
    for got in (run_harness(exe, x, 6), run_onnx(onnx_path, x)):
        close = np.isclose(got, ref, rtol=1e-4, atol=1e-5).all(axis=1)
        assert close.mean() >= 0.95 and np.abs(got - ref).max() <= bound
