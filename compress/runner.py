"""Run a validated recipe through LightningCLI, with this project's run folder conventions.

* ``run_dir`` (default ``runs/<recipe stem>``) holds ``recipe.yaml`` (the merged recipe that ran),
  ``logs/`` (CSV, or wandb offline), ``checkpoints/last.ckpt`` and ``student.pt``.
* ``fit`` resumes from ``checkpoints/last.ckpt`` when it exists (an interrupted run loses at most one
  epoch); ``validate``/``test`` use it too, so they score the trained student.
* After ``fit``: the student's weights are saved, then the ``export`` section runs (``pipeline``).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml

from .recipe import PROJECT_KEYS, RecipeError, load_recipe, validate_recipe

__all__ = ["run_lightning", "export_run", "run_dir_of", "save_student"]


def run_dir_of(cfg: dict, recipe: Path) -> Path:
    return Path(cfg.get("run_dir") or Path("runs") / recipe.stem)


def save_student(student: torch.nn.Module, spec: Any, path: Path) -> None:
    """Structure + weights (``compress.prune.save_module``: reloads safely with ``weights_only=True``
    even after pruning changed the shapes), with the recipe's architecture spec in ``meta``."""
    from .prune import save_module

    save_module(student, path, meta={"spec": spec})


def _make_cli_class():
    from lightning.pytorch.cli import LightningCLI

    class CompressCLI(LightningCLI):
        resume_from: str | None = None
        extra_callbacks: list = []

        def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> Any:
            return super()._instantiate_trainer(config, list(callbacks) + list(self.extra_callbacks))

        def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
            kwargs = super()._prepare_subcommand_kwargs(subcommand)
            if self.resume_from and not kwargs.get("ckpt_path"):
                kwargs["ckpt_path"] = self.resume_from
            return kwargs

    return CompressCLI


def _logger(kind: str, run_dir: Path, name: str):
    from jsonargparse import lazy_instance

    if kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        offline = os.environ.get("WANDB_MODE", "offline") in ("offline", "disabled")
        return lazy_instance(WandbLogger, project="compress", name=name, save_dir=str(run_dir), offline=offline)
    from lightning.pytorch.loggers import CSVLogger

    return lazy_instance(CSVLogger, save_dir=str(run_dir), name="logs")


def set_threads() -> int:
    """Tiny students train fastest on one intra-op thread (thread fan-out costs more than it gains and
    collapses when the machine is shared).  ``COMPRESS_NUM_THREADS`` overrides it."""
    n = int(os.environ.get("COMPRESS_NUM_THREADS", "1"))
    torch.set_num_threads(max(1, n))
    return n


def run_lightning(command: str, cfg: dict, recipe: Path, fresh: bool = False, allow_any: bool = False):
    from lightning.pytorch.callbacks import ModelCheckpoint

    set_threads()
    run_dir = run_dir_of(cfg, recipe)
    if fresh and run_dir.exists() and command == "fit":
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    lightning_cfg = {k: v for k, v in cfg.items() if k not in PROJECT_KEYS}
    lightning_cfg.setdefault("seed_everything", 0)
    merged = run_dir / "recipe.yaml"
    merged.write_text(yaml.safe_dump(cfg, sort_keys=False))
    lightning_file = run_dir / ".lightning_config.yaml"
    lightning_file.write_text(yaml.safe_dump(lightning_cfg, sort_keys=False))

    last = run_dir / "checkpoints" / "last.ckpt"
    resume = str(last) if last.is_file() and not cfg.get("ckpt_path") else None
    if resume:
        print(f"[compress] {'resuming from' if command == 'fit' else 'using'} {resume}", flush=True)
    cls = _make_cli_class()
    cls.resume_from = resume
    cls.extra_callbacks = [ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), save_last=True, save_top_k=0)]
    defaults = {
        "default_root_dir": str(run_dir),
        "logger": _logger(cfg.get("logger", "csv"), run_dir, recipe.stem),
    }
    try:
        cli = cls(args=[command, "--config", str(lightning_file)], trainer_defaults=defaults,
                  save_config_kwargs={"overwrite": True}, parser_kwargs={"exit_on_error": False},
                  seed_everything_default=0)
    except SystemExit as exc:  # jsonargparse already printed its message
        raise RecipeError(f"{recipe}: the recipe did not validate (see the message above)") from exc
    except Exception as exc:
        if type(exc).__name__ == "ArgumentError":
            raise RecipeError(f"{recipe}: {_condense(str(exc))}") from None
        raise
    if command == "fit":
        student = getattr(cli.model, "student", None)
        if student is not None:
            spec = (cfg.get("model", {}).get("init_args", {}) or {}).get("student")
            save_student(student, spec, run_dir / "student.pt")
            export = cfg.get("export") or {}
            if export.get("checkpoint"):
                save_student(student, spec, Path(export["checkpoint"]))
            exported = {}
            if any(export.get(k) for k in ("onnx", "onnx_int8", "c", "c_int8", "profile")):
                from .pipeline import export_student

                exported = export_student(student, cli.datamodule, export, run_dir)
            run_after_fit(cfg, cli, run_dir, exported, allow_any)
    return cli


def run_after_fit(cfg: dict, cli, run_dir: Path, exported: dict, allow_any: bool = False) -> None:
    """Call the recipe's ``after_fit`` hooks in order (closed-loop evaluation, reports...)."""
    from .spec import instantiate

    for i, spec in enumerate(cfg.get("after_fit") or []):
        hook = instantiate(spec, f"after_fit[{i}]", allow_any)
        if not callable(hook):
            raise RecipeError(f"after_fit[{i}]: {spec['class_path']} is not callable")
        print(f"[compress] after_fit: {spec['class_path']}", flush=True)
        hook(module=cli.model, datamodule=cli.datamodule, run_dir=run_dir, exported=exported)


def _condense(message: str) -> str:
    """jsonargparse nests its reasons; keep the most specific line that names a key."""
    lines = [ln.strip(" -") for ln in message.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Key" in ln or "key" in ln or "Expected" in ln or "does not" in ln:
            return ln
    return lines[0] if lines else message


def export_run(recipe: str, args: list[str]) -> None:
    """Re-run the ``export`` section on a finished run's ``student.pt``."""
    from .cli import apply_override, parse_overrides
    from .spec import instantiate

    cfg = load_recipe(recipe)
    overrides, flags = parse_overrides(args)
    for k, v in overrides:
        apply_override(cfg, k, v)
    allow_any = "--allow-any-class" in flags
    validate_recipe(cfg, recipe, allow_any=allow_any)
    run_dir = run_dir_of(cfg, Path(recipe))
    path = run_dir / "student.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run 'python -m compress fit {recipe}' first")
    from .prune import load_module

    student = load_module(path, trusted=("tasks", "envs"))
    from .pipeline import export_student

    dm = instantiate(cfg["data"], "data", allow_any) if "data" in cfg else None
    export_student(student, dm, cfg.get("export") or {"onnx": True, "profile": True}, run_dir)
