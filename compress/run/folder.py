"""The run folder: what it holds, who may write it, and whether a rerun may resume it.

``runs/<recipe stem>/`` (or the recipe's ``run_dir``) holds:

* ``recipe.yaml`` — the merged recipe the training ran with; written (atomically) only by a run that
  has validated its recipe, built its objects and is about to train from it;
* ``checkpoints/last.ckpt`` — the resume point (``compress.run.checkpoints``);
* ``student.pt`` — the trained deployable network (structure + weights, ``compress.prune.save_module``);
* ``logs/`` — CSV logs (``version_N`` per run) or wandb's offline files; ``export/`` and task results.

Rules: one fit at a time per folder (an ``flock`` on ``.lock``, released by the OS even on SIGKILL);
a resume must use the recorded recipe's training settings (``TRAINING_KEYS``: seed, trainer, model,
data) — a change is refused with the list of changed keys unless ``--accept-changes`` records it;
``--fresh`` deletes the checkpoints, ``student.pt`` and ``recipe.yaml`` and starts over.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from ..atomic import atomic_write_text
from ..errors import RecipeError, UserError
from ..recipe import TRAINING_KEYS, load_recipe

__all__ = ["RunFolder", "recipe_changes"]


def _flatten(node: Any, prefix: str, out: dict) -> dict:
    if isinstance(node, dict) and node:
        for k, v in node.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(node, list) and node and any(isinstance(v, (dict, list)) for v in node):
        for i, v in enumerate(node):
            _flatten(v, f"{prefix}.{i}", out)
    else:
        out[prefix] = node
    return out


def recipe_changes(old: dict, new: dict, keys=TRAINING_KEYS) -> list[str]:
    """``key: old -> new`` for every setting under ``keys`` that differs."""
    a = _flatten({k: old.get(k) for k in keys if k in old}, "", {})
    b = _flatten({k: new.get(k) for k in keys if k in new}, "", {})
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            out.append(f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    return out


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_fd: int | None = None

    @property
    def recipe_file(self) -> Path:
        return self.path / "recipe.yaml"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / "last.ckpt"

    @property
    def student_file(self) -> Path:
        return self.path / "student.pt"

    # -- lock ---------------------------------------------------------------------------------------
    def lock(self) -> "RunFolder":
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"cannot use run folder {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise UserError(f"{self.path} is in use by another run (pid {holder}): wait for it to finish, "
                                "or give this run its own --run_dir=DIR") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd
        return self

    def unlock(self) -> None:
        if self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> "RunFolder":
        return self.lock()

    def __exit__(self, *exc) -> bool:
        self.unlock()
        return False

    # -- recipe -------------------------------------------------------------------------------------
    def recorded_recipe(self) -> dict | None:
        if not self.recipe_file.is_file():
            return None
        try:
            return load_recipe(self.recipe_file)
        except RecipeError:
            return None

    def record_recipe(self, cfg: dict) -> None:
        atomic_write_text(self.recipe_file, yaml.safe_dump(cfg, sort_keys=False))

    def check_resume(self, cfg: dict, recipe: Path, accept_changes: bool, keys=TRAINING_KEYS) -> list[str]:
        """Refuse a resume whose training settings differ from the recorded ones (returns the changes
        accepted with ``--accept-changes``)."""
        old = self.recorded_recipe()
        if old is None:
            if accept_changes:
                return []
            raise RecipeError(f"{self.path} has a checkpoint but no readable recipe.yaml, so the resume cannot be "
                              "checked: --fresh starts over, --accept-changes resumes with this recipe")
        changes = recipe_changes(old, cfg, keys)
        if changes and not accept_changes:
            shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
            raise RecipeError(f"{recipe}: the run in {self.path} was trained with other settings ({shown}): "
                              "--fresh starts over, --accept-changes resumes with the new settings and records them")
        return changes

    def start_over(self) -> None:
        """``--fresh``: forget checkpoints, the trained student and the recorded recipe (logs stay)."""
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        for f in (self.student_file, self.recipe_file):
            f.unlink(missing_ok=True)
