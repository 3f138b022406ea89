"""Outer-loop link adaptation (OLLA), the industry baseline, and its per-scenario tuning.

The gNB trusts the latest CQI as an effective-SINR estimate (the CQI's 10%-BLER SINR point), adds a
per-link offset Delta (dB) and picks the highest MCS whose TB BLER at that SINR is at most the BLER
target (inner loop, on the env's own BLER tables: ``env.mcs_meets_target``; MCS 0 if none). Delta moves by HARQ
feedback (Pedersen et al. 2005): on ACK Delta += step_down, on NACK Delta -= step_up, with
step_down / step_up = BLER_target / (1 - BLER_target) (Sampath et al. 1997). In steady state the expected
drift is zero, (1 - p) * step_down = p * step_up, so the NACK rate p converges to the target whatever the
channel, as long as Delta is not pinned at a clip (MCS 0 / top MCS / +-delta_max_db).
Delta starts at ``delta_init_db`` and is reset to it when a link starts a new episode (a new UE).

This is Sionna's ``sionna.sys.OuterLoopLinkAdaptation`` with Delta = -offset, delta_up = step_up and the
env's BLER model as its PHY abstraction; ``tests/test_olla_sionna.py`` checks the two decision for
decision on recorded CQI and HARQ feedback. Ours is numpy over all links (no torch call per TTI).

``tune_olla`` picks step size and initial offset (optionally the BLER target) per scenario: the best mean
throughput over a small grid, on tuning seeds kept apart from the evaluation seeds. The whole grid runs in
one env: OLLA's settings may be per-link arrays, and link l runs grid point ``l % len(grid)`` (every point
gets ``links_per_point`` links of the same scenario; one env step serves the whole grid, ~10x faster than
one evaluation per point, at the price of each point seeing its own channel draws).

Used as a policy by ``tasks.link_adaptation.evaluate``: ``reset(env)``, ``act(obs, env)``,
``update(info, truncated)``.
"""
from __future__ import annotations

import itertools

import numpy as np

from compress.errors import UserError

__all__ = ["OLLA", "tune_olla", "STEP_GRID_DB", "INIT_GRID_DB", "TUNING_SEEDS"]

STEP_GRID_DB = (0.25, 0.5, 1.0, 2.0)          # step_up (NACK) sizes; step_down follows from the target
INIT_GRID_DB = (-4.0, -2.0, 0.0, 2.0)         # Delta of a new UE
TUNING_SEEDS = (1, 2)                          # held-in: the evaluation seeds are 100, 101


class OLLA:
    """``bler_target``, ``step_up_db``, ``delta_init_db``: numbers, or arrays with one value per link."""

    def __init__(self, bler_target=0.1, step_up_db=0.5, delta_init_db=0.0, delta_max_db: float = 20.0):
        target, step, init = (np.asarray(v, dtype=np.float64) for v in (bler_target, step_up_db, delta_init_db))
        if not ((target > 0.0) & (target < 1.0)).all():
            raise UserError(f"OLLA: bler_target must be in (0, 1), got {bler_target}")
        if not (step > 0).all():
            raise UserError(f"OLLA: step_up_db must be > 0, got {step_up_db}")
        if delta_max_db <= 0 or (np.abs(init) > delta_max_db).any():
            raise UserError(f"OLLA: need delta_max_db > 0 and |delta_init_db| <= delta_max_db, got "
                             f"delta_max_db={delta_max_db}, delta_init_db={delta_init_db}")
        scalar = lambda a: float(a) if a.ndim == 0 else a
        self.bler_target, self.step_up, self.delta_init = scalar(target), scalar(step), scalar(init)
        self.step_down = scalar(step * target / (1.0 - target))
        self.delta_max = float(delta_max_db)
        self.delta = None

    def params(self) -> dict:
        return {"bler_target": self.bler_target, "step_up_db": self.step_up, "delta_init_db": self.delta_init}

    def reset(self, env) -> None:
        self.delta = np.broadcast_to(np.asarray(self.delta_init, dtype=np.float64), (env.num_links,)).copy()

    def select_mcs(self, env) -> np.ndarray:
        if self.delta is None or len(self.delta) != env.num_links:
            self.reset(env)
        ok = env.mcs_meets_target(env.cqi_sinr_db() + self.delta, self.bler_target)   # (N, M): BLER <= target
        m = ok.shape[1]
        return np.where(ok.any(axis=1), m - 1 - np.argmax(ok[:, ::-1], axis=1), 0)

    def act(self, obs, env) -> np.ndarray:
        return env.mcs_to_action(self.select_mcs(env))

    def update(self, info: dict, truncated=None) -> None:
        ack = np.asarray(info["ack"], dtype=bool)
        self.delta += np.where(ack, self.step_down, -self.step_up)
        np.clip(self.delta, -self.delta_max, self.delta_max, out=self.delta)
        if truncated is not None:
            tr = np.asarray(truncated, dtype=bool)
            self.delta[tr] = self.delta_init[tr] if np.ndim(self.delta_init) else self.delta_init


def tune_olla(scenario: str, seeds=TUNING_SEEDS, steps_db=STEP_GRID_DB, inits_db=INIT_GRID_DB,
              targets=(0.1,), links_per_point: int = 256, n_tti: int = 600, warmup_tti: int = 100,
              episode_len: int = 500) -> dict:
    """Best OLLA for one scenario over the grid targets x steps x inits, by mean throughput on ``seeds``.

    Returns {"params": {...}, "throughput": Mbit/s of the best on the tuning seeds, "grid": [{params,
    "throughput", "bler"}, ...]}. Throughput and BLER are counted as in ``evaluate`` (after ``warmup_tti``)."""
    from envs.link_adaptation import LinkAdaptationEnv
    from envs.scenarios import get_scenario

    if not len(seeds):
        raise UserError("tune_olla: seeds must be a non-empty list")
    if n_tti <= warmup_tti:
        raise UserError(f"tune_olla: n_tti ({n_tti}) must exceed warmup_tti ({warmup_tti})")
    points = list(itertools.product(targets, steps_db, inits_db))
    n = len(points) * int(links_per_point)
    point = np.arange(n) % len(points)
    target, step, init = (np.array([p[i] for p in points])[point] for i in range(3))
    sc = get_scenario(scenario)
    bits, nacks, count = np.zeros(len(points)), np.zeros(len(points)), 0
    for seed in seeds:
        env = LinkAdaptationEnv([sc], num_links=n, episode_len=episode_len, seed=int(seed))
        obs, _ = env.reset(seed=int(seed))
        olla = OLLA(bler_target=target, step_up_db=step, delta_init_db=init)
        olla.reset(env)
        for t in range(n_tti):
            obs, r, term, trunc, info = env.step(olla.act(obs, env))
            olla.update(info, trunc)
            if t >= warmup_tti:
                bits += np.bincount(point, weights=r, minlength=len(points))
                nacks += np.bincount(point, weights=~info["ack"], minlength=len(points))
                count += links_per_point
    grid = [{"bler_target": float(a), "step_up_db": float(b), "delta_init_db": float(c),
             "throughput": float(bits[i] / count / sc.tti_s / 1e6), "bler": float(nacks[i] / count)}
            for i, (a, b, c) in enumerate(points)]
    best = max(grid, key=lambda g: g["throughput"])
    return {"params": {k: best[k] for k in ("bler_target", "step_up_db", "delta_init_db")},
            "throughput": best["throughput"], "grid": grid}
