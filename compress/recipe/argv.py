"""The one command-line parser of ``python -m compress`` commands that take a recipe.

    COMMAND RECIPE [--key.path=value | --key.path value ...] [--flag ...] [--option value ...]
    COMMAND -c RECIPE ...  /  COMMAND --config RECIPE ...

``flags`` are bare switches (``--fresh``); ``options`` take one value (``--n-trials 8`` or
``--n-trials=8``); every other ``--key`` is a recipe override (a dotted path, value parsed as YAML
1.2).  A value may start with ``-`` (``--trainer.max_epochs -5``) but not with ``--``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import RecipeError

__all__ = ["CommandLine", "parse_command_line", "COMMON_FLAGS"]

COMMON_FLAGS = ("--allow-any-class", "--help", "-h", "--print_config", "--print-config")


@dataclass
class CommandLine:
    recipe: str | None = None
    overrides: list[tuple[str, str]] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    options: dict[str, str] = field(default_factory=dict)

    def as_argv(self) -> list[str]:
        """Overrides and flags back as arguments (for a child process running the same recipe)."""
        out = [f"--{k}={v}" for k, v in self.overrides]
        out += sorted(f for f in self.flags if f not in ("--help", "-h", "--print_config", "--print-config"))
        return out


def parse_command_line(args: list[str], flags: tuple[str, ...] = (), options: tuple[str, ...] = (),
                       command: str = "fit") -> CommandLine:
    flags = tuple(flags) + COMMON_FLAGS
    out = CommandLine()
    i = 0
    while i < len(args):
        arg = args[i]
        key, sep, val = arg.partition("=")
        if arg in flags:
            out.flags.add("--print_config" if arg == "--print-config" else "--help" if arg == "-h" else arg)
        elif key in ("-c", "--config"):
            path = val if sep else (args[i + 1] if i + 1 < len(args) else None)
            if not sep:
                i += 1
            if not path or path.startswith("-"):
                raise RecipeError(f"{key} needs a recipe file: python -m compress {command} -c recipes/X.yaml")
            if out.recipe is not None:
                raise RecipeError(f"two recipes given ({out.recipe} and {path}): give one")
            out.recipe = path
        elif key in options:
            if not sep:
                if i + 1 >= len(args) or args[i + 1].startswith("--"):
                    raise RecipeError(f"{key} needs a value")
                val = args[i + 1]
                i += 1
            out.options[key] = val
        elif arg.startswith("--") and len(arg) > 2:
            if not sep:
                if i + 1 >= len(args) or args[i + 1].startswith("--"):
                    raise RecipeError(f"cannot parse argument '{arg}': overrides look like --trainer.max_epochs=3"
                                      f" (flags: {', '.join(f for f in flags if f.startswith('--'))})")
                val = args[i + 1]
                i += 1
            out.overrides.append((key[2:], val))
        elif not arg.startswith("-") and out.recipe is None:
            out.recipe = arg
        else:
            raise RecipeError(f"cannot parse argument '{arg}': overrides look like --trainer.max_epochs=3")
        i += 1
    return out
