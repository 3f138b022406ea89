"""Structured pruning: budgets met exactly, heads protected, function preserved when dead channels are
removed, the optimizer rebuilt so pruned layers keep learning, pruned checkpoints reload without the
original architecture, QAT-prepared models refused."""
from __future__ import annotations

import lightning.pytorch as pl
import pytest
from compress.errors import UserError
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from compress.prune import (PruningCallback, count_params, find_output_layers, load_module, module_spec,
                            prune_model, save_module)
from compress.prune.core import QAT_ERROR


def mlp(d_in=64, h=512, d_out=10):
    return nn.Sequential(nn.Linear(d_in, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, d_out))


def mlp_params(d_in, h, d_out):  # two hidden layers of width h
    return d_in * h + h + h * h + h + h * d_out + d_out


def test_param_budget_met_tightly_and_head_kept():
    model = mlp()
    total = count_params(model)
    assert total == mlp_params(64, 512, 10) == 301066
    res = prune_model(model, torch.randn(1, 64), target_ratio=0.25)
    h = model[0].out_features
    assert model[2].in_features == h and model[2].out_features == h and model[4].in_features == h
    assert model[4].out_features == 10  # output head protected by default
    assert count_params(model) == mlp_params(64, h, 10) == res.params_after
    assert res.params_after <= 0.25 * total
    assert mlp_params(64, h + 1, 10) > 0.25 * total  # smallest pruning that meets the budget (h = 238)
    assert model(torch.randn(3, 64)).shape == (3, 10)


def test_round_to_and_budget_params():
    model = mlp()
    prune_model(model, torch.randn(1, 64), budget_params=100_000, round_to=16)
    assert model[0].out_features % 16 == 0 and model[2].out_features % 16 == 0
    assert count_params(model) <= 100_000


def test_dead_channels_are_removed_first_and_function_is_unchanged():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    dead = [1, 5, 6, 9, 12, 14, 15, 3]  # half of the hidden channels carry nothing
    with torch.no_grad():
        model[0].weight[dead] = 0
        model[0].bias[dead] = 0
        model[2].weight[:, dead] = 0
    x = torch.randn(32, 8)
    ref = model(x)
    prune_model(model, x[:1], budget_params=8 * 8 + 8 + 8 * 4 + 4)  # exactly 8 hidden channels left
    assert model[0].out_features == 8
    torch.testing.assert_close(model(x), ref, rtol=0, atol=1e-6)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 32), nn.ReLU())
        self.a = nn.Linear(32, 3)
        self.b = nn.Linear(32, 5)

    def forward(self, x):
        h = self.body(x)
        return torch.cat([self.a(h), self.b(h).softmax(-1)], dim=-1)


def test_all_output_heads_are_found_and_protected():
    model = TwoHeads()
    heads = find_output_layers(model, torch.randn(1, 6))
    assert set(map(id, heads)) == {id(model.a), id(model.b)}
    prune_model(model, torch.randn(1, 6), target_ratio=0.5)
    assert (model.a.out_features, model.b.out_features) == (3, 5)
    assert model.body[0].out_features < 32


def test_bad_targets_are_clear_errors():
    with pytest.raises(ValueError, match="exactly one of"):
        prune_model(mlp(), torch.randn(1, 64))
    with pytest.raises(ValueError, match="exactly one of"):
        prune_model(mlp(), torch.randn(1, 64), target_ratio=0.5, budget_params=10)
    with pytest.raises(ValueError, match="kept fraction"):
        prune_model(mlp(), torch.randn(1, 64), target_ratio=1.5)
    with pytest.raises(ValueError, match="cannot be met"):
        prune_model(mlp(), torch.randn(1, 64), budget_params=500)
    with pytest.raises(ValueError, match="needs gradients"):
        prune_model(mlp(), torch.randn(1, 64), target_ratio=0.5, importance="taylor")
    with pytest.raises(ValueError, match="steps=1"):
        PruningCallback(target_ratio=0.5, schedule="oneshot", steps=3)


def test_taylor_ranks_by_gradient_where_magnitude_would_not():
    torch.manual_seed(0)

    def make():
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        with torch.no_grad():  # channels 0..3 are small but used; 4..15 are large but feed nothing
            model[0].weight[:4] *= 0.01
            model[0].weight[4:] *= 10
            model[2].weight[:, 4:] = 0
        return model

    x = torch.randn(64, 8)
    budget = 8 * 4 + 4 + 4 * 2 + 2  # four hidden channels
    taylor, magnitude = make(), make()
    ref = taylor(x).detach()
    taylor(x).pow(2).sum().backward()
    prune_model(taylor, x[:1], importance="taylor", budget_params=budget)
    prune_model(magnitude, x[:1], importance="magnitude", budget_params=budget)
    assert taylor[0].out_features == magnitude[0].out_features == 4
    torch.testing.assert_close(taylor(x), ref, rtol=0, atol=1e-6)  # kept exactly the useful channels
    assert not torch.allclose(magnitude(x), ref, atol=1e-3)        # magnitude kept the large, useless ones


def test_qat_prepared_model_is_refused():
    quant = pytest.importorskip("compress.quant")
    model = quant.prepare_qat(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)))
    with pytest.raises(UserError, match="prune -> fine-tune -> QAT") as err:
        prune_model(model, torch.randn(1, 8), target_ratio=0.5)
    assert str(err.value) == QAT_ERROR


