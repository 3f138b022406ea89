"""Latency statistics shared by the Python timing worker and the C timing harness.

A *sample* is the mean time of ``calls_per_sample`` back-to-back calls (chosen so one sample lasts
about ``SAMPLE_TARGET_US``, which keeps the clock's own cost, 20-100 ns, under ~1%).  Samples are
taken in ``repeats`` blocks; p50/p99 are over all samples and the *spread* is the min and max of the
per-block medians, i.e. how much the median moves between repeats on this (shared, noisy) machine.
No numpy here: the worker must start fast.
"""
from __future__ import annotations

import math

from compress.errors import UserError

SAMPLE_TARGET_US = 10.0


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of an already sorted list (numpy's default)."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(samples_us: list[float], repeats: int, calls_per_sample: int) -> dict:
    """p50/p99 over all samples and the min/max of per-repeat medians."""
    if not samples_us or repeats < 1:
        raise UserError("summarize: no latency samples")
    per = max(1, len(samples_us) // repeats)
    blocks = [sorted(samples_us[i * per:(i + 1) * per]) for i in range(repeats) if samples_us[i * per:(i + 1) * per]]
    medians = [percentile(b, 50) for b in blocks]
    allv = sorted(samples_us)
    return {
        "p50_us": percentile(allv, 50),
        "p99_us": percentile(allv, 99),
        "min_us": allv[0],
        "spread_us": [min(medians), max(medians)],
        "repeat_p50_us": medians,
        "samples": len(allv),
        "repeats": len(blocks),
        "calls_per_sample": calls_per_sample,
    }
