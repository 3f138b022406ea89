"""Gaussian interference channel and D2D layouts: statistics, hand-computed rates, clear errors."""
import math

import pytest
from envs.errors import EnvError
import torch

from envs import d2d
from envs.interference import gaussian_ic, sum_rate, user_rates


def test_gaussian_ic_statistics_and_seeding():
    H = gaussian_ic(10, 4000, seed=3, dtype=torch.float64)
    assert H.shape == (4000, 10, 10)
    G = H * H                                    # |h|^2 ~ Exp(1) for h ~ CN(0, 1)
    assert abs(G.mean().item() - 1.0) < 0.01
    assert abs(G.var().item() - 1.0) < 0.03
    assert abs(H.mean().item() - math.sqrt(math.pi) / 2) < 0.005   # Rayleigh mean
    assert torch.equal(H, gaussian_ic(10, 4000, seed=3, dtype=torch.float64))
    assert not torch.equal(H, gaussian_ic(10, 4000, seed=4, dtype=torch.float64))


def test_sum_rate_hand_computed_two_users():
    H = torch.tensor([[[1.0, 2.0], [0.5, 3.0]]])    # H[i, j]: tx j -> rx i (amplitudes)
    p = torch.tensor([[1.0, 0.5]])
    r1 = math.log2(1 + 1.0 * 1.0 / (4.0 * 0.5 + 1))
    r2 = math.log2(1 + 9.0 * 0.5 / (0.25 * 1.0 + 1))
    assert user_rates(H, p)[0].tolist() == pytest.approx([r1, r2], rel=1e-6)
    assert sum_rate(H, p).item() == pytest.approx(r1 + r2, rel=1e-6)
    assert sum_rate(H, p, noise=2.0).item() == pytest.approx(
        math.log2(1 + 1 / (2 + 2)) + math.log2(1 + 4.5 / (0.25 + 2)), rel=1e-6)


def test_sum_rate_is_differentiable():
    H = gaussian_ic(4, 8, seed=0)
    p = torch.full((8, 4), 0.5, requires_grad=True)
    sum_rate(H, p).sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()


def test_bad_inputs_have_clear_errors():
    with pytest.raises(ValueError, match="K must be"):
        gaussian_ic(1, 10)
    H = gaussian_ic(3, 2)
    with pytest.raises(ValueError, match="non-negative"):
        sum_rate(H, torch.tensor([[1.0, -0.1, 0.2], [0.1, 0.1, 0.1]]))
    with pytest.raises(ValueError, match="does not match"):
        sum_rate(H, torch.ones(2, 4))
    with pytest.raises(ValueError, match="shape"):
        sum_rate(torch.ones(2, 3, 4), torch.ones(2, 3))
    with pytest.raises(EnvError):
        sum_rate([[1.0]], torch.ones(1))


def test_p1411_path_loss_breakpoint_and_slopes():
    cfg = d2d.D2DConfig()
    lam = 2.998e8 / 2.4e9
    r_bp = 4 * 1.5 * 1.5 / lam                                  # 72.0 m
    l_bp = abs(20 * math.log10(lam ** 2 / (8 * math.pi * 1.5 * 1.5)))  # 71.18 dB
    d = torch.tensor([r_bp, r_bp / 10, r_bp * 10], dtype=torch.float64)
    pl = d2d.path_loss_db(d, cfg)
    assert pl[0].item() == pytest.approx(l_bp + 6, abs=1e-9)
    assert pl[1].item() == pytest.approx(l_bp + 6 - 20, abs=1e-9)   # 20 dB/decade before the break point
    assert pl[2].item() == pytest.approx(l_bp + 6 + 40, abs=1e-9)   # 40 dB/decade after it
    assert l_bp == pytest.approx(71.18, abs=0.01)


def test_d2d_layouts_and_gains():
    cfg = d2d.D2DConfig()
    tx, rx, dist = d2d.layouts(20, cfg, seed=5)
    link = torch.diagonal(dist, dim1=-2, dim2=-1)
    assert link.min() >= 2.0 and link.max() <= 65.0
    assert (rx >= 0).all() and (rx <= 1000).all() and (tx <= 1000).all()
    assert dist[3, 1, 2].item() == pytest.approx((rx[3, 1] - tx[3, 2]).norm().item())
    G = d2d.channel_gains(dist, cfg, dtype=torch.float64)
    # noise: -169 dBm/Hz over 5 MHz = -102.0 dBm; direct link adds the 2.5 dB antenna gain (L_bp = 71.18 dB)
    assert 10 * math.log10(cfg.noise_power_w * 1e3) == pytest.approx(-102.01, abs=0.01)
    d0 = dist[0, 0, 0]
    expect_db = 40 - d2d.path_loss_db(d0.view(1), cfg).item() + 2.5 + 102.0103
    assert 10 * math.log10(G[0, 0, 0].item()) == pytest.approx(expect_db, abs=1e-3)
    expect_cross = 40 - d2d.path_loss_db(dist[0, 0, 1].view(1), cfg).item() + 102.0103
    assert 10 * math.log10(G[0, 0, 1].item()) == pytest.approx(expect_cross, abs=1e-3)


def test_d2d_rates_with_gap_and_errors():
    G = torch.tensor([[[100.0, 10.0], [1.0, 50.0]]], dtype=torch.float64)
    x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    gap = 10 ** 0.6
    expect = math.log2(1 + 100 / 11 / gap) + math.log2(1 + 50 / 2 / gap)
    assert d2d.sum_rate(G, x).item() == pytest.approx(expect, rel=1e-9)
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        d2d.sum_rate(G, torch.tensor([[1.5, 0.0]]))
    with pytest.raises(ValueError, match="n_links"):
        d2d.D2DConfig(n_links=1)
