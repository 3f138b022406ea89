"""Optuna architecture search under hard byte and latency limits, with Pareto fronts.

Public API:

    python -m compress search RECIPE [--n-trials N] [--storage URL] [--study-name NAME] [--workers K]
    run_search(SearchArgs(recipe, n_trials=None, storage=None, study_name=None, workers=1)) -> summary dict
    parse_search(cfg, recipe="recipe") -> SearchConfig     # validates the recipe's ``search:`` section
    precheck(student, input_shape, *, bits, prune_ratio, max_bytes, max_p99_us, need_latency, timing_seconds)
    final_check(artifact, input_shape, *, max_bytes, max_p99_us, timing_seconds) -> dict
    constraint_values(bytes, p99_us, max_bytes, max_p99_us) -> list[float]   # Optuna: feasible when all <= 0
    constraints_func(frozen_trial) -> list[float]
    pareto_front(trials, directions) -> list[FrozenTrial]   # feasible, complete, non-dominated
    OptunaPruning(monitor="val/acc")   # Lightning callback: Optuna pruning in single-objective studies

See compress/search/space.py for the ``search:`` schema and recipes/search_digits.yaml for an example.
The run folder holds ``study.db`` (SQLite storage, open it with optuna-dashboard), ``trials.csv``,
``pareto.json``, ``pareto.png``, ``trials/<n>/`` (each trial's run) and ``best/`` (artifact + profile).
"""
from __future__ import annotations

from compress._lazy import lazy_getattr

_LAZY = {
    "run_search": "compress.search.cli",
    "SearchArgs": "compress.search.cli",
    "parse_search": "compress.search.space",
    "SearchConfig": "compress.search.space",
    "Knob": "compress.search.space",
    "precheck": "compress.search.constraints",
    "final_check": "compress.search.constraints",
    "constraint_values": "compress.search.constraints",
    "constraints_func": "compress.search.constraints",
    "pareto_front": "compress.search.report",
    "OptunaPruning": "compress.search.callbacks",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr("compress.search", _LAZY)
