"""Taps: record the output of a named submodule during forward.

A ``Tap`` is resolved by module path (``"net.2"``, ``"encoder.gru"``) with a forward hook.  Pruning
replaces layer shapes and sometimes module objects, so ``refresh()`` removes the hook and resolves the
path again on the same root module.
"""
from __future__ import annotations

import torch
from torch import nn

from compress.errors import UserError

__all__ = ["Tap"]


class Tap:
    """Forward hook on ``root.get_submodule(path)`` that keeps the latest output in ``.value``."""

    def __init__(self, path: str):
        self.path = path
        self.value: torch.Tensor | None = None
        self._root: nn.Module | None = None
        self._handle = None

    def attach(self, root: nn.Module, owner: str = "model") -> "Tap":
        self.detach()
        try:
            module = root.get_submodule(self.path)
        except AttributeError:
            names = [n for n, _ in root.named_modules() if n]
            raise UserError(
                f"tap '{self.path}' does not name a submodule of the {owner}; "
                f"available: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}") from None
        self._root = root
        self._handle = module.register_forward_hook(self._hook)
        return self

    def __deepcopy__(self, memo):
        """Deep-copying a tapped module (pruning searches, EMA teachers) copies its hooks and so this
        tap; the copy starts empty and unattached, and a recorded activation (part of a live autograd
        graph, which cannot be deep-copied) is never carried over."""
        return Tap(self.path)

    def _hook(self, module, inputs, output):
        if isinstance(output, tuple):  # e.g. GRU returns (output, h_n): keep the sequence output
            output = output[0]
        self.value = output

    def refresh(self) -> None:
        """Re-resolve the path (after pruning or module surgery)."""
        if self._root is not None:
            self.attach(self._root)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def pop(self) -> torch.Tensor:
        if self.value is None:
            raise RuntimeError(f"tap '{self.path}' saw no forward pass: run the model before the distiller")
        value, self.value = self.value, None
        return value
