"""BLER versus effective SINR per MCS, and EESM for frequency-selective channels.

Source of the curves (decided by measurement, see the report of issue 5):

* ``"sionna"`` (preferred): the link-level BLER tables that ship with Sionna's PHY abstraction
  (``sionna-no-rt``, files ``sionna/sys/bler_tables/PDSCH_table{1,2}.json``: code-block BLER per
  MCS on a 15-point SNR grid, -5..20 dB, for code-block sizes 24..2000 bits, AWGN, LDPC) and its
  EESM beta table (``sionna/sys/esm_params/eesm_beta_table.json``). We read only the JSON files
  (located with ``importlib.util.find_spec``, no import of Sionna at run time: that costs ~2 s of
  torch start-up for numbers we can keep in a 100 kB array). The package installs in ~2 s and
  depends only on numpy/scipy/h5py/torch, so it is cheap in CI.
* ``"shannon"`` (fallback when Sionna is not installed): a logistic curve per MCS centred on the
  SNR where Shannon capacity with a 1.5 dB implementation gap meets the MCS's spectral
  efficiency, with a 10%->1% BLER width of ~0.8 dB, and EESM betas by modulation order. It is a
  documented approximation, not a standard; the env records which source it used.

How a TB BLER is made from code-block curves: the TBS of the scenario's allocation gives the
number C of LDPC code blocks and their size K (38.212); the code-block BLER is interpolated in
log(K) between the tabulated sizes (clamped at 2000 — larger blocks have slightly steeper
curves, so this is a small pessimistic bias) and TB BLER = 1 - (1 - BLER_cb)^C.
Sionna table 1 starts at MCS 3 (table 2 at MCS 2): lower MCSs reuse the lowest tabulated curve
shifted by the Shannon SNR difference of their spectral efficiencies; an MCS whose tabulated
curve never reaches 10% BLER by 20 dB (table 2, MCS 27) reuses the next lower MCS's curve, shifted
the same way. Known limit: Sionna's grid is 1.8 dB coarse, so a few neighbouring MCSs share a
10%-BLER point (e.g. table 1, MCS 9/10) and the lower one of such a pair is dominated.

Speed: everything is precomputed on a dense SNR grid (0.05 dB steps, -15..40 dB), so a lookup
is one rounded index and one gather, vectorized over thousands of links.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
from dataclasses import dataclass

import numpy as np

from envs import nr

from .errors import EnvError

SNR_LO_DB, SNR_HI_DB, SNR_STEP_DB = -15.0, 40.0, 0.05
_SIONNA_CBS = (24, 100, 500, 1000, 2000)


def sionna_available() -> bool:
    return _sionna_sys_dir() is not None


@functools.lru_cache(maxsize=1)
def _sionna_sys_dir():
    spec = importlib.util.find_spec("sionna")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = os.path.join(list(spec.submodule_search_locations)[0], "sys")
    return d if os.path.isfile(os.path.join(d, "bler_tables", "PDSCH_table1.json")) else None


def snr_grid_db() -> np.ndarray:
    n = int(round((SNR_HI_DB - SNR_LO_DB) / SNR_STEP_DB)) + 1
    return SNR_LO_DB + SNR_STEP_DB * np.arange(n)


def _shannon_snr_db(se):
    return 10.0 * np.log10(np.maximum(2.0 ** np.asarray(se, dtype=np.float64) - 1.0, 1e-9))


@functools.lru_cache(maxsize=4)
def _sionna_cb_curves(mcs_table_id: int):
    """{mcs: (snr_db[15], bler[5 cbs, 15])} from Sionna's PDSCH tables."""
    if mcs_table_id not in (1, 2):
        raise EnvError(f"Sionna BLER tables cover PDSCH MCS tables 1 and 2, not {mcs_table_id}")
    path = os.path.join(_sionna_sys_dir(), "bler_tables", f"PDSCH_table{mcs_table_id}.json")
    with open(path) as f:
        raw = json.load(f)["category"]["1"]["index"][str(mcs_table_id)]["MCS"]
    out = {}
    for m, v in raw.items():
        snr = np.asarray(v["SNR_db"], dtype=np.float64)
        b = np.stack([np.asarray(v["CBS"][str(k)]["BLER"], dtype=np.float64) for k in _SIONNA_CBS])
        out[int(m)] = (snr, b)
    return out


@functools.lru_cache(maxsize=4)
def _sionna_betas(mcs_table_id: int) -> np.ndarray:
    with open(os.path.join(_sionna_sys_dir(), "esm_params", "eesm_beta_table.json")) as f:
        return np.asarray(json.load(f)["index"][str(mcs_table_id)], dtype=np.float64)


