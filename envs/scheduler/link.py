"""Link-level facts for the scheduler env: CQI/MCS tables, achievable rate, TBS, BLER, EESM, OLLA.

All built from the project's TS 38.214 tables (``envs/nr.py``, MCS table 2 and CQI table 2: QPSK to
256QAM as the seed's Table 4) and the Sionna-based BLER/EESM abstraction (``envs/bler.py``):

* ``thr_db[mcs]``: SINR of 10% TB BLER for a reference allocation (the whole band, one layer); a CQI
  index is met when the (EESM) effective SINR reaches the 10%-BLER SINR of an MCS of the CQI's
  spectral efficiency (interpolated along the MCS table), as ``envs/link_adaptation.py`` does;
* ``se_of_db(x)``: the scheduler's achievable spectral efficiency per layer (bit/s/Hz): the MCS table's
  SE interpolated linearly between the 10%-BLER SINRs of consecutive MCSs (0 at 2 dB below MCS 0);
  a lookup on a 0.05 dB grid;
* ``tbs(mcs, n_prb, layers)``: 38.214 5.1.3.2 TBS (12 PDSCH symbols, 12 DMRS REs per PRB), tabulated for
  every PRB count an allocation of whole RBGs can have;
* ``bler(mcs, eff_db, n_prb, layers)``: TB BLER from Sionna's code-block tables for the TB's code
  blocks (table per PRB-count bin; n_prb x layers sets the TBS and so the code blocks);
* OLLA (10% BLER target): Delta += 0.5 dB * 0.1 / 0.9 on ACK, -= 0.5 dB on NACK, clipped to +-20 dB.
"""
from __future__ import annotations

import functools

import numpy as np

from envs import bler as _bler
from envs import nr
from envs.errors import EnvError
from envs.scheduler.ops import ssum

MCS_TABLE, CQI_TABLE = 2, 2
GRID_LO, GRID_HI, GRID_STEP = -30.0, 50.0, 0.05


