"""Outer-loop link adaptation (OLLA), the industry baseline.

The gNB trusts the latest CQI as an SINR estimate (the CQI's 10%-BLER SINR point), adds a per-link
offset Delta (dB) and picks the highest MCS whose 10%-BLER SINR is met. Delta moves by HARQ
feedback: on ACK Delta += step_down, on NACK Delta -= step_up, with
step_down / step_up = BLER_target / (1 - BLER_target). In steady state the expected drift is zero,
(1 - p) * step_down = p * step_up, so the NACK rate p converges to the target whatever the
channel, as long as Delta is not pinned at a clip (MCS 0 / top MCS / the env's offset range).
Delta is reset when a link starts a new episode (a new UE).

Used as a policy by ``tasks.link_adaptation.evaluate``: ``reset(env)``, ``act(obs, env)``,
``update(info, truncated)``.
"""
from __future__ import annotations

import numpy as np

from compress.errors import UserError


class OLLA:
    def __init__(self, bler_target: float = 0.1, step_up_db: float = 0.5, delta_max_db: float = 20.0):
        if not 0.0 < bler_target < 1.0:
            raise UserError(f"bler_target must be in (0, 1), got {bler_target}")
        if step_up_db <= 0:
            raise UserError(f"step_up_db must be > 0, got {step_up_db}")
        self.bler_target = float(bler_target)
        self.step_up = float(step_up_db)
        self.step_down = self.step_up * bler_target / (1.0 - bler_target)
        self.delta_max = float(delta_max_db)
        self.delta = None

    def reset(self, env) -> None:
        self.delta = np.zeros(env.num_links)

    def select_mcs(self, env) -> np.ndarray:
        if self.delta is None or len(self.delta) != env.num_links:
            self.reset(env)
        sinr = env.cqi_sinr_db() + self.delta
        ok = env.mcs_thr10_db() <= sinr[:, None]                  # (N, M)
        m = ok.shape[1]
        return np.where(ok.any(axis=1), m - 1 - np.argmax(ok[:, ::-1], axis=1), 0)

    def act(self, obs, env) -> np.ndarray:
        return env.mcs_to_action(self.select_mcs(env))

    def update(self, info: dict, truncated=None) -> None:
        ack = np.asarray(info["ack"], dtype=bool)
        self.delta += np.where(ack, self.step_down, -self.step_up)
        np.clip(self.delta, -self.delta_max, self.delta_max, out=self.delta)
        if truncated is not None:
            self.delta[np.asarray(truncated, dtype=bool)] = 0.0
