"""Optuna storage, sampler and study for a search.

* Storage: a SQLite file in the run folder by default (embedded, zero set-up; opens in
  ``optuna-dashboard sqlite:///...``), or any Optuna RDB URL (``postgresql://``, ``mysql://``) so that
  workers on many machines share one study.  The URL is opened eagerly: an unreachable or malformed
  URL is a one-line ValueError (password hidden), not a traceback from SQLAlchemy.
* Heartbeats: every running trial pings the storage; a trial whose process was SIGKILLed stops
  pinging and, after ``grace_period`` seconds, is marked FAIL by the next worker and re-enqueued with
  the same parameters (``RetryHeartbeatStaleTrialCallback``): a killed study loses at most the trial in flight.
* Samplers: NSGA-II for several objectives (Pareto fronts, constraint-dominance), TPE for one, or
  random.  Constraints reach them through ``Trial.set_constraint`` (Optuna 5 deprecated the samplers'
  ``constraints_func`` argument in its favour; both store the same per-trial values, which the
  samplers and ``study.best_trials`` read).  The seed is offset by the number of trials already in
  the study and by the worker index, so a resumed run or a second worker does not replay the same
  random proposals.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import optuna

from .space import SearchConfig

from compress.errors import UserError

__all__ = ["open_storage", "make_sampler", "make_pruner", "open_study", "default_storage_url", "count_done", "fail_orphans"]

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
    """Fail (and re-enqueue) RUNNING trials that never wrote a heartbeat and started > ``grace_period``
    seconds ago: a process killed within its trial's first heartbeat interval leaves such a trial,
    which Optuna's stale-trial check skips (it only looks at trials *with* a heartbeat).  A live trial
    of any worker has a heartbeat by then (interval < grace period), so this never touches one.
    Uses Optuna's RDB models (internal); on any surprise it does nothing."""
    import datetime

    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(storage.scoped_session) as session:
            beating = {tid for (tid,) in session.query(models.TrialHeartbeatModel.trial_id).all()}
    except Exception:  # noqa: BLE001 - internal API moved: skip the orphan check
        return []
    now = datetime.datetime.now()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if t._trial_id in beating or t.datetime_start is None:
            continue
        if (now - t.datetime_start).total_seconds() > grace_period:
            try:
                if storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL):
                    failed.append(t._trial_id)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass
    callback = storage.get_heartbeat_stale_trial_callback()
    for tid in failed:
        if callback is not None:
            callback(study, storage.get_trial(tid))
    return [storage.get_trial(tid).number for tid in failed]
