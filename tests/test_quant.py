"""QAT: fake-quant math against hand references, prepare_qat, the Lightning callback, int8 ONNX artifact."""

import lightning.pytorch as pl
import numpy as np
import onnx
import pytest
from compress.errors import UserError
import torch
import torch.nn as nn

from tests.helpers import mlp
from onnx import numpy_helper

from compress.export import UnsupportedLayerError, ort_session, run_onnx
from compress.export import export_onnx_int8
from compress.quant import (
    ActFakeQuant,
    QATCallback,
    QATConv1d,
    QATLinear,
    freeze_observers,
    int8_param_bytes,
    is_qat_prepared,
    prepare_qat,
)

INTEGER_OPS = {"QLinearMatMul", "MatMulInteger", "QGemm", "QLinearConv", "ConvInteger", "MatMulIntegerToFloat"}




def calibrated_qat_mlp(dims=(16, 64, 64, 28), seed=0, steps=20):
    torch.manual_seed(seed)
    model = prepare_qat(mlp(list(dims)))
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn(64, dims[0]) * 2)
    return model.eval()


# -- fake-quant math -------------------------------------------------------------------------------------
def test_activation_fake_quant_matches_hand_computation():
    fq = ActFakeQuant()
    x = torch.tensor([-1.0, 0.0, 0.3, 1.234, 3.0])
    y = fq(x)  # first call initialises the range to [-1, 3]
    scale, zp = fq.qparams()
    assert scale.item() == pytest.approx(4.0 / 255.0)
    assert zp.item() == -64  # -128 - round(-1 / (4/255)) = -128 + round(63.75)
    s = np.float32(4.0 / 255.0)
    q = np.clip(np.rint(x.numpy() * (np.float32(1) / s)) - 64, -128, 127)
    np.testing.assert_allclose(y.numpy(), (q + 64) * s, rtol=0, atol=1e-7)
    # a ReLU-like (non-negative) range gets zero-point -128, so 0 is exact and negatives clip to 0
    relu_fq = ActFakeQuant()
    relu_fq(torch.tensor([0.0, 2.0]))
    assert relu_fq.qparams()[1].item() == -128
    assert relu_fq.eval()(torch.tensor([-5.0])).item() == 0.0


def test_ema_observer_momentum_freeze_and_eval():
    fq = ActFakeQuant(momentum=0.5).train()
    fq(torch.tensor([-2.0, 2.0]))
    fq(torch.tensor([-4.0, 6.0]))
    assert fq.min_val.item() == pytest.approx(-3.0) and fq.max_val.item() == pytest.approx(4.0)
    fq.eval()
    fq(torch.tensor([-100.0, 100.0]))  # eval: no update
    assert fq.max_val.item() == pytest.approx(4.0)
    model = nn.Sequential(fq)
    assert freeze_observers(model) == 1
    fq.train()
    fq(torch.tensor([-100.0, 100.0]))  # frozen: no update
    assert fq.max_val.item() == pytest.approx(4.0)
    freeze_observers(model, False)
    fq(torch.tensor([-100.0, 100.0]))
    assert fq.max_val.item() == pytest.approx(52.0)


def test_qat_linear_matches_integer_reference_and_has_ste_gradients():
    torch.manual_seed(0)
    lin = prepare_qat(nn.Sequential(nn.Linear(5, 3)), quantize_output=False)[0]
    x = torch.randn(4, 5)
    y = lin(x)  # initialises the input range from x
    t = lin.quantized_tensors()
    w = lin.weight.detach().numpy()
    w_scale = np.abs(w).max(axis=1) / 127.0
    np.testing.assert_allclose(t["w_scale"].numpy(), w_scale, rtol=1e-6)
    w_int = np.clip(np.rint(w / w_scale[:, None]), -127, 127)
    np.testing.assert_array_equal(t["w_int8"].numpy(), w_int)
    s_in, zp = float(t["in_scale"]), int(t["in_zp"])
    q = np.clip(np.rint(x.numpy() / s_in) + zp, -128, 127)
    b_int = np.rint(lin.bias.detach().numpy() / (s_in * w_scale))
    np.testing.assert_array_equal(t["b_int32"].numpy(), b_int)
    # the integer computation an int8 runtime does, dequantized
    ref = ((q - zp) @ w_int.T + b_int) * (s_in * w_scale)
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    # straight-through: d sum(y) / dW = sum over batch of the fake-quantized input
    lin.zero_grad()
    lin(x).sum().backward()
    xq = torch.fake_quantize_per_tensor_affine(x, t["in_scale"], t["in_zp"], -128, 127)
    np.testing.assert_allclose(lin.weight.grad.numpy(), xq.sum(0).expand(3, 5).numpy(), rtol=1e-5)


