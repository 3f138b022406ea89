"""``prepare(path, argv)``: load -> overrides -> validation, in one place, for every command."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import RecipeError
from .allow import allowing_any_class
from .argv import CommandLine, parse_command_line
from .load import apply_override, load_recipe
from .validate import validate_recipe

__all__ = ["Prepared", "prepare", "run_dir_of"]


def run_dir_of(cfg: dict, recipe: str | Path) -> Path:
    """``run_dir`` of a recipe: its own key, else ``runs/<recipe stem>``."""
    return Path(cfg.get("run_dir") or Path("runs") / Path(recipe).stem)


@dataclass
class Prepared:
    """A merged, validated recipe and the command line that made it."""

    path: Path
    cfg: dict
    line: CommandLine

    @property
    def allow_any(self) -> bool:
        return "--allow-any-class" in self.line.flags

    @property
    def run_dir(self) -> Path:
        return run_dir_of(self.cfg, self.path)

    def flag(self, name: str) -> bool:
        return name in self.line.flags

    def allowing(self):
        """Context in which this recipe's classes may be built (``--allow-any-class`` honoured)."""
        return allowing_any_class(self.allow_any)


def prepare(path: str | Path | None, argv: list[str] | tuple[str, ...] = (), flags: tuple[str, ...] = (),
            options: tuple[str, ...] = (), command: str = "fit", validate: bool = True) -> Prepared:
    """Parse ``argv`` (overrides, flags, options), load the recipe, apply the overrides, validate.

    ``path`` may be None when the recipe is in ``argv`` (positional, ``-c`` or ``--config``)."""
    line = parse_command_line(list(argv), flags=flags, options=options, command=command)
    if path is not None and line.recipe is not None and Path(line.recipe) != Path(path):
        raise RecipeError(f"two recipes given ({path} and {line.recipe}): give one")
    path = path if path is not None else line.recipe
    if path is None:
        raise RecipeError(f"'{command}' needs a recipe file: python -m compress {command} recipes/X.yaml")
    line.recipe = str(path)
    cfg = load_recipe(path)
    for key, value in line.overrides:
        apply_override(cfg, key, value)
    out = Prepared(Path(path), cfg, line)
    if validate:
        with out.allowing():
            validate_recipe(cfg, path)
    return out
