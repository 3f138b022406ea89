"""D2D link-scheduling layouts (Cui, Shen & Yu 2019, "Spatial Deep Learning for Wireless Scheduling").

Setting (defaults, the FPLinQ paper's 1000 m x 1000 m region): ``n_links`` = 50 transmitter/receiver pairs,
transmitters uniform in the square, each receiver at a uniform distance in [2, 65] m and uniform angle from
its transmitter (redrawn until it lies inside the square), 5 MHz at 2.4 GHz, 40 dBm transmit power,
-169 dBm/Hz noise, 1.5 m antennas, 2.5 dB antenna gain, 6 dB SNR gap.

Path loss: ITU-R P.1411 short-range outdoor LoS, median (+6 dB) two-slope model with break point
``R_bp = 4 h1 h2 / lambda`` and ``L_bp = |20 log10(lambda^2 / (8 pi h1 h2))|``::

    L(d) = L_bp + 6 + 20 log10(d / R_bp)            d <= R_bp
    L(d) = L_bp + 6 + 40 log10(d / R_bp)            d >  R_bp

As in the reference code, the antenna gain is added on the direct links only. Optional log-normal shadowing
(``shadowing_db`` standard deviation) and Rayleigh fast fading (unit-mean exponential power) multiply the
gains.

Gains are returned *normalised by the noise power and including the transmit power*:
``G[b, i, j] = P_tx * g_ij / N0`` (receiver ``i``, transmitter ``j``), so that a schedule ``x in {0,1}^N``
gives ``SINR_i = G_ii x_i / (sum_{j != i} G_ij x_j + 1)`` and rate ``log2(1 + SINR_i / gap)`` bit/s/Hz.
Multiply by the bandwidth for bit/s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import EnvError

__all__ = ["D2DConfig", "layouts", "path_loss_db", "channel_gains", "link_rates", "sum_rate", "generate"]

SPEED_OF_LIGHT = 2.998e8


@dataclass(frozen=True)
class D2DConfig:
    n_links: int = 50
    field: float = 1000.0          # side of the square region, m
    d_min: float = 2.0             # link length range, m
    d_max: float = 65.0
    bandwidth: float = 5e6         # Hz
    carrier: float = 2.4e9         # Hz
    tx_power_dbm: float = 40.0
    noise_dbm_hz: float = -169.0
    antenna_gain_db: float = 2.5
    h_tx: float = 1.5              # m
    h_rx: float = 1.5
    gap_db: float = 6.0            # SNR gap
    shadowing_db: float = 0.0      # log-normal shadowing std (0 = off)
    fading: bool = False           # Rayleigh fast fading on every link

    def __post_init__(self):
        if self.n_links < 2:
            raise EnvError(f"D2DConfig.n_links must be >= 2, got {self.n_links}")
        if not (0 < self.d_min <= self.d_max):
            raise EnvError(f"D2DConfig: need 0 < d_min <= d_max, got d_min={self.d_min}, d_max={self.d_max}")
        if self.d_max >= self.field:
            raise EnvError(f"D2DConfig: d_max={self.d_max} must be smaller than field={self.field}")
        if self.shadowing_db < 0:
            raise EnvError(f"D2DConfig.shadowing_db must be >= 0, got {self.shadowing_db}")

    @property
    def noise_power_w(self) -> float:
        return 10 ** ((self.noise_dbm_hz - 30) / 10) * self.bandwidth

    @property
    def tx_power_w(self) -> float:
        return 10 ** ((self.tx_power_dbm - 30) / 10)

    @property
    def gap(self) -> float:
        return 10 ** (self.gap_db / 10)


def _generator(seed):
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def layouts(n: int, cfg: D2DConfig = D2DConfig(), seed: int | torch.Generator = 0):
    """Return ``(tx, rx, dist)``: positions ``(n, N, 2)`` and distances ``dist[b, i, j] = |rx_i - tx_j|``."""
    if not isinstance(n, int) or n < 1:
        raise EnvError(f"d2d.layouts: n (number of layouts) must be an int >= 1, got {n!r}")
    g = _generator(seed)
    N = cfg.n_links
    tx = torch.rand(n, N, 2, generator=g, dtype=torch.float64) * cfg.field
    rx = torch.empty_like(tx)
    todo = torch.ones(n, N, dtype=torch.bool)
    while bool(todo.any()):  # rejection sampling, vectorised: redraw only receivers that fell outside
        r = cfg.d_min + (cfg.d_max - cfg.d_min) * torch.rand(n, N, generator=g, dtype=torch.float64)
        a = 2 * math.pi * torch.rand(n, N, generator=g, dtype=torch.float64)
        cand = tx + torch.stack((r * torch.cos(a), r * torch.sin(a)), -1)
        ok = ((cand >= 0) & (cand <= cfg.field)).all(-1) & todo
        rx[ok] = cand[ok]
        todo &= ~ok
    dist = torch.cdist(rx, tx)
    return tx, rx, dist


def path_loss_db(d: torch.Tensor, cfg: D2DConfig = D2DConfig()) -> torch.Tensor:
    """ITU-R P.1411 LoS median path loss in dB for distances ``d`` in metres (see module doc)."""
    if bool((d <= 0).any()):
        raise EnvError("d2d.path_loss_db: distances must be > 0 m")
    lam = SPEED_OF_LIGHT / cfg.carrier
    r_bp = 4 * cfg.h_tx * cfg.h_rx / lam
    l_bp = abs(20 * math.log10(lam ** 2 / (8 * math.pi * cfg.h_tx * cfg.h_rx)))
    t = 20 * torch.log10(d / r_bp)
    return l_bp + 6 + t + (d > r_bp).to(t.dtype) * t


def channel_gains(dist: torch.Tensor, cfg: D2DConfig = D2DConfig(), seed: int | torch.Generator = 0,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Noise-normalised received-power matrices ``G`` ``(n, N, N)`` from distances (see module doc)."""
    if dist.dim() != 3 or dist.shape[-1] != dist.shape[-2]:
        raise EnvError(f"d2d.channel_gains: dist must have shape (n, N, N), got {tuple(dist.shape)}")
    N = dist.shape[-1]
    gain_db = -path_loss_db(dist, cfg) + torch.eye(N, dtype=dist.dtype) * cfg.antenna_gain_db
    g = _generator(seed)
    if cfg.shadowing_db > 0:
        gain_db = gain_db + cfg.shadowing_db * torch.randn(dist.shape, generator=g, dtype=dist.dtype)
    G = 10 ** (gain_db / 10) * (cfg.tx_power_w / cfg.noise_power_w)
    if cfg.fading:
        re = torch.randn(dist.shape, generator=g, dtype=dist.dtype)
        im = torch.randn(dist.shape, generator=g, dtype=dist.dtype)
        G = G * (re * re + im * im) / 2
    return G.to(dtype)


