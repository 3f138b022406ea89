"""Outputs of a study: ``trials.csv``, ``pareto.json``, ``pareto.png`` and the best trial's artifact.

``pareto_front`` is written here rather than taken from ``study.best_trials`` so that the rule is
explicit and tested: a trial is in the front if it is COMPLETE, feasible (every constraint <= 0, i.e.
it passed the limits on its *exported* artifact), has finite values, and no other such trial is at
least as good in every objective and strictly better in one.  Optuna's own front agrees (the tests
compare both), except that a trial which repeated an earlier trial's parameters (``duplicate_of``: its
result was reused) is represented here by that earlier trial only.
"""
from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import optuna

__all__ = ["is_feasible", "dominates", "pareto_front", "write_trials_csv", "write_pareto_json", "plot_front",
           "best_trial", "export_best"]


def is_feasible(trial) -> bool:
    cons = trial.user_attrs.get("constraints")
    if cons is None:
        cons = list(getattr(trial, "constraints", {}).values()) if isinstance(getattr(trial, "constraints", None),
                                                                               dict) else []
    return trial.state == optuna.trial.TrialState.COMPLETE and all(float(c) <= 0 for c in cons)


def dominates(a: list[float], b: list[float], directions: list[str]) -> bool:
    """True if ``a`` is no worse than ``b`` in every objective and better in at least one."""
    sign = [1.0 if d == "minimize" else -1.0 for d in directions]
    aa = [s * v for s, v in zip(sign, a)]
    bb = [s * v for s, v in zip(sign, b)]
    return all(x <= y for x, y in zip(aa, bb)) and any(x < y for x, y in zip(aa, bb))


def pareto_front(trials, directions: list[str]) -> list:
    """Feasible, complete, finite, non-dominated trials (sorted by trial number)."""
    pool = [t for t in trials if is_feasible(t) and t.values is not None and all(math.isfinite(v) for v in t.values)
            and "duplicate_of" not in t.user_attrs]
    return sorted((t for t in pool if not any(dominates(o.values, t.values, directions) for o in pool if o is not t)),
                  key=lambda t: t.number)


def _num(v):
    if v is None:
        return ""
    return v if not isinstance(v, float) or math.isfinite(v) else str(v)


def write_trials_csv(study: optuna.Study, path: Path, objectives: list[str]) -> Path:
    """One row per trial, rejected ones included (``state``, ``trained``, ``rejected_reason``)."""
    trials = study.get_trials(deepcopy=False)
    pkeys = sorted({k for t in trials for k in t.params})
    attrs = ["trained", "duplicate_of", "feasible", "rejected_reason", "bytes", "latency_p99_us", "latency_p50_us",
             "artifact_file_bytes", "precheck_bytes", "precheck_p99_us", "precheck_seconds", "train_seconds",
             "worker_pid"]
    header = ["number", "state"] + [f"value_{o}" for o in objectives] + attrs + ["duration_s"] + \
             [f"param:{k}" for k in pkeys]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for t in trials:
            vals = list(t.values) if t.values is not None else [None] * len(objectives)
            ua = dict(t.user_attrs)
            ua["feasible"] = is_feasible(t) if t.state == optuna.trial.TrialState.COMPLETE else ""
            if t.state == optuna.trial.TrialState.FAIL and not ua.get("rejected_reason"):
                ua["rejected_reason"] = "failed (error or killed process)"
            dur = t.duration.total_seconds() if t.duration is not None else None
            w.writerow([t.number, t.state.name] + [_num(v) for v in vals] + [_num(ua.get(a)) for a in attrs] +
                       [_num(round(dur, 3) if dur is not None else None)] + [_num(t.params.get(k)) for k in pkeys])
    return path


def pareto_entries(front, objectives: list[str]) -> list[dict]:
    out = []
    for t in front:
        ua = t.user_attrs
        out.append({"number": t.number, "params": t.params, "architecture": ua.get("arch", t.params),
                    "objectives": list(objectives), "values": list(t.values),
                    "quality": ua.get("quality"), "bytes": ua.get("bytes"),
                    "latency_p99_us": ua.get("latency_p99_us"), "feasible": is_feasible(t),
                    "artifact": ua.get("artifact")})
    return out


