"""``python -m compress fit|validate|test|profile|export|search ...``

``fit|validate|test RECIPE [--key.path=value ...]`` runs a recipe through LightningCLI.  Overrides
are dotted paths into the recipe (``--trainer.max_epochs=3``, ``--model.init_args.lr=0.01``; for a
class spec ``init_args`` may be skipped: ``--model.lr=0.01``); values are parsed as YAML.  The merged
recipe is validated (safe YAML, known keys, allowed classes, argument names, files) before anything
runs, and errors are one line naming the key.

Runs keep their state in ``run_dir`` (default ``runs/<recipe stem>``): ``checkpoints/last.ckpt`` is
written every epoch and a rerun of the same command resumes from it (``--fresh`` starts over).
After ``fit`` the student's weights go to ``run_dir/student.pt`` and the ``export`` section runs.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

from .recipe import RecipeError, load_recipe, validate_recipe

__all__ = ["main", "run_recipe", "apply_override", "parse_overrides"]

USAGE = """usage: python -m compress COMMAND ...
  fit|validate|test RECIPE [--key.path=value ...] [--run_dir=DIR] [--fresh] [--allow-any-class]
  profile TARGET [--input-shape 1,16] [--runtimes ...] [--json]
  export RECIPE          (export + profile the trained student of a finished run)
  search RECIPE [--n-trials N] [--storage URL] [--study-name NAME] [--workers K]"""

USER_ERRORS = (RecipeError, ValueError, TypeError, FileNotFoundError, KeyError)


def parse_overrides(args: list[str]) -> tuple[list[tuple[str, Any]], set[str]]:
    """``--a.b=1`` or ``--a.b 1`` pairs, plus bare flags (``--fresh``)."""
    overrides, flags, i = [], set(), 0
    bare = {"--fresh", "--allow-any-class"}
    while i < len(args):
        arg = args[i]
        if arg in bare:
            flags.add(arg)
        elif arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            overrides.append((key, value))
        elif arg.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            overrides.append((arg[2:], args[i + 1]))
            i += 1
        else:
            raise RecipeError(f"cannot parse argument '{arg}': overrides look like --trainer.max_epochs=3")
        i += 1
    return overrides, flags


def apply_override(cfg: dict, dotted: str, raw: str) -> None:
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    parts = dotted.split(".")
    node = cfg
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, dict) and "class_path" in node and part not in ("class_path", "init_args"):
            node = node.setdefault("init_args", {})
        if isinstance(node, list):
            try:
                node = node[int(part)]
                continue
            except (ValueError, IndexError):
                raise RecipeError(f"override --{dotted}: '{part}' is not an index of the list at "
                                  f"{'.'.join(parts[:i])}") from None
        if not isinstance(node, dict):
            raise RecipeError(f"override --{dotted}: {'.'.join(parts[:i]) or 'recipe'} is not a mapping")
        node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, dict) and "class_path" in node and last not in ("class_path", "init_args"):
        node = node.setdefault("init_args", {})
    if not isinstance(node, dict):
        raise RecipeError(f"override --{dotted}: parent is not a mapping")
    node[last] = value


def _configure_logging() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
    warnings.filterwarnings("ignore", message=".*Unable to serialize instance.*")  # dicts of teachers in config.yaml
    warnings.filterwarnings("ignore", message=".*defined a `validation_step` but have no `val_dataloader`.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def run_recipe(command: str, recipe: str | Path, args: list[str] | None = None):
    """Run a recipe; returns the LightningCLI object (model, datamodule and trainer inside)."""
    from .runner import run_lightning

    overrides, flags = parse_overrides(list(args or []))
    cfg = load_recipe(recipe)
    for key, value in overrides:
        apply_override(cfg, key, value)
    allow_any = "--allow-any-class" in flags
    validate_recipe(cfg, recipe, allow_any=allow_any)
    return run_lightning(command, cfg, Path(recipe), fresh="--fresh" in flags, allow_any=allow_any)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    os.environ.setdefault("WANDB_MODE", "offline")
    _configure_logging()
    try:
        if command in ("fit", "validate", "test"):
            if not rest or rest[0].startswith("--"):
                raise RecipeError(f"'{command}' needs a recipe file: python -m compress {command} recipes/X.yaml")
            run_recipe(command, rest[0], rest[1:])
            return 0
        if command == "profile":
            from .profile.cli import main as profile_main
            return profile_main(rest) or 0
        if command == "export":
            from .runner import export_run
            if not rest:
                raise RecipeError("'export' needs a recipe file")
            export_run(rest[0], rest[1:])
            return 0
        if command == "search":
            from .search.cli import main as search_main
            return search_main(rest) or 0
        print(f"error: unknown command '{command}'\n{USAGE}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001
        root = exc
        while root.__cause__ is not None and isinstance(root.__cause__, USER_ERRORS):
            root = root.__cause__
        if not isinstance(root, USER_ERRORS):
            raise
        exc = root
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, KeyError):
            msg = str(exc.args[0]) if exc.args else msg
        print(f"error: {msg}", file=sys.stderr)
        return 2
