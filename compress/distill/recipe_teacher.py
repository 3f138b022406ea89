"""A teacher trained by its own recipe on first use, then cached.

``RecipeTeacher("recipes/digits_teacher.yaml")`` looks for the cached student weights of that recipe
(``cache/teachers/<stem>-<hash>.pt``; the hash covers the recipe text and every project source file its
classes import, see ``compress.distill.teacher_cache_key``).  If they are missing it runs
``python -m compress fit <recipe>`` in a child process (its progress bar shows; the child ends if this
process dies), which saves the weights there; then it builds the recipe's student architecture and
loads them with ``weights_only=True``.  Editing the teacher recipe, or code it runs (a simulator in
``envs/``, the task's data module), changes the hash, so a stale teacher is never reused; third-party
package versions are not part of the key.

``overrides`` (``{"data.modality": "image_radar", ...}``, the CLI's dotted overrides) train and build a
variant of the recipe; they are part of the cache key.

Processes that need the same missing teacher take turns (a lock beside the cache file): it is trained
once.  A failure in the teacher's recipe is reported once, naming that recipe's file and key (the
parent recipe's validation already checked it; a failure while it trains comes back from the child).
``--allow-any-class`` given to this process is passed on to the child; a recipe cannot set it.

Taps name the teacher's own layer paths (``teacher_tap: temporal``, as the teacher recipe's student
spells them): ``get_submodule`` resolves a path inside the wrapped network first, so the wrapper is
invisible; the wrapper's spelling ``module.<path>`` still resolves.
"""
from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from pathlib import Path

from torch import nn

from ..errors import RecipeError, UserError
from ..recipe import any_class_allowed, apply_override, instantiate, load_recipe
from ..run.children import run_child
from .teacher_cache_key import recipe_sources, sources_digest
from .teachers import Checkpoint

__all__ = ["RecipeTeacher", "teacher_cache_path"]


def teacher_cache_path(recipe: str | Path, cache_dir: str | Path = "cache/teachers", cfg: dict | None = None,
                       overrides: dict | None = None) -> Path:
    """``<cache_dir>/<stem>-<hash>.pt``; ``cfg`` is the parsed recipe when the caller already has it."""
    recipe = Path(recipe)
    cfg = load_recipe(recipe) if cfg is None else cfg
    extra = recipe.read_bytes() + (repr(sorted(overrides.items())).encode() if overrides else b"")
    digest = sources_digest(recipe_sources(cfg), extra=extra)[:10]
    return Path(cache_dir) / f"{recipe.stem}-{digest}.pt"


def _override_args(overrides: dict | None) -> list[str]:
    """The overrides as the child's command-line options (``--data.modality=image_radar``)."""
    import yaml

    return [f"--{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in (overrides or {}).items()]


class RecipeTeacher(nn.Module):
    def __init__(self, recipe: str, checkpoint: str | None = None, cache_dir: str = "cache/teachers",
                 overrides: dict | None = None):
        super().__init__()
        recipe_path = Path(recipe)
        if not recipe_path.is_file():
            raise UserError(f"teacher recipe not found: {recipe}")
        cfg = load_recipe(recipe_path)
        if overrides is not None and not isinstance(overrides, dict):
            raise UserError(f"teacher recipe overrides must be a mapping of dotted keys, got {overrides!r}")
        for key, value in (overrides or {}).items():
            apply_override(cfg, key, value)
        try:
            spec = cfg["model"]["init_args"]["student"]
        except (KeyError, TypeError):
            raise RecipeError(f"{recipe}: a teacher recipe needs model.init_args.student") from None
        ckpt = Path(checkpoint) if checkpoint else teacher_cache_path(recipe_path, cache_dir, cfg, overrides)
        if not ckpt.is_file():
            if checkpoint:
                raise UserError(f"teacher checkpoint not found: {checkpoint}")
            self._train_once(recipe_path, ckpt, _override_args(overrides))
        module = instantiate(spec, f"{recipe}: model.init_args.student")
        self.module = Checkpoint(module, str(ckpt)).module
        self.recipe, self.checkpoint = str(recipe_path), str(ckpt)

    @classmethod
    def _train_once(cls, recipe: Path, ckpt: Path, overrides: list[str]) -> None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        with open(ckpt.with_name(ckpt.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process training the same teacher: wait for it
            if not ckpt.is_file():
                cls._train(recipe, ckpt, overrides)

    @staticmethod
    def _train(recipe: Path, ckpt: Path, overrides: list[str]) -> None:
        print(f"[compress] teacher weights {ckpt} missing: training them from {recipe}", flush=True)
        cmd = [sys.executable, "-m", "compress", "fit", str(recipe), *overrides, f"--export.checkpoint={ckpt}",
               f"--run_dir={ckpt.with_suffix('')}-run"]
        if any_class_allowed():
            cmd.append("--allow-any-class")
        fd, err_file = tempfile.mkstemp(prefix="compress-teacher-", suffix=".err")
        os.close(fd)
        try:
            proc = run_child(cmd, env={"COMPRESS_ERROR_FILE": err_file})
            reason = Path(err_file).read_text().strip()
        finally:
            os.unlink(err_file)
        if proc.returncode != 0 or not ckpt.is_file():
            if reason:
                raise UserError(f"training the teacher from {recipe} failed: {reason}")
            raise UserError(f"training the teacher from {recipe} failed (exit code {proc.returncode}; "
                            "see its output above)")

    def get_submodule(self, target: str) -> nn.Module:
        """A path inside the wrapped network (``"temporal"``), else one of the wrapper (``"module.temporal"``)."""
        try:
            return self.module.get_submodule(target)
        except AttributeError:
            return super().get_submodule(target)

    def forward(self, x):
        return self.module(x)