def write_pareto_json(study: optuna.Study, path: Path, objectives: list[str], directions: list[str]) -> list[dict]:
    entries = pareto_entries(pareto_front(study.get_trials(deepcopy=False), directions), objectives)
    Path(path).write_text(json.dumps(entries, indent=2, default=str))
    return entries


def plot_front(study: optuna.Study, path: Path, objectives: list[str], directions: list[str], metric: str,
               limits: dict | None = None) -> Path | None:
    """Quality against bytes (and latency) for every trained trial; the feasible front highlighted;
    rejected architectures drawn at their measured bytes on the bottom edge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = study.get_trials(deepcopy=False)
    xs = [x for x in ("bytes", "latency") if x in objectives] or ["bytes"]
    front = {t.number for t in pareto_front(trials, directions)}
    fig, axes = plt.subplots(1, len(xs), figsize=(5.5 * len(xs), 4.2), squeeze=False)
    limits = limits or {}
    for ax, xname in zip(axes[0], xs):
        key = "bytes" if xname == "bytes" else "latency_p99_us"
        pts = [(t.user_attrs.get(key), t.user_attrs.get("quality"), t) for t in trials]
        trained = [(x, q, t) for x, q, t in pts if x is not None and q is not None]
        feas = [(x, q) for x, q, t in trained if is_feasible(t) and t.number not in front]
        infeas = [(x, q) for x, q, t in trained if not is_feasible(t)]
        pf = sorted((x, q) for x, q, t in trained if t.number in front)
        if feas:
            ax.scatter(*zip(*feas), c="tab:blue", alpha=0.5, label="feasible")
        if infeas:
            ax.scatter(*zip(*infeas), c="tab:red", marker="x", label="over a limit (after export)")
        if pf:
            ax.step(*zip(*pf), where="post", c="tab:green")
            ax.scatter(*zip(*pf), c="tab:green", s=60, label="Pareto front")
        rej = [t.user_attrs.get("precheck_bytes" if xname == "bytes" else "precheck_p99_us") for t in trials
               if t.user_attrs.get("trained") is False]
        rej = [r for r in rej if r is not None]
        if rej:
            lo = min([q for _, q, _ in trained] or [0.0])
            ax.scatter(rej, [lo] * len(rej), c="grey", marker="v", label="rejected before training")
        lim = limits.get("max_bytes" if xname == "bytes" else "max_p99_us")
        if lim:
            ax.axvline(lim, c="k", ls="--", lw=1, label="limit")
        ax.set_xlabel("weight bytes of the deployed artifact" if xname == "bytes" else "p99 latency (us)")
        ax.set_ylabel(metric)
        if xname == "bytes":
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"study {study.study_name}: {len(trials)} trials")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def best_trial(study: optuna.Study, directions: list[str], objectives: list[str]):
    """Highest-quality feasible trial on the front (the first objective decides; bytes break ties)."""
    front = pareto_front(study.get_trials(deepcopy=False), directions)
    if not front:
        return None
    qi = objectives.index("quality") if "quality" in objectives else 0
    sign = -1.0 if directions[qi] == "maximize" else 1.0
    return min(front, key=lambda t: (sign * t.values[qi], t.user_attrs.get("bytes", 0)))


def export_best(trial, out_dir: Path, input_shape: list[int]) -> dict:
    """Copy the best trial's artifact and weights to ``out_dir`` and profile the artifact (fresh process)."""
    from compress.profile import profile_artifact

    out_dir.mkdir(parents=True, exist_ok=True)
    src = Path(trial.user_attrs["artifact"])
    dst = out_dir / src.name
    shutil.copy2(src, dst)
    weights = src.parent / "student.pt"
    if weights.is_file():
        shutil.copy2(weights, out_dir / "student.pt")
    prof = profile_artifact(dst, input_shape)
    (out_dir / "profile.json").write_text(prof.to_json(indent=2))
    (out_dir / "trial.json").write_text(json.dumps({"number": trial.number, "params": trial.params,
                                                    "values": list(trial.values),
                                                    "user_attrs": trial.user_attrs}, indent=2, default=str))
    return {"artifact": str(dst), "profile": prof}
