"""The deep schedulers' state vectors, action masks and per-decision rewards (seed Appendix B, C.2.2, D.4).

State of the 1LDS (one decision vector per user layer, all RBGs at once), abs(U) x (5 + 2 N_RBG) =
410 for abs(U) = 10, N_RBG = 18: one segment of 41 features per candidate, in TD-PF order,
``[R^, h^, d^, b^, o^, g^_1..g^_M, rho_1..rho_M]`` (a zero segment for an empty candidate slot):

* R^ = R_u / R_max, past average throughput over the largest one seen so far in the drop;
* h^ = rank / 2;  d^ = RBGs allocated to u so far in this TTI / N_RBG;
* b^ = min(buffer / b_max, 1), b_max = the largest TB of the carrier (top MCS, 2 layers, all PRBs), so a
  full buffer is 1 in both set-ups;
* o^ = wideband CQI / 15;  g^_m = sub-band CQI / 15 (the predefined normaliser g-bar = 15);
* rho_m = max over UEs c already on RBG m of kappa(u, c) = max_j sum_i |[P_u^H P_c]_ij| / sqrt(h_u)
  (the seed's kappa with unit-norm PMI columns, divided by sqrt(h_u) so that it lies in [0, 1]).

State of the 2LDS (one decision per RBG and layer), abs(U) x 8 + 1 = 81: per candidate
``[R^, h^, d^, b^, o^, g^_m, rho_m, mean kappa_m]`` and the number of UEs already on RBG m / abs(L).

Actions per decision: candidate index 0..abs(U)-1, or abs(U) = no allocation. Masked (invalid): empty
slots, UEs already on the RBG, UEs whose buffer is already covered by this TTI's allocation. A masked
choice leaves the RBG unassigned (seed C.2.1) and is rewarded -1.

Rewards, per RBG and layer:

* off-policy (Eq. 20-21): r = change of the RBG's PF sum metric sum_u T_u / R_u caused by the decision
  (T from the scheduler's MU-MIMO estimate; for layer 1 this is T_u / R_u). We read Eq. (20)'s
  T_{u,m,l} - T_{u,m,l-1} as this change of the RBG's sum: the literal per-UE difference is zero for a
  UE that was not on the RBG before. Normalised by the best candidate's value: max(r / max_u r, -1) if
  max_u r > 0, else +1 for "no allocation" and -1 for any UE;
* PPO (Eq. 2-4): r = P v_m on layer 1, k v_m on later layers, v_m = -1 if another choice (a UE or no
  allocation) has a larger PF-sum change, else +1; P = G / G_max, G = geometric mean of the cell's
  R_u (bit/s, zeros as 1), G_max its running maximum. P is taken after the last realised TTI (the
  decision's own TTI is realised only after all its layers), a one-TTI shift of the seed's timing.
"""
from __future__ import annotations

import numpy as np

N_UE_FEATURES = 5


def segments_1lds(ue_feat: np.ndarray, g_sb: np.ndarray, rho: np.ndarray, present: np.ndarray) -> np.ndarray:
    """1LDS state (E, U * (5 + 2M)) from per-candidate features (E, U, 5), sub-band CQIs (E, U, M)
    normalised, max cross-correlations (E, U, M), and the candidate-present mask (E, U)."""
    seg = np.concatenate([ue_feat, g_sb, rho], axis=-1)
    seg = np.where(present[..., None], np.clip(seg, 0.0, 1.0), 0.0)    # clip: float rounding only
    return seg.reshape(seg.shape[0], -1).astype(np.float32)


