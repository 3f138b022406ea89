"""Top-k accuracy per output slot, as a torchmetrics ``Metric``, and a callback that logs it in training.

Multi-slot classifiers emit ``(B, S, C)`` logits (e.g. a beam now and in three future slots: S = 4,
C = 64) against ``(B, S)`` targets.  ``SlotTopK`` counts, for every ``k`` and slot, how often the target
is among the ``k`` largest logits; ``compute()`` gives ``{"top{k}": tensor of S accuracies}``.
Targets ``< 0`` (e.g. -100, "no label") are ignored.  A ``(B, C)`` output is one slot.

``SlotTopKCallback`` records the deployable network's output during validation/test with a forward
hook on ``pl_module.<module_attr>`` (no second forward pass) and logs ``<stage>/top{k}_t{s}`` and the
mean over slots ``<stage>/top{k}`` once per epoch.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torchmetrics
from lightning.pytorch.callbacks import Callback

__all__ = ["SlotTopK", "SlotTopKCallback"]


class SlotTopK(torchmetrics.Metric):
    full_state_update = False

    def __init__(self, ks: Sequence[int] = (1, 2, 5), slots: int = 1, **kwargs):
        super().__init__(**kwargs)
        ks = tuple(int(k) for k in ks)
        if not ks or min(ks) < 1:
            raise ValueError(f"SlotTopK: ks must be positive integers, got {ks}")
        if slots < 1:
            raise ValueError(f"SlotTopK: slots must be >= 1, got {slots}")
        self.ks, self.slots = ks, int(slots)
        self.add_state("correct", torch.zeros(len(ks), slots, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros(slots, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        if logits.dim() == 2:
            logits, target = logits[:, None], target.reshape(-1, 1)
        if logits.dim() != 3 or logits.shape[1] != self.slots or target.shape != logits.shape[:2]:
            raise ValueError(f"SlotTopK: logits {list(logits.shape)} and target {list(target.shape)} must be "
                             f"(B, {self.slots}, C) and (B, {self.slots})")
        k_max = min(max(self.ks), logits.shape[-1])
        top = logits.topk(k_max, dim=-1).indices                   # (B, S, k_max)
        valid = target >= 0
        hit = (top == target[..., None]) & valid[..., None]
        first = torch.cumsum(hit.long(), dim=-1)                   # hit within the first j ranks
        for i, k in enumerate(self.ks):
            self.correct[i] += first[..., min(k, k_max) - 1].clamp(max=1).sum(0)
        self.total += valid.sum(0)

    def compute(self) -> dict[str, torch.Tensor]:
        acc = self.correct.double() / self.total.clamp(min=1).double()
        return {f"top{k}": acc[i] for i, k in enumerate(self.ks)}


class SlotTopKCallback(Callback):
    """Log per-slot top-k accuracies of ``pl_module.<module_attr>`` on validation and test batches."""

    def __init__(self, ks: Sequence[int] = (1, 2, 5), slots: int = 1, target_key: str = "y",
                 module_attr: str = "student", prog_bar_k: int | None = 2):
        self.ks, self.slots, self.target_key, self.module_attr = tuple(ks), int(slots), target_key, module_attr
        self.prog_bar_k = prog_bar_k
        self.metric = SlotTopK(self.ks, self.slots)
        self._handle = None
        self._out = None

    def _attach(self, pl_module) -> None:
        net = getattr(pl_module, self.module_attr, None)
        if net is None:
            raise ValueError(f"SlotTopKCallback: the LightningModule has no attribute '{self.module_attr}'")
        self.metric.reset()
        self._handle = net.register_forward_hook(self._record)

    def _record(self, module, inputs, output) -> None:
        self._out = output[0] if isinstance(output, tuple) else output

    def _update(self, batch) -> None:
        if self._out is None:
            return
        target = batch[self.target_key] if isinstance(batch, dict) else batch[1]
        self.metric.update(self._out.detach().cpu(), target.cpu())
        self._out = None

    def _finish(self, pl_module, stage: str) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if int(self.metric.total.sum()) == 0:
            return
        for name, acc in self.metric.compute().items():
            pl_module.log(f"{stage}/{name}", float(acc.mean()), prog_bar=name == f"top{self.prog_bar_k}")
            if self.slots > 1:
                for s, a in enumerate(acc.tolist()):
                    pl_module.log(f"{stage}/{name}_t{s}", a)

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._attach(pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._update(batch)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._finish(pl_module, "val")

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._attach(pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._update(batch)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._finish(pl_module, "test")
