"""``python -m compress search RECIPE [--n-trials N] [--storage URL] [--study-name NAME] [--workers K]``

Other arguments are recipe overrides (``--trainer.max_epochs=4``, ``--search.limits.max_bytes=4000``,
``--run_dir=DIR``) as for ``fit``.  ``N`` is the *total* number of finished trials the study should
hold: rerunning the same command after a crash (even SIGKILL) continues to N with every finished trial
kept.  ``--workers K`` starts K processes on this machine that share the storage, each running trials
until the study holds N (``compress.search.study.optimize_until``: no trial is run twice, a trial
whose worker died is retried by another, the total is exactly N); the parent waits, then writes the
reports.  Workers on other machines run the same command against a shared
``--storage postgresql://...``; ``--report`` writes the reports from the shared study without
running trials.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from compress.errors import RecipeError, UserError
from compress.recipe import instantiate, parse_command_line, prepare
from compress.run.children import start_child

from .study import count_done

__all__ = ["main", "run_search", "SearchArgs"]

USAGE = ("usage: python -m compress search RECIPE [--n-trials N] [--storage URL] [--study-name NAME] "
         "[--workers K] [--report] [--key.path=value ...]")


SEARCH_OPTIONS = ("--n-trials", "--storage", "--study-name", "--workers", "--worker-index")
SEARCH_FLAGS = ("--report",)


class SearchArgs:
    """A parsed ``search`` command line: the prepared recipe and the search options."""

    def __init__(self, recipe: str, n_trials: int | None = None, storage: str | None = None,
                 study_name: str | None = None, workers: int = 1, worker_index: int | None = None,
                 overrides: list[str] | None = None, report_only: bool = False):
        self.recipe, self.n_trials, self.storage, self.study_name = recipe, n_trials, storage, study_name
        self.workers, self.worker_index, self.overrides = workers, worker_index, list(overrides or [])
        self.report_only = report_only


def _int_arg(name: str, raw: str, lo: int) -> int:
    try:
        v = int(raw)
    except ValueError:
        raise RecipeError(f"{name} must be an integer, got '{raw}'") from None
    if v < lo:
        raise RecipeError(f"{name} must be >= {lo}, got {v}")
    return v


def parse_args(argv: list[str]) -> SearchArgs:
    line = parse_command_line(list(argv), flags=SEARCH_FLAGS, options=SEARCH_OPTIONS, command="search")
    if line.recipe is None:
        raise RecipeError(f"'search' needs a recipe file\n{USAGE}")
    opt = line.options
    return SearchArgs(
        line.recipe,
        n_trials=_int_arg("--n-trials", opt["--n-trials"], 1) if "--n-trials" in opt else None,
        storage=opt.get("--storage"), study_name=opt.get("--study-name"),
        workers=_int_arg("--workers", opt["--workers"], 1) if "--workers" in opt else 1,
        worker_index=_int_arg("--worker-index", opt["--worker-index"], 0) if "--worker-index" in opt else None,
        overrides=line.as_argv(), report_only="--report" in line.flags)


def _quiet() -> None:
    import logging

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*Trainer already configured with model summary.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)


def run_search(args: SearchArgs) -> dict:
    """Run (or resume) a study; returns a summary dict (also printed as the last JSON line)."""
    _quiet()
    prepared = prepare(args.recipe, args.overrides, flags=SEARCH_FLAGS, command="search")
    with prepared.allowing():
        return _run_search(args, prepared)


def _run_search(args: SearchArgs, prepared) -> dict:
    from .objective import Objective
    from .space import parse_search
    from .study import default_storage_url, fail_orphans, open_storage, open_study, optimize_until

    import optuna

    recipe, base = prepared.path, prepared.cfg
    scfg = parse_search(base, str(recipe))
    n_total = args.n_trials or scfg.n_trials
    scfg.n_trials = n_total
    run_dir = prepared.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    url = args.storage or scfg.storage or default_storage_url(run_dir)
    name = args.study_name or scfg.study_name or recipe.stem
    storage = open_storage(url, scfg.heartbeat_interval, scfg.grace_period)
    study = open_study(scfg, storage, name, worker_index=args.worker_index or 0)
    if args.report_only:
        return write_reports(study, scfg, run_dir)
    objective = Objective(base, scfg, recipe, run_dir, n_total)

    if args.worker_index is not None:            # a worker: trials until the study holds N, no reports
        optimize_until(study, storage, objective, n_total, scfg.heartbeat_interval or 2, scfg.grace_period)
        return {"worker": args.worker_index, "trials": n_total}

    running = {t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
    optuna.storages.fail_stale_trials(study)
    fail_orphans(study, storage, scfg.grace_period)
    still = {t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
    if running - still:
        print(f"[search] trials {sorted(running - still)} were left running by a killed process: marked FAIL and "
              "re-enqueued", flush=True)
    done = count_done(study)
    remaining = max(0, n_total - done)
    print(f"[search] study '{name}' in {url}: {done} finished trials, running {remaining} more "
          f"(target {n_total}, {args.workers} worker{'s' if args.workers > 1 else ''})", flush=True)
    if remaining and args.workers > 1:
        _run_workers(args, url, name, min(args.workers, remaining), n_total, base)
    elif remaining:
        optimize_until(study, storage, objective, n_total, scfg.heartbeat_interval or 2, scfg.grace_period)
    return write_reports(study, scfg, run_dir)


def _run_workers(args: SearchArgs, url: str, name: str, k: int, n_total: int, base: dict) -> None:
    if "model" in base:   # build the model once so a teacher that must be trained first is trained (and cached) once
        instantiate(base["model"], "model")
    procs = []
    for i in range(k):
        cmd = [sys.executable, "-m", "compress", "search", args.recipe, *args.overrides, "--n-trials",
               str(n_total), "--storage", url, "--study-name", name, "--worker-index", str(i)]
        procs.append(start_child(cmd, env={"COMPRESS_NUM_THREADS": "1"}))
    try:
        codes = [p.wait() for p in procs]
    except BaseException:  # interrupted: the workers end with us (their trials are retried on resume)
        for p in procs:
            p.terminate()
        raise
    if any(codes):
        from .study import open_storage

        import optuna

        study = optuna.load_study(study_name=name, storage=open_storage(url, None, None))
        done = count_done(study)
        if done < n_total:
            raise UserError(f"search workers exited with codes {codes} and the study holds {done} of {n_total} "
                            "finished trials (their errors are above); rerun the same command to resume")
        print(f"[search] workers exited with codes {codes}; the others finished the study ({done} trials)",
              flush=True)


def write_reports(study, scfg, run_dir: Path) -> dict:
    import optuna

    from .report import best_trial, export_best, plot_front, write_pareto_json, write_trials_csv

    trials = study.get_trials(deepcopy=False)
    write_trials_csv(study, run_dir / "trials.csv", scfg.objectives)
    entries = write_pareto_json(study, run_dir / "pareto.json", scfg.objectives, scfg.directions)
    plot_front(study, run_dir / "pareto.png", scfg.objectives, scfg.directions, scfg.metric,
                      {"max_bytes": scfg.max_bytes, "max_p99_us": scfg.max_p99_us})
    states = {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    rejected = sum(t.user_attrs.get("trained") is False for t in trials)
    summary = {"study": study.study_name, "trials": len(trials), "states": {k: v for k, v in states.items() if v},
               "rejected_before_training": rejected, "pareto": [e["number"] for e in entries],
               "run_dir": str(run_dir)}
    best = best_trial(study, scfg.directions, scfg.objectives) if scfg.export_best else None
    if best is not None and best.user_attrs.get("artifact"):
        out = export_best(best, run_dir / "best", scfg.input_shape)
        summary["best"] = {"number": best.number, "values": list(best.values), "artifact": out["artifact"]}
        print(out["profile"].table(), flush=True)
    print(f"[search] {len(trials)} trials {summary['states']}, {rejected} rejected before training; "
          f"Pareto front: trials {summary['pareto']}; outputs in {run_dir}", flush=True)
    print(json.dumps(summary), flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    run_search(parse_args(argv))
    return 0
