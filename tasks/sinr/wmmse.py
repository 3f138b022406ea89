"""WMMSE power control for sum-rate maximisation, batched in torch (the teacher of the SINR task).

Follows the published code of Sun et al. 2018 ("Learning to Optimize") step for step so that its
statistic (mean sum-rate 2.823 bit/s/Hz at K = 10 on the Gaussian IC) reproduces:

* start from full power ``b = sqrt(Pmax)`` (``p = b**2``);
* Jacobi updates of receiver ``f``, weight ``w`` and transmitter ``b`` (every user updated from the previous
  iterate, which is what makes the batch version exact);
* at most 100 iterations, and a channel stops as soon as its utility ``sum log2 w`` improves by <= 1e-3
  (per channel: the other channels of the batch keep iterating, as they would if run one at a time).

Computed in float64 (the reference is numpy float64), returned in the input dtype. Deterministic: no
randomness at all. ``WMMSE`` wraps it as a frozen callable teacher for ``compress.distill.Distiller``.
"""
from __future__ import annotations

import torch

from envs.interference import check_channels

from compress.errors import UserError

__all__ = ["wmmse", "WMMSE"]


def wmmse(H: torch.Tensor, pmax: float = 1.0, noise: float = 1.0, iters: int = 100, tol: float = 1e-3,
          p_init: torch.Tensor | None = None) -> torch.Tensor:
    """Return WMMSE powers ``(B, K)`` in ``[0, pmax]`` for channel amplitudes ``H`` ``(B, K, K)`` (or ``(K, K)``).

    ``H[b, i, j]`` is the amplitude from transmitter ``j`` to receiver ``i`` (see ``envs.interference``).
    """
    squeeze = isinstance(H, torch.Tensor) and H.dim() == 2
    H = check_channels(H, "wmmse: H")
    if pmax <= 0:
        raise UserError(f"wmmse: pmax must be > 0, got {pmax}")
    if noise <= 0:
        raise UserError(f"wmmse: noise must be > 0, got {noise}")
    if iters < 1:
        raise UserError(f"wmmse: iters must be >= 1, got {iters}")
    out_dtype = H.dtype if H.is_floating_point() else torch.float32
    Hd = H.detach().to(torch.float64)
    G = Hd * Hd
    hkk = torch.diagonal(Hd, dim1=-2, dim2=-1)
    B, K = hkk.shape
    if p_init is None:
        b = torch.full((B, K), float(pmax) ** 0.5, dtype=torch.float64)
    else:
        if p_init.shape[-1] != K:
            raise UserError(f"wmmse: p_init has {p_init.shape[-1]} users, channels have K={K}")
        b = p_init.detach().to(torch.float64).expand(B, K).clamp(0, pmax).sqrt().clone()
    sqrt_pmax = float(pmax) ** 0.5

    def receivers(b):
        f = hkk * b / (torch.einsum("bij,bj->bi", G, b * b) + noise)
        w = 1.0 / (1.0 - f * b * hkk)
        return f, w

    f, w = receivers(b)
    v = torch.log2(w).sum(-1)
    active = torch.ones(B, dtype=torch.bool)
    for _ in range(iters):
        denom = torch.einsum("bj,bji->bi", w * f * f, G)
        b_new = (w * f * hkk / denom).clamp(0.0, sqrt_pmax)
        b = torch.where(active.unsqueeze(-1), b_new, b)
        f_new, w_new = receivers(b)
        f = torch.where(active.unsqueeze(-1), f_new, f)
        w = torch.where(active.unsqueeze(-1), w_new, w)
        v_new = torch.log2(w).sum(-1)
        active = active & ((v_new - v) > tol)
        v = v_new
        if not bool(active.any()):
            break
    p = (b * b).to(out_dtype)
    return p[0] if squeeze else p


class WMMSE(torch.nn.Module):
    """WMMSE as a frozen teacher callable: ``WMMSE()(H) -> p`` for channel amplitudes ``(B, K, K)``.

    An ``nn.Module`` without parameters so that it can sit in a ``Distiller`` and never reach a checkpoint.
    Students take the same ``(B, K, K)`` input (the MLP flattens it itself), so no reshaping guesswork here.
    """

    def __init__(self, pmax: float = 1.0, noise: float = 1.0, iters: int = 100, tol: float = 1e-3):
        super().__init__()
        self.pmax, self.noise, self.iters, self.tol = pmax, noise, iters, tol
        # settings as a buffer: the Distiller's cache fingerprints teachers by state_dict, so a changed
        # setting invalidates cached outputs
        self.register_buffer("settings", torch.tensor([pmax, noise, iters, tol], dtype=torch.float64))

    @torch.no_grad()
    def forward(self, H: torch.Tensor) -> torch.Tensor:
        return wmmse(H, self.pmax, self.noise, self.iters, self.tol)
