"""Batched downlink link-adaptation environment (numpy, Gymnasium VectorEnv API).

One env holds ``num_links`` independent links; each link belongs to one scenario of the env's
scenario list (links are split round-robin, so every scenario gets the same share). Per TTI:

1. the agent picks, per link, an action = an MCS *offset* to the MCS mapped from the latest CQI
   report (38.214 CQI table -> highest MCS with no larger spectral efficiency). Why an offset and
   not the raw MCS index: the CQI already carries the SINR level, so the policy only has to learn
   the correction for staleness, fading, estimation error and report quantization. That correction
   transfers across bands and cell types (the generalization the paper is about), and 16 offsets
   are a smaller action space than 29 MCSs. Offsets range -10..+5 and the result is clipped to the
   table's MCS range;
2. the link's per-subband SINR (mean SINR x shadowing x |H(f)|^2) gives an EESM effective SINR
   with the MCS's beta, the BLER table (envs/bler.py) gives the TB error probability, and a
   Bernoulli draw gives HARQ ACK/NACK;
3. reward = delivered bits: the TBS (38.214 5.1.3.2) on ACK, 0 on NACK. Each TTI carries a new
   transport block (retransmission combining is not modelled; HARQ feedback reaches the agent in
   the next observation);
4. the channel evolves: taps follow a Jakes-matched AR(1) (rho = J0(2 pi f_D T_slot)) and the
   shadowing a slow AR(1); every ``cqi_period`` TTIs (random phase per link) the UE measures the
   CQI (highest CQI whose 10%-BLER SINR is met by the EESM effective SINR plus a Gaussian
   estimation error) and it is available ``cqi_delay`` TTIs later.

Observation (21 float32 features): last 4 CQI reports / 15 (newest first), TTIs since the last
report / 20, last 8 ACK(+1)/NACK(-1) (0 before any), last 8 applied MCS offsets / 10.

Episodes: each link's episode lasts ``episode_len`` TTIs (first episodes start at random points so
links do not all reset at once) and is truncated, never terminated; a new episode draws a new mean
SINR from the scenario's cell distribution and a fresh channel. Autoreset is "same step": the obs
returned for a truncated link is the first of its new episode, the last one is in
``info["final_obs"]`` (rows valid where ``info["_final_obs"]``).

Speed: everything is array code over all links (no Python loop over links); see
``tools/bench_la.py --env-speed``.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from envs import nr
from envs.bler import SNR_HI_DB, SNR_LO_DB, SNR_STEP_DB, bler_table, eesm_db
from envs.scenarios import get_scenario

from .errors import EnvError

N_CQI_HIST, N_ACK_HIST, N_MCS_HIST = 4, 8, 8
OBS_DIM = N_CQI_HIST + 1 + N_ACK_HIST + N_MCS_HIST
OFFSET_MIN, OFFSET_MAX = -10, 5
N_ACTIONS = OFFSET_MAX - OFFSET_MIN + 1
N_SUBBANDS = 8


class LinkAdaptationEnv(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, scenarios="macro_ped", num_links: int = 1024, episode_len: int = 1000,
                 mcs_table_id: int = 1, cqi_table_id: int = 1, bler_source: str = "auto",
                 seed: int | None = None):
        if isinstance(scenarios, str) or not hasattr(scenarios, "__iter__"):
            scenarios = [scenarios]
        self.scenarios = [get_scenario(s) for s in scenarios]
        if not self.scenarios:
            raise EnvError("scenarios must name at least one scenario")
        if int(num_links) < len(self.scenarios):
            raise EnvError(f"num_links ({num_links}) must be >= number of scenarios ({len(self.scenarios)})")
        if int(episode_len) < 1:
            raise EnvError(f"episode_len must be >= 1, got {episode_len}")
        self.num_envs = self.num_links = int(num_links)
        self.episode_len = int(episode_len)
        self.mcs_table_id, self.cqi_table_id = int(mcs_table_id), int(cqi_table_id)
        self.mcs_tab, self.cqi_tab = nr.mcs_table(mcs_table_id), nr.cqi_table(cqi_table_id)
        self.n_mcs = len(self.mcs_tab)
        self.single_observation_space = spaces.Box(-1.5, 1.5, (OBS_DIM,), np.float32)
        self.single_action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = spaces.Box(-1.5, 1.5, (self.num_links, OBS_DIM), np.float32)
        self.action_space = spaces.MultiDiscrete(np.full(self.num_links, N_ACTIONS))

        # per-scenario constant tables ------------------------------------------------------------
        tabs = [bler_table(self.mcs_table_id, s.n_prb, bler_source) for s in self.scenarios]
        self.bler_source = tabs[0].source
        self._bler = np.stack([t.bler for t in tabs])            # (K, M, G)
        self._tbs = np.stack([t.tbs for t in tabs]).astype(np.float64)  # (K, M)
        self._beta = tabs[0].beta.astype(np.float32)                               # (M,), scenario independent
        self._thr_k = np.stack([t.thr10_db for t in tabs])        # (K, M)
        thr = tabs[0].thr10_db
        # CQI c (1..15) is met when the effective SINR reaches the 10%-BLER SINR of an MCS of
        # equal spectral efficiency (interpolated along the MCS table's SE axis).
        order = np.argsort(self.mcs_tab.se, kind="stable")
        se_m, thr_m, beta_m = self.mcs_tab.se[order], thr[order], self._beta[order]
        self._cqi_thr = np.interp(self.cqi_tab.se, se_m, thr_m, left=thr_m[0] - 10 * np.log10(se_m[0] / self.cqi_tab.se[0]))
        self._cqi_beta = np.interp(self.cqi_tab.se, se_m, beta_m)
        self._cqi_to_mcs = nr.cqi_to_mcs(cqi_table_id, mcs_table_id)
        self._tti_s = np.array([s.tti_s for s in self.scenarios])

        n, k = self.num_links, len(self.scenarios)
        self.scn = np.arange(n) % k                               # scenario index per link
        p = lambda attr: np.array([getattr(s, attr) for s in self.scenarios], dtype=np.float64)[self.scn]
        self._rho, self._period = p("rho"), p("cqi_period").astype(np.int64)
        self._delay = p("cqi_delay").astype(np.int64)
        self._cqi_err, self._sh_std, self._sh_rho = p("cqi_error_db"), p("shadow_std_db"), p("shadow_corr")
        self._sinr_mu, self._sinr_sd = p("sinr_mean_db"), p("sinr_std_db")
        ntaps = p("n_taps").astype(np.int64)
        lmax = int(ntaps.max())
        self._tap_amp = np.where(np.arange(lmax)[None, :] < ntaps[:, None], 1.0, 0.0) / np.sqrt(ntaps)[:, None]
        # subband responses H_s = sum_l h_l exp(-j 2 pi l s / S), done in real arithmetic:
        # taps are stored as [Re h, Im h] (float32, one BLAS matmul per TTI for all links).
        ang = -2 * np.pi * np.outer(np.arange(lmax), np.arange(N_SUBBANDS)) / N_SUBBANDS
        fc, fs = np.cos(ang), np.sin(ang)
        self._W = np.block([[fc, fs], [-fs, fc]]).astype(np.float32)      # (2L, 2S)
        self._tap_amp = np.concatenate([self._tap_amp, self._tap_amp], 1).astype(np.float32) * np.float32(np.sqrt(0.5))
        self._rho32 = self._rho.astype(np.float32)[:, None]
        self._innov32 = np.sqrt(1.0 - self._rho ** 2).astype(np.float32)[:, None]
        self._lmax = lmax
        self._rng = np.random.default_rng(seed)
        self._needs_reset = True

    # -- helpers ------------------------------------------------------------------------------------
    def _cn(self, m: int):
        """CN(0, 1) taps as [Re, Im] float32 rows, scaled by each link's tap profile later."""
        return self._rng.standard_normal((m, 2 * self._lmax), dtype=np.float32)

    def _new_episode(self, idx: np.ndarray, first: bool = False):
        m = len(idx)
        rng = self._rng
        self.mean_db[idx] = np.clip(self._sinr_mu[idx] + self._sinr_sd[idx] * rng.standard_normal(m), -8.0, 32.0)
        self.shadow_db[idx] = 0.0
        self.h[idx] = self._cn(m) * self._tap_amp[idx]
        self.t[idx] = rng.integers(0, self.episode_len, m) if first else 0
        self.phase[idx] = rng.integers(0, self._period[idx])
        self.ack_hist[idx] = 0.0
        self.mcs_hist[idx] = 0.0
        self._update_sinr(idx)
        c = self._measure_cqi(idx)   # a first report is available at episode start
        self.cqi_hist[idx] = c[:, None]
        self.cqi[idx] = c
        self.age[idx] = 0
        self.pending[idx] = c
        self.pending_at[idx] = -1

    def _update_sinr(self, idx=None):
        sl = slice(None) if idx is None else idx
        H = self.h[sl] @ self._W                                  # (n, 2S): [Re H, Im H]
        H *= H
        lin = (10.0 ** ((self.mean_db[sl] + self.shadow_db[sl]) / 10.0)).astype(np.float32)
        self.sinr[sl] = lin[:, None] * (H[:, :N_SUBBANDS] + H[:, N_SUBBANDS:])

    def _measure_cqi(self, idx: np.ndarray) -> np.ndarray:
        eff = eesm_db(self.sinr[idx][:, None, :], self._cqi_beta[None, :])     # (m, 15)
        eff = eff + (self._cqi_err[idx] * self._rng.standard_normal(len(idx)))[:, None]
        return (eff >= self._cqi_thr[None, :]).sum(axis=1).astype(np.int64)

    def _obs(self) -> np.ndarray:
        o = np.empty((self.num_links, OBS_DIM), dtype=np.float32)
        o[:, :N_CQI_HIST] = self.cqi_hist / 15.0
        o[:, N_CQI_HIST] = np.minimum(self.age, 40) / 20.0
        o[:, N_CQI_HIST + 1:N_CQI_HIST + 1 + N_ACK_HIST] = self.ack_hist
        o[:, N_CQI_HIST + 1 + N_ACK_HIST:] = self.mcs_hist / 10.0
        return o

    # -- public API ---------------------------------------------------------------------------------
    def cqi_mcs(self) -> np.ndarray:
        """MCS mapped from each link's latest CQI report (what offsets are relative to)."""
        return self._cqi_to_mcs[self.cqi]

    def action_to_mcs(self, actions) -> np.ndarray:
        a = np.asarray(actions).astype(np.int64).reshape(-1)
        return np.clip(self.cqi_mcs() + a + OFFSET_MIN, 0, self.n_mcs - 1)

    def mcs_to_action(self, mcs) -> np.ndarray:
        """Action that selects ``mcs`` (clipped to the offset range) for each link."""
        return np.clip(np.asarray(mcs) - self.cqi_mcs(), OFFSET_MIN, OFFSET_MAX) - OFFSET_MIN

    def mcs_thr10_db(self) -> np.ndarray:
        """10%-BLER effective SINR per link and MCS (dB), shape (num_links, n_mcs), for baselines."""
        return self._thr_k[self.scn]

    def cqi_sinr_db(self) -> np.ndarray:
        """SINR (dB) a link's latest CQI vouches for: the CQI's 10%-BLER point (CQI 0: -10 dB)."""
        return np.where(self.cqi > 0, self._cqi_thr[np.maximum(self.cqi - 1, 0)], -10.0)

    def tti_seconds(self) -> np.ndarray:
        """TTI (slot) duration per link, to turn bits per TTI into bit/s."""
        return self._tti_s[self.scn]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        n = self.num_links
        self.mean_db, self.shadow_db = np.zeros(n), np.zeros(n)
        self.h = np.zeros((n, 2 * self._lmax), dtype=np.float32)
        self.sinr = np.zeros((n, N_SUBBANDS), dtype=np.float32)
        self.t, self.phase = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.cqi, self.age = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.pending, self.pending_at = np.zeros(n, np.int64), np.full(n, -1, np.int64)
        self.cqi_hist = np.zeros((n, N_CQI_HIST))
        self.ack_hist, self.mcs_hist = np.zeros((n, N_ACK_HIST)), np.zeros((n, N_MCS_HIST))
        self._new_episode(np.arange(n), first=True)
        self._needs_reset = False
        return self._obs(), {"scenario": self.scn.copy()}

    def step(self, actions):
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(actions)
        if a.shape != (self.num_links,):
            raise EnvError(f"actions must have shape ({self.num_links},), got {a.shape}")
        if a.size and (a.min() < 0 or a.max() >= N_ACTIONS):
            raise EnvError(f"actions must be in 0..{N_ACTIONS - 1}, got range {a.min()}..{a.max()}")
        rng, n = self._rng, self.num_links
        cmcs = self.cqi_mcs()
        mcs = np.clip(cmcs + a.astype(np.int64) + OFFSET_MIN, 0, self.n_mcs - 1)
        eff = eesm_db(self.sinr, self._beta[mcs])
        np.clip(eff, SNR_LO_DB, SNR_HI_DB, out=eff)  # +inf (all exps underflowed) -> top of grid
        g = np.rint((eff - SNR_LO_DB) / SNR_STEP_DB).astype(np.int64)
        bler = self._bler[self.scn, mcs, g]
        ack = rng.random(n) >= bler
        reward = np.where(ack, self._tbs[self.scn, mcs], 0.0)

        self.ack_hist[:, 1:] = self.ack_hist[:, :-1]
        self.ack_hist[:, 0] = np.where(ack, 1.0, -1.0)
        self.mcs_hist[:, 1:] = self.mcs_hist[:, :-1]
        self.mcs_hist[:, 0] = mcs - cmcs

        # channel evolution
        self.t += 1
        w = self._cn(n)
        w *= self._tap_amp
        w *= self._innov32
        self.h *= self._rho32
        self.h += w
        self.shadow_db = self._sh_rho * self.shadow_db + np.sqrt(1 - self._sh_rho ** 2) * self._sh_std * rng.standard_normal(n)
        self._update_sinr()
        # CQI: measure now, deliver cqi_delay TTIs later
        meas = np.nonzero((self.t + self.phase) % self._period == 0)[0]
        if len(meas):
            self.pending[meas] = self._measure_cqi(meas)
            self.pending_at[meas] = self.t[meas] + self._delay[meas]
        arrive = self.pending_at == self.t
        self.age += 1
        if arrive.any():
            self.cqi_hist[arrive, 1:] = self.cqi_hist[arrive, :-1]
            self.cqi_hist[arrive, 0] = self.pending[arrive]
            self.cqi[arrive] = self.pending[arrive]
            self.age[arrive] = 0
            self.pending_at[arrive] = -1

        obs = self._obs()
        trunc = self.t >= self.episode_len
        info = {"ack": ack, "mcs": mcs, "bler": bler, "bits": reward, "scenario": self.scn}
        if trunc.any():
            idx = np.nonzero(trunc)[0]
            info["final_obs"], info["_final_obs"] = obs.copy(), trunc.copy()
            self._new_episode(idx)
            obs[idx] = self._obs()[idx]
        return obs, reward, np.zeros(n, dtype=bool), trunc, info

