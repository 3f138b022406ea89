"""CSI reports as a UE computes them (TS 38.214 5.2.2): RI <= 2, Type-I single-panel PMI, wideband and
sub-band CQI, from the serving channel and the interference the UE measures.

* PMI, codebook mode 1 (38.214 5.2.2.2.1, (N1, N2) = (8, 2), O1 = O2 = 4, 32 ports): the beam i_1
  (i_{1,1}, i_{1,2}) and, for rank 2, the second-beam offset i_{1,3} are wideband; the co-phasing i_2 is
  per sub-band (one sub-band = one RBG, as the seed's per-RBG sub-band CQI/PMI):
  rank 1 W = [v; phi_n v] / sqrt(2), phi_n = j^n, n = 0..3;
  rank 2 W = [[v, v'], [phi_n v, -phi_n v']] / 2, n = 0..1, v' the beam offset by (k1, k2) of i_{1,3}.
  Columns are kept unit-norm here (the power split is applied by the scheduler).
  The beam maximises the wideband received power sum_m ||H_m [v; 0]||^2 + ||H_m [0; v]||^2 over the 256
  beams; co-phasing, offset and RI maximise the sum over sub-bands of the achievable rate.
* SINR the UE assumes (38.214 5.2.2.5 CSI reference resource: SU transmission of the reported rank on
  the whole band, equal power per layer), with its MRC receiver (the seed's UE) and the
  interference-plus-noise measured on CSI-IM: per Rx antenna, the other cells' received power on that
  RBG in the last TTI with their precoding averaged out (a flat spatial spectrum) plus thermal noise.
* CQI (table 2, 256QAM): highest index whose 10%-BLER SINR is met by the EESM effective SINR over the
  codeword's layers (sub-band: one RBG; wideband: all RBGs); the sub-band CQI is reported as the
  38.214 2-bit differential to the wideband one, i.e. clipped to wideband + [-1, +2].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.scheduler import antenna
from envs.scheduler.channel import bmm
from envs.scheduler.link import LinkTables

_BEAMS = antenna.typei_beams()                                      # (256, 16)
_BEAMS_T = np.ascontiguousarray(_BEAMS.T)
_L_OF, _M_OF = np.divmod(np.arange(len(_BEAMS)), antenna.O2 * antenna.N2)


@dataclass
class Report:
    """One CSI report per UE (arrays over the reported UEs; M RBGs)."""

    rank: np.ndarray       # (n,) 1 or 2
    beam: np.ndarray       # (n, 2) Type-I beam row per layer (layer 2 = the offset beam; unused for rank 1)
    cophase: np.ndarray    # (n, M) complex phi per sub-band
    cqi_wb: np.ndarray     # (n,)
    cqi_sb: np.ndarray     # (n, M) after the 2-bit differential clipping

    def precoders(self) -> np.ndarray:
        """Unit-norm precoder columns (n, M, 32, 2); the second column is zero for rank 1."""
        b = _BEAMS[self.beam]                                        # (n, 2, 16)
        ph = self.cophase[..., None]                                 # (n, M, 1)
        w = np.zeros((*self.cophase.shape, 32, 2), np.complex64)
        w[..., :16, 0] = b[:, None, 0, :]
        w[..., 16:, 0] = ph * b[:, None, 0, :]
        w[..., :16, 1] = b[:, None, 1, :]
        w[..., 16:, 1] = -ph * b[:, None, 1, :]
        w /= np.sqrt(2.0)
        w[self.rank == 1, :, :, 1] = 0.0
        return w


def _abs2(x):
    return x.real ** 2 + x.imag ** 2


def _mrc_sinr_2(h1: np.ndarray, h2: np.ndarray, p: np.ndarray, n0: np.ndarray):
    """Per-stream SINR of two streams (effective channels h1, h2 over 4 Rx, last axis) with MRC, power p each."""
    e1, e2 = _abs2(h1).sum(-1), _abs2(h2).sum(-1)
    c = _abs2((np.conj(h1) * h2).sum(-1))
    s1 = p * e1 / (p * c / np.maximum(e1, 1e-30) + n0)
    s2 = p * e2 / (p * c / np.maximum(e2, 1e-30) + n0)
    return s1, s2


def measure(h: np.ndarray, p_rbg: np.ndarray, in_rbg: np.ndarray, tab: LinkTables,
            max_rank: int = 2) -> Report:
    """CSI reports of UEs with serving channels ``h`` (n, M, 4, 32), RBG power ``p_rbg`` (M,) and
    interference-plus-noise per Rx antenna ``in_rbg`` (n, M)."""
    n, M = h.shape[:2]
    x = h.reshape(n, M, 4, 2, 16)
    # wideband beam: maximise b^H R b, R = sum over RBGs, Rx and polarizations of X^H X
    xs = x.reshape(n, M * 8, 16)
    R = bmm(np.conj(np.swapaxes(xs, 1, 2)), xs)                      # (n, 16, 16)
    RB = bmm(R, _BEAMS_T)                                             # (n, 16, 256)
    metric = (np.conj(_BEAMS.T)[None] * RB).sum(1).real
    b1 = np.argmax(metric, axis=1)                                     # (n,)
    y = bmm(xs, _BEAMS[b1][:, :, None]).reshape(n, M, 4, 2)           # (n, M, 4, 2)
    n0 = in_rbg
    p = p_rbg[None, :]
    # rank 1: best co-phase per sub-band
    phis = np.exp(0.5j * np.pi * np.arange(4))
    h1 = (y[..., 0, None] + phis * y[..., 1, None]) / np.sqrt(2.0)  # (n, M, 4 rx, 4 phi)
    e = (np.abs(h1) ** 2).sum(2)                                       # (n, M, 4)
    n1 = np.argmax(e, axis=-1)
    sinr1 = p * np.take_along_axis(e, n1[..., None], -1)[..., 0] / n0   # (n, M)
    se1 = tab.se_of_lin(sinr1).sum(-1)
    rank = np.ones(n, np.int64)
    beam = np.stack([b1, b1], 1)
    cophase = phis[n1]
    sinr = np.stack([sinr1, np.zeros_like(sinr1)], -1)                 # (n, M, 2)
    if max_rank >= 2:
        # rank 2: the four i_{1,3} beam offsets and two co-phasings at once
        offs = np.array(antenna.RANK2_OFFSETS)
        b2 = antenna.beam_index(_L_OF[b1][:, None] + offs[:, 0], _M_OF[b1][:, None] + offs[:, 1])   # (n, 4)
        y2 = bmm(xs, np.swapaxes(_BEAMS[b2], 1, 2)).reshape(n, M, 4, 2, 4)         # [.., rx, q, offset]
        y2 = np.ascontiguousarray(np.moveaxis(y2, 2, -1))                          # (n, M, q, offset, rx)
        yt = np.ascontiguousarray(np.moveaxis(y, 2, -1))                           # (n, M, q, rx)
        phi = np.array([1.0, 1j], np.complex64)[:, None]
        ha = ((yt[:, :, 0, None] + phi * yt[:, :, 1, None]) / np.sqrt(2.0))[:, :, None]          # (n,M,1,2,4)
        hb = (y2[:, :, 0, :, None] - phi * y2[:, :, 1, :, None]) / np.sqrt(2.0)                  # (n,M,4,2,4)
        s_a, s_b = _mrc_sinr_2(ha, hb, p[..., None, None] / 2.0, n0[..., None, None])   # (n, M, 4 off, 2 phi)
        se = tab.se_of_lin(s_a) + tab.se_of_lin(s_b)
        pick = np.argmax(se, axis=-1)                                              # (n, M, 4)
        tot = np.take_along_axis(se, pick[..., None], -1)[..., 0].sum(1)          # (n, 4)
        off = np.argmax(tot, axis=1)                                               # (n,)
        best = tot[np.arange(n), off]
        ph_pick = pick[np.arange(n), :, off]                                       # (n, M)
        sa = np.take_along_axis(s_a[np.arange(n), :, off], ph_pick[..., None], -1)[..., 0]
        sb = np.take_along_axis(s_b[np.arange(n), :, off], ph_pick[..., None], -1)[..., 0]
        two = best > se1
        rank = np.where(two, 2, 1)
        beam[:, 1] = np.where(two, b2[np.arange(n), off], b1)
        cophase = np.where(two[:, None], phi[:, 0][ph_pick], cophase)
        sinr = np.where(two[:, None, None], np.stack([sa, sb], -1), sinr)
    # CQI: EESM over the codeword's layers (sub-band) and over all sub-bands (wideband)
    two = rank == 2
    s_sb = np.where(two[:, None, None], sinr, np.repeat(sinr[..., :1], 2, -1))   # rank 1: duplicate (same EESM)
    cqi_sb = tab.cqi_of_eff(s_sb, axis=-1)                                       # (n, M)
    cqi_wb = tab.cqi_of_eff(s_sb.reshape(n, M * 2), axis=-1)                     # (n,)
    cqi_sb = np.clip(cqi_sb, cqi_wb[:, None] - 1, cqi_wb[:, None] + 2).clip(0, 15)
    return Report(rank=rank, beam=beam, cophase=cophase.astype(np.complex64), cqi_wb=cqi_wb, cqi_sb=cqi_sb)
