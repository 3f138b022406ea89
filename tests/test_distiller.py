"""Distiller behaviour: teachers frozen and unsaved, routing, combination, cache, taps, schemes."""
import lightning.pytorch as pl
import pytest
from compress.errors import UserError
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from compress.distill import (Checkpoint, DistillationModule, Distiller, EMATeacher, OnlineDistillationModule,
                              terms)
from compress.models import MLP


def _trainer(**kw):
    return pl.Trainer(max_epochs=kw.pop("max_epochs", 1), logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, **kw)


class Const(nn.Module):
    """A teacher whose output identifies it: every row is ``value``."""

    def __init__(self, value, width=3):
        super().__init__()
        self.value, self.width = value, width
        self.calls = []

    def forward(self, x):
        self.calls.append(len(x))
        return torch.full((len(x), self.width), float(self.value))


def test_teacher_gets_no_gradient_and_is_not_in_the_checkpoint():
    teacher = MLP(4, 3, [8])
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = MLP(4, 3, [5])
    d = Distiller(teacher, [terms.KL(T=2.0)])
    module = DistillationModule(student, d, nn.CrossEntropyLoss(), lr=0.1)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    _trainer(max_epochs=2).fit(module, DataLoader(TensorDataset(x, y), batch_size=8))
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not teacher.training
    keys = list(module.state_dict())
    assert keys and all(k.startswith(("student.", "val_metric", "test_metric")) for k in keys), keys
    opt_params = {id(p) for g in module.configure_optimizers().param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in student.parameters()}


def test_routing_sends_each_sample_to_its_teacher():
    teachers = {"a": Const(1.0), "b": Const(2.0), "c": Const(3.0)}
    d = Distiller(teachers, [terms.MSE()], route_key="scenario")
    route = torch.tensor([2, 0, 1, 1, 0, 2, 2])
    out = d.teacher_output({"x": torch.zeros(7, 4), "scenario": route})
    assert torch.equal(out[:, 0], (route + 1).float())
    # each teacher ran only on its own samples
    assert teachers["a"].calls == [2] and teachers["b"].calls == [2] and teachers["c"].calls == [3]


def test_routing_errors_are_clear():
    d = Distiller({"a": Const(1.0), "b": Const(2.0)}, [terms.MSE()], route_key="scenario")
    with pytest.raises(ValueError, match="teacher index 5 outside 0..1"):
        d.teacher_output({"x": torch.zeros(2, 4), "scenario": torch.tensor([0, 5])})
    with pytest.raises(ValueError, match="no routing key 'scenario'"):
        d.teacher_output({"x": torch.zeros(2, 4)})


def test_mean_and_weighted_combination():
    ts = {"a": Const(1.0), "b": Const(3.0)}
    assert Distiller(ts, [terms.MSE()], combine="mean").teacher_output({"x": torch.zeros(2, 1)})[0, 0] == 2.0
    w = Distiller({"a": Const(1.0), "b": Const(3.0)}, [terms.MSE()], combine="weighted", teacher_weights=[3, 1])
    assert w.teacher_output({"x": torch.zeros(2, 1)})[0, 0].item() == pytest.approx(1.5)


def test_callable_teacher_algorithm():
    def algorithm(x):  # e.g. a classical solver: any function of the input
        return x.sum(-1, keepdim=True).repeat(1, 2)

    d = Distiller(algorithm, [terms.MSE()])
    x = torch.randn(5, 3)
    loss, logs = d({"x": x}, x.sum(-1, keepdim=True).repeat(1, 2))
    assert loss.item() == pytest.approx(0.0) and "kd_mse" in logs


def test_cached_teacher_output_equals_fresh_and_is_invalidated():
    teacher = MLP(4, 3, [8])
    calls = []
    teacher.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    d = Distiller(teacher, [terms.KL()], cache=True)
    x = torch.randn(10, 4)
    batch = {"x": x, "index": torch.arange(10)}
    first = d.teacher_output(batch)
    second = d.teacher_output(batch)
    assert torch.equal(first, second) and torch.allclose(second, teacher(x))
    assert calls == [10, 10]  # second call used the cache; the last entry is the check above
    # changed data: the samples whose inputs changed are recomputed
    x2 = x.clone()
    x2[3] += 1.0
    third = d.teacher_output({"x": x2, "index": torch.arange(10)})
    assert torch.allclose(third, teacher(x2)) and calls[2] == 1
    # changed teacher weights: the whole cache is invalidated
    with torch.no_grad():
        teacher.net[0].weight.add_(0.5)
    d.reset_cache_key()
    fourth = d.teacher_output({"x": x2, "index": torch.arange(10)})
    assert torch.allclose(fourth, teacher(x2)) and calls[4] == 10


