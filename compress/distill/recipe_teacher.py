"""A teacher trained by its own recipe on first use, then cached.

``RecipeTeacher("recipes/digits_teacher.yaml")`` looks for the cached student weights of that recipe
(``cache/teachers/<stem>-<hash>.pt``; the hash covers the recipe text and every project source file its
classes import, see ``compress.sources``).  If they are missing it runs
``python -m compress fit <recipe>`` in a subprocess (its progress bar shows), which saves the weights
there; then it builds the recipe's student architecture and loads them with ``weights_only=True``.
Editing the teacher recipe, or code it runs (a simulator in ``envs/``, the task's data module), changes the
hash, so a stale teacher is never reused; third-party package versions are not part of the key.

``overrides`` (``{"data.modality": "image_radar", ...}``, the CLI's dotted overrides) train and build a
variant of the recipe; they are part of the cache key.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from torch import nn

from ..recipe import load_recipe
from ..sources import recipe_sources, sources_digest
from ..spec import RecipeError, instantiate
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
    import yaml

    return [f"--{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in (overrides or {}).items()]


class RecipeTeacher(nn.Module):
    def __init__(self, recipe: str, checkpoint: str | None = None, cache_dir: str = "cache/teachers",
                 allow_any_class: bool = False, overrides: dict | None = None):
        super().__init__()
        recipe_path = Path(recipe)
        if not recipe_path.is_file():
            raise FileNotFoundError(f"teacher recipe not found: {recipe}")
        cfg = load_recipe(recipe_path)
        if overrides:
            from ..cli import apply_override

            if not isinstance(overrides, dict):
                raise TypeError(f"teacher recipe overrides must be a mapping of dotted keys, got {overrides!r}")
            for key, arg in zip(overrides, _override_args(overrides)):
                apply_override(cfg, key, arg.split("=", 1)[1])
        try:
            spec = cfg["model"]["init_args"]["student"]
        except (KeyError, TypeError):
            raise RecipeError(f"{recipe}: a teacher recipe needs model.init_args.student") from None
        ckpt = Path(checkpoint) if checkpoint else teacher_cache_path(recipe_path, cache_dir, cfg, overrides)
        if not ckpt.is_file():
            self._train(recipe_path, ckpt, allow_any_class, _override_args(overrides))
        module = instantiate(spec, f"{recipe}: model.init_args.student", allow_any_class)
        self.module = Checkpoint(module, str(ckpt)).module
        self.recipe, self.checkpoint = str(recipe_path), str(ckpt)

    @staticmethod
    def _train(recipe: Path, ckpt: Path, allow_any: bool, overrides: list[str] = ()) -> None:
        print(f"[compress] teacher weights {ckpt} missing: training them from {recipe}", flush=True)
        cmd = [sys.executable, "-m", "compress", "fit", str(recipe), *overrides, f"--export.checkpoint={ckpt}",
               f"--run_dir={ckpt.with_suffix('')}-run"]
        if allow_any:
            cmd.append("--allow-any-class")
        result = subprocess.run(cmd, env=os.environ.copy())
        if result.returncode != 0 or not ckpt.is_file():
            raise RuntimeError(f"training the teacher from {recipe} failed (exit code {result.returncode})")

    def forward(self, x):
        return self.module(x)
