"""Batched downlink MU-MIMO scheduler env of seed 004 (Kela et al., "From Simulation to Practice:
Generalizable Deep RL for Cellular Schedulers"), with its PF baselines.

What it simulates (the seed's Table 4; one file per concern):

* ``deployment``: 21 cells (7 sites x 3 sectors, wrap-around), ISD 200 m, 4 GHz, gNB 25 m / 44 dBm,
  UEs 1.5 m at 3 km/h, 80% indoor (Dense Urban), TR 38.901 UMa path loss, LOS probability, O2I loss,
  large-scale parameters and clusters/rays - all from Sionna's TR 38.901 code - reduced to a cluster
  model for every UE's serving cell and its 2 strongest other cells, the average gain for the rest;
* ``antenna``: the 12 x 8 x 2 panel virtualised to 32 CSI-RS ports ((N1, N2) = (8, 2), 6-element
  vertical sub-arrays), 38.901 element pattern; UEs: 2 cross-polarised antennas, MRC;
* ``channel``: per-RBG 4 x 32 channels as a sum of Doppler-shifted rays, re-sampled every CSI period;
* ``csi``: RI <= 2, Type-I single-panel PMI (wideband beam, per-RBG co-phasing), wideband and 2-bit
  differential sub-band CQI, every ``csi_period`` slots with a ``csi_delay``;
* ``mumimo``: RZF on the reported PMIs, the scheduler's incremental ZF-loss rate estimate for every
  candidate, the true SINR (MRC, intra-cell leakage, precoded inter-cell interference);
* ``link``: 38.214 MCS/CQI tables (256QAM), TBS, Sionna BLER tables with EESM, 10%-BLER OLLA, HARQ;
* ``traffic``: full buffer, FTP Model 3; ``state``: the 1LDS / 2LDS state vectors, masks, rewards;
  ``kpi``: user-throughput percentiles and geometric mean; ``baselines``: SU-MIMO PF, the seed's baseline
  SDS and PF greedy SDS.

Set-ups: ``SchedulerEnv(setup="training")`` (18 PRBs in 18 RBGs, abs(L) = 4, 420 UEs, 50/50 FB/FTP3 at
1.5 kB x 500/s, 1 drop) and ``setup="evaluation"`` (273 PRBs in 18 RBGs of 16, abs(L) = 8, 210 UEs,
``traffic="fb"`` or ``"ftp3"`` at 0.5 MB x 20/s, 10 drops); any :class:`SchedConfig` field can be
overridden by keyword, bad values raise one ``envs.errors.EnvError`` (a ``ValueError``) naming the setting.

API (Gymnasium vector env; every cell of every drop is one sub-env, ``num_envs = 21 x n_drops``)::

    env = SchedulerEnv(setup="training", design="1lds", reward="pf", seed=0)
    obs, info = env.reset()                          # obs (E, 410): state of user layer 1, all RBGs
    while True:
        logits = actor(obs)                          # (E, N_RBG, abs(U) + 1) for 1LDS
        a = masked_argmax(logits, info["action_mask"].reshape(E, 18, -1))
        obs, reward, terminated, truncated, info = env.step(a)     # reward (E, N_RBG)

* ``design="1lds"``: abs(L) decision stages per TTI, one per user layer, each deciding all 18 RBGs
  (action (E, 18), values 0..abs(U), abs(U) = no allocation; reward (E, 18));
  ``design="2lds"``: abs(L) x 18 stages (layer-major), one RBG each (obs (E, 81), action (E,), reward (E,)).
  So one training TTI of 21 cells makes 4 x 18 x 21 = 1512 decisions in both designs.
* ``info["action_mask"]`` (E, 18 x (abs(U)+1)) for 1LDS, flat per sub-env as ``compress.rl``'s collectors
  expect (reshape to (E, 18, abs(U)+1) per RBG), (E, abs(U)+1) for 2LDS: valid choices of the next stage (empty slots, UEs already on the RBG and UEs
  whose buffer this TTI's allocation already covers are masked; "no allocation" is always valid). A
  masked choice leaves the RBG unassigned and is rewarded -1.
* Rewards per decision, computed in the env: ``reward="pf"`` (default) the seed's Eq. (20)-(21);
  ``reward="ppo"`` Eq. (2)-(4) with k = 0.2. Both are in every step's ``info`` (``reward_pf``, ``v``,
  ``P``), so one rollout serves either kind of learner. Samples with gamma = 0 need no next state;
  PPO's next state is the next stage's ``obs``.
* ``info["scores"]``: the scheduler's estimate for every candidate of the next stage (change of the
  RBG's PF sum ``dpf``, of its throughput ``dthr``, validity) - what the PF heuristics (and Eq. 4's
  greedy search) decide on.
* Fast path: ``env.run(policy, n_tti, warmup, seed)`` runs any batched ``policy(obs, info) -> actions``
  on all cells at once and returns :meth:`SchedulerEnv.kpis`; a policy with ``uses_obs = False`` skips
  the state vectors. A torch policy is called once per stage on the (E, 410) batch.
* KPIs: ``env.start_measuring()`` after a warm-up, ``env.kpis()``: per-UE throughput, 5th percentile /
  median / geometric mean (zeros as 1 bit/s), UPT (FTP3), UEs and layers per used RBG, BLER, offered
  and served load.

Speed (training set-up, one thread, random valid 1LDS policy, state vectors and rewards built): see
``python tools/bench_sched.py`` (``env.tti_ms_train``) and the README section "MU-MIMO scheduler env".
"""
from envs.scheduler.baselines import POLICIES, BaselineSDS, PFGreedySDS, SUPF
from envs.scheduler.config import SchedConfig
from envs.scheduler.env import SchedulerEnv

__all__ = ["SchedulerEnv", "SchedConfig", "SUPF", "BaselineSDS", "PFGreedySDS", "POLICIES"]
