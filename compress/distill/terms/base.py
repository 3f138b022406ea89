"""The knowledge-term base class.

A term is one loss between a student signal and a teacher signal, with a weight that may follow a
schedule.  The ``Distiller`` fetches the signals: the model outputs by default, or tap outputs when
``student_tap`` / ``teacher_tap`` name submodules.
"""
from __future__ import annotations

import torch
from torch import nn

from ..schedules import Schedule, as_schedule

from compress.errors import UserError

__all__ = ["Term"]


class Term(nn.Module):
    """Base class. Subclasses implement ``loss(student, teacher, batch) -> scalar``."""

    #: whether the term compares a distribution (logits), so the batch-shape check is strict
    def __init__(self, weight: "float | Schedule" = 1.0, student_tap: str | None = None,
                 teacher_tap: str | None = None, teacher: str | None = None, name: str | None = None):
        super().__init__()
        self.schedule = as_schedule(weight)
        self.student_tap = student_tap
        self.teacher_tap = teacher_tap
        self.teacher = teacher  # name of the teacher whose tap is used (default: the first)
        self.term_name = name or type(self).__name__.lower()

    def weight(self, progress: float) -> float:
        return self.schedule(progress)

    def check_shapes(self, student: torch.Tensor, teacher: torch.Tensor) -> None:
        if student.shape != teacher.shape:
            raise UserError(
                f"term '{self.term_name}': student output shape {tuple(student.shape)} does not match "
                f"teacher output shape {tuple(teacher.shape)}")

    def loss(self, student: torch.Tensor, teacher: torch.Tensor, batch) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, student: torch.Tensor, teacher: torch.Tensor, batch=None) -> torch.Tensor:
        return self.loss(student, teacher, batch)
