"""Checks of recipe values against a class's signature: names, and a permissive type check."""
from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from typing import Any

from ..errors import RecipeError

__all__ = ["value_matches", "check_init_args", "type_name", "signature_params"]


def type_name(tp) -> str:
    if tp is inspect.Parameter.empty:
        return "any"
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    return str(tp).replace("typing.", "") if typing.get_args(tp) else getattr(tp, "__name__", str(tp))


def value_matches(value: Any, tp: Any) -> bool:
    """A permissive check of a YAML value against a type hint: simple types are checked, class types
    accept a ``class_path`` mapping, anything not understood passes (the constructor checks it)."""
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


def signature_params(cls) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    """(parameters, resolved type hints) of a class's constructor; empty when not introspectable."""
    try:
        params = dict(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return {}, {}
    try:
        hints = typing.get_type_hints(cls.__init__) if inspect.isclass(cls) else typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolvable annotations are simply not checked
        hints = {}
    return params, hints


def check_init_args(cls, init_args: dict, key: str, args_key: str | None = None) -> None:
    params, hints = signature_params(cls)
    if not params:
        return
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
            raise RecipeError(f"{args_key}.{name}: expected {type_name(tp)}, got {value!r}")
    missing = [n for n, p in params.items() if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD,
               p.KEYWORD_ONLY) and n not in init_args]
    if missing:
        raise RecipeError(f"{args_key}: missing required argument(s) {', '.join(missing)} for "
                          f"{cls.__module__}.{cls.__qualname__}")
