"""Build the objects a recipe describes: nested ``{class_path, init_args}`` specs, depth first.

Every class goes through the allow list (``compress.recipe.allow``) and its arguments through the
signature check, so a spec built here is the spec that was validated.  Errors name the recipe key:

* a user error (``compress.UserError`` family) raised while building a spec is re-raised as a
  ``RecipeError`` that starts with the spec's key;
* a ``ValueError`` / ``TypeError`` raised by the constructor itself (the last frame of its traceback
  is an ``__init__`` of the class, or the call that bound the arguments) is a rejected argument, and
  is reported the same way;
* anything raised deeper inside a constructor is a bug and keeps its traceback.
"""
from __future__ import annotations

from typing import Any

from ..errors import RecipeError, first_line, is_user_error
from .allow import import_class
from .types import check_init_args

__all__ = ["instantiate"]


def _constructor_codes(cls) -> set:
    codes = set()
    for klass in getattr(cls, "__mro__", (cls,)):
        for name in ("__init__", "__post_init__"):
            fn = klass.__dict__.get(name) if hasattr(klass, "__dict__") else None
            code = getattr(fn, "__code__", None)
            if code is not None:
                codes.add(code)
    return codes


def _raised_by_constructor(exc: BaseException, cls) -> bool:
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return code is _instantiate_code or code in _constructor_codes(cls)


def instantiate(spec: Any, key: str = "spec"):
    """Build ``spec``: a class spec becomes an instance, lists and mappings are walked, the rest is kept."""
    if isinstance(spec, dict) and "class_path" in spec:
        cls = import_class(spec["class_path"], f"{key}.class_path")
        args = spec.get("init_args") or {}
        if not isinstance(args, dict):
            raise RecipeError(f"{key}.init_args must be a mapping, got {type(args).__name__}")
        check_init_args(cls, args, key)
        built = {k: instantiate(v, f"{key}.init_args.{k}") for k, v in args.items()}
        try:
            return cls(**built)
        except RecipeError as exc:
            if str(exc).startswith(key):
                raise
            raise RecipeError(f"{key}: {first_line(exc)}") from exc
        except Exception as exc:  # noqa: BLE001 - sorted into user errors and bugs below
            if is_user_error(exc) or (isinstance(exc, (ValueError, TypeError)) and _raised_by_constructor(exc, cls)):
                raise RecipeError(f"{key}: {first_line(exc)}") from exc
            raise
    if isinstance(spec, dict):
        return {k: instantiate(v, f"{key}.{k}") for k, v in spec.items()}
    if isinstance(spec, list):
        return [instantiate(v, f"{key}[{i}]") for i, v in enumerate(spec)]
    return spec


_instantiate_code = instantiate.__code__