def test_pruned_module_reloads_without_architecture(tmp_path):
    model = nn.Sequential(nn.Conv1d(2, 16, 3, padding=1), nn.BatchNorm1d(16), nn.ReLU(), nn.Flatten(),
                          nn.Linear(16 * 10, 4))
    model(torch.randn(4, 2, 10))  # BN statistics move
    prune_model(model, torch.randn(1, 2, 10), target_ratio=0.5)
    model.eval()
    path = save_module(model, tmp_path / "pruned.pt")
    blob = torch.load(path, weights_only=True)  # no pickled objects inside
    assert set(blob) == {"compress_module_spec", "state_dict"}
    loaded = load_module(path)
    x = torch.randn(3, 2, 10)
    torch.testing.assert_close(loaded(x), model(x))
    assert loaded[0].out_channels == model[0].out_channels < 16 and not loaded.training


def test_gru_round_trip_and_untrusted_classes(tmp_path):
    gru = nn.GRU(4, 8, batch_first=True)
    loaded = load_module(save_module(gru, tmp_path / "gru.pt"))
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(loaded(x)[0], gru(x)[0])
    heads = TwoHeads()  # defined in this test module: not trusted by default
    save_module(heads, tmp_path / "heads.pt")
    with pytest.raises(ValueError, match="outside the trusted modules"):
        load_module(tmp_path / "heads.pt")
    loaded = load_module(tmp_path / "heads.pt", trusted=(TwoHeads.__module__,))
    torch.testing.assert_close(loaded(torch.ones(1, 6)), heads(torch.ones(1, 6)))


def test_unserializable_attribute_is_named():
    m = nn.Sequential(nn.Linear(2, 2))
    m[0].fn = lambda x: x
    with pytest.raises(ValueError, match="attribute 'fn' of module 0"):
        module_spec(m)


# ---------------------------------------------------------------- Lightning callback
class FakeDistiller:
    """Stands in for compress.distill.Distiller: counts refresh() calls."""

    def __init__(self):
        self.refreshes = 0

    def refresh(self, example_input=None):
        self.refreshes += 1


class Classifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.student = mlp(16, 64, 4)
        self.distiller = FakeDistiller()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.student(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.student.parameters(), lr=0.05)


class Recorder(pl.Callback):
    """Snapshots of the hidden layer's weight at every batch start (after pruning, which runs first)."""

    def __init__(self):
        self.snaps = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.snaps.append((trainer.current_epoch, pl_module.student[2].weight.detach().clone()))


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 16, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=16)


def _trainer(tmp_path, callbacks, epochs=3, **kw):
    return pl.Trainer(max_epochs=epochs, callbacks=callbacks, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu", **kw)


def test_callback_prunes_rebuilds_optimizer_and_pruned_layers_keep_learning(tmp_path):
    pl.seed_everything(0)
    module = Classifier()
    prune = PruningCallback(target_ratio=0.4, start_epoch=1, module_attr="student")
    rec = Recorder()
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = _trainer(tmp_path, [prune, rec, ckpt])
    trainer.fit(module, _data())
    assert prune.steps_done == 1 and module.distiller.refreshes == 1
    assert count_params(module.student) <= 0.4 * count_params(mlp(16, 64, 4))
    after = [w for e, w in rec.snaps if e >= 1]
    assert after[0].shape[0] < 64
    assert not torch.equal(after[0], after[-1])  # the pruned layer is still being trained
    opt_params = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in module.student.parameters()}

    # the Lightning checkpoint rebuilds the pruned student without the original architecture
    student = load_module(tmp_path / "last.ckpt")
    x = torch.randn(5, 16)
    torch.testing.assert_close(student(x), module.student.eval()(x))

    # resuming into a fresh, unpruned module reshapes it before the weights are loaded; no second prune
    fresh = Classifier()
    prune2 = PruningCallback(target_ratio=0.4, start_epoch=1, module_attr="student")
    _trainer(tmp_path, [prune2], epochs=4).fit(fresh, _data(), ckpt_path=tmp_path / "last.ckpt")
    assert prune2.steps_done == 1
    assert fresh.student[0].out_features == module.student[0].out_features


def test_iterative_schedule_and_taylor(tmp_path):
    pl.seed_everything(0)
    module = Classifier()
    prune = PruningCallback(budget_params=1500, importance="taylor", schedule="iterative", steps=2,
                            start_epoch=0, every_n_epochs=1, taylor_batches=2)
    trainer = _trainer(tmp_path, [prune], epochs=3)
    trainer.fit(module, _data())
    p0 = count_params(mlp(16, 64, 4))
    assert [h["step"] for h in prune.history] == [1, 2] and [h["epoch"] for h in prune.history] == [0, 1]
    first, second = prune.history[0]["params"], prune.history[1]["params"]
    assert second <= 1500 < first <= (p0 + 1500) / 2  # halfway budget first, final budget second


def test_callback_refuses_qat_model(tmp_path):
    quant = pytest.importorskip("compress.quant")
    module = Classifier()
    quant.prepare_qat(module.student)
    with pytest.raises(UserError, match="prune -> fine-tune -> QAT"):
        _trainer(tmp_path, [PruningCallback(target_ratio=0.5)], epochs=1).fit(module, _data())


def test_latency_budget_is_met_on_the_deployed_c_export():
    """budget_latency_us: bisection over channel ratios, each candidate exported to C and timed in its
    own process; the chosen ratio is the smallest whose measured p50 met the budget."""
    from compress.profile import measure_latency
    torch.manual_seed(0)
    model = mlp(64, 256, 10)
    x = torch.randn(1, 64)
    full = measure_latency(model, x, runtime="c-export")["p50_us"]
    res = prune_model(model, x, budget_latency_us=0.4 * full, latency_runtime="c-export")
    assert res.measure == "latency_us" and res.measure_after <= 0.4 * full
    assert 0 < res.channel_ratio < 0.95 and res.params_after < res.params_before
    accepted = [r for r, v in res.evaluations if v <= 0.4 * full]
    assert res.channel_ratio == min(accepted)  # smallest accepted ratio is the one applied
