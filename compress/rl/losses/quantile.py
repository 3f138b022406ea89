"""Quantile Huber loss of QR-DQN (Dabney et al. 2018, Eq. 10), the DSACD critic loss.

With N predicted quantiles ``theta_i`` at the midpoints ``tau_hat_i = (2i - 1) / (2N)`` and M target samples
``y_j``, the pairwise errors ``u_ij = y_j - theta_i`` (target minus prediction) give

    rho_i(u_ij) = |tau_hat_i - 1{u_ij < 0}| * L_kappa(u_ij) / kappa,   L_kappa = Huber loss (kappa = 1)
    loss = sum_i mean_j rho_i(u_ij)                                   (per sample)

The seed's Eqs. 11-12 write ``x = q - y`` with ``1{x < 0}``, which fits the 1 - tau quantiles, and
``tau_n = n / N``, which includes the degenerate tau = 1; its Algorithm 2 line 13 averages over
quantiles (1 / (bN)), which is 1/N of this sum. Here: QR-DQN's form, as ../shared/research/scheduler.md
prescribes.
"""
from __future__ import annotations

import torch
from ...errors import UserError

__all__ = ["quantile_midpoints", "quantile_huber_loss"]


def quantile_midpoints(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``tau_hat_i = (2i - 1) / (2n)`` for i = 1..n."""
    return (2 * torch.arange(n, device=device, dtype=dtype) + 1) / (2 * n)


def quantile_huber_loss(pred: torch.Tensor, target: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """``pred (..., N)`` quantiles, ``target (..., M)`` samples (no gradient taken through it) -> ``(...)``."""
    if pred.shape[:-1] != target.shape[:-1]:
        raise UserError(f"quantile_huber_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} must "
                         "agree on all but the last dimension")
    if kappa <= 0:
        raise UserError(f"kappa must be > 0, got {kappa}")
    u = target.detach().unsqueeze(-2) - pred.unsqueeze(-1)                    # (..., N, M)
    abs_u = u.abs()
    huber = torch.where(abs_u <= kappa, 0.5 * u * u, kappa * (abs_u - 0.5 * kappa))
    tau = quantile_midpoints(pred.shape[-1], pred.device, pred.dtype).unsqueeze(-1)
    rho = (tau - (u.detach() < 0).to(pred.dtype)).abs() * huber / kappa
    return rho.mean(-1).sum(-1)