def test_feature_taps_and_refresh():
    teacher, student = MLP(4, 3, [16, 16]), MLP(4, 3, [6])
    d = Distiller(teacher, [terms.Feature("net.1", "net.3", connector="linear")]).attach(student)
    x = torch.randn(8, 4)
    loss, _ = d({"x": x}, student(x))
    assert loss.item() > 0 and d.terms[0].connector.in_features == 6
    # module surgery (as pruning does): shrink the tapped layer and refresh
    student.net[0] = nn.Linear(4, 5)
    student.net[2] = nn.Linear(5, 3)
    d.refresh()
    loss, _ = d({"x": x}, student(x))
    assert d.terms[0].connector.in_features == 5
    with pytest.raises(ValueError, match="tap 'net.9' does not name a submodule of the student"):
        Distiller(teacher, [terms.Feature("net.9", "net.3")]).attach(student)


def test_feature_kd_trains_connector_through_module():
    teacher, student = MLP(4, 3, [16]), MLP(4, 3, [6])
    d = Distiller(teacher, [terms.Feature("net.1", "net.1"), terms.KL()])
    m = DistillationModule(student, d, nn.CrossEntropyLoss())
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    _trainer().fit(m, DataLoader(TensorDataset(x, y), batch_size=8))
    conn = d.terms[0].connector
    opt_ids = {id(p) for g in m.trainer.optimizers[0].param_groups for p in g["params"]}
    assert all(id(p) in opt_ids for p in conn.parameters())


def test_ema_self_teacher_updates():
    student = MLP(4, 3, [6])
    ema = EMATeacher(student, decay=0.5)
    before = ema.module.net[0].weight.clone()
    with torch.no_grad():
        student.net[0].weight.add_(1.0)
    ema.update(student)
    assert torch.allclose(ema.module.net[0].weight, before + 0.5)
    m = DistillationModule(MLP(4, 3, [6]), Distiller(None, [terms.KL()]), nn.CrossEntropyLoss(),
                           self_distill="ema", ema_decay=0.9, lr=0.05)
    teacher = m.distiller.teacher("self_ema")
    w0 = teacher.module.net[0].weight.clone()
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    _trainer().fit(m, DataLoader(TensorDataset(x, y), batch_size=8))
    assert not torch.allclose(teacher.module.net[0].weight, w0)
    assert not any(k.startswith("distiller") for k in m.state_dict())


def test_online_peers_both_learn():
    peers = [MLP(4, 3, [8]), MLP(4, 3, [5])]
    before = [p.net[0].weight.clone() for p in peers]
    m = OnlineDistillationModule(peers, terms.KL(T=1.0), nn.CrossEntropyLoss(), lr=0.05, num_classes=3)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    _trainer(max_epochs=3).fit(m, DataLoader(TensorDataset(x, y), batch_size=16))
    assert all(not torch.allclose(p.net[0].weight, b) for p, b in zip(peers, before))


def test_checkpoint_teacher_loads_weights_only(tmp_path):
    src = MLP(4, 3, [8])
    torch.save({"state_dict": {f"student.{k}": v for k, v in src.state_dict().items()}}, tmp_path / "t.ckpt")
    t = Checkpoint(MLP(4, 3, [8]), str(tmp_path / "t.ckpt"))
    x = torch.randn(2, 4)
    assert torch.allclose(t(x), src(x))
    with pytest.raises(ValueError, match="does not fit the teacher architecture"):
        Checkpoint(MLP(4, 3, [9]), str(tmp_path / "t.ckpt"))
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a loadable weights file"):
        Checkpoint(MLP(4, 3, [8]), str(tmp_path / "bad.pt"))
    with pytest.raises(UserError):
        Checkpoint(MLP(4, 3, [8]), str(tmp_path / "missing.pt"))


def test_schedule_weight_follows_progress():
    from compress.distill import schedules
    d = Distiller(Const(1.0), [terms.MSE(weight=schedules.Linear(1.0, 0.0))])
    out = torch.zeros(2, 3)
    full, _ = d({"x": torch.zeros(2, 1)}, out, progress=0.0)
    half, logs = d({"x": torch.zeros(2, 1)}, out, progress=0.5)
    assert full.item() == pytest.approx(1.0) and half.item() == pytest.approx(0.5)
    assert logs["w_mse"].item() == pytest.approx(0.5)


