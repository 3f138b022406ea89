"""Checkpoints that survive any kill and are never replaced by a worse one.

* ``AtomicCheckpointIO`` (a Lightning ``CheckpointIO`` plugin): every checkpoint Lightning writes goes to
  a temporary file, is fsynced, then renamed over the old one (``compress.atomic``): a kill, a full disk
  or a crash during the write leaves the previous complete checkpoint.  A checkpoint whose weights hold
  NaN or Inf is refused (``NonFiniteError``); a write error is a ``UserError`` naming the file.  Reads
  use ``torch.load(weights_only=True)``; an unreadable file is one line naming it and the ways out.
* ``LastCheckpoint`` (a Lightning ``Checkpoint`` callback, so it runs after the module's own
  ``on_train_epoch_end``): ``checkpoints/last.ckpt`` at the end of every epoch, and optionally every
  ``every_n_train_steps`` steps or ``every_n_minutes`` minutes inside long epochs.  Between
  ``on_train_start`` and ``on_train_end`` it owns SIGINT/SIGTERM (``compress.run.signals``): the training
  batch in flight finishes (or the epoch-end validation, if the signal came during it), ``last.ckpt`` is
  written, and the run ends with ``RunInterrupted``.

Resume exactness: a run killed at any moment and rerun resumes from the end of its last complete
epoch and ends with the same weights as an uninterrupted run (``EpochSeeding`` makes every epoch's
randomness depend only on the seed and the epoch).  A checkpoint written inside an epoch (a signal,
``every_n_*``) resumes with the same number of steps, but the rest of that epoch sees a different
data order, so the result is close, not bit-equal.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..atomic import WriteError, atomic_torch_save
from ..errors import UserError, first_line
from .signals import RunInterrupted, stop_requested, training_handlers

__all__ = ["AtomicCheckpointIO", "LastCheckpoint", "NonFiniteError", "read_checkpoint", "non_finite"]


class NonFiniteError(UserError):
    """NaN or Inf where finite numbers are required (a loss, weights about to be saved)."""


def non_finite(state: dict) -> list[str]:
    """Names of floating tensors in ``state`` that hold NaN or Inf."""
    bad = []
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
            if not bool(torch.isfinite(value).all()):
                bad.append(name)
    return bad


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """A checkpoint loaded with ``weights_only=True``; one clear line if it is truncated or not one."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # noqa: BLE001 - truncated zip, wrong format, unsafe pickle
        raise UserError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {first_line(exc)[:120]}): "
                        "start over with --fresh, or resume from another checkpoint with --ckpt_path=FILE") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a Lightning checkpoint (no state_dict): start over with --fresh, or "
                        "resume from another checkpoint with --ckpt_path=FILE")
    return ckpt


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        bad = non_finite(checkpoint.get("state_dict", {}))
        if bad:
            raise NonFiniteError(f"refusing to write {path}: non-finite weights in {', '.join(bad[:3])}"
                                 f"{' ...' if len(bad) > 3 else ''}; the previous checkpoint is kept")
        try:
            atomic_torch_save(checkpoint, path)
        except (WriteError, OSError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc).rpartition(": ")[2]
            raise UserError(f"cannot write checkpoint {path}: {reason}; the previous checkpoint is kept and the "
                            "run stopped") from exc

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        return read_checkpoint(path, map_location=map_location or "cpu")


class LastCheckpoint(Checkpoint):
    """``<dirpath>/last.ckpt``: every epoch end, optionally every N steps / minutes, and on SIGINT/SIGTERM."""

    def __init__(self, dirpath: str | Path, every_n_train_steps: int = 0, every_n_minutes: float | None = None):
        super().__init__()
        if not isinstance(every_n_train_steps, int) or every_n_train_steps < 0:
            raise UserError(f"LastCheckpoint: every_n_train_steps must be an int >= 0, got {every_n_train_steps!r}")
        if every_n_minutes is not None and not every_n_minutes > 0:
            raise UserError(f"LastCheckpoint: every_n_minutes must be > 0, got {every_n_minutes!r}")
        self.dirpath = Path(dirpath)
        self.every_n_train_steps, self.every_n_minutes = every_n_train_steps, every_n_minutes
        self._last_time = time.monotonic()
        self._signals = None

    @property
    def path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO):
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    def save(self, trainer) -> str:
        trainer.save_checkpoint(str(self.path), weights_only=False)  # the whole training state
        self._last_time = time.monotonic()
        return str(self.path)

    # -- signals ------------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        self._last_time = time.monotonic()
        self._signals = training_handlers().__enter__()

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore_signals()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore_signals()

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._restore_signals()

    def _restore_signals(self) -> None:
        if self._signals is not None:
            self._signals.__exit__(None, None, None)
            self._signals = None

    def _stop(self, trainer, save: bool) -> None:
        signum = stop_requested()
        where = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        saved = self.save(trainer) if save and trainer.is_global_zero else None
        self._restore_signals()
        note = (f"saved {saved}; rerun the same command to resume" if saved else
                "the last complete checkpoint is kept; rerun the same command to resume from it")
        raise RunInterrupted(signum, f"training stopped at {where}: {note}", saved)

    # -- saving -------------------------------------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if stop_requested() is not None:
            self._stop(trainer, save=True)
        due = (self.every_n_train_steps and trainer.global_step % self.every_n_train_steps == 0) or (
            self.every_n_minutes is not None and time.monotonic() - self._last_time >= 60 * self.every_n_minutes)
        if due and not trainer.sanity_checking:
            self.save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if stop_requested() is not None:  # e.g. a signal during the epoch-end validation
            self._stop(trainer, save=True)
        self.save(trainer)
