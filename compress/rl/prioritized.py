"""Prioritized experience replay (Schaul et al. 2016, proportional variant) on a numpy sum-tree.

* priority of transition i: ``p_i = (|delta_i| + eps) ** alpha`` (the seed's Eq. 19 gives ``|delta_i|``: the
  mean |TD error| over both critics and all quantiles; its prioritization exponent omega is ``alpha``);
* sampling: ``P(i) = p_i / sum_k p_k``, stratified (one draw in each of ``n`` equal slices of the total);
* importance weights: ``w_i = (N * P(i)) ** -beta``, divided by the largest weight of the minibatch, with
  ``beta`` annealed towards 1 by the caller (``beta`` is the seed's omega');
* new transitions enter with the largest priority seen so far, so each is replayed at least once soon.

The sum-tree keeps ``2 * L`` float64 nodes (``L`` = capacity rounded up to a power of two; leaf i at
``L + i``); an update rewrites the leaves, then recomputes each touched parent from its two children
(no accumulated rounding error; a parent reached twice gets the same sum twice); sampling descends all draws at once.
Both are ``O(n log N)`` numpy operations.
"""
from __future__ import annotations

import numpy as np
import torch

from .replay import ReplayBuffer
from ..errors import UserError

__all__ = ["SumTree", "PrioritizedReplay"]


class SumTree:
    def __init__(self, capacity: int):
        self.leaves = 1 << max(0, int(capacity - 1).bit_length())
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def get(self, idx: np.ndarray) -> np.ndarray:
        return self.tree[self.leaves + np.asarray(idx)]

    def set(self, idx: np.ndarray, values: np.ndarray) -> None:
        node = self.leaves + np.asarray(idx, dtype=np.int64)
        self.tree[node] = values
        for _ in range(self.leaves.bit_length() - 1):   # repeated parents are written twice, with the same sum
            node = node // 2
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """Leaf index whose cumulative-sum interval holds each ``prefix`` value."""
        node = np.ones(len(prefix), dtype=np.int64)
        u = np.asarray(prefix, dtype=np.float64).copy()
        while node[0] < self.leaves:
            left = self.tree[2 * node]
            right = u >= left
            u = np.where(right, u - left, u)
            node = 2 * node + right
        return node - self.leaves


class PrioritizedReplay(ReplayBuffer):
    def __init__(self, capacity: int, alpha: float = 0.6, eps: float = 1e-6):
        super().__init__(capacity)
        if alpha < 0:
            raise UserError(f"PER alpha must be >= 0, got {alpha}")
        if eps <= 0:
            raise UserError(f"PER eps must be > 0, got {eps}")
        self.alpha, self.eps = float(alpha), float(eps)
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0   # of |delta| + eps, before the exponent

    def add(self, batch: dict) -> np.ndarray:
        idx = super().add(batch)
        self.tree.set(idx, np.full(len(idx), self.max_priority ** self.alpha))
        return idx

    def probabilities(self, idx: np.ndarray) -> np.ndarray:
        """``P(i)`` of the given slots."""
        return self.tree.get(idx) / self.tree.total

    def sample(self, n: int, rng: np.random.Generator, beta: float = 1.0) -> dict[str, torch.Tensor]:
        if self.size == 0:
            raise UserError("cannot sample from an empty replay buffer")
        total = self.tree.total
        prefix = (np.arange(n) + rng.random(n)) * (total / n)
        idx = np.minimum(self.tree.find(np.minimum(prefix, np.nextafter(total, 0.0))), self.size - 1)
        weights = (self.size * self.probabilities(idx)) ** (-float(beta))
        out = self.gather(idx)
        out["weight"] = torch.from_numpy((weights / weights.max()).astype(np.float32))
        return out

    def update_priorities(self, idx, td_abs) -> None:
        """New priorities from ``|delta|`` (tensor or array) for the slots ``idx`` of a sampled batch."""
        idx = np.asarray(idx.cpu() if torch.is_tensor(idx) else idx, dtype=np.int64)
        p = np.asarray(td_abs.detach().cpu() if torch.is_tensor(td_abs) else td_abs, dtype=np.float64) + self.eps
        if p.shape != idx.shape:
            raise UserError(f"update_priorities: {p.shape[0] if p.ndim else 0} priorities for {len(idx)} indices")
        if not np.isfinite(p).all():
            raise UserError("update_priorities: priorities must be finite (a NaN/inf TD error?)")
        self.tree.set(idx, p ** self.alpha)
        self.max_priority = max(self.max_priority, float(p.max()))

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["priorities"] = torch.from_numpy(self.tree.get(np.arange(self.size)).copy())
        state["max_priority"] = self.max_priority
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.tree = SumTree(self.capacity)
        if self.size:
            self.tree.set(np.arange(self.size), state["priorities"].numpy())
        self.max_priority = float(state["max_priority"])
