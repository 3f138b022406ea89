"""Validation of a merged recipe, before anything runs.

A recipe is ``seed_everything``, ``trainer`` (Lightning Trainer arguments), ``model`` and ``data``
(``class_path`` + ``init_args``), ``ckpt_path``, plus this project's sections: ``run_dir``, ``logger``
(``csv`` | ``wandb``), ``export``, ``after_fit`` (hooks) and ``search``.  Checked here: sections and
their types, every class spec anywhere in the recipe (allow list, argument names, simple types,
required arguments), files that must exist, and every recipe a spec refers to (``recipe:`` arguments,
e.g. a ``RecipeTeacher``'s), recursively, so an error in a teacher's recipe is reported once, naming
that recipe's file and key, before anything trains.  Errors are ``RecipeError``: one line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from ..errors import RecipeError
from .allow import import_class
from .types import check_init_args

__all__ = ["validate_recipe", "iter_specs", "LIGHTNING_KEYS", "PROJECT_KEYS", "EXPORT_KEYS", "TRAINING_KEYS"]

LIGHTNING_KEYS = {"seed_everything", "trainer", "model", "data", "ckpt_path"}
PROJECT_KEYS = {"run_dir", "logger", "export", "search", "after_fit"}
# what decides the trained state: a resume must see the same values (compress.run.folder)
TRAINING_KEYS = ("seed_everything", "trainer", "model", "data")
EXPORT_KEYS = {"checkpoint", "onnx", "onnx_int8", "c", "c_int8", "int8", "calibration_batches", "profile",
               "input_shape", "runtimes", "dir"}
_EXPORT_TYPES = {"checkpoint": str, "onnx": bool, "onnx_int8": bool, "c": bool, "c_int8": bool, "int8": str,
                 "calibration_batches": int, "profile": bool, "input_shape": list, "runtimes": list, "dir": str}
_FILE_KEYS = {"recipe"}  # init_args that must name an existing file (a nested recipe when it ends in .yaml)


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


def _walk_specs(node: Any, key: str, seen: set) -> None:
    for key, spec in iter_specs(node, key):
        extra = set(spec) - {"class_path", "init_args"}
        if extra:
            raise RecipeError(f"{key}: unknown key(s) {', '.join(sorted(extra))} beside class_path "
                              "(put arguments under init_args)")
        cls = import_class(spec["class_path"], f"{key}.class_path")
        args = spec.get("init_args") or {}
        if not isinstance(args, dict):
            raise RecipeError(f"{key}.init_args must be a mapping, got {type(args).__name__}")
        check_init_args(cls, args, key)
        for name, value in args.items():
            if name in _FILE_KEYS and isinstance(value, str):
                if not Path(value).is_file():
                    raise RecipeError(f"{key}.init_args.{name}: file not found: {value}")
                if value.endswith((".yaml", ".yml")):
                    try:
                        _validate_nested(Path(value), seen)
                    except RecipeError as exc:
                        inner = str(exc)
                        inner = inner if inner.startswith(value) else f"{value}: {inner}"
                        raise RecipeError(f"{key}.init_args.{name}: in that recipe, {inner}") from None


def _validate_nested(path: Path, seen: set) -> None:
    from .load import load_recipe

    real = path.resolve()
    if real in seen:
        raise RecipeError(f"{path}: recipes refer to each other in a cycle ({' -> '.join(map(str, seen))})")
    _validate(load_recipe(path), path, seen | {real})


def validate_recipe(cfg: dict, path: str | Path = "recipe") -> dict:
    """Check sections, keys, class paths, argument names, files, nested recipes. Returns ``cfg``."""
    path = Path(path)
    return _validate(cfg, path, {path.resolve()})


def _validate(cfg: dict, path: Path, seen: set) -> dict:
    unknown = set(cfg) - LIGHTNING_KEYS - PROJECT_KEYS
    if unknown:
        raise RecipeError(f"{path}: unknown top-level key '{sorted(unknown)[0]}' (allowed: "
                          f"{', '.join(sorted(LIGHTNING_KEYS | PROJECT_KEYS))})")
    for section in ("model", "data"):
        if section in cfg and not (isinstance(cfg[section], dict) and "class_path" in cfg[section]):
            raise RecipeError(f"{path}: '{section}' must be a mapping with class_path and init_args")
    if "trainer" in cfg and not isinstance(cfg["trainer"], dict):
        raise RecipeError(f"{path}: 'trainer' must be a mapping of Trainer arguments")
    seed = cfg.get("seed_everything", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise RecipeError(f"{path}: seed_everything must be an integer in [0, 2**32), got {seed!r}")
    if cfg.get("logger", "csv") not in ("csv", "wandb"):
        raise RecipeError(f"{path}: logger must be 'csv' or 'wandb', got {cfg['logger']!r}")
    if "run_dir" in cfg and not (isinstance(cfg["run_dir"], str) and cfg["run_dir"]):
        raise RecipeError(f"{path}: run_dir must be a non-empty string path")
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
    if export.get("int8") not in (None, "qat", "ptq"):
        raise RecipeError(f"{path}: export.int8 must be 'qat' or 'ptq', got {export['int8']!r}")
    if export.get("int8") == "qat" and not has_qat:
        raise RecipeError(f"{path}: export.int8 is 'qat' but trainer.callbacks has no compress.quant.QATCallback")
    if "calibration_batches" in export and export["calibration_batches"] < 1:
        raise RecipeError(f"{path}: export.calibration_batches must be >= 1, got {export['calibration_batches']}")
    for key in ("onnx_int8", "c_int8"):
        if export.get(key) and not has_qat and export.get("int8") != "ptq":
            raise RecipeError(f"{path}: export.{key} needs int8 scales: add compress.quant.QATCallback to "
                              "trainer.callbacks (QAT), or set export.int8: ptq (post-training calibration)")
    ckpt = cfg.get("ckpt_path")
    if ckpt is not None and (not isinstance(ckpt, str) or not Path(ckpt).is_file()):
        raise RecipeError(f"{path}: ckpt_path: file not found: {ckpt}")
    if isinstance(cfg.get("trainer"), dict):
        from lightning.pytorch import Trainer

        check_init_args(Trainer, cfg["trainer"], "trainer", args_key="trainer")
        _check_trainer_values(cfg["trainer"], path)
    hooks = cfg.get("after_fit") or []
    if not isinstance(hooks, list) or not all(isinstance(h, dict) and "class_path" in h for h in hooks):
        raise RecipeError(f"{path}: after_fit must be a list of {{class_path, init_args}} hooks")
    for section in ("model", "data", "trainer", "after_fit"):
        if section in cfg:
            _walk_specs(cfg[section], section, seen)
    return cfg


_NON_NEGATIVE = ("max_epochs", "min_epochs", "max_steps", "min_steps", "log_every_n_steps",
                 "num_sanity_val_steps", "accumulate_grad_batches", "check_val_every_n_epoch",
                 "reload_dataloaders_every_n_epochs")


def _check_trainer_values(trainer: dict, path: Path) -> None:
    """Values Lightning would accept and then misbehave on, or reject with a traceback."""
    for key in _NON_NEGATIVE:
        v = trainer.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v < 0 and not (key in ("max_epochs", "max_steps")
                                                                             and v == -1):
            raise RecipeError(f"{path}: trainer.{key} must be >= 0 (or -1 for no limit where Lightning allows it), "
                              f"got {v}")
    for key in ("accumulate_grad_batches", "log_every_n_steps", "check_val_every_n_epoch"):
        v = trainer.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v == 0:
            raise RecipeError(f"{path}: trainer.{key} must be >= 1, got 0")
    gc = trainer.get("gradient_clip_val")
    if isinstance(gc, (int, float)) and not isinstance(gc, bool) and not (gc >= 0 and gc != float("inf")):
        raise RecipeError(f"{path}: trainer.gradient_clip_val must be a finite number >= 0, got {gc}")
