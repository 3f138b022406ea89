"""Recipes: one YAML file = one reproducible job.

A recipe is a LightningCLI config (``seed_everything``, ``trainer``, ``model``, ``data``) plus this
project's own sections, which the CLI handles around ``fit``:

* ``run_dir``: where logs, checkpoints, the student and artifacts go (default ``runs/<recipe stem>``);
* ``logger``: ``csv`` (default) or ``wandb`` (offline unless ``WANDB_MODE`` says otherwise);
* ``export``: what to write after training (student weights, ONNX fp32/int8, C source, profile);
* ``after_fit``: a list of ``class_path`` hooks (e.g. a task's closed-loop evaluation) called after
  export as ``hook(module=..., datamodule=..., run_dir=..., exported=...)``.

Recipes are loaded with ``yaml.safe_load`` and validated before anything runs: unknown keys, wrong
types, missing files and classes outside the allow list are one-line errors naming the key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import yaml

from .spec import RecipeError, check_init_args, import_class

__all__ = ["load_recipe", "validate_recipe", "iter_specs", "RecipeError", "LIGHTNING_KEYS", "PROJECT_KEYS", "EXPORT_KEYS"]

LIGHTNING_KEYS = {"seed_everything", "trainer", "model", "data", "ckpt_path", "optimizer", "lr_scheduler"}
PROJECT_KEYS = {"run_dir", "logger", "export", "search", "after_fit"}
EXPORT_KEYS = {"checkpoint", "onnx", "onnx_int8", "c", "c_int8", "profile", "input_shape", "runtimes", "dir"}
_EXPORT_TYPES = {"checkpoint": str, "onnx": bool, "onnx_int8": bool, "c": bool, "c_int8": bool, "profile": bool,
                 "input_shape": list, "runtimes": list, "dir": str}
_FILE_KEYS = {"recipe"}  # init_args that must name an existing file


def load_recipe(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RecipeError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections, got {type(cfg).__name__}")
    return cfg


def iter_specs(node: Any, key: str = "recipe") -> Iterator[tuple[str, dict]]:
    """Every ``{class_path, init_args}`` mapping under ``node`` with its dotted key, parents before the
    specs in their ``init_args``; lists and plain mappings are walked."""
    if isinstance(node, dict):
        if "class_path" in node:
            yield key, node
            args = node.get("init_args") or {}
            if isinstance(args, dict):
                for name, value in args.items():
                    yield from iter_specs(value, f"{key}.init_args.{name}")
            return
        for k, v in node.items():
            yield from iter_specs(v, f"{key}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from iter_specs(v, f"{key}[{i}]")


def _walk_specs(node: Any, key: str, allow_any: bool) -> None:
    for key, spec in iter_specs(node, key):
        extra = set(spec) - {"class_path", "init_args", "dict_kwargs"}
        if extra:
            raise RecipeError(f"{key}: unknown key(s) {', '.join(sorted(extra))} beside class_path "
                              "(put arguments under init_args)")
        cls = import_class(spec["class_path"], f"{key}.class_path", allow_any)
        args = spec.get("init_args") or {}
        if not isinstance(args, dict):
            raise RecipeError(f"{key}.init_args must be a mapping, got {type(args).__name__}")
        check_init_args(cls, args, key)
        for name, value in args.items():
            if name in _FILE_KEYS and isinstance(value, str) and not Path(value).is_file():
                raise RecipeError(f"{key}.init_args.{name}: file not found: {value}")


def validate_recipe(cfg: dict, path: str | Path = "recipe", allow_any: bool = False) -> dict:
    """Check sections, keys, class paths, argument names, files. Returns ``cfg`` unchanged."""
    path = Path(path)
    unknown = set(cfg) - LIGHTNING_KEYS - PROJECT_KEYS
    if unknown:
        raise RecipeError(f"{path}: unknown top-level key '{sorted(unknown)[0]}' (allowed: "
                          f"{', '.join(sorted(LIGHTNING_KEYS | PROJECT_KEYS))})")
    for section in ("model", "data"):
        if section in cfg and not (isinstance(cfg[section], dict) and "class_path" in cfg[section]):
            raise RecipeError(f"{path}: '{section}' must be a mapping with class_path and init_args")
    if "trainer" in cfg and not isinstance(cfg["trainer"], dict):
        raise RecipeError(f"{path}: 'trainer' must be a mapping of Trainer arguments")
    if "seed_everything" in cfg and not isinstance(cfg["seed_everything"], (int, bool)):
        raise RecipeError(f"{path}: seed_everything must be an integer, got {cfg['seed_everything']!r}")
    if cfg.get("logger", "csv") not in ("csv", "wandb"):
        raise RecipeError(f"{path}: logger must be 'csv' or 'wandb', got {cfg['logger']!r}")
    if "run_dir" in cfg and not isinstance(cfg["run_dir"], str):
        raise RecipeError(f"{path}: run_dir must be a string path")
    export = cfg.get("export") or {}
    if not isinstance(export, dict):
        raise RecipeError(f"{path}: export must be a mapping")
    for k, v in export.items():
        if k not in EXPORT_KEYS:
            raise RecipeError(f"{path}: unknown key 'export.{k}' (allowed: {', '.join(sorted(EXPORT_KEYS))})")
        if not isinstance(v, _EXPORT_TYPES[k]):
            raise RecipeError(f"{path}: export.{k} must be {_EXPORT_TYPES[k].__name__}, got {v!r}")
    callbacks = (cfg.get("trainer") or {}).get("callbacks") or []
    has_qat = any(isinstance(c, dict) and str(c.get("class_path", "")).endswith("QATCallback") for c in callbacks)
    for key in ("onnx_int8", "c_int8"):
        if export.get(key) and not has_qat:
            raise RecipeError(f"{path}: export.{key} needs a QAT-trained student: add "
                              "compress.quant.QATCallback to trainer.callbacks")
    if "ckpt_path" in cfg and cfg["ckpt_path"] not in (None, "last", "best") and not Path(cfg["ckpt_path"]).is_file():
        raise RecipeError(f"{path}: ckpt_path: file not found: {cfg['ckpt_path']}")
    if isinstance(cfg.get("trainer"), dict):
        from lightning.pytorch import Trainer

        check_init_args(Trainer, cfg["trainer"], "trainer", args_key="trainer")
    hooks = cfg.get("after_fit") or []
    if not isinstance(hooks, list) or not all(isinstance(h, dict) and "class_path" in h for h in hooks):
        raise RecipeError(f"{path}: after_fit must be a list of {{class_path, init_args}} hooks")
    for section in ("model", "data", "trainer", "optimizer", "lr_scheduler", "after_fit"):
        if section in cfg:
            _walk_specs(cfg[section], section, allow_any)
    return cfg
