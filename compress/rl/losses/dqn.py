"""Q-learning targets and the Q-values of the actions taken, per action branch.

Double DQN (van Hasselt et al. 2016): ``y = r + gamma * (1 - d) * Q_target(s', argmax_a Q_online(s', a))``;
with ``double=False`` the classic target ``r + gamma * (1 - d) * max_a Q_target(s', a)`` (Mnih et al. 2015).
Each branch is its own Q-learning problem (independent-branch targets, Tavakoli et al. 2018) sharing the
reward, or with its own reward when ``rew`` is ``(B, n_branches)``; the argmax/max run over the valid
actions of ``next_mask``. ``gamma = 0`` is a contextual bandit: the target is the reward, no next state
is looked at.
"""
from __future__ import annotations

import torch

from ..policies import Branches, greedy
from ...errors import UserError

__all__ = ["q_taken", "double_dqn_target"]


def q_taken(q: torch.Tensor, act: torch.Tensor, branches: Branches) -> torch.Tensor:
    """``Q_b(s, a_b)`` of the taken actions: flat ``(B, sum(sizes)[, N])`` and ``(B, n)`` -> ``(B, n[, N])``."""
    branches.check(q, "Q-values")
    v = branches.view(q)
    idx = act.long().reshape(act.shape[0], branches.n, 1, *([1] * (q.dim() - 2)))
    return v.gather(2, idx.expand(-1, -1, 1, *v.shape[3:])).squeeze(2)


def double_dqn_target(rew: torch.Tensor, done: torch.Tensor, gamma: float, branches: Branches,
                      next_q_target: torch.Tensor | None = None, next_q_online: torch.Tensor | None = None,
                      next_mask: torch.Tensor | None = None, double: bool = True) -> torch.Tensor:
    """Targets ``(B, n)`` (``(B, 1)`` for one branch); ``rew`` is ``(B,)`` or ``(B, n)``, ``done`` ``(B,)``."""
    target = rew[:, None] if rew.dim() == 1 else rew
    if gamma == 0:
        return target.expand(rew.shape[0], branches.n) if branches.n > 1 else target
    if next_q_target is None or (double and next_q_online is None):
        raise UserError("gamma > 0 needs next_q_target (and next_q_online for double DQN)")
    if double:
        a = greedy(next_q_online, branches, next_mask)
        nv = q_taken(next_q_target, a, branches)
    else:
        nv = q_taken(next_q_target, greedy(next_q_target, branches, next_mask), branches)
    return target + gamma * (1.0 - done)[:, None] * nv
