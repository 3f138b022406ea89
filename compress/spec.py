"""Safe handling of ``class_path`` / ``init_args`` specs from recipes.

Only classes from this project and its core libraries are instantiated from a recipe unless the
user passes an explicit allow flag: a YAML file should not be able to run arbitrary code.
"""
from __future__ import annotations

import collections.abc
import importlib
import inspect
import types
import typing
from typing import Any

__all__ = ["ALLOWED_PREFIXES", "import_class", "instantiate", "check_class_path", "RecipeError"]

ALLOWED_PREFIXES = ("compress.", "tasks.", "envs.", "torch.", "lightning.", "pytorch_lightning.",
                    "torchmetrics.")


class RecipeError(ValueError):
    """A bad recipe: the message names the file and the key."""


def check_class_path(path: Any, key: str, allow_any: bool = False) -> None:
    if not isinstance(path, str) or not path:
        raise RecipeError(f"{key}: class_path must be a string, got {type(path).__name__}")
    if "." not in path:
        raise RecipeError(f"{key}: class_path '{path}' must be a full dotted path (e.g. "
                          f"lightning.pytorch.callbacks.{path})")
    if not allow_any and not path.startswith(ALLOWED_PREFIXES):
        raise RecipeError(f"{key}: class '{path}' is outside the allow list "
                          f"({', '.join(p.rstrip('.') for p in ALLOWED_PREFIXES)}); pass --allow-any-class to "
                          "permit it")


def import_class(path: str, key: str = "class_path", allow_any: bool = False):
    check_class_path(path, key, allow_any)
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RecipeError(f"{key}: cannot import module '{module_name}' ({exc})") from None
    if not hasattr(module, attr):
        raise RecipeError(f"{key}: module '{module_name}' has no class '{attr}'")
    return getattr(module, attr)


def _type_name(tp) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    return str(tp).replace("typing.", "") if typing.get_args(tp) else getattr(tp, "__name__", str(tp))


def value_matches(value: Any, tp: Any) -> bool:
    """A permissive check of a YAML value against a type hint: simple types are checked, class types
    accept a ``class_path`` mapping, anything not understood passes (jsonargparse checks it later)."""
    if tp is inspect.Parameter.empty or tp is Any:
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(value_matches(value, a) for a in args)
    if tp is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple, collections.abc.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(value_matches(v, a) for v, a in zip(value, args))
        return not args or all(value_matches(v, args[0]) for v in value)
    if origin in (dict, collections.abc.Mapping) or tp is dict:
        return isinstance(value, dict)
    if inspect.isclass(tp) and isinstance(value, dict) and "class_path" in value:
        return True
    if inspect.isclass(tp) and isinstance(value, (int, float, str, bool, list)) and tp.__module__ != "typing":
        return isinstance(value, tp)
    return True


def check_init_args(cls, init_args: dict, key: str, args_key: str | None = None) -> None:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    try:
        hints = typing.get_type_hints(cls.__init__) if inspect.isclass(cls) else typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolvable annotations are simply not checked
        hints = {}
    args_key = args_key or f"{key}.init_args"
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params.values())
    for name, value in init_args.items():
        if name not in params:
            if var_kw:
                continue
            accepted = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            raise RecipeError(f"{args_key}: unknown argument '{name}' for {cls.__module__}.{cls.__qualname__}"
                              f" (accepts: {', '.join(accepted)})")
        tp = hints.get(name, inspect.Parameter.empty)
        if not value_matches(value, tp):
            raise RecipeError(f"{args_key}.{name}: expected {_type_name(tp)}, got {value!r}")


def instantiate(spec: Any, key: str = "spec", allow_any: bool = False):
    """Build nested ``{class_path, init_args}`` specs; lists and dicts are walked."""
    if isinstance(spec, dict) and "class_path" in spec:
        cls = import_class(spec["class_path"], f"{key}.class_path", allow_any)
        args = spec.get("init_args") or {}
        if not isinstance(args, dict):
            raise RecipeError(f"{key}.init_args must be a mapping")
        check_init_args(cls, args, key)
        built = {k: instantiate(v, f"{key}.init_args.{k}", allow_any) for k, v in args.items()}
        return cls(**built)
    if isinstance(spec, dict):
        return {k: instantiate(v, f"{key}.{k}", allow_any) for k, v in spec.items()}
    if isinstance(spec, list):
        return [instantiate(v, f"{key}[{i}]", allow_any) for i, v in enumerate(spec)]
    return spec
