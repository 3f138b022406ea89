"""K-user Gaussian interference channel (Sun et al. 2018, "Learning to Optimize").

Convention (the one of the published code, kept so that its statistics reproduce):

* ``H`` holds channel *amplitudes* ``H[b, i, j] = |h_ij|`` with ``h_ij ~ CN(0, 1)``, where ``i`` is the
  receiver and ``j`` the transmitter. Gains are ``H**2`` (so ``E[H**2] = 1``).
* Rate of user ``k``: ``log2(1 + H_kk^2 p_k / (sum_{j != k} H_kj^2 p_j + sigma^2))``; the sum-rate is in
  bit/s/Hz, ``sigma^2 = 1`` and ``Pmax = 1`` by default.

Everything is batched over the leading dimension and seeded by an explicit ``torch.Generator`` so that a
(seed, K, n) triple always gives the same channels, whatever else ran before in the process.
"""
from __future__ import annotations

import math

import torch

from .errors import EnvError

__all__ = ["gaussian_ic", "user_rates", "sum_rate", "check_channels", "check_power"]


def _generator(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator()
    g.manual_seed(0 if seed is None else int(seed))
    return g


def gaussian_ic(K: int, n: int, seed: int | torch.Generator | None = 0,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Return ``n`` channel amplitude matrices ``|h_ij|``, ``h_ij ~ CN(0, 1)``, shape ``(n, K, K)``."""
    if not isinstance(K, int) or K < 2:
        raise EnvError(f"gaussian_ic: K must be an int >= 2 (an interference channel needs two users), got {K!r}")
    if not isinstance(n, int) or n < 1:
        raise EnvError(f"gaussian_ic: n (number of channels) must be an int >= 1, got {n!r}")
    g = _generator(seed)
    re = torch.randn(n, K, K, generator=g, dtype=torch.float64)
    im = torch.randn(n, K, K, generator=g, dtype=torch.float64)
    return (torch.sqrt(re * re + im * im) / math.sqrt(2.0)).to(dtype)


def check_channels(H: torch.Tensor, where: str = "H") -> torch.Tensor:
    """Validate a batch of square channel matrices; returns it as a ``(B, K, K)`` tensor."""
    if not isinstance(H, torch.Tensor):
        raise EnvError(f"{where}: expected a torch.Tensor of channel amplitudes, got {type(H).__name__}")
    if H.dim() == 2:
        H = H.unsqueeze(0)
    if H.dim() != 3 or H.shape[-1] != H.shape[-2]:
        raise EnvError(f"{where}: expected shape (batch, K, K) or (K, K), got {tuple(H.shape)}")
    if H.shape[-1] < 2:
        raise EnvError(f"{where}: K must be >= 2, got K={H.shape[-1]}")
    return H


def check_power(p: torch.Tensor, H: torch.Tensor, where: str = "p") -> torch.Tensor:
    """Validate powers against channels ``H`` of shape ``(B, K, K)``; returns ``p`` as ``(B, K)``."""
    if not isinstance(p, torch.Tensor):
        raise EnvError(f"{where}: expected a torch.Tensor of powers, got {type(p).__name__}")
    if p.dim() == 1:
        p = p.unsqueeze(0)
    B, K = H.shape[0], H.shape[-1]
    if p.dim() != 2 or p.shape[-1] != K or p.shape[0] not in (1, B):
        raise EnvError(f"{where}: shape {tuple(p.shape)} does not match channels of shape {tuple(H.shape)}; "
                         f"expected ({B}, {K})")
    if bool((p.detach() < 0).any()):
        raise EnvError(f"{where}: powers must be non-negative (min is {float(p.detach().min()):.4g})")
    return p


def user_rates(H: torch.Tensor, p: torch.Tensor, noise: float = 1.0) -> torch.Tensor:
    """Per-user rates (bit/s/Hz), shape ``(B, K)``. Differentiable in ``p`` (used as the unsupervised loss)."""
    H = check_channels(H)
    p = check_power(p, H)
    if noise <= 0:
        raise EnvError(f"user_rates: noise power must be > 0, got {noise}")
    G = H * H
    rx = G * p.unsqueeze(-2)                       # rx[b, i, j] = G_ij p_j
    signal = torch.diagonal(rx, dim1=-2, dim2=-1)
    interference = rx.sum(-1) - signal
    return torch.log2(1.0 + signal / (interference + noise))


def sum_rate(H: torch.Tensor, p: torch.Tensor, noise: float = 1.0) -> torch.Tensor:
    """Sum-rate per channel (bit/s/Hz), shape ``(B,)``."""
    return user_rates(H, p, noise).sum(-1)
