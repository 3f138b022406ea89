"""WMMSE teacher: matches a plain per-channel implementation of the published algorithm and its statistic."""
import math

import numpy as np
import pytest
import torch

from envs.interference import gaussian_ic, sum_rate
from tasks.sinr.wmmse import WMMSE, wmmse


def _wmmse_reference(H, pmax=1.0, noise=1.0):
    """One channel at a time, loops as in the published numpy code (Jacobi updates, 100 iters, 1e-3 stop)."""
    K = H.shape[0]
    b = np.sqrt(pmax) * np.ones(K)
    f, w = np.zeros(K), np.zeros(K)
    v = 0.0
    for i in range(K):
        f[i] = H[i, i] * b[i] / (np.square(H[i, :]) @ np.square(b) + noise)
        w[i] = 1 / (1 - f[i] * b[i] * H[i, i])
        v += math.log2(w[i])
    for _ in range(100):
        v_old = v
        for i in range(K):
            bt = w[i] * f[i] * H[i, i] / np.sum(w * np.square(f) * np.square(H[:, i]))
            b[i] = min(max(bt, 0.0), np.sqrt(pmax))
        v = 0.0
        for i in range(K):
            f[i] = H[i, i] * b[i] / (np.square(H[i, :]) @ np.square(b) + noise)
            w[i] = 1 / (1 - f[i] * b[i] * H[i, i])
            v += math.log2(w[i])
        if v - v_old <= 1e-3:
            break
    return np.square(b)


def test_batched_wmmse_equals_per_channel_reference():
    H = gaussian_ic(6, 30, seed=11, dtype=torch.float64)
    p = wmmse(H)
    ref = np.stack([_wmmse_reference(h.numpy()) for h in H])
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-9, atol=1e-12)


def test_published_statistic_k10():
    """Sun et al.'s code: mean WMMSE sum-rate 2.823 (+-0.02) bit/s/Hz at K=10 over >= 20,000 channels."""
    H = gaussian_ic(10, 20000, seed=0, dtype=torch.float64)
    rate = sum_rate(H, wmmse(H)).mean().item()
    assert rate == pytest.approx(2.823, abs=0.02)
    full = sum_rate(H, torch.ones(20000, 10, dtype=torch.float64)).mean().item()
    assert rate > 1.9 * full                       # WMMSE roughly doubles the full-power sum-rate at K=10


def test_wmmse_feasible_deterministic_and_monotone_in_iterations():
    H = gaussian_ic(8, 500, seed=2)
    p = wmmse(H)
    assert p.dtype == torch.float32 and p.shape == (500, 8)
    assert (p >= 0).all() and (p <= 1.0 + 1e-6).all()
    assert torch.equal(p, wmmse(H))
    r1 = sum_rate(H, wmmse(H, iters=1)).mean()
    assert sum_rate(H, p).mean() > r1 > sum_rate(H, torch.ones_like(p)).mean()
    assert (wmmse(H, pmax=2.0) <= 2.0 + 1e-6).all()
    assert wmmse(H[0]).shape == (8,)


def test_wmmse_teacher_and_errors():
    H = gaussian_ic(4, 10, seed=1)
    assert torch.equal(WMMSE()(H), wmmse(H))
    with pytest.raises(ValueError, match="K must be >= 2"):
        wmmse(torch.ones(3, 1, 1))
    with pytest.raises(ValueError, match="shape"):
        wmmse(torch.ones(3, 4, 5))
    with pytest.raises(ValueError, match="pmax"):
        wmmse(H, pmax=-1.0)
