"""Score a policy on a vector env: the mean return of each instance's first episodes.

``policy(obs, mask) -> actions (N, n_branches)`` (e.g. ``module.act_greedy``, the deployed argmax). Every
instance runs until it has finished ``ceil(episodes / num_envs)`` episodes and only those count (taking
the first episodes to finish over all instances would favour short ones). The env is reset with
``seed``, so policies scored with the same seed meet the same initial states.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .collector import Collector
from ..errors import UserError

__all__ = ["evaluate_policy"]


def evaluate_policy(policy: Callable, env: Any, episodes: int = 10, seed: int = 10_000,
                    n_actions: int | None = None, mask_key: str | None = "action_mask",
                    max_steps: int = 10_000_000) -> dict:
    """``{"mean_return", "std_return", "episodes", "env_steps"}``."""
    if episodes < 1:
        raise UserError(f"episodes must be >= 1, got {episodes}")
    c = Collector(env, n_actions, 1.0, mask_key, seed)
    per = math.ceil(episodes / c.num_envs)
    got: list[list[float]] = [[] for _ in range(c.num_envs)]
    while min(len(g) for g in got) < per:
        if c.env_steps >= max_steps:
            raise RuntimeError(f"evaluate_policy: fewer than {per} episodes per instance after {max_steps} env steps")
        c.step(lambda obs, mask: (policy(obs, mask), {}))
        for i, ret in c.finished:
            if len(got[i]) < per:
                got[i].append(ret)
    returns = np.array([r for g in got for r in g])
    return {"mean_return": float(returns.mean()), "std_return": float(returns.std()),
            "episodes": int(returns.size), "env_steps": c.env_steps}
