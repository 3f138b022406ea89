"""Teachers: frozen networks, checkpoints, or any callable (an algorithm such as WMMSE).

Every teacher is wrapped in ``TeacherHandle``: it runs in eval mode under ``torch.no_grad()``, its
parameters have ``requires_grad=False``, and it is held outside the student's module tree so it never
lands in a student checkpoint or an optimizer.

Self-distillation teachers are built from the student itself: ``EMATeacher`` (exponential moving
average of the weights, updated after every optimizer step) and ``SnapshotTeacher`` (a copy refreshed
every N epochs).  Their state is part of the training checkpoint (``DistillationModule`` saves it and
restores it with ``load_state``), so a resumed run distills toward the same teacher.
"""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from compress.errors import UserError
from compress.serialize import load_weights_only

__all__ = ["TeacherHandle", "Checkpoint", "EMATeacher", "SnapshotTeacher", "frozen_copy", "load_state_dict_file",
           "fingerprint"]


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict with ``weights_only=True`` from a plain ``.pt`` file or a Lightning ``.ckpt``."""
    obj = load_weights_only(path, "weights file")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise UserError(f"{path} does not hold a state dict")
    return obj


def _strip_prefix(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """Accept ``student.*`` / ``model.*`` prefixed keys from Lightning checkpoints."""
    wanted = set(module.state_dict())
    if set(state) >= wanted:
        return {k: state[k] for k in wanted}
    for prefix in ("student.", "model.", "net."):
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if sub and set(sub) >= wanted:
            return {k: sub[k] for k in wanted}
    return state


class Checkpoint(nn.Module):
    """A teacher network built from ``module`` with weights loaded from ``path`` (weights only)."""

    def __init__(self, module: nn.Module, path: str):
        super().__init__()
        state = _strip_prefix(load_state_dict_file(path), module)
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise UserError(f"checkpoint {path} does not fit the teacher architecture: {first}") from None
        self.module = module
        self.path = str(path)

    def forward(self, x):
        return self.module(x)


def fingerprint(obj: Any) -> str:
    """A short hash that changes when a teacher's weights change (modules) or its identity does."""
    h = hashlib.sha1()
    if isinstance(obj, nn.Module):
        h.update(type(obj).__qualname__.encode())
        for name, tensor in sorted(obj.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    else:
        key = getattr(obj, "cache_key", None)
        h.update(str(key if key is not None else repr(obj)).encode())
    return h.hexdigest()[:16]


def _eval(module: nn.Module) -> bool:
    """Eval mode; False for a ``torch.export`` program, which has no train/eval switch (it was traced
    in one mode)."""
    try:
        module.eval()
        return True
    except NotImplementedError:
        return False


class TeacherHandle:
    """Holds one teacher outside any module tree and calls it frozen."""

    def __init__(self, name: str, teacher: nn.Module | Callable):
        if not callable(teacher):
            raise UserError(f"teacher '{name}' must be an nn.Module or a callable, got {type(teacher).__name__}")
        self.name = name
        self.teacher = teacher
        self.freeze()

    @property
    def module(self) -> nn.Module | None:
        return self.teacher if isinstance(self.teacher, nn.Module) else None

    def freeze(self) -> None:
        self._switchable = True
        if self.module is not None:
            self._switchable = _eval(self.module)
            for p in self.module.parameters():
                p.requires_grad_(False)

    @torch.no_grad()
    def __call__(self, x):
        if self.module is not None:
            if self._switchable and self.module.training:
                _eval(self.module)
            dev = x.device if isinstance(x, torch.Tensor) else None
            first = next(self.module.parameters(), None)
            if dev is not None and first is not None and first.device != dev:
                self.module.to(dev)
        out = self.teacher(x)
        if isinstance(out, tuple):
            out = out[0]
        return out.detach() if isinstance(out, torch.Tensor) else out


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` in eval mode with no parameter requiring grad (self-teachers, targets)."""
    out = copy.deepcopy(module).eval()
    for p in out.parameters():
        p.requires_grad_(False)
    return out


class EMATeacher(nn.Module):
    """Exponential moving average of the student (mean teacher).  ``update(student)`` after each step."""

    def __init__(self, student: nn.Module, decay: float = 0.99):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise UserError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.module = frozen_copy(student)

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        s_state = student.state_dict()
        for name, t_val in self.module.state_dict().items():
            s_val = s_state[name]
            if t_val.shape != s_val.shape:  # the student was pruned: restart the average
                self.module = frozen_copy(student)
                return
            if t_val.dtype.is_floating_point:
                t_val.mul_(self.decay).add_(s_val.detach(), alpha=1.0 - self.decay)
            else:
                t_val.copy_(s_val)

    def forward(self, x):
        return self.module(x)

    @torch.no_grad()
    def load_state(self, student: nn.Module, state: dict) -> None:
        """Restore a checkpointed average (built on the student's current structure, e.g. after pruning)."""
        _load_copy(self, student, state)


def _load_copy(teacher: nn.Module, student: nn.Module, state: dict) -> None:
    current = teacher.module.state_dict()
    if set(current) != set(state) or any(current[k].shape != state[k].shape for k in state):
        teacher.module = frozen_copy(student)
    teacher.module.load_state_dict(state)


class SnapshotTeacher(nn.Module):
    """A frozen copy of the student, refreshed every ``every_n_epochs`` epochs."""

    def __init__(self, student: nn.Module, every_n_epochs: int = 1):
        super().__init__()
        if every_n_epochs < 1:
            raise UserError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self.module = frozen_copy(student)

    @torch.no_grad()
    def snapshot(self, student: nn.Module) -> None:
        self.module = frozen_copy(student)

    @torch.no_grad()
    def load_state(self, student: nn.Module, state: dict) -> None:
        """Restore a checkpointed snapshot (built on the student's current structure)."""
        _load_copy(self, student, state)

    def forward(self, x):
        return self.module(x)
