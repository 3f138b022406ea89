"""Per-RBG MIMO channels (4 Rx x 32 ports) of the spatial links, re-synthesised as time goes on.

For a link with clusters n (delay tau_n, panel response a_n over 16 ports of one polarization) and
rays k (coefficient c_nk[r, q] over 4 Rx antennas and 2 Tx polarizations, Doppler nu_nk), the channel
on the RBG centred at frequency offset f_m, at time t, is (TR 38.901 eq. 7.5-22/28/29 with the
departure spread of each cluster collapsed, see ``deployment.py``):

    H_m(t)[r, (q, p)] = sum_n exp(-j 2 pi f_m tau_n) * g_n(t)[r, q] * a_n[p],
    g_n(t)[r, q]      = sum_k c_nk[r, q] * exp(j 2 pi nu_nk t)

i.e. an exact sum of Doppler-shifted rays, so fading follows the rays' geometry (3 km/h at 4 GHz:
max Doppler 11.1 Hz, coherence time ~40 ms). One sample per RBG: the channel is taken as flat inside
an RBG (optimistic for the evaluation set-up's 5.76 MHz RBGs, exact for the training set-up's 1-PRB
RBGs) - a documented simplification shared by every scheduler compared on the env.

Cost: the frequency step is one batched (M x C) @ (C x 128) matmul per link (torch.bmm: 2-3x faster
than numpy's for stacks of small complex matrices on this CPU).
"""
from __future__ import annotations

import numpy as np
import torch


def _t(x: np.ndarray) -> torch.Tensor:
    if not x.flags.writeable or any(st < 0 for st in x.strides):        # torch wants writable, positive strides
        x = np.array(x, order="C", copy=True)
    return torch.from_numpy(x)


def bmm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched (broadcasting) matmul of two numpy arrays (..., n, k) @ (..., k, m) through torch, which is
    2-3x faster than numpy's for stacks of small complex matrices on this CPU; strided views (transposes)
    go in without copies."""
    return torch.matmul(_t(a), _t(b)).numpy()


class LinkChannels:
    """Channels (complex64, 4 Rx x 32 ports) of every UE's spatial links on every RBG m: ``H_srv[u, m]`` to
    the serving cell, ``H_int[u, m, :, 32 k : 32 (k + 1)]`` to the k-th strongest other cell (side by side,
    so that one matmul gives a combiner's view of all of them), from the
    cluster arrays of :class:`envs.scheduler.deployment.Drop` (UEs of several drops concatenated).

    ``update(ues, t)`` re-synthesises the given UEs' links at time ``t`` (seconds).
    """

    def __init__(self, delay: np.ndarray, a_tx: np.ndarray, ray_coef: np.ndarray, ray_doppler: np.ndarray,
                 rbg_freq_hz: np.ndarray):
        f = np.asarray(rbg_freq_hz, dtype=np.float64)
        # (U, S, M, C) frequency phase of every cluster on every RBG
        self._F = np.exp(-2j * np.pi * f[None, None, :, None] * delay[:, :, None, :]).astype(np.complex64)
        self._coef = ray_coef.reshape(*ray_coef.shape[:4], 8)                     # (U, S, C, R, 8)
        self._dop = (2 * np.pi * ray_doppler).astype(np.float32)
        self._a = a_tx
        U, S, C = delay.shape
        self.S = S
        self.H_srv = np.zeros((U, len(f), 4, 32), np.complex64)            # [u, RBG, Rx, port]
        self.H_int = np.zeros((U, len(f), 4, (S - 1) * 32), np.complex64)  # [u, RBG, Rx, (link, port)]

    def synthesize(self, ues: np.ndarray, t, links=slice(None)) -> np.ndarray:
        """H of the UEs ``ues`` at time(s) ``t`` (scalar or per UE, seconds) on ``links`` (default all):
        (len(ues), S', M, 4, 32) complex64."""
        ues = np.asarray(ues, dtype=np.int64)
        tt = np.broadcast_to(np.asarray(t, np.float64), ues.shape)[:, None, None, None]
        ph = (self._dop[ues, links] * tt).astype(np.float32)
        rot = (np.cos(ph) + 1j * np.sin(ph)).astype(np.complex64)                 # (n, S', C, R)
        g = (rot[..., None, :] @ self._coef[ues, links])[..., 0, :]                 # (n, S', C, 8)
        a = self._a[ues, links]                                                      # (n, S', C, 16)
        clus = (g[..., :, None] * a[..., None, :]).reshape(*g.shape[:3], 128)       # (n, S', C, 128)
        h = bmm(self._F[ues, links], clus)                                           # (n, S', M, 128)
        return h.reshape(*h.shape[:3], 4, 32)

    def update(self, ues: np.ndarray, t) -> None:
        """Hold the channels of ``ues`` sampled at time(s) ``t`` (scalar or per UE, seconds)."""
        if len(ues):
            h = self.synthesize(ues, t)                                              # (n, S, M, 4, 32)
            self.H_srv[ues] = h[:, 0]
            self.H_int[ues] = np.transpose(h[:, 1:], (0, 2, 3, 1, 4)).reshape(len(ues), h.shape[2], 4, -1)