class LinkTables:
    """Everything MCS/CQI-related for one bandwidth set-up (``rbg_prb``: PRBs of each RBG)."""

    def __init__(self, rbg_prb: np.ndarray, bler_target: float = 0.1, olla_step_db: float = 0.5):
        self.rbg_prb = np.asarray(rbg_prb, dtype=np.int64)
        self.n_prb = int(self.rbg_prb.sum())
        self.mcs = nr.mcs_table(MCS_TABLE)
        self.cqi = nr.cqi_table(CQI_TABLE)
        self.n_mcs = len(self.mcs)
        ref = _bler.bler_table(MCS_TABLE, self.n_prb)
        self.bler_source = ref.source
        self.thr_db = np.maximum.accumulate(ref.thr10_db)                 # (n_mcs,)
        self.beta = ref.beta.astype(np.float64)
        # CQI 1..15 -> 10%-BLER SINR and EESM beta of an MCS of equal spectral efficiency
        se_m, thr_m, beta_m = self.mcs.se, self.thr_db, self.beta
        self.cqi_thr_db = np.interp(self.cqi.se, se_m, thr_m,
                                    left=thr_m[0] - 10 * np.log10(se_m[0] / self.cqi.se[0]))
        self.cqi_beta = np.interp(self.cqi.se, se_m, beta_m)
        self._cqi_neg_inv_beta = -1.0 / self.cqi_beta
        self._cqi_x_thr = np.exp(-(10.0 ** (self.cqi_thr_db / 10.0)) / self.cqi_beta)   # see cqi_of_eff
        # SE per layer vs SINR on a dense dB grid
        self.grid = np.arange(GRID_LO, GRID_HI + GRID_STEP / 2, GRID_STEP)
        xp = np.concatenate([[thr_m[0] - 2.0], thr_m + 1e-6 * np.arange(len(thr_m))])
        fp = np.concatenate([[0.0], se_m])
        self._se_grid = np.interp(self.grid, xp, np.maximum.accumulate(fp)).astype(np.float32)
        # TBS for every PRB count an allocation of whole RBGs can have, 1 or 2 layers
        sums = {0}
        for s in self.rbg_prb.tolist():
            sums |= {x + s for x in sums}
        self._prb_values = np.array(sorted(sums - {0}), dtype=np.int64)
        self._prb_index = np.full(self.n_prb + 1, -1, dtype=np.int64)
        self._prb_index[self._prb_values] = np.arange(len(self._prb_values))
        self._tbs = _tbs_table(tuple(self._prb_values.tolist()))          # (2, P, n_mcs)
        # BLER tables on a geometric grid of n_prb x layers
        self._bins = np.unique(np.round(np.geomspace(1, 2 * self.n_prb, 24)).astype(np.int64))
        self._bler = np.stack([_bler.bler_table(MCS_TABLE, int(b)).bler for b in self._bins])  # (B, n_mcs, G)
        self.bler_target = float(bler_target)
        self.olla_up = float(olla_step_db) * bler_target / (1.0 - bler_target)
        self.olla_down = float(olla_step_db)

    # -- rates ------------------------------------------------------------------------------------------
    def se_of_db(self, x_db: np.ndarray) -> np.ndarray:
        """Achievable spectral efficiency per layer (bit/s/Hz) at SINR ``x_db`` (array, any shape)."""
        g = np.rint((np.clip(x_db, GRID_LO, GRID_HI) - GRID_LO) / GRID_STEP).astype(np.int64)
        return self._se_grid[g]

    def se_of_lin(self, x: np.ndarray) -> np.ndarray:
        """:meth:`se_of_db` of a linear SINR (float32 path, no dB array in between)."""
        g = np.log10(np.maximum(x, np.float32(1e-30)), dtype=np.float32)
        g *= np.float32(10.0 / GRID_STEP)
        g += np.float32(-GRID_LO / GRID_STEP + 0.5)
        np.clip(g, 0, len(self._se_grid) - 1, out=g)
        return self._se_grid[g.astype(np.int32)]

    def cqi_of_eff(self, sinr_lin: np.ndarray, axis: int = -1) -> np.ndarray:
        """CQI index 0..15 met by the SINRs along ``axis`` (EESM with each CQI's beta).

        The EESM SINR -beta ln(mean_s exp(-gamma_s / beta)) meets CQI q's 10%-BLER SINR T_q exactly when
        mean_s exp(-gamma_s / beta_q) <= exp(-T_q / beta_q): compared so, without logarithms."""
        s = np.moveaxis(np.asarray(sinr_lin, dtype=np.float64), axis, -1)
        with np.errstate(under="ignore"):
            x = ssum(np.exp(s[..., None, :] * self._cqi_neg_inv_beta[:, None])) * (1.0 / s.shape[-1])
        return (x <= self._cqi_x_thr).sum(-1)

    def cqi_sinr_db(self, cqi: np.ndarray) -> np.ndarray:
        """SINR (dB) a CQI vouches for: its 10%-BLER point (CQI 0: 3 dB below CQI 1)."""
        c = np.asarray(cqi)
        return np.where(c > 0, self.cqi_thr_db[np.maximum(c - 1, 0)], self.cqi_thr_db[0] - 3.0)

    # -- transport blocks ---------------------------------------------------------------------------------
    def tbs(self, mcs: np.ndarray, n_prb: np.ndarray, layers: np.ndarray) -> np.ndarray:
        """TBS in bits (38.214 5.1.3.2) for arrays of MCS, allocated PRBs (sum of RBGs) and layers 1..2."""
        idx = self._prb_index[np.asarray(n_prb)]
        if np.any(idx < 0):
            raise EnvError("n_prb must be a sum of whole RBGs of this set-up")
        return self._tbs[np.asarray(layers) - 1, idx, np.asarray(mcs)]

    def bler(self, mcs: np.ndarray, eff_db: np.ndarray, n_prb: np.ndarray, layers: np.ndarray) -> np.ndarray:
        """TB BLER at effective SINR ``eff_db`` (arrays of one shape)."""
        size = np.asarray(n_prb) * np.asarray(layers)
        b = np.clip(np.searchsorted(self._bins, size), 0, len(self._bins) - 1)
        g = np.rint((np.clip(eff_db, _bler.SNR_LO_DB, _bler.SNR_HI_DB) - _bler.SNR_LO_DB) / _bler.SNR_STEP_DB)
        return self._bler[b, np.asarray(mcs), g.astype(np.int64)]

    def select_mcs(self, eff_db_per_mcs: np.ndarray) -> np.ndarray:
        """Highest MCS whose 10%-BLER SINR is met; ``eff_db_per_mcs[..., m]`` is the EESM effective
        SINR computed with MCS m's beta. MCS 0 when none is met."""
        ok = eff_db_per_mcs >= self.thr_db
        return np.where(ok.any(-1), self.n_mcs - 1 - np.argmax(ok[..., ::-1], axis=-1), 0)


@functools.lru_cache(maxsize=8)
def _tbs_table(prb_values: tuple) -> np.ndarray:
    n_mcs = len(nr.mcs_table(MCS_TABLE))
    out = np.zeros((2, len(prb_values), n_mcs), dtype=np.float64)
    for v in (1, 2):
        for i, n in enumerate(prb_values):
            for m in range(n_mcs):
                out[v - 1, i, m] = nr.tbs(m, n, MCS_TABLE, n_layers=v)
    return out
