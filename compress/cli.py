"""``python -m compress fit|validate|test|export|search|profile ...``

``fit|validate|test RECIPE [--key.path=value ...]`` (or ``-c/--config RECIPE``) runs a recipe:
overrides are dotted paths into it (``--trainer.max_epochs=3``, ``--model.lr=1e-3``: values are YAML
1.2), the merged recipe is validated before anything runs, and the run keeps its state in its run
folder (``compress.run.folder``).  ``RECIPE --help`` lists what the recipe can set; ``--print_config``
prints the merged, validated recipe.

Errors: bad input (``compress.UserError``: a recipe key, an argument, a file, a shape) is one line
``error: ...`` and exit code 2; anything else is a bug and shows its traceback (exit code 1); a run
stopped by SIGINT/SIGTERM says where it stopped and what it saved (exit code 128 + signal).
"""
from __future__ import annotations

import os
import sys

from .errors import RecipeError, first_line, is_user_error

__all__ = ["main", "run_recipe", "FIT_FLAGS"]

USAGE = """usage: python -m compress COMMAND ...
  fit|validate|test RECIPE [--key.path=value ...] [--run_dir=DIR] [--fresh] [--accept-changes]
                    [--allow-any-class] [--print_config] [--help]
  export RECIPE [--key.path=value ...]   (export + profile the trained student of a finished run)
  search RECIPE [--n-trials N] [--storage URL] [--study-name NAME] [--workers K] [--report]
  profile TARGET [--input-shape 1,16] [--runtimes ...] [--json]
RECIPE --help lists the keys a recipe can set; see README.md for run folders and resume."""

FIT_FLAGS = ("--fresh", "--accept-changes")


def _configure_logging() -> None:
    import logging
    import warnings

    # Lightning's advice for multi-worker data loading does not apply: batches are cut from in-memory
    # tensors, and worker processes would cost more than the tiny models' steps
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # Lightning 2.6's own pytree helper calls torch's deprecated LeafSpec check on every batch transfer
    # (lightning/pytorch/utilities/_pytree.py); nothing a user can change: filtered at its source module
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def run_recipe(command: str, recipe, args: list[str] | None = None):
    """Run a recipe from Python: ``run_recipe("fit", "recipes/x.yaml", ["--trainer.max_epochs=2"])``.
    Returns a ``compress.run.RunResult`` (model, datamodule, trainer, run_dir, exported, metrics)."""
    from .recipe import prepare
    from .run import run

    return run(command, prepare(recipe, list(args or []), flags=FIT_FLAGS, command=command))


def _fit_like(command: str, rest: list[str]) -> int:
    from .recipe import prepare
    from .recipe.describe import describe_recipe, print_config

    prepared = prepare(None, rest, flags=FIT_FLAGS, command=command,
                       validate="--help" not in rest and "-h" not in rest)
    if prepared.flag("--help"):
        with prepared.allowing():
            print(describe_recipe(prepared.cfg, str(prepared.path)))
        return 0
    if prepared.flag("--print_config"):
        print(print_config(prepared.cfg), end="")
        return 0
    from .run import run

    run(command, prepared)
    return 0


def _dispatch(command: str, rest: list[str]) -> int:
    if command in ("fit", "validate", "test"):
        return _fit_like(command, rest)
    if command == "profile":
        from .profile.cli import main as profile_main
        return profile_main(rest) or 0
    if command == "export":
        from .run.export_run import export_run
        export_run(rest)
        return 0
    if command == "search":
        from .search.cli import main as search_main
        return search_main(rest) or 0
    raise RecipeError(f"unknown command '{command}'\n{USAGE}")


def _report(message: str) -> None:
    target = os.environ.get("COMPRESS_ERROR_FILE")
    if target:  # a parent process (teacher training) reports it, once, with its own context
        try:
            with open(target, "w") as f:
                f.write(message + "\n")
            return
        except OSError:
            pass
    print(f"error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from .run.children import bind_to_parent
    from .run.signals import RunInterrupted, install_cli_handlers

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    bind_to_parent()
    install_cli_handlers()
    os.environ.setdefault("WANDB_MODE", "offline")
    _configure_logging()
    command, rest = argv[0], argv[1:]
    try:
        return _dispatch(command, rest)
    except RunInterrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - user errors become one line; anything else re-raises
        if not is_user_error(exc):
            raise
        _report(first_line(exc))
        return 2
