"""Weight schedules for knowledge terms.

A schedule maps training progress ``p`` in ``[0, 1]`` (``global_step / total_steps``) to a weight.
They cover the beta schedules of algorithm distillation (fixed, decreasing, increasing) and the usual
warm-up / decay shapes.  Progress, not epochs, is the argument so that one recipe behaves the same
whatever the dataset size; ``Step`` milestones are fractions of training for the same reason.
"""
from __future__ import annotations

import math
from typing import Sequence

from compress.errors import UserError

__all__ = ["Schedule", "Constant", "Linear", "Cosine", "Step", "Exponential", "as_schedule"]


class Schedule:
    """Base class: ``schedule(progress) -> float``."""

    def __call__(self, progress: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _clip(progress: float) -> float:
        return min(1.0, max(0.0, float(progress)))


class Constant(Schedule):
    """A fixed weight (the 'fixed beta' of algorithm distillation)."""

    def __init__(self, value: float = 1.0):
        self.value = float(value)

    def __call__(self, progress: float) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"Constant({self.value})"


class Linear(Schedule):
    """Straight line from ``start`` at p=0 to ``end`` at p=1 (decreasing or increasing beta)."""

    def __init__(self, start: float = 1.0, end: float = 0.0):
        self.start, self.end = float(start), float(end)

    def __call__(self, progress: float) -> float:
        p = self._clip(progress)
        return self.start + (self.end - self.start) * p

    def __repr__(self) -> str:
        return f"Linear({self.start}->{self.end})"


class Cosine(Schedule):
    """Half-cosine from ``start`` to ``end``: flat at both ends, fastest change mid-way."""

    def __init__(self, start: float = 1.0, end: float = 0.0):
        self.start, self.end = float(start), float(end)

    def __call__(self, progress: float) -> float:
        p = self._clip(progress)
        return self.end + (self.start - self.end) * 0.5 * (1.0 + math.cos(math.pi * p))

    def __repr__(self) -> str:
        return f"Cosine({self.start}->{self.end})"


class Step(Schedule):
    """Piecewise constant: ``values[i]`` until ``milestones[i]`` (fractions of training)."""

    def __init__(self, values: Sequence[float] = (1.0, 0.1), milestones: Sequence[float] = (0.5,)):
        values, milestones = [float(v) for v in values], [float(m) for m in milestones]
        if len(values) != len(milestones) + 1:
            raise UserError(
                f"Step schedule needs len(values) == len(milestones) + 1, got {len(values)} values "
                f"and {len(milestones)} milestones")
        if any(b <= a for a, b in zip(milestones, milestones[1:])) or any(not 0 <= m <= 1 for m in milestones):
            raise UserError(f"Step milestones must increase within [0, 1], got {milestones}")
        self.values, self.milestones = values, milestones

    def __call__(self, progress: float) -> float:
        p = self._clip(progress)
        for value, milestone in zip(self.values, self.milestones):
            if p < milestone:
                return value
        return self.values[-1]

    def __repr__(self) -> str:
        return f"Step({self.values} at {self.milestones})"


class Exponential(Schedule):
    """Geometric interpolation ``start * (end/start) ** p`` (both must be > 0)."""

    def __init__(self, start: float = 1.0, end: float = 0.01):
        if start <= 0 or end <= 0:
            raise UserError(f"Exponential schedule needs start > 0 and end > 0, got {start}, {end}")
        self.start, self.end = float(start), float(end)

    def __call__(self, progress: float) -> float:
        p = self._clip(progress)
        return self.start * (self.end / self.start) ** p

    def __repr__(self) -> str:
        return f"Exponential({self.start}->{self.end})"


def as_schedule(weight: "float | Schedule") -> Schedule:
    """A number becomes ``Constant(number)``; a schedule is returned as is."""
    if isinstance(weight, Schedule):
        return weight
    if isinstance(weight, (int, float)) and not isinstance(weight, bool):
        return Constant(float(weight))
    raise UserError(f"a term weight must be a number or a Schedule, got {type(weight).__name__}")