def _cb_bler_sionna(mcs_table_id: int, mcs: int, cbs: int, grid: np.ndarray) -> np.ndarray:
    curves = _sionna_cb_curves(mcs_table_id)
    shift, se = 0.0, nr.mcs_table(mcs_table_id).se
    if mcs not in curves:  # below the lowest tabulated MCS: shift by the Shannon SNR difference
        low = min(curves)
        shift = float(_shannon_snr_db(se[mcs]) - _shannon_snr_db(se[low]))
        mcs = low
    elif curves[mcs][1][-1, -1] > 0.1:  # never reaches 10% inside the table's SNR range
        shift = float(_shannon_snr_db(se[mcs]) - _shannon_snr_db(se[mcs - 1]))
        mcs = mcs - 1
    snr, b = curves[mcs]
    lk = np.log(np.clip(cbs, _SIONNA_CBS[0], _SIONNA_CBS[-1]))
    lks = np.log(np.array(_SIONNA_CBS, dtype=np.float64))
    j = int(np.clip(np.searchsorted(lks, lk) - 1, 0, len(lks) - 2))
    w = (lk - lks[j]) / (lks[j + 1] - lks[j])
    b_k = (1 - w) * b[j] + w * b[j + 1]
    return np.interp(grid - shift, snr, b_k, left=1.0, right=float(b_k[-1]))


def _cb_bler_shannon(se: float, grid: np.ndarray, gap_db: float = 1.5, width_db: float = 0.8):
    # logistic: BLER = 1 / (1 + exp((snr - c) / s)); 10% at c + s*ln 9... choose c so that the
    # 10% point sits at Shannon + gap, and s so that 10% -> 1% spans width_db.
    s = width_db / (math.log(99.0) - math.log(9.0))
    c = float(_shannon_snr_db(se)) + gap_db - s * math.log(9.0)
    return 1.0 / (1.0 + np.exp((grid - c) / s))


def _shannon_betas(qm: np.ndarray) -> np.ndarray:
    return np.array([{2: 1.7, 4: 5.0, 6: 20.0, 8: 70.0}[int(q)] for q in qm], dtype=np.float64)


@dataclass
class BlerTable:
    """Dense TB-BLER table for one MCS table and one allocation size.

    ``bler[m, g]`` is the TB BLER of MCS m at effective SNR ``grid[g]`` dB; ``beta[m]`` the EESM
    beta; ``thr10_db[m]`` the SNR of 10% BLER; ``source`` is "sionna" or "shannon".
    """

    mcs_table_id: int
    n_prb: int
    source: str
    grid: np.ndarray
    bler: np.ndarray
    beta: np.ndarray
    thr10_db: np.ndarray
    tbs: np.ndarray

    def lookup(self, mcs: np.ndarray, snr_db: np.ndarray) -> np.ndarray:
        """Vectorized TB BLER for integer MCS array and effective SNR (dB) array of one shape."""
        x = np.clip(np.asarray(snr_db, dtype=np.float64), SNR_LO_DB, SNR_HI_DB)  # also maps +inf
        g = np.rint((x - SNR_LO_DB) / SNR_STEP_DB).astype(np.int64)
        return self.bler[mcs, g]


@functools.lru_cache(maxsize=64)
def bler_table(mcs_table_id: int = 1, n_prb: int = 52, source: str = "auto") -> BlerTable:
    """Build (once per process, cached) the dense BLER table of an MCS table at ``n_prb`` PRBs."""
    if source not in ("auto", "sionna", "shannon"):
        raise EnvError(f"BLER source must be 'auto', 'sionna' or 'shannon', got {source!r}")
    t = nr.mcs_table(mcs_table_id)  # validates the id
    if source == "auto":
        source = "sionna" if (sionna_available() and mcs_table_id in (1, 2)) else "shannon"
    if source == "sionna" and not sionna_available():
        raise EnvError("BLER source 'sionna' needs the sionna-no-rt package (pip install sionna-no-rt)")
    grid = snr_grid_db()
    tbs = nr.tbs_per_mcs(n_prb, mcs_table_id)
    rows = []
    for m in range(len(t)):
        c, k = nr.code_blocks(int(tbs[m]), float(t.code_rate[m]))
        if source == "sionna":
            cb = _cb_bler_sionna(mcs_table_id, m, k, grid)
        else:
            cb = _cb_bler_shannon(float(t.se[m]), grid)
        rows.append(1.0 - (1.0 - np.clip(cb, 0.0, 1.0)) ** c)
    bler = np.stack(rows)
    # A BLER curve must not rise with SNR (table noise at the 1e-3 level can): make it monotone.
    bler = np.minimum.accumulate(bler, axis=1)
    beta = _sionna_betas(mcs_table_id)[: len(t)] if source == "sionna" else _shannon_betas(t.qm)
    thr = np.array([grid[np.argmax(bler[m] <= 0.1)] for m in range(len(t))])
    return BlerTable(mcs_table_id, n_prb, source, grid, bler, beta, thr, tbs)


def eesm_db(sinr_lin: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Exponential effective SINR mapping, in dB.

    ``sinr_lin``: (..., S) linear SINR per subband; ``beta``: (...) or scalar.
    gamma_eff = -beta * ln(mean_s exp(-gamma_s / beta)), in the dtype of ``sinr_lin``.
    When every exp underflows (SINR hundreds of times beta) the result is +inf dB, which BLER
    lookups clamp to the top of their grid (BLER 0) — the right answer there.
    """
    b = np.asarray(beta, dtype=sinr_lin.dtype)[..., None]
    with np.errstate(divide="ignore", over="ignore"):
        x = np.exp(-sinr_lin / b).sum(axis=-1)
        eff = -b[..., 0] * np.log(x / sinr_lin.shape[-1])
        return 10.0 * np.log10(np.maximum(eff, 1e-12))
