"""Lazy package attributes: ``compress.profile`` etc. import their heavy modules (onnx, optuna,
torch-pruning) only when a name is first used, so ``import compress`` stays light."""
from __future__ import annotations

import importlib
from typing import Callable


def lazy_getattr(package: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module-level ``__getattr__`` resolving ``names[attr]`` (a module path) on first access."""

    def __getattr__(name: str):
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module '{package}' has no attribute {name!r}")

    return __getattr__
