"""Adapters between task losses and batches.

A task loss is called as ``task_loss(student_out, batch)``.  Standard torch losses take
``(output, target)``; ``TargetLoss`` wraps them, reading the target from ``batch[target_key]`` (dict
batches) or ``batch[1]`` (tuples).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from compress.batch import batch_target
from compress.errors import UserError

__all__ = ["PartialLabelCrossEntropy", "TargetLoss", "as_task_loss", "batch_target"]


class TargetLoss(nn.Module):
    def __init__(self, loss: nn.Module, target_key: str = "y"):
        super().__init__()
        self.loss, self.target_key = loss, target_key

    def forward(self, student_out: torch.Tensor, batch) -> torch.Tensor:
        return self.loss(student_out, batch_target(batch, self.target_key))


class PartialLabelCrossEntropy(nn.Module):
    """Cross-entropy over the samples that have a label (``target >= 0``); 0 for a batch with none.

    For training sets that mix labelled samples with unlabelled ones (label ``-1``) that only the
    knowledge terms learn from, e.g. a simulator's transfer set labelled by the teacher alone
    (``compress.data.MNIST1DDataModule(n_transfer=...)``).  ``nn.CrossEntropyLoss(ignore_index=-1)``
    would return NaN for a batch without a single label."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        keep = target >= 0
        if not bool(keep.any()):
            return logits.sum() * 0.0
        return F.cross_entropy(logits[keep], target[keep], label_smoothing=self.label_smoothing)


def as_task_loss(loss: Callable | None, target_key: str = "y") -> Callable | None:
    """A loss ``nn.Module`` (``nn.CrossEntropyLoss()``, ``PartialLabelCrossEntropy()``...) follows torch's
    ``loss(output, target)`` convention and is wrapped to read the target from the batch; a module that
    wants the whole batch sets ``takes_batch = True``, and any other callable is called as
    ``loss(output, batch)``."""
    if loss is None or isinstance(loss, TargetLoss):
        return loss
    if isinstance(loss, nn.Module) and not getattr(loss, "takes_batch", False):
        return TargetLoss(loss, target_key)
    if not callable(loss):
        raise UserError(f"task_loss must be callable, got {type(loss).__name__}")
    return loss
