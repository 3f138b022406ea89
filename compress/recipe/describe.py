"""``python -m compress fit RECIPE --help``: what this recipe can set, with types and defaults.

For every class spec in the merged recipe (model, data, callbacks, hooks, nested specs) the
constructor's arguments are listed as ``--<dotted key>=VALUE  type  (default ...; recipe: ...)``, the
same dotted keys an override takes; the Trainer's arguments and this project's sections follow.
"""
from __future__ import annotations

import inspect

import yaml

from .allow import import_class
from .types import signature_params, type_name
from .validate import EXPORT_KEYS, iter_specs

__all__ = ["describe_recipe", "print_config"]


def _fmt(value) -> str:
    if value is inspect.Parameter.empty:
        return "required"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _class_lines(key: str, cls, given: dict) -> list[str]:
    params, hints = signature_params(cls)
    lines = [f"{key}: {cls.__module__}.{cls.__qualname__}"]
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    if doc:
        lines[0] += f"  -- {doc[0][:90]}"
    for name, p in params.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        tp = type_name(hints.get(name, p.annotation))
        where = "" if name not in given else f"; recipe: {_fmt(given[name])}"
        lines.append(f"  --{key}.init_args.{name}  {tp}  (default {_fmt(p.default)}{where})")
    return lines


def describe_recipe(cfg: dict, path: str = "recipe") -> str:
    out = [f"usage: python -m compress fit|validate|test {path} [--key.path=value ...] [--fresh] "
           "[--accept-changes] [--allow-any-class] [--print_config]",
           "", "Overrides are dotted paths into the recipe (values parsed as YAML 1.2); inside a class spec "
           "'init_args.' may be left out.", ""]
    for key, spec in iter_specs({k: cfg[k] for k in ("model", "data", "trainer", "after_fit") if k in cfg}, ""):
        key = key.lstrip(".").replace("[", ".").replace("]", "")
        try:
            cls = import_class(spec["class_path"], f"{key}.class_path")
        except Exception:  # noqa: BLE001 - validation reports it; help stays readable
            out += [f"{key}: {spec.get('class_path')} (cannot be imported)", ""]
            continue
        out += _class_lines(key, cls, spec.get("init_args") or {}) + [""]
    from lightning.pytorch import Trainer

    params, hints = signature_params(Trainer)
    given = cfg.get("trainer") or {}
    out.append("trainer: lightning.pytorch.Trainer")
    for name, p in params.items():
        if name in ("logger",):
            continue
        where = "" if name not in given else f"; recipe: {_fmt(given[name])}"
        out.append(f"  --trainer.{name}  {type_name(hints.get(name, p.annotation))}  (default {_fmt(p.default)}{where})")
    out += ["", "project sections:",
            f"  --seed_everything  int  (recipe: {cfg.get('seed_everything', 0)})",
            f"  --run_dir  str  (default runs/<recipe stem>; recipe: {cfg.get('run_dir', '-')})",
            f"  --logger  csv | wandb  (recipe: {cfg.get('logger', 'csv')})",
            "  --ckpt_path  str  (resume or score this checkpoint instead of run_dir/checkpoints/last.ckpt)",
            f"  --export.<key>  one of {', '.join(sorted(EXPORT_KEYS))}  (recipe: {cfg.get('export') or '-'})",
            "  after_fit: list of {class_path, init_args} hooks called after training and export"]
    return "\n".join(out)


def print_config(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
