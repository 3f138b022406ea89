"""``OptunaPruning``: Optuna's pruning API from inside a Lightning fit (single-objective studies).

Recipes name callbacks by ``class_path``, so the callback cannot receive the live ``optuna.Trial``
object as an argument; the search sets it with :func:`active_trial` around each in-process fit and the
callback reads it.  (optuna-integration's PyTorchLightningPruningCallback would need the extra
package and an object argument.)

Why stop instead of raising: an exception thrown inside a Lightning hook goes through the trainer's
teardown as a crash; the callback sets ``trainer.should_stop`` and marks the trial, and the objective
raises ``optuna.TrialPruned`` after ``fit`` returns cleanly.
"""
from __future__ import annotations

import contextlib
import math

import lightning.pytorch as pl

from compress.errors import UserError

__all__ = ["OptunaPruning", "active_trial", "current"]

_STATE: dict = {"trial": None, "pruned_at": None}


@contextlib.contextmanager
def active_trial(trial):
    """Make ``trial`` the one ``OptunaPruning`` reports to, for the duration of the block."""
    _STATE.update(trial=trial, pruned_at=None)
    try:
        yield _STATE
    finally:
        _STATE.update(trial=None)


def current() -> dict:
    return _STATE


class OptunaPruning(pl.Callback):
    """Report ``monitor`` after every validation epoch; stop the fit when Optuna's pruner says so."""

    def __init__(self, monitor: str = "val/acc") -> None:
        super().__init__()
        self.monitor = monitor

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trial = _STATE["trial"]
        if trial is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise UserError(f"OptunaPruning: metric '{self.monitor}' was not logged (logged: "
                             f"{', '.join(sorted(trainer.callback_metrics)) or 'none'})")
        value = float(value)
        if math.isnan(value):
            return
        epoch = trainer.current_epoch
        trial.report(value, step=epoch)
        if trial.should_prune():
            _STATE["pruned_at"] = epoch
            trainer.should_stop = True
