"""MU-MIMO on one RBG: RZF precoding from reported PMIs, the scheduler's rate estimate, the true SINR.

Precoder (the seed's regularised zero forcing on CSI): the co-scheduled layers' unit-norm PMI columns
V = [v_1 ... v_n] (32 x n) give G = V (V^H V + alpha I)^-1 with unit-norm columns and equal power
P_RBG / n per layer. With one UE, V has orthonormal columns (Type-I), so G = V: the UE gets its own
PMI (SU-MIMO), and for a single layer RZF is MRT on the reported direction.

Scheduler's estimate (what a gNB can compute from CSI, the ZF SINR-loss model): layer l of UE u
(rank r_u, SU SINR gamma_u on this RBG from its sub-band CQI and OLLA offset) in a set of n layers:

    SINR_l = gamma_u * (r_u / n) / ((1 + alpha) [(V^H V + alpha I)^-1]_ll)

(r_u / n: the power share; the last factor: the ZF/RZF beamforming loss, 1 for orthogonal layers and
-> 1 - |rho|^2 for two layers of correlation rho; exact for a single UE). Candidates are scored
incrementally: adding UE c's layers to the committed set S updates (V^H V + alpha I)^-1 by the Schur
complement of c's 2 x 2 block, O(n) per candidate and RBG, so every candidate on every RBG of every
cell is scored at once (rewards and the PF baselines need all of them).

True SINR of layer l at its UE (MRC combiner f = H g_l on the true channel H of the serving cell):
signal p ||f||^2, intra-cell leakage p sum_{k != l} |f^H H g_k|^2 / ||f||^2, inter-cell interference
from the strongest ``n_interferers`` cells through their actual precoders and channels, the other
cells as their average received power when they transmit on the RBG, and thermal noise.
"""
from __future__ import annotations

import numpy as np

from envs.scheduler.channel import bmm
from envs.scheduler.ops import ssum


def gram_from_beams(beam_vec: np.ndarray, cophase: np.ndarray) -> np.ndarray:
    """Gram V^H V of candidate layers per RBG from the Type-I structure.

    ``beam_vec`` (E, 2U, 16) unit-norm wideband beam of each layer (layer 2k, 2k+1 = candidate k; zero for
    an inactive layer: the second of a rank-1 UE, or an empty candidate slot), ``cophase`` (E, M, 2U) the
    layer's co-phasing incl. the -phi of a rank-2 second layer. v = [b; psi b] / sqrt(2), so
    v_i^H v_j = (b_i^H b_j)(1 + conj(psi_i) psi_j) / 2. The diagonal is 1: active layers are unit-norm and
    inactive ones become orthogonal unit dummies (no coupling). Returns (E, M, 2U, 2U) complex64.
    """
    bg = bmm(np.conj(beam_vec), np.swapaxes(beam_vec, 1, 2))            # (E, 2U, 2U) b_i^H b_j
    z = np.conj(cophase)[..., :, None] * cophase[..., None, :]
    k = bg[:, None] * (0.5 + 0.5 * z)
    n = k.shape[-1]
    k[..., np.arange(n), np.arange(n)] = 1.0
    return k.astype(np.complex64, copy=False)


def inv2(a: np.ndarray) -> np.ndarray:
    """Inverse of (..., 2, 2) matrices in closed form."""
    det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    out = np.empty_like(a)
    out[..., 0, 0], out[..., 1, 1] = a[..., 1, 1], a[..., 0, 0]
    out[..., 0, 1], out[..., 1, 0] = -a[..., 0, 1], -a[..., 1, 0]
    return out / det[..., None, None]


def rzf(V: np.ndarray, alpha: float) -> np.ndarray:
    """RZF precoder G = V (V^H V + alpha I)^-1 with unit-norm columns; V (..., n_tx, n). For a single
    column this is MRT: v / ||v||."""
    n = V.shape[-1]
    gram = np.conj(np.swapaxes(V, -1, -2)) @ V + alpha * np.eye(n)
    G = V @ np.linalg.inv(gram)
    return G / np.maximum(np.linalg.norm(G, axis=-2, keepdims=True), 1e-30)


