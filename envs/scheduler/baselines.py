"""The seed's heuristic schedulers (Appendix E) as policies of the env: ``policy(obs, info) -> actions``.

All three start with the same frequency-domain step on user layer 1 (SU-MIMO FDS): each RBG goes to the
candidate with the largest PF metric T_u,m / R_u. Then, on every further user layer of every RBG:

* ``SUPF`` (the floor): nothing - SU-MIMO PF;
* ``BaselineSDS`` (E.1): walk the candidates in TD-PF order and take the first one whose co-scheduling
  raises the RBG's estimated sum throughput; none if no candidate does;
* ``PFGreedySDS`` (E.2): take the candidate that maximises the RBG's PF sum metric among those that also
  raise its sum throughput (exhaustive over candidates, per RBG and layer); none if no candidate raises
  both.

They read the env's candidate scores (``info["scores"]``: the change of the RBG's PF sum ``dpf`` and of
its throughput ``dthr`` for every candidate, from the scheduler's RZF rate estimate - the throughput
estimates these heuristics recompute for every candidate) and work with both decision loops.
"""
from __future__ import annotations

import numpy as np


def _fds(scores: dict) -> np.ndarray:
    dpf, valid = scores["dpf"], scores["valid"]
    U = dpf.shape[-1]
    x = np.where(valid & (dpf > 0), dpf, -np.inf)
    best = np.argmax(x, axis=-1)
    return np.where(np.isfinite(np.max(x, axis=-1)), best, U)


class SUPF:
    """SU-MIMO proportional fair: one UE per RBG (user layer 1 only)."""

    uses_obs = False
    name = "su_pf"

    def __call__(self, obs, info) -> np.ndarray:
        sc = info["scores"]
        if info["layer"] == 0:
            return _fds(sc)
        return np.full(sc["dpf"].shape[:-1], sc["dpf"].shape[-1], np.int64)


class BaselineSDS:
    """The seed's baseline SDS: PF-sorted candidates, the first that raises the RBG's sum throughput."""

    uses_obs = False
    name = "baseline_sds"

    def __call__(self, obs, info) -> np.ndarray:
        sc = info["scores"]
        if info["layer"] == 0:
            return _fds(sc)
        ok = sc["valid"] & (sc["dthr"] > 0)
        U = ok.shape[-1]
        return np.where(ok.any(-1), np.argmax(ok, axis=-1), U)


class PFGreedySDS:
    """The seed's PF greedy SDS: the candidate of largest PF-sum gain among those raising throughput."""

    uses_obs = False
    name = "pf_greedy"

    def __call__(self, obs, info) -> np.ndarray:
        sc = info["scores"]
        if info["layer"] == 0:
            return _fds(sc)
        x = np.where(sc["valid"] & (sc["dthr"] > 0) & (sc["dpf"] > 0), sc["dpf"], -np.inf)
        U = x.shape[-1]
        return np.where(np.isfinite(x.max(-1)), np.argmax(x, axis=-1), U)


POLICIES = {"su_pf": SUPF, "baseline_sds": BaselineSDS, "pf_greedy": PFGreedySDS}
