"""The batched MU-MIMO scheduler env (Gymnasium vector API): every cell of every drop is one sub-env.

One TTI of every cell runs as a sequence of decision stages (the seed's Appendix B):

* ``design="1lds"``: abs(L) stages, stage l = user layer l of all RBGs at once: observation (E, 410),
  action (E, N_RBG) with values 0..abs(U) (abs(U) = no allocation), reward (E, N_RBG);
* ``design="2lds"``: abs(L) x N_RBG stages (layer-major: all RBGs of layer 1, then layer 2, ...):
  observation (E, 81), action (E,), reward (E,).

Before the first stage of a TTI the TD PF scheduler shortlists abs(U) candidates per cell (UEs with data,
by wideband rate estimate / R_u). After the last stage the TTI is realised: RZF precoders from the
chosen sets, the true SINRs, one transport block per UE with one MCS from the estimated SINRs of all its
RBGs and layers (EESM, OLLA offset), its BLER at the true EESM SINR, HARQ ACK/NACK (a NACKed block's
bits stay queued and go again in a later TTI, without soft combining; the feedback moves OLLA before the
next TTI), delivered bits, buffers, R_u; then the clock advances, channels of the UEs due are re-sampled
and their CSI measured (reports reach the gNB ``csi_delay`` slots later).

``step`` returns ``obs, reward, terminated, truncated, info`` for the *next* stage; ``info`` holds:

* ``action_mask`` (E, N_RBG x (abs(U)+1)) for 1LDS (RBG-major: entry m (abs(U)+1) + u is candidate u on
  RBG m; ``.reshape(E, N_RBG, abs(U)+1)`` gives it per RBG) or (E, abs(U)+1) for 2LDS: valid choices of the
  next stage, flat per sub-env as ``compress.rl`` expects (one row of concatenated branches);
  ``final_info["action_mask"]``: the mask of ``final_obs`` when an episode was truncated;
* ``scores``: the next stage's candidate scores from the scheduler's MU-MIMO estimate, ``dpf`` (change of
  the RBG's PF sum), ``dthr`` (change of its throughput, bit/s), ``valid`` - what the PF heuristics
  decide on (they would compute exactly this from CSI; the env computes it for every policy anyway,
  since the rewards' normalisation needs it);
* ``layer``, ``rbg`` (2LDS), ``tti``: position of the next stage;
* ``reward_pf``, ``v``: Eq. (20)-(21) and Eq. (4) of the decisions just taken (both always);
  ``P``: Eq. (3) per cell after the last realised TTI; ``tti_end``: the step completed a TTI.

The returned ``reward`` is ``reward_pf`` (``reward="pf"``) or the PPO reward of Eq. (2) (``"ppo"``).
``terminated`` is always False; with ``episode_ttis`` > 0 every cell is truncated after that many TTIs
and new drops start (same-step autoreset: ``info["final_obs"]`` holds the last observation).

KPIs: :meth:`start_measuring` zeroes the counters (call it after the warm-up), :meth:`kpis` reads them.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from envs import nr
from envs.errors import EnvError
from envs.scheduler import antenna, csi, kpi, mumimo, state
from envs.scheduler.channel import LinkChannels, bmm
from envs.scheduler.config import SchedConfig
from envs.scheduler.deployment import N_CELLS, cached_drop
from envs.scheduler.ops import ssum
from envs.scheduler.link import LinkTables
from envs.scheduler.traffic import Traffic

BEAMS = antenna.typei_beams()


class SchedulerEnv(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, config: SchedConfig | None = None, *, setup: str = "evaluation", seed: int | None = None,
                 **overrides):
        if config is None:
            config = SchedConfig.preset(setup, **overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self.cfg = c = config
        self.M, self.U, self.L = c.n_rbg, c.n_cand, c.max_layers
        self.num_envs = self.E = N_CELLS * c.n_drops
        self.build_obs = c.build_obs
        self.rbg_prb = nr.rbg_sizes(c.n_prb, c.rbg_size)
        self.tti = c.tti_s
        self.tab = LinkTables(self.rbg_prb, c.bler_target, c.olla_step_db)
        self.rate_per_se = np.array([nr.n_re(int(p)) for p in self.rbg_prb], np.float64) / self.tti
        start = np.concatenate([[0], np.cumsum(self.rbg_prb)[:-1]])
        centre = start + self.rbg_prb / 2.0 - c.n_prb / 2.0
        self.rbg_freq = centre * 12 * c.scs_khz * 1e3
        p_tot = 10 ** ((c.tx_power_dbm - 30) / 10) * c.n_prb / 273.0
        self.p_rbg = p_tot * self.rbg_prb / c.n_prb
        self.noise_rbg = 10 ** ((-174.0 + c.noise_figure_db - 30) / 10) * self.rbg_prb * 12 * c.scs_khz * 1e3
        self.b_max = float(self.tab.tbs(np.array(self.tab.n_mcs - 1), np.array(c.n_prb), np.array(2)))
        self.n_stages = self.L if c.design == "1lds" else self.L * self.M
        seg = state.N_UE_FEATURES + 2 * self.M
        if c.design == "1lds":
            self.single_observation_space = spaces.Box(0.0, 1.0, (self.U * seg,), np.float32)
            self.single_action_space = spaces.MultiDiscrete(np.full(self.M, self.U + 1))
        else:
            self.single_observation_space = spaces.Box(0.0, 1.0, (self.U * 8 + 1,), np.float32)
            self.single_action_space = spaces.Discrete(self.U + 1)
        self.observation_space = spaces.Box(0.0, 1.0, (self.E, *self.single_observation_space.shape), np.float32)
        self.action_space = (spaces.MultiDiscrete(np.full((self.E, self.M), self.U + 1)) if c.design == "1lds"
                             else spaces.MultiDiscrete(np.full(self.E, self.U + 1)))
        self._base_seed = seed
        self._episode = 0
        self._needs_reset = True

    # ================================================================================ drops & state
    def _load_drops(self) -> None:
        c = self.cfg
        base = int(self._base_seed)
        drops = [cached_drop(c.drop, int(np.random.SeedSequence([base, self._episode, d]).generate_state(1)[0]))
                 for d in range(c.n_drops)]
        self.drops = drops
        ud = len(drops[0].serving)
        self.n_ue = n = ud * c.n_drops
        self.ue_drop = np.repeat(np.arange(c.n_drops), ud)
        off = self.ue_drop * N_CELLS
        cat = lambda k: np.concatenate([getattr(d, k) for d in drops])
        self.serving = cat("serving") + off                                   # global cell of each UE
        self.link_cell = cat("link_cell") + off[:, None]
        self.gbar = cat("gbar")                                                # (n, 21) drop-local cells
        loc = self.link_cell - off[:, None]
        self.gbar_csi = self.gbar.copy()                                       # other cells seen on CSI-IM
        self.gbar_csi[np.arange(n), loc[:, 0]] = 0.0
        self.gbar_rest = self.gbar_csi.copy()                                  # cells without a spatial channel
        for s in range(1, loc.shape[1]):
            self.gbar_rest[np.arange(n), loc[:, s]] = 0.0
        self.channels = LinkChannels(cat("delay"), cat("a_tx"), cat("ray_coef"), cat("ray_doppler"), self.rbg_freq)
        counts = np.bincount(self.serving, minlength=self.E)
        self.cell_ues = np.full((self.E, max(int(counts.max()), 1)), -1, np.int64)
        order = np.argsort(self.serving, kind="stable")
        pos = np.arange(n) - np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        self.cell_ues[self.serving[order], pos] = order
        tr = c.traffic
        self.is_ftp = np.zeros(n, bool) if tr == "fb" else (np.ones(n, bool) if tr == "ftp3" else (np.arange(n) % 2 == 1))

    def _cell_sum(self, per_cell_local: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """sum_c weights[u, c] * per_cell_local[drop(u), c, m] -> (n, M)."""
        D = self.cfg.n_drops
        w = weights.reshape(D, -1, N_CELLS)
        return bmm(w, per_cell_local.reshape(D, N_CELLS, self.M)).reshape(self.n_ue, self.M)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start new drops: ``seed`` fixes them and every random draw after (None: the constructor's seed,
        or fresh entropy). The same seed gives the same numbers."""
        if seed is not None:
            self._base_seed = int(seed)
        if self._base_seed is None:
            self._base_seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._episode = 0
        return self._start_episode()

    def _start_episode(self):
        c = self.cfg
        self._load_drops()
        ss = np.random.SeedSequence([int(self._base_seed), self._episode, 99])
        self.rng = np.random.default_rng(ss)
        n = self.n_ue
        self.t = 0
        self.traffic = Traffic(self.is_ftp, 8.0 * c.ftp_file_bytes, c.ftp_files_per_s, self.tti, self.rng)
        self.olla = np.zeros(n)
        self.act_prev = np.ones((self.E, self.M), bool)
        self.phase = self.rng.integers(0, c.csi_period, n)
        self.rank = np.ones(n, np.int64)
        self.cqi_wb = np.zeros(n, np.int64)
        self.cqi_sb = np.zeros((n, self.M), np.int64)
        self.pmi_t = np.zeros((n + 1, self.M, 2, 32), np.complex64)   # [u, RBG, layer, port]; row n = none
        self.beam_vec = np.zeros((n, 2, 16), np.complex64)
        self.psi = np.zeros((n, self.M, 2), np.complex64)
        self._pending, self._pending_at = None, np.full(n, -1, np.int64)
        all_ue = np.arange(n)
        first = (-self.phase) % c.csi_period                      # each UE's first measurement slot
        self.channels.update(all_ue, (first - c.csi_period / 2) * self.tti)
        self._apply(all_ue, self._measure(all_ue, (first - c.csi_period) * self.tti))
        wb = self._wideband_rate(all_ue)
        self.R = np.maximum(wb / np.maximum(np.bincount(self.serving, minlength=self.E)[self.serving], 1), 1.0)
        self.R_max = np.array([self.R[self.ue_drop == d].max() for d in range(c.n_drops)])
        self.G_max = np.ones(self.E)
        self.P = np.ones(self.E)
        self.start_measuring()
        self._needs_reset = False
        self._episode_t0 = 0
        self._begin_tti()
        return self._stage_obs(), self._stage_info()

    # ================================================================================ CSI
    def _measure(self, ues: np.ndarray, t) -> csi.Report:
        """CSI of ``ues`` on their serving channel at time(s) ``t`` (seconds)."""
        act = self.act_prev.astype(np.float64) * self.p_rbg[None, :]
        inr = self._cell_sum_rows(ues, act) + self.noise_rbg[None, :]
        h = self.channels.synthesize(ues, t, links=slice(0, 1))[:, 0]              # (n, M, 4, 32)
        return csi.measure(h, self.p_rbg, inr, self.tab, self.cfg.max_rank)

    def _cell_sum_rows(self, ues: np.ndarray, act_power: np.ndarray) -> np.ndarray:
        """Other cells' average received power per Rx antenna at UEs ``ues`` (n, M)."""
        D = self.cfg.n_drops
        a = act_power.reshape(D, N_CELLS, self.M)[self.ue_drop[ues]]               # (n, 21, M)
        return bmm(self.gbar_csi[ues][:, None, :], a)[:, 0]

    def _apply(self, ues: np.ndarray, rep: csi.Report) -> None:
        self.rank[ues] = rep.rank
        self.cqi_wb[ues] = rep.cqi_wb
        self.cqi_sb[ues] = rep.cqi_sb
        self.pmi_t[ues] = np.swapaxes(rep.precoders(), 2, 3)
        bv = BEAMS[rep.beam].copy()
        bv[rep.rank == 1, 1] = 0.0
        self.beam_vec[ues] = bv
        self.psi[ues] = np.stack([rep.cophase, -rep.cophase], -1)

    def _csi_tick(self) -> None:
        """Channel re-sampling and CSI measurement of the UEs due at slot t; deliver reports due."""
        c, t = self.cfg, self.t
        if self._pending is not None:
            arrive = np.nonzero(self._pending_at == t)[0]
            if len(arrive):
                self._apply(arrive, _take(self._pending, arrive))
                self._pending_at[arrive] = -1
        due = np.nonzero((t + self.phase) % c.csi_period == 0)[0]
        if len(due):
            # the channel held for the next csi_period slots is sampled at their middle, so a report
            # (measured now, used from t + csi_delay) ages csi_delay + csi_period / 2 on average
            self.channels.update(due, (t + c.csi_period / 2) * self.tti)
            rep = self._measure(due, t * self.tti)
            if c.csi_delay == 0:
                self._apply(due, rep)
            else:
                if self._pending is None:
                    self._pending = _empty_report(self.n_ue, self.M)
                _put(self._pending, due, rep)
                self._pending_at[due] = t + c.csi_delay

    def _wideband_rate(self, ues: np.ndarray) -> np.ndarray:
        db = self.tab.cqi_sinr_db(self.cqi_wb[ues]) + self.olla[ues]
        return self.tab.se_of_db(db) * self.rank[ues] * self.rate_per_se.sum()

    # ================================================================================ TTI: schedule
    def _begin_tti(self) -> None:
        c, E, U = self.cfg, self.E, self.U
        self.traffic.arrive()
        self.buffer = self.traffic.buffer()
        has = self.buffer > 0
        metric = np.where(has, self._wideband_rate(np.arange(self.n_ue)) / self.R, -np.inf)
        cu_all = self.cell_ues
        m = np.where(cu_all >= 0, metric[np.maximum(cu_all, 0)], -np.inf)
        k = min(U, m.shape[1])
        top = np.argsort(-m, axis=1, kind="stable")[:, :k]
        cand = np.take_along_axis(cu_all, top, 1)
        cand = np.where(np.take_along_axis(m, top, 1) > -np.inf, cand, -1)
        if k < U:
            cand = np.concatenate([cand, np.full((E, U - k), -1, np.int64)], 1)
        self.cand = cand
        cu = np.maximum(cand, 0)
        present = cand >= 0
        rank_c = np.where(present, self.rank[cu], 0)
        bv = np.where(present[..., None, None], self.beam_vec[cu], 0).reshape(E, 2 * U, 16)
        psi = np.swapaxes(self.psi[cu], 1, 2).reshape(E, self.M, 2 * U)             # (E, M, 2U)
        K = mumimo.gram_from_beams(bv, psi)
        su_db = self.tab.cqi_sinr_db(self.cqi_sb[cu]) + self.olla[cu][..., None]     # (E, U, M)
        su = np.swapaxes(10.0 ** (su_db / 10.0), 1, 2)
        Rc = self.R[cu]
        self.sets = mumimo.RBGSets(K, su, rank_c, Rc, present & (self.buffer[cu] > 0), self.rate_per_se,
                                   self.L, c.rzf_alpha, self.tab.se_of_lin)
        self.present = present
        self.d_alloc = np.zeros((E, U))
        self.est_bits = np.zeros((E, U))
        self.buf_c = np.where(present, self.buffer[cu], 0.0)
        self.ftp_c = present & self.is_ftp[cu]
        if self.build_obs:
            self.kap = state.kappa(np.abs(K), rank_c)
            self.rho_max = np.zeros((E, self.M, U))
            self.rho_sum = np.zeros((E, self.M, U))
            self.n_cos = np.zeros((E, self.M))
            rmax = self.R_max[self.ue_drop[cu]]
            self.ue_feat_static = np.stack([Rc / rmax, rank_c / 2.0, np.zeros((E, U)),
                                            np.minimum(self.buf_c / self.b_max, 1.0), self.cqi_wb[cu] / 15.0], -1)
            self.g_sb = self.cqi_sb[cu] / 15.0                                       # (E, U, M)
        self.stage = 0
        self._eval_stage()

    def _stage_pos(self):
        if self.cfg.design == "1lds":
            return self.stage, None
        return self.stage // self.M, self.stage % self.M

    def _eval_stage(self) -> None:
        layer, rbg = self._stage_pos()
        self.scores = self.sets.evaluate(layer, rbg)
        self.mask = state.masks(self.scores["valid"])

    def _stage_obs(self):
        if not self.build_obs:
            return None
        layer, rbg = self._stage_pos()
        f = self.ue_feat_static.copy()
        f[..., 2] = self.d_alloc / self.M
        if rbg is None:
            return state.segments_1lds(f, self.g_sb, np.swapaxes(self.rho_max, 1, 2), self.present)
        mean = self.rho_sum[:, rbg] / np.maximum(self.n_cos[:, rbg], 1)[:, None]
        return state.segments_2lds(f, self.g_sb[..., rbg], self.rho_max[:, rbg], mean,
                                   self.n_cos[:, rbg] / self.L, self.present)

    def _stage_info(self, extra: dict | None = None) -> dict:
        layer, rbg = self._stage_pos()
        sq = (lambda x: x[:, 0]) if rbg is not None else (lambda x: x)
        mask = sq(self.mask).reshape(self.E, -1)                   # flat branches (compress.rl's layout)
        info = {"action_mask": mask, "scores": {k: sq(v) for k, v in self.scores.items()},
                "layer": layer, "tti": self.t, "P": self.P}
        if rbg is not None:
            info["rbg"] = rbg
        if extra:
            info.update(extra)
        return info

    def step(self, actions):
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        layer, rbg = self._stage_pos()
        Ms = self.M if rbg is None else 1
        a = np.asarray(actions)
        want = (self.E, self.M) if rbg is None else (self.E,)
        if a.shape != want:
            raise EnvError(f"actions must have shape {want} for design {self.cfg.design!r}, got {a.shape}")
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"actions must be integers 0..{self.U} (candidate or {self.U} = none), got {a.dtype}")
        if a.size and (a.min() < 0 or a.max() > self.U):
            raise EnvError(f"actions must be in 0..{self.U} ({self.U} = no allocation), got {a.min()}..{a.max()}")
        a = a.reshape(self.E, Ms).astype(np.int64)
        sc = self.scores
        r_pf, v, ok = state.decision_rewards(sc["dpf"], sc["valid"], a)
        a = np.where(ok, a, self.U)
        self.sets.commit(a, sc)
        e_i, m_i = np.nonzero(a < self.U)
        if len(e_i):
            cc = a[e_i, m_i]
            np.add.at(self.d_alloc, (e_i, cc), 1.0)
            np.add.at(self.est_bits, (e_i, cc), sc["rate"][e_i, m_i, cc] * self.tti)
            self.sets.cand_ok &= ~(self.ftp_c & (self.est_bits >= self.buf_c))
            if self.build_obs:
                mm = m_i if rbg is None else np.full(len(e_i), rbg)
                k = self.kap[e_i, mm, :, cc]                                          # (k, U)
                self.rho_max[e_i, mm] = np.maximum(self.rho_max[e_i, mm], k)
                self.rho_sum[e_i, mm] += k
                self.n_cos[e_i, mm] += 1
        if self.cfg.reward == "pf":
            reward = r_pf
        else:
            reward = np.where(layer == 0, self.P[:, None], self.cfg.ppo_k) * v
        shape = (lambda x: x) if rbg is None else (lambda x: x[:, 0])
        self.stage += 1
        tti_end = self.stage == self.n_stages
        truncated = np.zeros(self.E, bool)
        extra = {"reward_pf": shape(r_pf), "v": shape(v), "tti_end": tti_end}
        if tti_end:
            extra["tti_stats"] = self._realize()
            self.t += 1
            self._csi_tick()
            ep = self.cfg.episode_ttis
            if ep and self.t - self._episode_t0 >= ep:
                truncated[:] = True
            self._begin_tti()
        else:
            self._eval_stage()
        obs = self._stage_obs()
        info = self._stage_info(extra)
        if truncated.any():                      # same-step autoreset: new drops, the old last obs in info
            final = obs
            self._episode += 1
            obs, info_new = self._start_episode()
            info = {**info, **info_new, "final_obs": final, "_final_obs": truncated.copy(),
                    "final_info": {"action_mask": info["action_mask"]}}
        return obs, shape(reward), np.zeros(self.E, bool), truncated, info

    # ================================================================================ TTI: realise
    def _realize(self) -> dict:
        c, E, M, L = self.cfg, self.E, self.M, self.L
        sets = self.sets
        slot_ue = np.where(sets.slot_cand >= 0, np.take_along_axis(self.cand[:, None, :].repeat(M, 1),
                                                                     np.maximum(sets.slot_cand, 0), 2), -1)
        valid = slot_ue >= 0
        e_v, m_v, j_v = np.nonzero(valid)
        u_v = slot_ue[e_v, m_v, j_v]
        n_lay = sets.n_layers
        act = n_lay > 0
        p_layer = np.where(act, self.p_rbg[None, :] / np.maximum(n_lay, 1), 0.0)
        bits = np.zeros(self.n_ue)
        stats = {"scheduled_ues": 0, "nack": 0}
        if len(u_v):
            ug, mi = np.where(valid, slot_ue, self.n_ue), np.arange(M)[None, :, None]
            VT = self.pmi_t[ug, mi].reshape(E, M, 2 * L, 32)                      # row 2j + a: layer a of layer-j UE
            GT = bmm(np.swapaxes(sets.Q, 2, 3), VT)                              # G^T = (V Q)^T: RZF on the PMIs
            GT *= 1.0 / np.sqrt(np.maximum(ssum(GT.real ** 2 + GT.imag ** 2)[..., None], 1e-30))
            ch = self.channels
            Hs = ch.H_srv[np.minimum(ug, self.n_ue - 1), mi].reshape(E * M, L * 4, 32)   # every slot's serving channel
            T0 = bmm(Hs, np.swapaxes(GT.reshape(E * M, 2 * L, 32), 1, 2)).reshape(E, M, L, 4, 2 * L)[e_v, m_v, j_v]
            cells_i = self.link_cell[u_v, 1:]
            own = np.stack([2 * j_v, np.where(self.rank[u_v] == 2, 2 * j_v + 1, -1)], 1)
            rest = self._cell_sum(act * self.p_rbg[None, :], self.gbar_rest)[u_v, m_v] + self.noise_rbg[m_v]
            G = np.ascontiguousarray(np.swapaxes(GT, 2, 3))                      # (E, M, 32, 2L)
            s_true = mumimo.true_sinr(T0, p_layer[e_v, m_v], ch.H_int[u_v, m_v], G[cells_i, m_v[:, None]],
                                      p_layer[cells_i, m_v[:, None]], own, rest)
            s_est = np.take_along_axis(sets.estimated_sinr()[e_v, m_v], np.maximum(own, 0), 1)
            okl = own >= 0
            ent_u = np.repeat(u_v, 2)[okl.ravel()]
            st, se = s_true.ravel()[okl.ravel()], s_est.ravel()[okl.ravel()]
            order = np.argsort(ent_u, kind="stable")
            ent_u, st, se = ent_u[order], st[order], se[order]
            ues, start, cnt = np.unique(ent_u, return_index=True, return_counts=True)
            beta = self.tab.beta[None, :]
            with np.errstate(divide="ignore", over="ignore", under="ignore"):
                x = np.add.reduceat(np.exp(-se[:, None] / beta), start, axis=0) / cnt[:, None]
                eff_est = 10 * np.log10(np.maximum(-beta * np.log(x), 1e-12))
                mcs = self.tab.select_mcs(eff_est)
                b_u = self.tab.beta[mcs]
                y = np.add.reduceat(np.exp(-st / np.repeat(b_u, cnt)), start) / cnt
                eff_true = 10 * np.log10(np.maximum(-b_u * np.log(y), 1e-12))
            n_prb = np.bincount(u_v, weights=self.rbg_prb[m_v], minlength=self.n_ue)[ues].astype(np.int64)
            layers = self.rank[ues]
            bler = self.tab.bler(mcs, eff_true, n_prb, layers)
            ack = self.rng.random(len(ues)) >= bler
            tbs = self.tab.tbs(mcs, n_prb, layers)
            bits[ues] = np.where(ack, np.minimum(tbs, self.buffer[ues]), 0.0)
            self.olla[ues] = np.clip(self.olla[ues] + np.where(ack, self.tab.olla_up, -self.tab.olla_down), -20, 20)
            stats = {"scheduled_ues": len(ues), "nack": int((~ack).sum())}
            if self._measuring:
                self._k_tb += len(ues)
                self._k_nack += int((~ack).sum())
                self._k_mcs_sum += float(mcs.sum())
        self.traffic.deliver(bits, self._measuring)
        eps = c.pf_forget
        self.R = eps * self.R + (1 - eps) * bits / self.tti
        for d in range(c.n_drops):
            self.R_max[d] = max(self.R_max[d], self.R[self.ue_drop == d].max())
        lr = np.log(np.maximum(self.R, 1.0))
        g = np.exp(np.bincount(self.serving, weights=lr, minlength=E) / np.maximum(np.bincount(self.serving, minlength=E), 1))
        self.G_max = np.maximum(self.G_max, g)
        self.P = g / self.G_max
        self.act_prev = act
        if self._measuring:
            self._k_bits += bits
            self._k_tti += 1
            n_ue_rbg = (sets.slot_cand >= 0).sum(-1)
            self._k_ue_hist += np.bincount(n_ue_rbg.ravel(), minlength=L + 1)[: L + 1]
            self._k_layers += float(n_lay[act].sum())
            self._k_used += int(act.sum())
            self._k_rbg += act.size
        stats["bits"] = float(bits.sum())
        return stats

    # ================================================================================ KPIs
    def start_measuring(self) -> None:
        """Zero the KPI counters: what :meth:`kpis` reports is counted from here on."""
        self._measuring = True
        self._k_bits = np.zeros(self.n_ue)
        self._k_tti = 0
        self._k_ue_hist = np.zeros(self.L + 1, np.int64)
        self._k_layers = 0.0
        self._k_used = self._k_rbg = 0
        self._k_tb = self._k_nack = 0
        self._k_mcs_sum = 0.0
        self.traffic.upt_ue, self.traffic.upt_val = [], []
        self._k_offered0 = self.traffic.offered
        self._k_served0 = float(self.traffic.served.sum())

    def kpis(self) -> dict:
        """Per-UE throughput (bit/s) since :meth:`start_measuring`, and the summary KPIs."""
        secs = max(self._k_tti, 1) * self.tti
        thr = self._k_bits / secs
        u, upt = self.traffic.upt()
        per_ue_upt = np.array([upt[u == i].mean() for i in np.unique(u)]) if len(u) else np.zeros(0)
        hist = self._k_ue_hist / max(self._k_ue_hist.sum(), 1)
        ftp = self.is_ftp
        return {
            "throughput_bps": thr,
            "is_ftp": ftp.copy(),
            "fb": kpi.summary(thr[~ftp]) if (~ftp).any() else None,
            "ftp3": kpi.summary(thr[ftp]) if ftp.any() else None,
            "upt": kpi.summary(per_ue_upt),
            "upt_per_ue_bps": per_ue_upt,
            "upt_files": int(len(upt)),
            "ues_per_rbg_hist": hist.tolist(),
            "ues_per_used_rbg": float((np.arange(self.L + 1) * self._k_ue_hist).sum() / max(self._k_used, 1)),
            "layers_per_used_rbg": self._k_layers / max(self._k_used, 1),
            "rbg_use": self._k_used / max(self._k_rbg, 1),
            "bler": self._k_nack / max(self._k_tb, 1),
            "mean_mcs": self._k_mcs_sum / max(self._k_tb, 1),
            "offered_bps_per_cell": (self.traffic.offered - self._k_offered0) / secs / self.E,
            "served_ftp_bps_per_cell": (float(self.traffic.served.sum()) - self._k_served0) / secs / self.E,
            "served_bps_per_cell": float(thr.sum()) / self.E,
            "ttis": self._k_tti,
        }

    # ================================================================================ fast path
    def run(self, policy, n_tti: int, warmup: int = 0, seed: int | None = None) -> dict:
        """Reset (with ``seed``), run ``policy(obs, info) -> actions`` on every cell for ``warmup + n_tti``
        TTIs, counting KPIs after the warm-up, and return :meth:`kpis`. A policy with
        ``uses_obs = False`` (the PF heuristics) runs without building state vectors."""
        self.build_obs = bool(getattr(policy, "uses_obs", True))
        obs, info = self.reset(seed=seed)
        for i in range((warmup + n_tti) * self.n_stages):
            if i == warmup * self.n_stages:
                self.start_measuring()
            obs, _, _, _, info = self.step(policy(obs, info))
        return self.kpis()


def _empty_report(n: int, M: int) -> csi.Report:
    return csi.Report(rank=np.ones(n, np.int64), beam=np.zeros((n, 2), np.int64),
                      cophase=np.ones((n, M), np.complex64), cqi_wb=np.zeros(n, np.int64),
                      cqi_sb=np.zeros((n, M), np.int64))


def _put(dst: csi.Report, idx: np.ndarray, src: csi.Report) -> None:
    for f in dataclasses.fields(csi.Report):
        getattr(dst, f.name)[idx] = getattr(src, f.name)


def _take(src: csi.Report, idx: np.ndarray) -> csi.Report:
    return csi.Report(**{f.name: getattr(src, f.name)[idx] for f in dataclasses.fields(csi.Report)})
