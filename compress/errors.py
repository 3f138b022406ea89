"""One family for bad input, so the CLI can tell a user's mistake from a bug.

* ``UserError`` (a ``ValueError``): the input is wrong — a recipe key, an argument, a file, a shape.
  The CLI prints its first line (``error: ...``) and exits with code 2.  The message names the key,
  file or shape and, where there is one, the way out.
* Anything else is a bug (ours or a library's): the CLI lets it raise, with its full traceback
  (exit code 1).

A package that must not import ``compress`` (``envs/``, by the project's layering) marks its
bad-input exception classes with the class attribute ``user_error = True``; ``is_user_error`` honours
the mark.  Lightning's ``MisconfigurationException`` (a bad Trainer argument) is a user error too.
"""
from __future__ import annotations

__all__ = ["UserError", "RecipeError", "is_user_error", "first_line"]


class UserError(ValueError):
    """Bad input: the message names the key, file or shape (and the way out)."""

    user_error = True


class RecipeError(UserError):
    """A bad recipe or override: the message names the file and the key."""


def is_user_error(exc: BaseException) -> bool:
    if getattr(type(exc), "user_error", False) is True:
        return True
    return type(exc).__name__ == "MisconfigurationException" and type(exc).__module__.startswith("lightning")


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its class name if it has none)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
