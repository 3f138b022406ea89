"""Settings of the scheduler env: the seed's two set-ups (Table 4) and the checks on bad input.

``SchedConfig.preset("training" | "evaluation", **overrides)``:

| setting | training | evaluation |
| --- | --- | --- |
| bandwidth | 18 PRBs, RBG size 1 -> N_RBG = 18 | 273 PRBs (100 MHz @ 30 kHz), RBG size 16 -> N_RBG = 18 |
| max user layers abs(L) | 4 | 8 |
| UEs | 420 (20 per cell), 50% FB / 50% FTP3 | 210 (10 per cell), 100% FB or 100% FTP3 |
| FTP3 | 1.5 kB files at 500 files/s per UE | 0.5 MB files at 20 files/s per UE |
| drops | 1 | 10 |

Common: 21 cells, ISD 200 m, 4 GHz, 30 kHz SCS (0.5 ms slots), gNB 44 dBm over the 273-PRB carrier
(the training set-up keeps the same power per PRB: it is a slice of the carrier, so SINRs and CQIs
match), UE noise figure 9 dB, candidate list abs(U) = 10 from the TD PF shortlist, max rank 2.

RBG size: 38.214 Table 5.1.2.2.1-1 gives P in {2, 4, 8, 16} by BWP size and configuration; the seed's
training set-up allocates per PRB (RBG size 1), which the table does not define: 1 is accepted as that
documented exception, any other size must be the table's P for the BWP (configuration 1 or 2).

Choices the seed leaves open (its simulator is proprietary), and why:

* CSI every 20 slots (10 ms, a 38.214 CSI-RS periodicity) with 4 slots of delay. A UE's channel is
  re-sampled at the same period and held, sampled at the middle of its hold interval while the report
  is measured at its start, so reports are on average csi_delay + csi_period / 2 = 14 slots (7 ms) old
  as with continuous aging (3 km/h at 4 GHz: correlation J0(2 pi f_D 7 ms) = 0.94). 10 slots would halve
  the aging and double the CSI cost, which is a third of a training TTI.
* RZF regularisation alpha = 0.1 on unit-norm PMI directions (fixed, so that candidates can be scored
  incrementally; close to ZF, with the ZF-loss of two layers of correlation rho bounded by 1 - rho^2 /
  1.1^2 instead of collapsing at rho -> 1).
* PF averaging R_u = (1 - eps) p_u + eps R_u'' with eps = 0.98 (a 50-TTI window, Sionna's PF default);
  R_u starts at the UE's wideband rate estimate / UEs in its cell.
* The scheduler's rate estimate: MCS-table spectral efficiency interpolated between the 10%-BLER SINRs,
  per layer, times the RBG's data REs (12 PDSCH symbols, 12 DMRS REs per PRB) per slot.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from envs import nr
from envs.errors import EnvError
from envs.scheduler.deployment import DropSpec

TRAFFIC = ("fb", "ftp3", "mixed")
DESIGNS = ("1lds", "2lds")
REWARDS = ("pf", "ppo")


@dataclass(frozen=True)
class SchedConfig:
    n_prb: int = 273
    rbg_size: int = 16
    max_layers: int = 8                 # |L|: co-scheduled UEs per RBG (user layers)
    n_cand: int = 10                    # |U|: TD PF shortlist per cell and TTI
    max_rank: int = 2
    n_ue_per_cell: int = 10
    traffic: str = "fb"                 # fb | ftp3 | mixed (50/50 per cell)
    ftp_file_bytes: float = 0.5e6
    ftp_files_per_s: float = 20.0
    n_drops: int = 10
    scs_khz: int = 30
    tx_power_dbm: float = 44.0          # over the 273-PRB carrier; scaled by n_prb / 273
    noise_figure_db: float = 9.0
    csi_period: int = 20                # slots between CSI reports of a UE (and between its channel samples)
    csi_delay: int = 4                  # slots from measurement to use at the gNB
    rzf_alpha: float = 0.1              # RZF regularisation on unit-norm PMI directions
    pf_forget: float = 0.98             # epsilon of R_u = (1 - eps) p_u + eps R_u'' (50-TTI window)
    bler_target: float = 0.1
    olla_step_db: float = 0.5
    design: str = "1lds"                # decision loop: 1lds (a layer of all RBGs) | 2lds (one RBG)
    reward: str = "pf"                  # pf: Eq. (20)-(21) | ppo: Eq. (2)-(4)
    ppo_k: float = 0.2                  # k of Eq. (2)
    episode_ttis: int = 0               # truncate episodes after this many TTIs (0: never)
    build_obs: bool = True              # False: skip the state vectors (heuristic policies)
    drop: DropSpec = field(default_factory=DropSpec)

    def __post_init__(self):
        def bad(key, why):
            raise EnvError(f"scheduler env: {key} {why}, got {getattr(self, key)!r}")
        if self.traffic not in TRAFFIC:
            bad("traffic", f"must be one of {TRAFFIC}")
        if self.design not in DESIGNS:
            bad("design", f"must be one of {DESIGNS}")
        if self.reward not in REWARDS:
            bad("reward", f"must be one of {REWARDS}")
        for k in ("max_layers", "n_cand", "n_ue_per_cell", "n_drops", "csi_period"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(k, "must be an integer >= 1")
        if self.max_rank not in (1, 2):
            bad("max_rank", "must be 1 or 2")
        if isinstance(self.n_prb, bool) or not isinstance(self.n_prb, int) or not 1 <= self.n_prb <= 275:
            bad("n_prb", "must be an integer in 1..275")
        allowed = {1, nr.nominal_rbg_size(self.n_prb, 1), nr.nominal_rbg_size(self.n_prb, 2)}
        if self.rbg_size not in allowed:
            bad("rbg_size", f"is not in TS 38.214 Table 5.1.2.2.1-1 for a {self.n_prb}-PRB BWP (valid: "
                f"{sorted(allowed)}; 1 = the seed's per-PRB training allocation)")
        if self.ftp_files_per_s < 0:
            bad("ftp_files_per_s", "(offered load) must be >= 0")
        if self.ftp_file_bytes <= 0:
            bad("ftp_file_bytes", "(offered load) must be > 0")
        if not 0 <= self.csi_delay < self.csi_period:
            bad("csi_delay", "must be in 0..csi_period-1")
        if self.rzf_alpha <= 0:
            bad("rzf_alpha", "must be > 0")
        if not 0.0 <= self.pf_forget < 1.0:
            bad("pf_forget", "must be in [0, 1)")
        if not 0.0 < self.bler_target < 1.0:
            bad("bler_target", "must be in (0, 1)")
        if self.episode_ttis < 0:
            bad("episode_ttis", "must be >= 0")
        if self.scs_khz != 30:
            nr.slot_duration_s(self.scs_khz)
        if self.n_ue_per_cell != self.drop.n_ue_per_cell:
            object.__setattr__(self, "drop", dataclasses.replace(self.drop, n_ue_per_cell=self.n_ue_per_cell))

    @property
    def n_rbg(self) -> int:
        return len(nr.rbg_sizes(self.n_prb, self.rbg_size))

    @property
    def tti_s(self) -> float:
        return nr.slot_duration_s(self.scs_khz)

    @classmethod
    def preset(cls, setup: str = "evaluation", **overrides) -> "SchedConfig":
        """The seed's ``"training"`` or ``"evaluation"`` set-up, with any field overridden."""
        presets = {
            "training": dict(n_prb=18, rbg_size=1, max_layers=4, n_ue_per_cell=20, traffic="mixed",
                             ftp_file_bytes=1500.0, ftp_files_per_s=500.0, n_drops=1),
            "evaluation": dict(n_prb=273, rbg_size=16, max_layers=8, n_ue_per_cell=10, traffic="fb",
                               ftp_file_bytes=0.5e6, ftp_files_per_s=20.0, n_drops=10),
        }
        if setup not in presets:
            raise EnvError(f"scheduler env: unknown setup {setup!r}; valid: {sorted(presets)}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise EnvError(f"scheduler env: unknown setting(s) {unknown}; valid: {sorted(names)}")
        drop = overrides.pop("drop", None)
        if isinstance(drop, dict):
            drop = DropSpec(**drop)
        kw = {**presets[setup], **overrides}
        if drop is not None:
            kw["drop"] = drop
        return cls(**kw)
