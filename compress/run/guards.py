"""``NonFiniteGuard``: a NaN or Inf loss stops the run before it can reach the weights.

Checked in ``on_before_backward`` (automatic and manual optimization alike), so the step that went
non-finite is never applied: the weights, ``last.ckpt`` and ``student.pt`` stay as they were.  The error
is one line naming the step and, when the module reports its loss terms (``last_loss_terms``: a dict
of scalar tensors, as ``DistillationModule`` keeps), which terms went non-finite.  Cost: one
``isfinite`` check of a scalar per step.
"""
from __future__ import annotations

import math

import torch
from lightning.pytorch.callbacks import Callback

from .checkpoints import NonFiniteError

__all__ = ["NonFiniteGuard"]


def _value(v) -> float:
    try:
        return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
    except (TypeError, ValueError, RuntimeError):
        return math.nan


class NonFiniteGuard(Callback):
    def on_before_backward(self, trainer, pl_module, loss) -> None:
        if bool(torch.isfinite(loss.detach()).all()):
            return
        terms = getattr(pl_module, "last_loss_terms", None) or {}
        bad = [f"{k}={_value(v)}" for k, v in terms.items() if not math.isfinite(_value(v))]
        which = f"; non-finite terms: {', '.join(bad)}" if bad else ""
        raise NonFiniteError(
            f"non-finite loss ({_value(loss)}) at epoch {trainer.current_epoch}, step {trainer.global_step}"
            f"{which}: the step was not applied and the run stopped (lower the learning rate, check the "
            "loss weights and the data); the last checkpoint and student.pt are unchanged")
