"""KPIs of the seed's Table 1 and Figures 2-3: user throughput percentiles, geometric mean, gains.

Geometric mean as the seed computes it: zero user throughputs (UEs that never received data) are
replaced by ones (1 bit/s here) so that one starved UE does not make the mean zero.
"""
from __future__ import annotations

import numpy as np


def geomean(x_bps: np.ndarray) -> float:
    x = np.asarray(x_bps, dtype=np.float64)
    if x.size == 0:
        return float("nan")
    return float(np.exp(np.log(np.where(x > 0, x, 1.0)).mean()))


def summary(x_bps: np.ndarray, unit: float = 1e6) -> dict:
    """p5, median, geomean (and mean) of per-UE throughputs, in bit/s / ``unit`` (default Mbit/s)."""
    x = np.asarray(x_bps, dtype=np.float64)
    if x.size == 0:
        return {"p5": float("nan"), "median": float("nan"), "geomean": float("nan"), "mean": float("nan")}
    return {"p5": float(np.percentile(x, 5)) / unit, "median": float(np.median(x)) / unit,
            "geomean": geomean(x) / unit, "mean": float(x.mean()) / unit}


def gains(policy: dict, baseline: dict, keys=("p5", "median", "geomean")) -> dict:
    """Percentage gains of a policy's KPIs over the baseline's (NaN where the baseline's KPI is 0)."""
    return {k: 100.0 * (policy[k] / baseline[k] - 1.0) if baseline[k] > 0 else float("nan") for k in keys}