class RBGSets:
    """Co-scheduled sets of every (cell, RBG) during one TTI's scheduling loop, and the candidates' scores.

    Slots 2j, 2j+1 hold the layers of the UE chosen at user layer j (dummies when none or rank 1).
    The set's Gram rows ``KS``, its (V^H V + alpha I)^-1 ``Q`` and per-slot weights are kept up to date by
    :meth:`commit`, so scoring a layer is a handful of array operations.
    """

    def __init__(self, K: np.ndarray, su_sinr: np.ndarray, rank: np.ndarray, R: np.ndarray,
                 valid: np.ndarray, rate_per_se: np.ndarray, max_layers: int, alpha: float, se_of_lin):
        E, M, n2u, _ = K.shape
        U = n2u // 2
        self.E, self.M, self.U, self.L = E, M, U, int(max_layers)
        self.K, self.alpha, self.se = K, float(alpha), se_of_lin
        d = np.arange(2 * U).reshape(U, 2)
        self.D = K[:, :, d[:, :, None], d[:, None, :]] + np.complex64(alpha) * np.eye(2, dtype=np.complex64)
        self.su = su_sinr.astype(np.float32)                 # (E, M, U) per-layer SU SINR (linear)
        self.rank = rank.astype(np.int64)                    # (E, U), 0 for an empty candidate slot
        self.inv_R = (1.0 / np.maximum(R, 1e-9)).astype(np.float32)
        self.cand_ok = valid.copy()                          # (E, U) candidate exists and has data
        self.rate = np.asarray(rate_per_se, np.float32)      # (M,) bit/s per unit SE on each RBG
        S = 2 * self.L
        self.Q = np.zeros((E, M, S, S), np.complex64)
        self.Q[..., np.arange(S), np.arange(S)] = 1.0 / (1.0 + self.alpha)
        self.KS = np.zeros((E, M, S, 2 * U), np.complex64)   # Gram rows of the set's layers
        self.slot_w = np.zeros((E, M, S), np.float32)        # SU SINR x rank of the slot's UE (0: dummy)
        self.slot_invR = np.zeros((E, M, S), np.float32)
        self.slot_act = np.zeros((E, M, S), bool)
        self.slot_cand = np.full((E, M, self.L), -1, np.int64)
        self.n_layers = np.zeros((E, M), np.int64)            # active MIMO layers in the set
        self.in_set = np.zeros((E, M, U), bool)
        self.slot_se = np.zeros((E, M, S), np.float32)        # SE of each slot's layer in the current set
        self.pf = np.zeros((E, M), np.float32)
        self.thr = np.zeros((E, M), np.float32)

    # -- scoring ---------------------------------------------------------------------------------------
    def evaluate(self, layer: int, rbgs=None) -> dict:
        """Score every candidate as the UE of user layer ``layer`` on RBGs ``rbgs`` (default all).

        Returns arrays (E, Ms, U): ``dpf`` (change of the RBG's PF sum metric, sum_u T_u / R_u),
        ``dthr`` (change of its throughput estimate, bit/s), ``valid``, and ``rate`` (candidate's own
        estimated rate if added, bit/s); the internals needed by :meth:`commit` are kept.
        """
        ms = slice(None) if rbgs is None else np.atleast_1d(np.asarray(rbgs, np.int64))
        E, U, a = self.E, self.U, self.alpha
        n = 2 * layer
        D = self.D[:, ms]                                                          # (E, Ms, U, 2, 2)
        Ms = D.shape[1]
        if n > 0:
            B = self.KS[:, ms, :n]                                                 # (E, Ms, n, 2U)
            W = bmm(self.Q[:, ms, :n, :n], B).reshape(E, Ms, n, U, 2)
            Bc = np.conj(B).reshape(E, Ms, n, U, 2)
            s00 = D[..., 0, 0] - ssum(Bc[..., 0] * W[..., 0], 2)                   # D - B_c^H Q_S B_c
            s01 = D[..., 0, 1] - ssum(Bc[..., 0] * W[..., 1], 2)
            s10 = D[..., 1, 0] - ssum(Bc[..., 1] * W[..., 0], 2)
            s11 = D[..., 1, 1] - ssum(Bc[..., 1] * W[..., 1], 2)
        else:
            W = None
            s00, s01, s10, s11 = D[..., 0, 0], D[..., 0, 1], D[..., 1, 0], D[..., 1, 1]
        inv_det = 1.0 / (s00 * s11 - s01 * s10)
        i00, i01, i10, i11 = s11 * inv_det, -s01 * inv_det, -s10 * inv_det, s00 * inv_det   # Sigma^-1, (E, Ms, U)
        rank = self.rank[:, None, :]
        scale = 1.0 / ((1.0 + a) * np.maximum(self.n_layers[:, ms, None] + rank, 1)).astype(np.float32)
        w_c = self.su[:, ms] * rank * scale                                        # (E, Ms, U)
        with np.errstate(divide="ignore", invalid="ignore"):
            se0 = self.se(w_c / i00.real)
            se1 = np.where(rank == 2, self.se(w_c / i11.real), np.float32(0.0))
        rate_m = self.rate[ms][None, :, None]
        rate_c = (se0 + se1) * rate_m                                              # (E, Ms, U)
        pf_new = rate_c * self.inv_R[:, None, :]
        thr_new = rate_c
        se_s = None
        if n > 0:
            WS0 = W[..., 0] * i00[:, :, None] + W[..., 1] * i10[:, :, None]
            WS1 = W[..., 0] * i01[:, :, None] + W[..., 1] * i11[:, :, None]
            dq = (WS0 * np.conj(W[..., 0]) + WS1 * np.conj(W[..., 1])).real        # (E, Ms, n, U)
            q_s = np.diagonal(self.Q[:, ms, :n, :n], axis1=-2, axis2=-1).real[..., None] + dq
            with np.errstate(divide="ignore", invalid="ignore"):
                s_s = self.slot_w[:, ms, :n, None] * scale[:, :, None, :] / q_s
            se_s = np.where(self.slot_act[:, ms, :n, None], self.se(s_s), np.float32(0.0))
            pf_new = pf_new + ssum(se_s * self.slot_invR[:, ms, :n, None], 2) * rate_m
            thr_new = thr_new + ssum(se_s, 2) * rate_m
        valid = self.cand_ok[:, None, :] & ~self.in_set[:, ms] & (rank > 0)
        self._last = dict(layer=layer, ms=np.arange(self.M) if rbgs is None else ms, W=W,
                          sinv=(i00, i01, i10, i11), se_c=(se0, se1), se_s=se_s)
        return dict(dpf=pf_new - self.pf[:, ms][..., None], dthr=thr_new - self.thr[:, ms][..., None],
                    valid=valid, rate=rate_c)

    # -- committing --------------------------------------------------------------------------------------
    def commit(self, choice: np.ndarray, ev: dict) -> None:
        """Add the chosen candidate (index 0..U-1, or U = none) of the last :meth:`evaluate` on its RBGs."""
        st = self._last
        layer, ms, W = st["layer"], st["ms"], st["W"]
        E, U, n = self.E, self.U, 2 * st["layer"]
        choice = np.asarray(choice, np.int64).reshape(E, len(ms))
        e_i, m_i = np.nonzero(choice < U)
        if not len(e_i):
            return
        cc, mm = choice[e_i, m_i], ms[m_i]
        i00, i01, i10, i11 = (x[e_i, m_i, cc] for x in st["sinv"])
        Si = np.stack([np.stack([i00, i01], -1), np.stack([i10, i11], -1)], -2)  # (k, 2, 2)
        Q = self.Q[e_i, mm]
        if n:
            Wc = W[e_i, m_i, :, cc]                                                 # (k, n, 2)
            WS = bmm(Wc, Si)                                                        # (k, n, 2) W Sigma^-1
            Q[:, :n, :n] += bmm(WS, np.conj(np.swapaxes(Wc, 1, 2)))
            Q[:, :n, n:n + 2] = -WS
            Q[:, n:n + 2, :n] = -np.conj(np.swapaxes(WS, 1, 2))
            self.slot_se[e_i, mm, :n] = st["se_s"][e_i, m_i, :, cc]
        Q[:, n:n + 2, n:n + 2] = Si
        self.Q[e_i, mm] = Q
        rk = self.rank[e_i, cc]
        two = rk == 2
        self.KS[e_i, mm, n] = self.K[e_i, mm, 2 * cc]
        self.KS[e_i, mm, n + 1] = np.where(two[:, None], self.K[e_i, mm, 2 * cc + 1], 0.0)
        w = self.su[e_i, mm, cc] * rk
        self.slot_w[e_i, mm, n] = w
        self.slot_w[e_i, mm, n + 1] = np.where(two, w, 0.0)
        self.slot_invR[e_i, mm, n] = self.inv_R[e_i, cc]
        self.slot_invR[e_i, mm, n + 1] = np.where(two, self.inv_R[e_i, cc], 0.0)
        self.slot_act[e_i, mm, n] = True
        self.slot_act[e_i, mm, n + 1] = two
        self.slot_cand[e_i, mm, layer] = cc
        self.in_set[e_i, mm, cc] = True
        self.n_layers[e_i, mm] += rk
        se0, se1 = st["se_c"]
        self.slot_se[e_i, mm, n] = se0[e_i, m_i, cc]
        self.slot_se[e_i, mm, n + 1] = se1[e_i, m_i, cc]
        self.pf[e_i, mm] += ev["dpf"][e_i, m_i, cc]
        self.thr[e_i, mm] += ev["dthr"][e_i, m_i, cc]

    # -- views ---------------------------------------------------------------------------------------------
    def estimated_sinr(self) -> np.ndarray:
        """The scheduler's SINR estimate (linear) of every slot of the final sets, (E, M, 2L); 0 = unused."""
        q = np.diagonal(self.Q, axis1=-2, axis2=-1).real
        s = self.slot_w / ((1 + self.alpha) * np.maximum(self.n_layers, 1)[..., None] * q)
        return np.where(self.slot_act, s, 0.0)


