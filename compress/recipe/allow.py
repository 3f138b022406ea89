"""The allow list: which classes a recipe may name.

A recipe is data, and loading it must not run code its author did not write into this project.  A
``class_path`` must name a *class* (not a function such as ``torch.load``, ``os.system`` or
``torch.distributed.run.main``) defined in an allowed package:

* this project: ``compress``, ``tasks``, ``envs``;
* ``torch.nn``, ``torch.optim``, ``torch.utils.data`` (layers, losses, optimizers, data loaders);
* Lightning's ``callbacks``, ``loggers``, ``strategies``, ``plugins``, ``profilers``, ``accelerators``;
* ``torchmetrics``.

The check is on the name (so nothing outside the list is even imported) and again on the object
(a class, whose ``__module__`` is inside the list, so an allowed module cannot re-export a foreign
class).  ``--allow-any-class`` on the command line lifts the list for that process and the processes it
starts (teacher training); a recipe cannot lift it.
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
from typing import Iterator

from ..errors import RecipeError

__all__ = ["ALLOWED_PACKAGES", "import_class", "check_class_path", "allowing_any_class", "any_class_allowed"]

ALLOWED_PACKAGES = (
    "compress", "tasks", "envs",
    "torch.nn", "torch.optim", "torch.utils.data",
    "lightning.pytorch.callbacks", "lightning.pytorch.loggers", "lightning.pytorch.strategies",
    "lightning.pytorch.plugins", "lightning.pytorch.profilers", "lightning.pytorch.accelerators",
    "torchmetrics",
)

_ALLOW_ANY = contextvars.ContextVar("compress_allow_any_class", default=False)


@contextlib.contextmanager
def allowing_any_class(enabled: bool = True) -> Iterator[None]:
    """Within this block, ``import_class`` accepts classes from any package (the CLI's flag)."""
    token = _ALLOW_ANY.set(bool(enabled) or _ALLOW_ANY.get())
    try:
        yield
    finally:
        _ALLOW_ANY.reset(token)


def any_class_allowed() -> bool:
    return _ALLOW_ANY.get()


def _allowed(dotted: str) -> bool:
    return any(dotted == p or dotted.startswith(p + ".") for p in ALLOWED_PACKAGES)


def check_class_path(path, key: str) -> None:
    """Check the *name* before anything is imported."""
    if not isinstance(path, str) or not path:
        raise RecipeError(f"{key}: class_path must be a string, got {type(path).__name__}")
    if "." not in path:
        raise RecipeError(f"{key}: class_path '{path}' must be a full dotted path (e.g. "
                          f"lightning.pytorch.callbacks.{path})")
    if not any_class_allowed() and not _allowed(path.rpartition(".")[0]):
        raise RecipeError(f"{key}: class '{path}' is outside the allow list ({', '.join(ALLOWED_PACKAGES)}); "
                          "pass --allow-any-class on the command line to permit it")


def import_class(path: str, key: str = "class_path"):
    """Import and return the class named by ``path``; a ``RecipeError`` naming ``key`` otherwise."""
    check_class_path(path, key)
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RecipeError(f"{key}: cannot import module '{module_name}' ({exc})") from None
    if not hasattr(module, attr):
        raise RecipeError(f"{key}: module '{module_name}' has no class '{attr}'")
    obj = getattr(module, attr)
    if not inspect.isclass(obj):
        raise RecipeError(f"{key}: '{path}' is a {type(obj).__name__}, not a class; a recipe can only name "
                          "classes")
    if not any_class_allowed() and not _allowed(obj.__module__):
        raise RecipeError(f"{key}: '{path}' is {obj.__module__}.{obj.__qualname__}, outside the allow list; "
                          "pass --allow-any-class on the command line to permit it")
    return obj
