"""fp32 ONNX export: one self-contained file, dynamic batch, round trip vs PyTorch, clear errors."""

import os

import numpy as np
import onnx
import pytest
from compress.errors import UserError
import torch
import torch.nn as nn

from tests.helpers import mlp

from compress.export import check_input, export_onnx, load_onnx, ort_session, run_onnx




class GRUStudent(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        y, _ = self.gru(x)
        return self.head(y[:, -1])


@pytest.fixture(scope="module")
def mlp_export(tmp_path_factory):
    torch.manual_seed(0)
    model = mlp([16, 64, 64, 28])
    d = tmp_path_factory.mktemp("onnx")
    path = export_onnx(model, torch.randn(1, 16), d / "mlp.onnx")
    return model, path


def test_mlp_single_file_dynamic_batch_roundtrip(mlp_export):
    model, path = mlp_export
    assert sorted(os.listdir(path.parent)) == ["mlp.onnx"]  # no .onnx.data, no temp files left
    proto = load_onnx(path)
    onnx.checker.check_model(proto, full_check=True)
    assert all(i.data_location == onnx.TensorProto.DEFAULT for i in proto.graph.initializer)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["compress.exporter"] in ("dynamo", "torchscript") and meta["compress.format"] == "fp32"
    # weights are stored at fp32: the file holds at least the 7068 parameters x 4 bytes
    assert path.stat().st_size >= 4 * sum(p.numel() for p in model.parameters())
    sess = ort_session(path)
    torch.manual_seed(1)
    for batch in (1, 7):
        x = torch.randn(batch, 16)
        got = run_onnx(sess, x)
        with torch.no_grad():
            ref = model(x).numpy()
        assert got.shape == (batch, 28)
        assert np.max(np.abs(got - ref)) <= 1e-5


def test_session_is_single_threaded_and_sequential(mlp_export):
    import onnxruntime as ort

    _, path = mlp_export
    so = ort_session(path).get_session_options()
    assert so.intra_op_num_threads == 1 and so.inter_op_num_threads == 1
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL


def test_input_shape_that_does_not_fit(mlp_export):
    _, path = mlp_export
    sess = ort_session(path)
    with pytest.raises(ValueError, match=r"has shape \(1, 15\), expected \(batch, 16\)"):
        run_onnx(sess, np.zeros((1, 15), np.float32))
    with pytest.raises(ValueError, match=r"has shape \(16,\), expected \(batch, 16\)"):
        check_input(sess, np.zeros(16, np.float32))
    assert check_input(path, np.zeros((2, 16), np.float64)).dtype == np.float32


def test_not_a_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a model\n")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        load_onnx(bad)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        load_onnx(empty)
    with pytest.raises(ValueError, match="is not an ONNX model"):
        ort_session(bad)
    with pytest.raises(UserError, match="not found"):
        load_onnx(tmp_path / "missing.onnx")


def test_gru_batch1_example_stays_dynamic(tmp_path):
    # torch.export specialises size-1 dims: a batch-1 example used to freeze a GRU model to batch 1
    torch.manual_seed(0)
    model = GRUStudent()
    path = export_onnx(model, torch.randn(1, 5, 8), tmp_path / "gru.onnx")
    assert ort_session(path).get_inputs()[0].shape == ["batch", 5, 8]
    x = torch.randn(3, 5, 8)
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.max(np.abs(run_onnx(path, x) - ref)) <= 1e-5


def test_fixed_batch_cnn_opset17_and_training_flag_restored(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Dropout(0.5), nn.Linear(4 * 6 * 6, 5))
    model.train()
    x = torch.randn(1, 2, 6, 6)
    path = export_onnx(model, x, tmp_path / "cnn.onnx", dynamic_batch=False, opset=17)
    assert model.training  # restored
    assert [o.version for o in load_onnx(path).opset_import if o.domain in ("", "ai.onnx")] == [17]
    sess = ort_session(path)
    assert sess.get_inputs()[0].shape == [1, 2, 6, 6]
    model.eval()
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.max(np.abs(run_onnx(sess, x) - ref)) <= 1e-5  # dropout and batch-norm in eval form
    with pytest.raises(ValueError, match=r"has shape \(2, 2, 6, 6\), expected \(1, 2, 6, 6\)"):
        run_onnx(sess, torch.randn(2, 2, 6, 6))


def test_bad_arguments(tmp_path):
    from compress.quant import prepare_qat

    model = mlp([4, 8, 2])
    with pytest.raises(UserError, match="example_input must be a torch.Tensor"):
        export_onnx(model, [[0.0] * 4], tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset must be an int in"):
        export_onnx(model, torch.randn(1, 4), tmp_path / "m.onnx", opset=11)
    with pytest.raises(ValueError, match="path must end in .onnx"):
        export_onnx(model, torch.randn(1, 4), tmp_path / "m.txt")
    with pytest.raises(ValueError, match=r"rejects example_input of shape \(1, 5\)"):
        export_onnx(model, torch.randn(1, 5), tmp_path / "m.onnx")
    prepare_qat(model)
    with pytest.raises(ValueError, match="QAT-prepared"):
        export_onnx(model, torch.randn(1, 4), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_export_all_bundle_and_manifest(tmp_path):
    import json

    from compress.export import UnsupportedLayerError, export_all
    from compress.quant import calibrate, prepare_qat

    torch.manual_seed(0)
    model = mlp([6, 12, 3])
    paths = export_all(model, tmp_path / "fp32", example_input=torch.randn(1, 6))
    manifest = json.loads(paths["manifest"].read_text())
    assert set(manifest["artifacts"]) == {"onnx", "c", "c:h", "c:harness"} and manifest["skipped"] == {}
    assert manifest["artifacts"]["onnx"]["bytes"] == paths["onnx"].stat().st_size
    prepare_qat(model)
    calibrate(model, [torch.randn(32, 6)])
    paths = export_all(model, tmp_path / "int8")
    assert {"onnx-int8", "c-int8"} <= set(paths) and paths["onnx-int8"].name == "student_int8.onnx"
    cnn = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    auto = export_all(cnn, tmp_path / "cnn", example_input=torch.randn(1, 1, 6))
    assert set(auto) == {"onnx", "manifest"}
    assert "Conv1d" in json.loads(auto["manifest"].read_text())["skipped"]["c"]
    with pytest.raises(UnsupportedLayerError, match="Conv1d"):
        export_all(cnn, tmp_path / "cnn3", example_input=torch.randn(1, 1, 6), formats=["c"])
    with pytest.raises(ValueError, match=r"unknown formats \['tflite'\]"):
        export_all(cnn, tmp_path / "x", formats=["tflite"])