def test_pruning_resizes_feature_connector_and_it_keeps_learning():
    from compress.prune import PruningCallback

    teacher, student = MLP(8, 3, [32]), MLP(8, 3, [24, 24])
    d = Distiller(teacher, [terms.Feature("net.1", "net.1", connector="linear"), terms.KL()])
    m = DistillationModule(student, d, nn.CrossEntropyLoss(), lr=0.05)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))

    class Watch(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 2:
                conn = pl_module.distiller.terms[0].connector
                self.w = conn.weight.detach().clone()
                self.in_features = conn.in_features

    watch = Watch()
    cb = PruningCallback(target_ratio=0.5, start_epoch=1, example_input=[1, 8])
    _trainer(max_epochs=3, callbacks=[cb, watch]).fit(m, DataLoader(TensorDataset(x, y), batch_size=16))
    conn = d.terms[0].connector
    assert student.net[0].out_features < 24 and watch.in_features == student.net[0].out_features
    assert not torch.allclose(conn.weight, watch.w), "the resized connector must be trained after pruning"


def test_exported_program_teacher(tmp_path):
    teacher = MLP(4, 3, [8]).eval()
    path = tmp_path / "teacher.pt2"
    torch.export.save(torch.export.export(teacher, (torch.randn(2, 4),)), str(path))
    d = Distiller(str(path), [terms.KL()])
    x = torch.randn(2, 4)
    assert torch.allclose(d.teacher_output({"x": x}), teacher(x), atol=1e-6)
    with pytest.raises(UserError, match="exported program not found"):
        Distiller(str(tmp_path / "missing.pt2"), [terms.KL()])
    with pytest.raises(ValueError, match="has no architecture"):
        Distiller(str(tmp_path / "weights.pt"), [terms.KL()])


@pytest.mark.parametrize("kind", ["mixup", "noise"])
def test_function_matching_kd_inputs(kind):
    seen = []

    def teacher(x):  # records what the teacher is asked about
        seen.append(x.clone())
        return torch.zeros(len(x), 3)

    m = DistillationModule(MLP(4, 3, [6]), Distiller(teacher, [terms.MSE()]), nn.CrossEntropyLoss(),
                           kd_inputs=kind, lr=0.05)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    _trainer().fit(m, DataLoader(TensorDataset(x, y), batch_size=32))
    # training steps show the teacher new inputs the labels cannot follow (no dry run: no data module)
    assert seen and not any(torch.allclose(s, x) for s in seen)
    with pytest.raises(ValueError, match="kd_inputs"):
        DistillationModule(MLP(4, 3, [6]), Distiller(teacher, [terms.MSE()]), kd_inputs="cutmix")


def test_step_signatures_are_precomputed_and_lightning_still_reads_them():
    import inspect

    class OneArgStep(DistillationModule):  # no batch_idx: Lightning must not pass one
        def training_step(self, batch):
            return super().training_step(batch, None)

    for cls, args in ((DistillationModule, ["self", "batch", "batch_idx"]), (OneArgStep, ["self", "batch"])):
        assert "__signature__" in cls.__dict__["training_step"].__dict__
        assert inspect.getfullargspec(cls(MLP(4, 3, [6]), None, nn.CrossEntropyLoss()).training_step).args == args
    m = OneArgStep(MLP(4, 3, [6]), None, nn.CrossEntropyLoss(), lr=0.05)
    w0 = m.student.net[0].weight.clone()
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    _trainer().fit(m, DataLoader(TensorDataset(x, y), batch_size=8))
    assert not torch.allclose(m.student.net[0].weight, w0)


def test_lean_hooks_in_a_user_lightning_module():
    from compress.distill import LeanHooks

    class Mine(LeanHooks, pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(4, 3)

        def training_step(self, batch, batch_idx):
            x, y = batch
            assert self._current_fx_name == "training_step"
            return nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    m = Mine()
    assert "_current_fx_name" not in m._modules and "__signature__" in Mine.training_step.__dict__
    w0 = m.net.weight.clone()
    _trainer().fit(m, DataLoader(TensorDataset(torch.randn(16, 4), torch.randint(0, 3, (16,))), batch_size=8))
    assert not torch.allclose(m.net.weight, w0)


def test_lazy_connector_without_a_datamodule_is_trained_and_resumes(tmp_path):
    """Dataloaders given to fit (no data module): the connector is sized at the first batch and joins the
    optimizer; a resumed run builds it from the checkpoint's shapes before the weights are loaded."""
    import lightning.pytorch as pl

    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    teacher = MLP(4, 3, [16])

    def module():
        return DistillationModule(MLP(4, 3, [6]), Distiller(teacher, [terms.Feature("net.1", "net.1")]),
                                  nn.CrossEntropyLoss(), lr=0.05)

    m = module()
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[ckpt], accelerator="cpu")
    trainer.fit(m, DataLoader(TensorDataset(x, y), batch_size=8))
    conn = m.distiller.terms[0].connector
    opt_ids = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert conn is not None and all(id(p) in opt_ids for p in conn.parameters())
    w0 = conn.weight.clone()
    m2 = module()
    pl.Trainer(max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
               enable_checkpointing=False, accelerator="cpu").fit(
        m2, DataLoader(TensorDataset(x, y), batch_size=8), ckpt_path=tmp_path / "last.ckpt")
    assert m2.distiller.terms[0].connector is not None and not torch.equal(m2.distiller.terms[0].connector.weight, w0)