def _abs2(x: np.ndarray) -> np.ndarray:
    return x.real ** 2 + x.imag ** 2


def true_sinr(T0: np.ndarray, p_layer: np.ndarray, H_int: np.ndarray, G_int: np.ndarray, p_int: np.ndarray,
              own: np.ndarray, other_in: np.ndarray) -> np.ndarray:
    """True per-layer SINR of scheduled UEs (one row per UE-RBG pair, V rows).

    ``T0`` (V, 4, S) = H G: its serving channel times its cell's precoder on that RBG (unit-norm columns,
    zero for unused slots), ``p_layer`` (V,) power per layer, ``H_int`` (V, 4, K x 32) its channels to the
    K strongest other cells side by side, ``G_int`` (V, K, 32, S) and ``p_int`` (V, K) those cells' precoders and
    per-layer powers on the RBG, ``own`` (V, 2) the UE's slot indices (-1: no 2nd layer), ``other_in``
    (V,) received power of the remaining cells plus noise per Rx antenna. Returns (V, 2).
    """
    K = G_int.shape[1]
    idx = np.maximum(own, 0)
    f = np.take_along_axis(T0, idx[:, None, :], 2)                       # (V, 4, 2)  MRC combiners
    fn = ssum(_abs2(f), 1)                                                # (V, 2) ||f||^2
    fh = np.conj(np.swapaxes(f, 1, 2))                                   # (V, 2, 4)
    x0 = _abs2(bmm(fh, T0))                                              # (V, 2, S) |f^H H g_k|^2
    sig = np.take_along_axis(x0, idx[:, :, None], 2)[..., 0]             # (V, 2) = ||f||^4
    tot = p_layer[:, None] * (ssum(x0) - sig)
    if K:
        fhH = np.ascontiguousarray(np.swapaxes(bmm(fh, H_int).reshape(len(fh), 2, K, 32), 1, 2))  # f^H H_c
        xi = ssum(_abs2(bmm(fhH, G_int)))                         # (V, K, 2)
        tot = tot + ssum(p_int[:, :, None] * xi, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = p_layer[:, None] * sig / (tot + other_in[:, None] * fn)
    return np.where((own >= 0) & (fn > 0), s, 0.0)
