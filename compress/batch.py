"""What a batch holds: its model input and its target, for dict batches and (x, y) tuples alike."""
from __future__ import annotations

from typing import Mapping

from .errors import UserError

__all__ = ["batch_input", "batch_target"]


def batch_input(batch, key: str = "x"):
    """The model input of a batch: ``batch[key]`` for dicts, ``batch[0]`` for tuples/lists."""
    if isinstance(batch, Mapping):
        if key not in batch:
            raise UserError(f"batch has no input key '{key}' (keys: {', '.join(map(str, batch))})")
        return batch[key]
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


def batch_target(batch, key: str = "y"):
    """The target of a batch: ``batch[key]`` for dicts, ``batch[1]`` for tuples/lists."""
    if isinstance(batch, Mapping):
        if key not in batch:
            raise UserError(f"batch has no target key '{key}' (keys: {', '.join(map(str, batch))})")
        return batch[key]
    if isinstance(batch, (tuple, list)) and len(batch) > 1:
        return batch[1]
    raise UserError("the batch carries no target: use dict batches with a target key or (x, y) tuples")
