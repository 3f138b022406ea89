"""PPO losses (Schulman et al. 2017), written as quantities to minimize; the seed's Eqs. 6-9.

* clipped surrogate (Eq. 8): ``L_clip = -E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)]``, ``rho = exp(logp - logp_old)``
  with logp the joint log-probability (sum over branches: the seed's product of per-RBG probabilities);
* value (Eq. 7): ``L_V = 1/2 E[(V(s) - J_hat)^2]``; optionally clipped around the rollout's values as in
  openai/baselines' ppo2 (``1/2 E[max((V - J)^2, (V_old + clip(V - V_old, -eps, eps) - J)^2)]``);
* entropy (Eq. 9): the mean of the policy's entropy, subtracted with weight xi by the caller.
"""
from __future__ import annotations

import torch

__all__ = ["ppo_clip_loss", "ppo_value_loss"]


def ppo_clip_loss(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, clip: float) -> torch.Tensor:
    ratio = (logp - logp_old).exp()
    return -torch.min(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv).mean()


def ppo_value_loss(value: torch.Tensor, ret: torch.Tensor, value_old: torch.Tensor | None = None,
                   clip: float | None = None) -> torch.Tensor:
    err = (value - ret) ** 2
    if clip is not None and value_old is not None:
        clipped = value_old + (value - value_old).clamp(-clip, clip)
        err = torch.max(err, (clipped - ret) ** 2)
    return 0.5 * err.mean()