def segments_2lds(ue_feat: np.ndarray, g_sb: np.ndarray, rho: np.ndarray, rho_mean: np.ndarray,
                  n_cosched: np.ndarray, present: np.ndarray) -> np.ndarray:
    """2LDS state (E, 8U + 1) for one RBG: features (E, U, 5), and (E, U) for the RBG's g^, rho,
    mean kappa; ``n_cosched`` (E,) UEs on the RBG / abs(L)."""
    seg = np.concatenate([ue_feat, g_sb[..., None], rho[..., None], rho_mean[..., None]], axis=-1)
    seg = np.where(present[..., None], np.clip(seg, 0.0, 1.0), 0.0).reshape(ue_feat.shape[0], -1)
    return np.concatenate([seg, n_cosched[:, None]], axis=1).astype(np.float32)


def kappa(gram_abs: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """kappa(u, c) from |V^H V| of the candidates' layers (E, M, 2U, 2U) and ranks (E, U):
    max over c's layers j of sum over u's layers i of |[P_u^H P_c]_ij|, / sqrt(h_u). (E, M, U, U).
    Inactive layers (of rank-1 UEs) have no coupling to any other UE, so they add nothing; the diagonal
    (a UE with itself) is never used."""
    a = gram_abs
    s0 = a[..., 0::2, 0::2] + a[..., 1::2, 0::2]                                # sum over u's layers, c's layer 0
    s1 = a[..., 0::2, 1::2] + a[..., 1::2, 1::2]                                # ... c's layer 1
    return np.maximum(s0, s1) / np.sqrt(np.maximum(rank, 1)).astype(np.float32)[:, None, :, None]


def masks(valid: np.ndarray) -> np.ndarray:
    """Action mask (..., U + 1): the candidates' validity and an always-valid "no allocation"."""
    return np.concatenate([valid, np.ones((*valid.shape[:-1], 1), bool)], axis=-1)


def chosen_value(dpf: np.ndarray, valid: np.ndarray, action: np.ndarray):
    """(PF-sum change of the chosen action, the action was valid, best change among valid UEs)."""
    U = dpf.shape[-1]
    a = np.clip(action, 0, U)
    is_ue = a < U
    val = np.where(is_ue, np.take_along_axis(dpf, np.minimum(a, U - 1)[..., None], -1)[..., 0], 0.0)
    ok = np.where(is_ue, np.take_along_axis(valid, np.minimum(a, U - 1)[..., None], -1)[..., 0], True)
    ok &= (action >= 0) & (action <= U)
    best = np.where(valid, dpf, -np.inf).max(-1)
    return val, ok, best


def reward_pf(dpf: np.ndarray, valid: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Eq. (20)-(21) for every decision: arrays (..., U) and actions (...)."""
    val, ok, best = chosen_value(dpf, valid, action)
    no_alloc = action == dpf.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(best > 0, np.maximum(val / best, -1.0), np.where(no_alloc, 1.0, -1.0))
    return np.where(ok, r, -1.0)


def greedy_indicator(dpf: np.ndarray, valid: np.ndarray, action: np.ndarray) -> np.ndarray:
    """v_m of Eq. (4): -1 if a valid UE or "no allocation" has a larger PF-sum change, else +1."""
    val, ok, best = chosen_value(dpf, valid, action)
    top = np.maximum(best, 0.0)
    worse = val < top - 1e-9 * np.maximum(np.abs(top), 1.0)
    return np.where(ok & ~worse, 1.0, -1.0)


def decision_rewards(dpf: np.ndarray, valid: np.ndarray, action: np.ndarray):
    """(Eq. 20-21 reward, Eq. 4 v, the action was valid) in one pass; same values as :func:`reward_pf`
    and :func:`greedy_indicator`."""
    U = dpf.shape[-1]
    val, ok, best = chosen_value(dpf, valid, action)
    no_alloc = action == U
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(best > 0, np.maximum(val / best, -1.0), np.where(no_alloc, 1.0, -1.0))
    top = np.maximum(best, 0.0)
    worse = val < top - 1e-9 * np.maximum(np.abs(top), 1.0)
    return np.where(ok, r, -1.0), np.where(ok & ~worse, 1.0, -1.0), ok