# -- prepare_qat -----------------------------------------------------------------------------------------
def test_prepare_qat_swaps_in_place_and_keeps_parameters():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(24, 8), nn.ReLU(),
                          nn.Linear(8, 3))
    params = [p for p in model.parameters()]
    x = torch.randn(2, 2, 8)
    with torch.no_grad():
        ref = model(x)
    assert not is_qat_prepared(model)
    out = prepare_qat(model, skip=("5",))
    assert out is model and is_qat_prepared(model)
    assert isinstance(model[0], QATConv1d) and isinstance(model[3], QATLinear)
    assert type(model[5]) is nn.Linear  # skipped
    assert [p for p in model.parameters()] == params  # same Parameter objects, same order
    assert model[3].output_quant is not None and model[0].output_quant is None  # last quantized layer
    with torch.no_grad():
        y = model.train()(x)
    assert (y - ref).abs().max() < 0.1 * ref.abs().max()  # close to float, not equal
    with pytest.raises(UserError, match="already QAT-prepared"):
        prepare_qat(model)
    with pytest.raises(ValueError, match=r"skip names unknown modules \['head'\]"):
        prepare_qat(mlp([2, 2]), skip=("head",))
    with pytest.raises(ValueError, match="no nn.Linear"):
        prepare_qat(nn.Sequential(nn.ReLU()))


def test_int8_param_bytes_exact_count():
    model = mlp([16, 64, 64, 28])
    # int8 weights + per-channel (4 B scale + 1 B zero-point) + int32 bias + 3 input and 1 output quantizer
    weights, channels = 16 * 64 + 64 * 64 + 64 * 28, 64 + 64 + 28
    expected = weights + 5 * channels + 4 * channels + 4 * 5
    assert expected == 8336
    assert int8_param_bytes(model) == expected
    prepare_qat(model)
    assert int8_param_bytes(model) == expected


# -- int8 ONNX artifact ----------------------------------------------------------------------------------
def test_int8_onnx_runs_integer_kernels_and_matches_fake_quant(tmp_path):
    model = calibrated_qat_mlp()
    path = export_onnx_int8(model, torch.randn(8, 16), tmp_path / "mlp_int8.onnx")
    assert path.stat().st_size <= 16 * 1024  # acceptance: int8 artifact of the 16-64-64-28 student
    proto = onnx.load(str(path))
    inits = {i.name: i for i in proto.graph.initializer}
    w = [i for n, i in inits.items() if n.endswith("weight_int8")]
    b = [i for n, i in inits.items() if n.endswith("bias_int32")]
    assert len(w) == 3 and all(i.data_type == onnx.TensorProto.INT8 for i in w)
    assert len(b) == 3 and all(i.data_type == onnx.TensorProto.INT32 for i in b)
    assert not any(i.data_type == onnx.TensorProto.FLOAT and i.dims and np.prod(i.dims) > 64 for i in inits.values())
    # every stored byte is accounted for: int8_param_bytes + one fp32 bias scale per output channel
    stored = sum(numpy_helper.to_array(i).nbytes for i in proto.graph.initializer)
    assert stored == int8_param_bytes(model) + 4 * (64 + 64 + 28)

    opt = tmp_path / "optimized.onnx"
    sess = ort_session(path, optimization="extended", optimized_model_filepath=opt)
    ops = [n.op_type for n in onnx.load(str(opt)).graph.node]
    assert ops.count("QGemm") == 3 or len(INTEGER_OPS & set(ops)) > 0
    assert "Gemm" not in ops and "MatMul" not in ops  # no float matmul left

    torch.manual_seed(1)
    x = torch.randn(256, 16) * 2
    with torch.no_grad():
        ref = model(x).numpy()
    step = float(model[4].output_quant.qparams()[0])
    err = np.abs(run_onnx(sess, x) - ref).max()
    assert err <= step * 1.001 + 1e-6, f"int8 ONNX differs by {err / step:.2f} output steps"


def test_int8_onnx_conv_runs_qlinearconv(tmp_path):
    torch.manual_seed(0)
    model = prepare_qat(nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2),
                                      nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 5)))
    model.train()
    with torch.no_grad():
        for _ in range(10):
            model(torch.randn(16, 2, 8, 8))
    model.eval()
    x = torch.randn(32, 2, 8, 8)
    path = export_onnx_int8(model, x, tmp_path / "cnn_int8.onnx")
    opt = tmp_path / "opt.onnx"
    sess = ort_session(path, optimization="extended", optimized_model_filepath=opt)
    ops = [n.op_type for n in onnx.load(str(opt)).graph.node]
    assert ops.count("QLinearConv") == 2 and "Conv" not in ops
    with torch.no_grad():
        ref = model(x).numpy()
    step = float(model[5].output_quant.qparams()[0])
    assert np.abs(run_onnx(sess, x) - ref).max() <= step * 1.001 + 1e-6


def test_int8_onnx_errors(tmp_path):
    with pytest.raises(ValueError, match="not QAT-prepared"):
        export_onnx_int8(mlp([4, 4]), None, tmp_path / "a.onnx")
    fresh = prepare_qat(mlp([4, 4]))
    with pytest.raises(ValueError, match=r"observer '0.input_quant' has seen no data"):
        export_onnx_int8(fresh, None, tmp_path / "a.onnx")
    bn = prepare_qat(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)))
    bn.train()(torch.randn(8, 4))
    with pytest.raises(UnsupportedLayerError, match=r"layer '1' of type BatchNorm1d is not supported"):
        export_onnx_int8(bn.eval(), None, tmp_path / "a.onnx")

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    f = prepare_qat(Functional())
    f.train()(torch.randn(8, 4))
    with pytest.raises(UnsupportedLayerError, match=r"layer 'fc2' \(QATLinear\) does not take the output of 'fc1'"):
        export_onnx_int8(f.eval(), None, tmp_path / "a.onnx")


