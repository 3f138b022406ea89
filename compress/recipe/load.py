"""Reading a recipe file (YAML 1.2, safe) and applying dotted command-line overrides."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import RecipeError
from .yaml12 import load_yaml, parse_scalar

__all__ = ["load_recipe", "apply_override", "get_path"]


def load_recipe(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        cfg = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{path}: invalid YAML{where}: {problem}") from None
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections, got {type(cfg).__name__}")
    return cfg


def apply_override(cfg: dict, dotted: str, raw: Any) -> None:
    """``--a.b.c=value``: set ``cfg[a][b][c]`` (value parsed as YAML 1.2 when it is a string).

    Inside a class spec ``init_args`` may be skipped (``--model.lr`` = ``--model.init_args.lr``);
    list items are addressed by index (``--after_fit.0.init_args.seeds=[1, 2]``)."""
    value = parse_scalar(raw) if isinstance(raw, str) else raw
    parts = dotted.split(".")
    if not dotted or any(not p for p in parts):
        raise RecipeError(f"override --{dotted}: empty key")
    node = cfg
    for i, part in enumerate(parts[:-1]):
        node = _descend(node, part, dotted, parts[:i])
    last = parts[-1]
    if isinstance(node, dict) and "class_path" in node and last not in ("class_path", "init_args"):
        node = node.setdefault("init_args", {})
    if isinstance(node, list):
        try:
            node[int(last)] = value
            return
        except (ValueError, IndexError):
            raise RecipeError(f"override --{dotted}: '{last}' is not an index of the list at "
                              f"{'.'.join(parts[:-1])}") from None
    if not isinstance(node, dict):
        raise RecipeError(f"override --{dotted}: {'.'.join(parts[:-1]) or 'recipe'} is not a mapping")
    node[last] = value


def _descend(node, part: str, dotted: str, before: list[str]):
    if isinstance(node, dict) and "class_path" in node and part not in ("class_path", "init_args"):
        node = node.setdefault("init_args", {})
    if isinstance(node, list):
        try:
            return node[int(part)]
        except (ValueError, IndexError):
            raise RecipeError(f"override --{dotted}: '{part}' is not an index of the list at "
                              f"{'.'.join(before)}") from None
    if not isinstance(node, dict):
        raise RecipeError(f"override --{dotted}: {'.'.join(before) or 'recipe'} is not a mapping")
    child = node.get(part)
    if not isinstance(child, (dict, list)):
        child = node[part] = {}
    return child


def get_path(cfg: dict, dotted: str, default: Any = None) -> Any:
    """The value at a dotted path (``init_args`` may be skipped as in overrides), or ``default``."""
    node: Any = cfg
    for part in dotted.split("."):
        if isinstance(node, dict) and "class_path" in node and part not in ("class_path", "init_args"):
            node = node.get("init_args") or {}
        if isinstance(node, list):
            try:
                node = node[int(part)]
                continue
            except (ValueError, IndexError):
                return default
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
