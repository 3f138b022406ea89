"""SAC-discrete losses (Christodoulou 2019) with masks and the seed's state-aware target entropy.

Per branch b, with the actor's masked distribution ``pi_b(.|s)`` (probabilities 0 and log-probabilities 0
at invalid actions) and critic values ``Q_b(s, .)`` (``(B, n, width)``, or ``(B, n, width, N)`` quantiles):

* soft value (the critic target's expectation, exact over the discrete actions, Algorithm 2 / Eq. 13 with
  the sampled ``a'`` replaced by the full sum): ``V_b(s') = sum_a pi_b(a|s') [Q_b(s', a) - alpha log pi_b(a|s')]``;
* actor (Eq. 15, Algorithm 2 line 18): ``J_pi = mean_i w_i mean_b sum_a pi_b(a|s_i) [alpha log pi_b(a|s_i) - Q_b(s_i, a)]``;
* target entropy (Eq. 17): ``H_b(s) = beta * log |A_b(s)|`` from the stored mask (0 for a branch with one
  valid action);
* temperature (Algorithm 2 line 21; the seed's Eq. 16 drops the minus sign and Eq. 18 flips the sign of
  H): ``J(alpha) = mean_i w_i mean_b sum_a pi_b(a|s_i) [-alpha (log pi_b(a|s_i) + H_b(s_i))]``, i.e.
  ``alpha (entropy - H)``: alpha falls while the policy is more random than the target. As in CleanRL,
  ``alpha = exp(log_alpha)`` is optimized through ``log_alpha`` and the policy terms are constants.

Branch terms are averaged over branches (the learning rate does not scale with the number of RBGs).
"""
from __future__ import annotations

import torch

from ..policies import Branches

__all__ = ["target_entropy", "sac_soft_value", "sac_actor_loss", "sac_alpha_loss"]


def _weighted_mean(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    return x.mean() if weight is None else (weight * x).mean()


def target_entropy(branches: Branches, mask: torch.Tensor | None, beta: float, batch: int, device=None) -> torch.Tensor:
    """``(B, n)``: ``beta * log |A_b(s)|``."""
    return beta * branches.counts(mask, batch, device).log()


def sac_soft_value(probs: torch.Tensor, logp: torch.Tensor, q: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """``sum_a pi(a) [Q(a) - alpha log pi(a)]`` over the action axis: ``(B, n)`` or ``(B, n, N)`` for quantiles."""
    if q.dim() == probs.dim() + 1:
        probs, logp = probs.unsqueeze(-1), logp.unsqueeze(-1)
    q = torch.where(probs > 0, q, torch.zeros((), dtype=q.dtype, device=q.device))  # invalid actions: any value
    return (probs * (q - alpha * logp)).sum(2)


def sac_actor_loss(probs: torch.Tensor, logp: torch.Tensor, q: torch.Tensor, alpha: torch.Tensor | float,
                   weight: torch.Tensor | None = None) -> torch.Tensor:
    q = torch.where(probs > 0, q, torch.zeros((), dtype=q.dtype, device=q.device))
    per_branch = (probs * (alpha * logp - q)).sum(-1)                           # (B, n)
    return _weighted_mean(per_branch.mean(-1), weight)


def sac_alpha_loss(log_alpha: torch.Tensor, probs: torch.Tensor, logp: torch.Tensor, h_target: torch.Tensor,
                   weight: torch.Tensor | None = None) -> torch.Tensor:
    probs, logp = probs.detach(), logp.detach()
    per_branch = (probs * -(log_alpha.exp() * (logp + h_target.unsqueeze(-1)))).sum(-1)   # (B, n)
    return _weighted_mean(per_branch.mean(-1), weight)
