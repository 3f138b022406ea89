"""Adapters between task losses and batches.

A task loss is called as ``task_loss(student_out, batch)``.  Standard torch losses take
``(output, target)``; ``TargetLoss`` wraps them, reading the target from ``batch[target_key]`` (dict
batches) or ``batch[1]`` (tuples).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from compress.batch import batch_target
from compress.errors import UserError

__all__ = ["TargetLoss", "as_task_loss", "batch_target"]


class TargetLoss(nn.Module):
    def __init__(self, loss: nn.Module, target_key: str = "y"):
        super().__init__()
        self.loss, self.target_key = loss, target_key

    def forward(self, student_out: torch.Tensor, batch) -> torch.Tensor:
        return self.loss(student_out, batch_target(batch, self.target_key))


def as_task_loss(loss: Callable | None, target_key: str = "y") -> Callable | None:
    """Torch ``_Loss`` modules (``nn.CrossEntropyLoss()``...) are wrapped; other callables are kept."""
    if loss is None or isinstance(loss, TargetLoss):
        return loss
    if isinstance(loss, nn.modules.loss._Loss):
        return TargetLoss(loss, target_key)
    if not callable(loss):
        raise UserError(f"task_loss must be callable, got {type(loss).__name__}")
    return loss
