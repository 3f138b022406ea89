"""Optimizers rebuilt after pruning and QAT keep what they learned: surviving weights keep their Adam
moments (sliced to the kept channels) and the LR schedule keeps its position."""
import copy

import lightning.pytorch as pl
import torch
from torch import nn

from compress.prune import PruningCallback, prune_model
from compress.prune.core import kept_indices
from compress.quant import QATCallback
from tests.test_prune import Classifier, _data, _trainer


class AdamClassifier(Classifier):
    def configure_optimizers(self):
        return torch.optim.Adam(self.student.parameters(), lr=0.01)


def test_kept_indices_map_pruned_weights_to_their_originals():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3))
    original = copy.deepcopy(model)
    x = torch.randn(1, 8)
    result = prune_model(model, x, target_ratio=0.5, track_kept=True)
    assert result.params_after < result.params_before
    old = dict(original.named_parameters())
    for name, p in model.named_parameters():
        idx = result.kept[name]
        assert idx.numel() == p.numel()
        torch.testing.assert_close(old[name].detach().flatten()[idx].view(p.shape), p.detach(), rtol=0, atol=0)
    assert model[0].out_features < 32  # something was actually removed
    # the same replay on an unpruned history keeps everything, in order
    full = kept_indices(original, x, [])
    assert all(torch.equal(full[n], torch.arange(p.numel())) for n, p in original.named_parameters())


class _StateProbe(pl.Callback):
    """Before (or after) the pruning callback in the list: records Adam's state per student parameter."""

    def __init__(self, epoch):
        self.epoch, self.state = epoch, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == 0:
            opt = trainer.optimizers[0]
            self.state = {n: {k: v.clone() for k, v in opt.state[p].items()}
                          for n, p in pl_module.student.named_parameters() if p in opt.state}
            self.params = {n: p.detach().clone() for n, p in pl_module.student.named_parameters()}
            self.lr = opt.param_groups[0]["lr"]


def test_pruning_keeps_the_adam_moments_of_surviving_weights(tmp_path):
    pl.seed_everything(0)
    module = AdamClassifier()
    before, after = _StateProbe(1), _StateProbe(1)
    prune = PruningCallback(target_ratio=0.4, start_epoch=1, module_attr="student")
    _trainer(tmp_path, [before, prune, after], epochs=2).fit(module, _data())
    assert before.state and after.state
    pruned = [n for n, p in after.params.items() if p.shape != before.params[n].shape]
    assert pruned, "the test needs a layer that pruning shrank"
    for name in pruned:
        new_p, old_p = after.params[name], before.params[name]
        # which old entries survived: match the pruned values to the pre-pruning values
        kept = [(old_p.detach().flatten() == v).nonzero()[0, 0] for v in new_p.detach().flatten()]
        kept = torch.stack(kept)
        for key in ("exp_avg", "exp_avg_sq"):
            want = before.state[name][key].flatten()[kept].view(new_p.shape)
            torch.testing.assert_close(after.state[name][key], want, rtol=0, atol=0)
        assert int(after.state[name]["step"]) == int(before.state[name]["step"]) > 0
    assert after.lr == before.lr


def test_qat_continues_the_lr_schedule(tmp_path):
    from compress.distill import DistillationModule

    pl.seed_everything(0)
    student = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    module = DistillationModule(student, task_loss=nn.CrossEntropyLoss(), lr=0.01, lr_schedule="cosine",
                                input_key="x")
    before, after = _StateProbe(2), _StateProbe(2)
    qat = QATCallback(start_epoch=2)
    data = torch.utils.data.DataLoader([{"x": b[0], "y": b[1]} for b in _data()], batch_size=None)
    _trainer(tmp_path, [before, qat, after], epochs=3).fit(module, data)
    # QAT swapped the layers at epoch 2's start (before the probes' first batch) and rebuilt the optimizer:
    # the rate is the cosine schedule's at step 8 of 12, not the restarted 0.01
    assert before.lr == after.lr
    expected = 0.01 * 0.5 * (1 + torch.cos(torch.tensor(8 / 12 * torch.pi)))
    assert abs(after.lr - float(expected)) < 1e-9, after.lr
    assert all("exp_avg" in s for s in after.state.values())  # moments carried into the QAT layers
