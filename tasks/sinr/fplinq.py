"""FPLinQ binary link scheduling (Shen & Yu, fractional programming) and the D2D baselines.

FPLinQ relaxes ``x in {0,1}^N`` to ``[0,1]^N`` and alternates closed-form updates of the quadratic transform
(as in Cui et al.'s reference code: all-ones start, 100 iterations, final schedule ``sqrt(x) >= 0.5``)::

    z_i = G_ii x_i / (sum_{j != i} G_ij x_j + 1)                       (SINR)
    y_i = sqrt(w_i (1 + z_i) G_ii x_i) / (sum_j G_ij x_j + 1)
    x_i = min(1, (y_i sqrt(w_i (1 + z_i) G_ii) / sum_j G_ji y_j^2)^2)

``G`` are noise-normalised gains (``envs.d2d``). Design decision: the reference optimises the SINR without the
SNR gap but scores rates with it; by default we optimise the objective that is scored (``G_ii / gap``), which
is never worse; ``gap_aware=False`` gives the reference behaviour. Batched over layouts, float64,
deterministic.

Baselines: all-active, random (each link on with probability 1/2, seeded) and Cui et al.'s greedy (links by
decreasing direct gain, each kept only if it raises the sum-rate).
"""
from __future__ import annotations

import torch

from envs.d2d import sum_rate as d2d_sum_rate

from compress.errors import UserError

__all__ = ["fplinq", "FPLinQ", "greedy", "all_active", "random_schedule"]


def _check(G: torch.Tensor, where: str) -> torch.Tensor:
    if not isinstance(G, torch.Tensor):
        raise UserError(f"{where}: expected a torch.Tensor of gains, got {type(G).__name__}")
    if G.dim() == 2:
        G = G.unsqueeze(0)
    if G.dim() != 3 or G.shape[-1] != G.shape[-2] or G.shape[-1] < 2:
        raise UserError(f"{where}: gains must have shape (n, N, N) with N >= 2, got {tuple(G.shape)}")
    if bool((G < 0).any()):
        raise UserError(f"{where}: gains must be non-negative")
    return G


def fplinq(G: torch.Tensor, iters: int = 100, weights: torch.Tensor | None = None, gap_db: float = 6.0,
           gap_aware: bool = True, binary: bool = True) -> torch.Tensor:
    """Return schedules ``(n, N)`` (0/1 floats if ``binary`` else the relaxed ``x``) for gains ``G``."""
    G = _check(G, "fplinq: G").detach().to(torch.float64)
    n, N, _ = G.shape
    w = torch.ones(n, N, dtype=torch.float64) if weights is None else weights.to(torch.float64).expand(n, N)
    gd = torch.diagonal(G, dim1=-2, dim2=-1)
    if gap_aware:
        gd = gd / 10 ** (gap_db / 10)
        G = G.clone()
        torch.diagonal(G, dim1=-2, dim2=-1).copy_(gd)
    Goff = G * (1.0 - torch.eye(N, dtype=G.dtype))
    x = torch.ones(n, N, dtype=torch.float64)
    for _ in range(iters):
        z = gd * x / (torch.einsum("bij,bj->bi", Goff, x) + 1.0)
        y = torch.sqrt(w * (1 + z) * gd * x) / (torch.einsum("bij,bj->bi", G, x) + 1.0)
        x = (y * torch.sqrt(w * (1 + z) * gd) / torch.einsum("bji,bj->bi", G, y * y)).pow(2).clamp(max=1.0)
        x = torch.nan_to_num(x, nan=0.0)
    if binary:
        x = (x.sqrt() >= 0.5).to(torch.float64)
    return x.to(torch.float32)


class FPLinQ(torch.nn.Module):
    """FPLinQ as a frozen teacher callable ``FPLinQ()(G) -> x in {0,1}``."""

    def __init__(self, iters: int = 100, gap_db: float = 6.0, gap_aware: bool = True):
        super().__init__()
        self.iters, self.gap_db, self.gap_aware = iters, gap_db, gap_aware
        self.register_buffer("settings", torch.tensor([iters, gap_db, float(gap_aware)], dtype=torch.float64))

    @torch.no_grad()
    def forward(self, G: torch.Tensor) -> torch.Tensor:
        return fplinq(G, self.iters, gap_db=self.gap_db, gap_aware=self.gap_aware)


def all_active(G: torch.Tensor) -> torch.Tensor:
    G = _check(G, "all_active: G")
    return torch.ones(G.shape[0], G.shape[-1])


def random_schedule(G: torch.Tensor, seed: int = 0, prob: float = 0.5) -> torch.Tensor:
    G = _check(G, "random_schedule: G")
    g = torch.Generator()
    g.manual_seed(seed)
    return (torch.rand(G.shape[0], G.shape[-1], generator=g) < prob).float()


def greedy(G: torch.Tensor, gap_db: float = 6.0) -> torch.Tensor:
    """Cui et al.'s greedy: strongest direct link first; keep a link only if the sum-rate rises."""
    G = _check(G, "greedy: G").detach().to(torch.float64)
    n, N, _ = G.shape
    order = torch.diagonal(G, dim1=-2, dim2=-1).argsort(-1, descending=True)
    x = torch.zeros(n, N, dtype=torch.float64)
    best = torch.zeros(n, dtype=torch.float64)
    rows = torch.arange(n)
    for k in range(N):
        idx = order[:, k]
        x[rows, idx] = 1.0
        r = d2d_sum_rate(G, x, gap_db)
        keep = r > best
        x[rows, idx] = keep.to(x.dtype)
        best = torch.where(keep, r, best)
    return x.to(torch.float32)
