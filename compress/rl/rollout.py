"""On-policy rollout storage and generalized advantage estimation (Schulman et al. 2016).

``RolloutStorage`` holds ``T`` steps of ``N`` env instances (a dict schema like ``ReplayBuffer``: obs,
act, logp, value, rew, done, mask, expert_act...), is filled step by step and read as a flat batch of
``T * N`` rows, then cleared. ``gae`` computes advantages and returns over it.

Conventions (as in CleanRL's ppo.py): ``done[t] = 1`` when the episode ended *after* step t (terminated
or truncated); a truncated step has ``gamma * V(final_obs)`` already added to its reward (the episode was
cut, not ended), so no value leaks across an episode boundary and truncation still bootstraps.
"""
from __future__ import annotations

import numpy as np
import torch
from ..errors import UserError

__all__ = ["RolloutStorage", "gae"]


def gae(rew: torch.Tensor, value: torch.Tensor, done: torch.Tensor, last_value: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns ``(T, N, ...)`` from rewards, values, dones ``(T, N, ...)`` and the value of
    the observation after the last step ``(N, ...)``:
    ``delta_t = r_t + gamma * V_{t+1} * (1 - d_t) - V_t``, ``A_t = delta_t + gamma * lam * (1 - d_t) * A_{t+1}``,
    ``R_t = A_t + V_t`` (the value target J-hat of the seed's Eq. 7)."""
    if not (rew.shape == value.shape == done.shape):
        raise UserError(f"gae: rew {tuple(rew.shape)}, value {tuple(value.shape)} and done {tuple(done.shape)} "
                         "must have the same shape")
    adv = torch.zeros_like(rew)
    last = torch.zeros_like(last_value)
    for t in reversed(range(rew.shape[0])):
        nxt = last_value if t == rew.shape[0] - 1 else value[t + 1]
        keep = 1.0 - done[t]
        delta = rew[t] + gamma * nxt * keep - value[t]
        last = delta + gamma * lam * keep * last
        adv[t] = last
    return adv, adv + value


class RolloutStorage:
    def __init__(self, steps: int, num_envs: int):
        if int(steps) < 1:
            raise UserError(f"rollout steps must be >= 1, got {steps}")
        self.steps, self.num_envs, self.t = int(steps), int(num_envs), 0
        self.data: dict[str, np.ndarray] = {}

    @property
    def full(self) -> bool:
        return self.t == self.steps

    def add(self, step: dict) -> None:
        if self.full:
            raise UserError("rollout storage is full: read it and clear() it first")
        for key, value in step.items():
            value = np.asarray(value)
            if value.shape[0] != self.num_envs:
                raise UserError(f"rollout add: '{key}' has {value.shape[0]} rows, expected num_envs={self.num_envs}")
            if key not in self.data:
                if self.t:
                    raise UserError(f"rollout add: key '{key}' appeared mid-rollout")
                self.data[key] = np.zeros((self.steps, *value.shape), dtype=value.dtype)
            self.data[key][self.t] = value
        self.t += 1

    def tensors(self) -> dict[str, torch.Tensor]:
        """``(T, N, ...)`` tensors of the filled steps."""
        return {k: torch.from_numpy(v[: self.t]) for k, v in self.data.items()}

    def clear(self) -> None:
        self.t = 0
