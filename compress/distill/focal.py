"""Focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017) as a task loss.

``FL = alpha * (1 - p_t)^gamma * CE``, with ``p_t = exp(-CE)`` the probability of the target class,
averaged over every labelled position.  Logits may carry extra slot dimensions: ``(B, ..., C)``
against ``(B, ...)`` targets (e.g. a beam now and in three future slots, ``(B, 4, 64)``), which is the
beam-tracking seed's use (gamma 2, alpha 1, averaged over the B x 4 slot logits).  Targets equal to
``ignore_index`` are skipped.  As a ``torch.nn`` loss it takes ``(output, target)``; the
``DistillationModule`` reads the target from the batch (``TargetLoss``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FocalLoss"]


class FocalLoss(nn.modules.loss._Loss):
    def __init__(self, gamma: float = 2.0, alpha: float = 1.0, ignore_index: int = -100):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"FocalLoss: gamma must be >= 0, got {gamma}")
        self.gamma, self.alpha, self.ignore_index = float(gamma), float(alpha), int(ignore_index)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[:-1] != target.shape:
            raise ValueError(f"FocalLoss: logits {list(logits.shape)} need targets of shape {list(logits.shape[:-1])}, "
                             f"got {list(target.shape)}")
        flat, tgt = logits.reshape(-1, logits.shape[-1]), target.reshape(-1).long()
        keep = tgt != self.ignore_index
        ce = F.cross_entropy(flat[keep], tgt[keep], reduction="none")
        pt = torch.exp(-ce)
        return (self.alpha * (1 - pt) ** self.gamma * ce).mean()