def generate(n: int, cfg: D2DConfig = D2DConfig(), seed: int = 0, dtype: torch.dtype = torch.float32):
    """Layouts and their gains in one call: returns ``(G, dist)``."""
    g = _generator(seed)
    _, _, dist = layouts(n, cfg, g)
    return channel_gains(dist, cfg, g, dtype), dist.to(dtype)


def link_rates(G: torch.Tensor, x: torch.Tensor, gap_db: float = 6.0) -> torch.Tensor:
    """Per-link rates (bit/s/Hz) ``(n, N)`` for schedules/powers ``x`` in [0, 1] ``(n, N)``; differentiable in x."""
    if G.dim() != 3 or G.shape[-1] != G.shape[-2]:
        raise EnvError(f"d2d.link_rates: G must have shape (n, N, N), got {tuple(G.shape)}")
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.shape[-1] != G.shape[-1] or x.shape[0] not in (1, G.shape[0]):
        raise EnvError(f"d2d.link_rates: x has shape {tuple(x.shape)}, expected ({G.shape[0]}, {G.shape[-1]})")
    if bool((x.detach() < 0).any()) or bool((x.detach() > 1).any()):
        raise EnvError("d2d.link_rates: x (activation / power fraction) must lie in [0, 1]")
    x = x.to(G.dtype)
    # Direct gains dwarf far interferers by ~1e8: never form "total - signal" (float32 would cancel it out).
    off = 1.0 - torch.eye(G.shape[-1], dtype=G.dtype)
    s = torch.diagonal(G, dim1=-2, dim2=-1) * x
    sinr = s / (torch.einsum("bij,bj->bi", G * off, x) + 1.0)
    return torch.log2(1.0 + sinr / 10 ** (gap_db / 10))


def sum_rate(G: torch.Tensor, x: torch.Tensor, gap_db: float = 6.0) -> torch.Tensor:
    """Sum of link rates per layout (bit/s/Hz), shape ``(n,)``."""
    return link_rates(G, x, gap_db).sum(-1)
