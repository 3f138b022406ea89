"""Optuna storage, sampler and study for a search.

* Storage: a SQLite file in the run folder by default (embedded, zero set-up; opens in
  ``optuna-dashboard sqlite:///...``), or any Optuna RDB URL (``postgresql://``, ``mysql://``) so that
  workers on many machines share one study.  The URL is opened eagerly: an unreachable or malformed
  URL is a one-line ValueError (password hidden), not a traceback from SQLAlchemy.
* Heartbeats: every running trial pings the storage (from the moment it starts); a trial whose process
  was SIGKILLed stops pinging and, after ``grace_period`` seconds, is marked FAIL by any live worker (or
  the next run) and re-enqueued with the same parameters (``RetryHeartbeatStaleTrialCallback``), then
  run by ``optimize_until``: a killed study loses at most the trial in flight.
* Samplers: NSGA-II for several objectives (Pareto fronts, constraint-dominance), TPE for one, or
  random.  Constraints reach them through ``Trial.set_constraint`` (Optuna 5 deprecated the samplers'
  ``constraints_func`` argument in its favour; both store the same per-trial values, which the
  samplers and ``study.best_trials`` read).  The seed is offset by the number of trials already in
  the study and by the worker index, so a resumed run or a second worker does not replay the same
  random proposals.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import optuna

from .space import SearchConfig

from compress.errors import UserError

__all__ = ["open_storage", "make_sampler", "make_pruner", "open_study", "default_storage_url", "count_done",
           "optimize_until", "SurplusTrial", "check_not_surplus", "fail_orphans"]

DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def default_storage_url(run_dir: str | Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'study.db'}"


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return url.split("@")[-1] if "@" in url else url


def open_storage(url: str, heartbeat_interval: int | None = 5, grace_period: int | None = 20):
    """An ``optuna.storages.RDBStorage`` for ``url``, connected now; ValueError if it cannot be opened."""
    if not isinstance(url, str) or "://" not in url:
        raise UserError(f"--storage: '{url}' is not a database URL (e.g. sqlite:///study.db, "
                         "postgresql://user@host/db)")
    engine_kwargs: dict = {}
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:" and not Path(path).parent.is_dir():
            raise UserError(f"cannot open storage '{url}': directory {Path(path).parent} does not exist")
        engine_kwargs = {"connect_args": {"timeout": 60}}
    elif url.startswith(("postgresql", "mysql")):
        engine_kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    try:
        with warnings.catch_warnings():   # heartbeats are "experimental" since Optuna 2.8; the API is stable
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                                              grace_period=grace_period, heartbeat_stale_trial_callback=retry)
    except Exception as exc:  # noqa: BLE001 - driver missing, host unreachable, bad URL: one line
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserError(f"cannot open storage '{_safe_url(url)}': {type(exc).__name__}: {text[:200]}") from None


def make_sampler(cfg: SearchConfig, offset: int = 0):
    seed = cfg.seed + offset
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, cfg.n_trials // 3)))
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=cfg.population_size)


def make_pruner(cfg: SearchConfig):
    if cfg.multi or cfg.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def open_study(cfg: SearchConfig, storage, study_name: str, worker_index: int = 0) -> optuna.Study:
    """Create the study or load it (``load_if_exists``); the sampler seed depends on the study's progress."""
    directions = cfg.directions
    probe = optuna.create_study(storage=storage, study_name=study_name, directions=directions, load_if_exists=True)
    existing = [d.name.lower() for d in probe.directions]
    if existing != list(directions):
        raise UserError(f"study '{study_name}' exists with directions {existing}, the recipe asks for "
                         f"{list(directions)}: use another --study-name")
    offset = len(probe.trials) + 1000 * worker_index
    return optuna.load_study(study_name=study_name, storage=storage, sampler=make_sampler(cfg, offset),
                             pruner=make_pruner(cfg))


def count_done(study: optuna.Study) -> int:
    """Trials that finished (complete or pruned); failed/killed trials do not count toward N."""
    return len(study.get_trials(deepcopy=False, states=DONE))


def fail_orphans(study: optuna.Study, storage, grace_period: float) -> list[int]:
    """Fail and re-queue RUNNING trials whose objective never started (no ``worker_pid`` user attribute)
    more than ``grace_period`` seconds after they were created: a worker killed inside ``study.ask()``
    (a sampler's proposal can take a while) leaves a trial that never wrote a heartbeat, which Optuna's
    stale-trial check cannot see.  A live worker's objective writes ``worker_pid`` first thing, so this
    never touches a live trial.  Public Optuna API only (``Study.tell`` by trial number, the storage's
    stale-trial callback for the retry)."""
    import datetime

    now = datetime.datetime.now()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        started = t.datetime_start
        if "worker_pid" in t.user_attrs or started is None or (now - started).total_seconds() <= grace_period:
            continue
        try:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        except (ValueError, RuntimeError):  # finished meanwhile
            continue
        retry = storage.get_heartbeat_stale_trial_callback()
        if retry is not None:
            retry(study, study.trials[t.number])
        failed.append(t.number)
    return failed


def optimize_until(study: optuna.Study, storage, objective, n_total: int, poll_seconds: float = 2.0,
                   grace_period: float = 20.0) -> None:
    """Run trials, one at a time, until the study holds ``n_total`` finished (complete or pruned) trials.

    Any number of processes (on any machines sharing the storage) may run this at once, each with the
    same ``n_total``: a worker starts a trial only while finished + running trials are fewer than
    ``n_total`` (a trial re-queued after its worker died is taken first: Optuna's ``ask`` pops WAITING
    trials), and while the last trials run elsewhere it stays, checking for stale ones (whose worker
    died: failed and re-queued by the storage's heartbeat callback), so a study never ends short.  Two
    workers that start a trial in the same instant may both pass the check; ``Objective`` then fails
    the surplus one (the higher trial number) before it trains, so exactly ``n_total`` trials finish.
    """
    while True:
        optuna.storages.fail_stale_trials(study)
        fail_orphans(study, storage, grace_period)
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in DONE for t in trials)
        if done >= n_total:
            return
        running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
        if done + running < n_total:
            study.optimize(objective, n_trials=1, gc_after_trial=True, catch=(SurplusTrial,))
        else:
            time.sleep(poll_seconds)


class SurplusTrial(Exception):
    """This trial would exceed the study's target: it is failed before it trains."""


def check_not_surplus(trial: optuna.Trial, n_total: int) -> None:
    """Raise ``SurplusTrial`` if finished trials plus running trials numbered before this one already make
    ``n_total`` (a race between workers starting the last trial at once)."""
    ahead = 0
    for t in trial.study.get_trials(deepcopy=False):
        if t.state in DONE or (t.state == optuna.trial.TrialState.RUNNING and t.number < trial.number):
            ahead += 1
    if ahead >= n_total:
        trial.set_user_attr("rejected_reason", f"surplus: {ahead} trials finished or running before it")
        raise SurplusTrial(f"trial {trial.number} is beyond the target of {n_total} trials")