# -- Lightning callback ----------------------------------------------------------------------------------
class TinyModule(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.student = mlp([8, 16, 3])
        self.log_epochs = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.student(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class Recorder(pl.Callback):
    """Snapshots per epoch, taken after QATCallback ran (callbacks run in list order)."""

    def __init__(self):
        self.rows = []

    def on_train_epoch_start(self, trainer, pl_module):
        opt = trainer.optimizers[0]
        self.rows.append(dict(
            epoch=trainer.current_epoch, opt=opt, prepared=is_qat_prepared(pl_module.student),
            opt_params=[p for g in opt.param_groups for p in g["params"]],
            weight=pl_module.student[0].weight.detach().clone(),
            steps=[int(opt.state[p]["step"]) if p in opt.state else 0 for g in opt.param_groups for p in g["params"]],
            rng=(pl_module.student[0].input_quant.max_val.item()
                 if is_qat_prepared(pl_module.student) else None)))


def _loader(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 8, generator=g)
    y = torch.randint(0, 3, (64,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)


def _trainer(tmp_path, callbacks, epochs):
    return pl.Trainer(max_epochs=epochs, callbacks=callbacks, accelerator="cpu", logger=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                      enable_checkpointing=False)


def test_callback_prepares_rebuilds_optimizer_and_freezes(tmp_path):
    pl.seed_everything(0)
    module, rec = TinyModule(), Recorder()
    trainer = _trainer(tmp_path, [QATCallback(start_epoch=1, freeze_observers_epoch=2), rec], epochs=3)
    trainer.fit(module, _loader())
    e0, e1, e2 = rec.rows
    assert not e0["prepared"] and e1["prepared"] and e2["prepared"]
    assert e1["opt"] is not e0["opt"]  # rebuilt at the QAT start ...
    assert e2["opt"] is e1["opt"]  # ... and only then
    assert {id(p) for p in e1["opt_params"]} == {id(p) for p in module.parameters()}
    assert all(s == 4 for s in e1["steps"])  # Adam state carried over: 4 steps in epoch 0
    assert not torch.equal(e1["weight"], e2["weight"])  # the QAT layers kept learning
    assert not torch.equal(e2["weight"], module.student[0].weight.detach())
    obs = module.student[0].input_quant
    assert bool(obs.initialized) and bool(obs.frozen)
    assert obs.max_val.item() == e2["rng"]  # frozen during epoch 2


def test_callback_resumes_a_qat_checkpoint(tmp_path):
    pl.seed_everything(0)
    module = TinyModule()
    trainer = _trainer(tmp_path, [QATCallback(start_epoch=0)], epochs=1)
    trainer.fit(module, _loader())
    ckpt = tmp_path / "qat.ckpt"
    trainer.save_checkpoint(ckpt)
    fresh = TinyModule()
    trainer2 = _trainer(tmp_path, [QATCallback(start_epoch=0)], epochs=2)
    trainer2.fit(fresh, _loader(), ckpt_path=ckpt)
    assert is_qat_prepared(fresh.student)
    assert trainer2.current_epoch == 2


def test_callback_bad_arguments():
    with pytest.raises(ValueError, match="start_epoch must be an int >= 0"):
        QATCallback(start_epoch=-1)
    with pytest.raises(ValueError, match="freeze_observers_epoch must be an int >= start_epoch"):
        QATCallback(start_epoch=2, freeze_observers_epoch=1)
    cb = QATCallback(module_attr="net")
    with pytest.raises(ValueError, match="has no attribute module_attr='net'"):
        cb._target(TinyModule())


def test_calibrate_moves_only_observers():
    from compress.quant import calibrate

    torch.manual_seed(0)
    model = prepare_qat(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)))
    bn_mean = model[1].running_mean.clone()
    data = [(torch.full((16, 4), float(v)), None) for v in (1.0, -3.0)]
    assert calibrate(model, data, max_batches=1) == 1
    obs = model[0].input_quant
    assert (obs.min_val.item(), obs.max_val.item()) == (1.0, 1.0)  # first batch initialises the range
    calibrate(model, data)  # batch of 1.0 keeps the range, then EMA (momentum 0.01) towards -3.0
    assert obs.min_val.item() == pytest.approx(0.96, abs=1e-6) and obs.max_val.item() == pytest.approx(0.96, abs=1e-6)
    assert torch.equal(model[1].running_mean, bn_mean) and model.training  # BN untouched, mode restored
    assert obs.calibrating is False
    with pytest.raises(ValueError, match="no QAT observers"):
        calibrate(mlp([2, 2]), data)
