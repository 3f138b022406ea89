"""Named link-adaptation scenarios: training set (two cell-type groups) and held-out set.

A scenario fixes what a deployment looks like to the link adapter: carrier band and numerology
(slot = TTI length), bandwidth (PRBs -> TBS per MCS), cell type as a distribution of a link's
mean SINR, UE speed (Doppler -> per-TTI fading correlation rho = J0(2 pi f_D T_slot), Jakes),
frequency selectivity (number of equal-power channel taps seen across the subbands), CQI report
period and delay (in TTIs) and CQI estimation error (dB, Gaussian on the effective SINR).

Training groups follow the paper's heterogeneity axis (cell types): "macro" (3.5 GHz, 30 kHz
SCS, wide 40 MHz carrier, low-to-mid SINR, long CQI period) and "micro" (2.1 GHz, 15 kHz, 20
MHz, higher SINR, short CQI period). Held-out scenarios change what a deployed model never saw:
bands (700 MHz, 28 GHz with 120 kHz SCS), speeds (120 and 250 km/h, 15 km/h), and mixes of a
group's geometry with the other group's reporting settings.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass

from scipy.special import j0

from envs import nr

from .errors import EnvError

SPEED_OF_LIGHT = 299_792_458.0


@dataclass(frozen=True)
class Scenario:
    name: str
    group: str
    split: str                 # "train" | "heldout"
    carrier_ghz: float
    scs_khz: int
    n_prb: int
    speed_kmh: float
    sinr_mean_db: float        # mean of the per-episode mean SINR (cell geometry)
    sinr_std_db: float         # spread of the per-episode mean SINR across links
    n_taps: int                # frequency selectivity: equal-power taps across the band
    cqi_period: int            # TTIs between CQI measurements
    cqi_delay: int             # TTIs from measurement to use at the gNB (< cqi_period)
    cqi_error_db: float        # std of the CQI estimation error on the effective SINR
    shadow_std_db: float = 2.0  # slow shadowing drift (AR(1), see shadow_corr)
    shadow_corr: float = 0.999

    def __post_init__(self):
        def bad(key, why):
            raise EnvError(f"scenario {self.name!r}: {key} {why}, got {getattr(self, key)!r}")
        for f in dataclasses.fields(self):  # NaN passes every comparison below: refuse it first
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                bad(f.name, "must be a finite number")
        if self.speed_kmh < 0:
            bad("speed_kmh", "must be >= 0")
        if self.carrier_ghz <= 0:
            bad("carrier_ghz", "must be > 0")
        nr.slot_duration_s(self.scs_khz)
        if not 1 <= self.n_prb <= 275:
            bad("n_prb", "must be in 1..275")
        if not 1 <= self.n_taps <= 16:
            bad("n_taps", "must be in 1..16")
        if self.cqi_period < 1:
            bad("cqi_period", "must be >= 1")
        if not 0 <= self.cqi_delay < self.cqi_period:
            bad("cqi_delay", "must be in 0..cqi_period-1")
        if self.cqi_error_db < 0 or self.sinr_std_db < 0 or self.shadow_std_db < 0:
            bad("cqi_error_db", "and the other std values must be >= 0")
        if not 0 <= self.shadow_corr < 1:
            bad("shadow_corr", "must be in [0, 1)")
        if self.split not in ("train", "heldout"):
            bad("split", "must be 'train' or 'heldout'")

    @property
    def tti_s(self) -> float:
        return nr.slot_duration_s(self.scs_khz)

    @property
    def doppler_hz(self) -> float:
        return self.speed_kmh / 3.6 * self.carrier_ghz * 1e9 / SPEED_OF_LIGHT

    @property
    def rho(self) -> float:
        """Per-TTI fading correlation (Jakes): J0(2 pi f_D T)."""
        return float(j0(2 * math.pi * self.doppler_hz * self.tti_s))

    def to_dict(self) -> dict:
        return asdict(self)


def _s(**kw) -> Scenario:
    return Scenario(**kw)


_MACRO = dict(group="macro", carrier_ghz=3.5, scs_khz=30, n_prb=106, sinr_mean_db=8.0,
              sinr_std_db=6.0, n_taps=6, cqi_period=10, cqi_delay=4, cqi_error_db=1.0)
_MICRO = dict(group="micro", carrier_ghz=2.1, scs_khz=15, n_prb=106, sinr_mean_db=14.0,
              sinr_std_db=6.0, n_taps=3, cqi_period=5, cqi_delay=2, cqi_error_db=0.5)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    # training
    _s(name="macro_ped", split="train", speed_kmh=3.0, **_MACRO),
    _s(name="macro_veh", split="train", speed_kmh=30.0, **_MACRO),
    _s(name="micro_ped", split="train", speed_kmh=3.0, **_MICRO),
    _s(name="micro_veh", split="train", speed_kmh=30.0, **_MICRO),
    # held-out: unseen speeds, bands and mixes
    _s(name="macro_highway", split="heldout", speed_kmh=120.0, **_MACRO),
    _s(name="micro_bike", split="heldout", speed_kmh=15.0, **_MICRO),
    _s(name="rural_700_hst", split="heldout", group="macro", carrier_ghz=0.7, scs_khz=15, n_prb=52,
       speed_kmh=250.0, sinr_mean_db=5.0, sinr_std_db=6.0, n_taps=2, cqi_period=20, cqi_delay=6,
       cqi_error_db=1.5),
    _s(name="mmw_28_ped", split="heldout", group="micro", carrier_ghz=28.0, scs_khz=120, n_prb=66,
       speed_kmh=3.0, sinr_mean_db=12.0, sinr_std_db=7.0, n_taps=2, cqi_period=20, cqi_delay=8,
       cqi_error_db=1.0),
]}

TRAIN = [n for n, s in SCENARIOS.items() if s.split == "train"]
HELDOUT = [n for n, s in SCENARIOS.items() if s.split == "heldout"]


def get_scenario(name) -> Scenario:
    """Scenario by name (or pass a Scenario through); unknown names list the valid ones."""
    if isinstance(name, Scenario):
        return name
    if name not in SCENARIOS:
        raise EnvError(f"unknown scenario {name!r}; valid: {sorted(SCENARIOS)}")
    return SCENARIOS[name]


def groups(split: str = "train") -> dict[str, list[str]]:
    """{group: [scenario names]} of one split."""
    out: dict[str, list[str]] = {}
    for n, s in SCENARIOS.items():
        if s.split == split:
            out.setdefault(s.group, []).append(n)
    return out
