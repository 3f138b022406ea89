"""Connectors: small trainable maps from a student feature to the teacher feature's shape."""
from __future__ import annotations

from torch import nn

from compress.errors import UserError

__all__ = ["make_connector"]


def make_connector(kind: str | None, student_dim: int, teacher_dim: int) -> nn.Module:
    """``"linear"`` for (B, C) or (B, ..., C) features, ``"conv1x1"`` for (B, C, H, W), None for identity.

    The identity connector requires equal widths, so a mismatch is reported instead of silently
    broadcast.
    """
    if kind in (None, "none", "identity"):
        if student_dim != teacher_dim:
            raise UserError(
                f"feature widths differ (student {student_dim}, teacher {teacher_dim}): "
                "set connector='linear' or 'conv1x1'")
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(student_dim, teacher_dim)
    if kind == "conv1x1":
        return nn.Conv2d(student_dim, teacher_dim, kernel_size=1)
    raise UserError(f"unknown connector '{kind}': use 'linear', 'conv1x1' or None")
