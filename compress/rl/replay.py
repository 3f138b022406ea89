"""Uniform experience replay with a dict schema (a ring buffer of numpy arrays).

The schema is set by the first ``add``: every key (``obs``, ``act``, ``rew``, ``next_obs``, ``done``,
``mask``, ``next_mask``, ``expert_act``, anything else) becomes one array of ``(capacity, *row_shape)``
with the dtype it arrived in; later adds must bring the same keys and row shapes. ``sample`` returns
torch tensors (copies) plus the sampled ``index``.

``state_dict()`` holds the filled rows as tensors (``torch.load(weights_only=True)`` reads it back),
so a checkpointed run resumes with the same buffer.
"""
from __future__ import annotations

import numpy as np
import torch
from ..errors import UserError

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    def __init__(self, capacity: int):
        if int(capacity) < 1:
            raise UserError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity, self.size, self.pos = int(capacity), 0, 0
        self.data: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self.size

    def _allocate(self, batch: dict[str, np.ndarray]) -> None:
        for key, value in batch.items():
            self.data[key] = np.zeros((self.capacity, *value.shape[1:]), dtype=value.dtype)

    def add(self, batch: dict) -> np.ndarray:
        """Append rows (every value has the same first dimension); returns their slots."""
        batch = {k: np.asarray(v) for k, v in batch.items()}
        sizes = {len(v) for v in batch.values()}
        if len(sizes) != 1:
            raise UserError(f"replay add: keys have different numbers of rows {({k: len(v) for k, v in batch.items()})}")
        n = sizes.pop()
        if n > self.capacity:
            raise UserError(f"cannot add {n} transitions to a buffer of capacity {self.capacity}")
        if not self.data:
            self._allocate(batch)
        if set(batch) != set(self.data):
            raise UserError(f"replay add: keys {sorted(batch)} differ from the buffer's {sorted(self.data)}")
        for key, value in batch.items():
            if value.shape[1:] != self.data[key].shape[1:]:
                raise UserError(f"replay add: '{key}' rows have shape {value.shape[1:]}, the buffer holds "
                                 f"{self.data[key].shape[1:]}")
        idx = (self.pos + np.arange(n)) % self.capacity
        for key, value in batch.items():
            self.data[key][idx] = value
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        return idx

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        if self.size == 0:
            raise UserError("cannot sample from an empty replay buffer")
        return self.gather(rng.integers(0, self.size, n))

    def gather(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        out = {k: torch.from_numpy(v[idx]) for k, v in self.data.items()}
        out["index"] = torch.from_numpy(np.asarray(idx, dtype=np.int64))
        return out

    # -------------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "size": self.size, "pos": self.pos,
                "data": {k: torch.from_numpy(v[: self.size].copy()) for k, v in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        if int(state["capacity"]) != self.capacity:
            raise UserError(f"checkpointed replay capacity {state['capacity']} differs from {self.capacity}")
        self.size, self.pos = int(state["size"]), int(state["pos"])
        self.data = {}
        for key, rows in state["data"].items():
            rows = rows.numpy()
            self.data[key] = np.zeros((self.capacity, *rows.shape[1:]), dtype=rows.dtype)
            self.data[key][: self.size] = rows
