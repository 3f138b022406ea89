"""Run a prepared recipe: ``fit`` / ``validate`` / ``test`` with the run-folder conventions.

``fit``: lock the run folder -> decide start or resume (``compress.run.folder``) -> seed -> build the
data module, the module and the Trainer from the recipe (``compress.recipe.instantiate``) -> record
``recipe.yaml`` -> ``Trainer.fit`` with ``LastCheckpoint``, ``NonFiniteGuard`` and ``EpochSeeding``
(checkpoints written atomically) -> ``student.pt`` -> the ``export`` section -> ``after_fit`` hooks.
``validate`` / ``test`` score the checkpoint of a trained run (refused when there is none).

Objects are built here, not by LightningCLI/jsonargparse: each spec is built once (a teacher that
must be trained first is trained once), every class passes the allow list, and an error names the
recipe key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import RecipeError, UserError, first_line, is_user_error
from ..recipe import Prepared, instantiate
from ..task import deployable, hand_policies
from .checkpoints import AtomicCheckpointIO, LastCheckpoint, non_finite, read_checkpoint
from .folder import RunFolder
from .guards import NonFiniteGuard
from .seeding import EpochSeeding

__all__ = ["run", "RunResult", "set_threads", "save_student"]


@dataclass
class RunResult:
    """What a run built and produced."""

    model: Any
    datamodule: Any
    trainer: Any
    run_dir: Path
    exported: dict = field(default_factory=dict)
    metrics: list = field(default_factory=list)


def set_threads() -> int:
    """Tiny students train fastest on one intra-op thread (thread fan-out costs more than it gains and
    collapses when the machine is shared).  ``COMPRESS_NUM_THREADS`` overrides it."""
    raw = os.environ.get("COMPRESS_NUM_THREADS", "1")
    try:
        n = int(raw)
    except ValueError:
        raise UserError(f"COMPRESS_NUM_THREADS must be an integer, got {raw!r}") from None
    torch.set_num_threads(max(1, n))
    return n


def save_student(student: torch.nn.Module, spec: Any, path: Path) -> None:
    """Structure + weights (``compress.prune.save_module``, reloads with ``weights_only=True`` even after
    pruning changed the shapes) with the recipe's architecture spec in ``meta``; never non-finite ones."""
    from ..prune import save_module

    bad = non_finite(student.state_dict())
    if bad:
        from .checkpoints import NonFiniteError
        raise NonFiniteError(f"refusing to write {path}: the trained student has non-finite weights "
                             f"({', '.join(bad[:3])}); the previous file is kept")
    save_module(student, path, meta={"spec": spec})


def _logger(kind: str, run_dir: Path, name: str):
    if kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        offline = os.environ.get("WANDB_MODE", "offline") in ("offline", "disabled")
        return WandbLogger(project="compress", name=name, save_dir=str(run_dir), offline=offline)
    from lightning.pytorch.loggers import CSVLogger

    return CSVLogger(save_dir=str(run_dir), name="logs")


def _build_trainer(cfg: dict, folder: RunFolder, recipe: Path, seed: int):
    from lightning.pytorch import Trainer

    kw = instantiate(dict(cfg.get("trainer") or {}), "trainer")
    callbacks = list(kw.pop("callbacks", None) or [])
    plugins = kw.pop("plugins", None)
    plugins = [] if plugins is None else (list(plugins) if isinstance(plugins, list) else [plugins])
    if not any(hasattr(p, "save_checkpoint") for p in plugins):
        plugins.append(AtomicCheckpointIO())
    if kw.get("enable_checkpointing", True):
        callbacks.append(LastCheckpoint(folder.checkpoint_dir))
    callbacks += [NonFiniteGuard(), EpochSeeding(seed)]
    kw.setdefault("default_root_dir", str(folder.path))
    if "logger" not in kw:
        kw["logger"] = _logger(cfg.get("logger", "csv"), folder.path, recipe.stem)
    try:
        return Trainer(callbacks=callbacks, plugins=plugins, **kw)
    except Exception as exc:  # noqa: BLE001
        if is_user_error(exc) or isinstance(exc, (ValueError, TypeError)):
            raise RecipeError(f"{recipe}: trainer: {first_line(exc)}") from exc
        raise


def run(command: str, prepared: Prepared) -> RunResult:
    """Run ``fit`` | ``validate`` | ``test`` for a prepared recipe (see the module doc)."""
    if command not in ("fit", "validate", "test"):
        raise UserError(f"unknown command '{command}' (fit, validate or test)")
    from lightning.pytorch import seed_everything

    cfg, recipe = prepared.cfg, prepared.path
    folder = RunFolder(prepared.run_dir)
    with prepared.allowing(), folder:
        set_threads()
        fresh = command == "fit" and prepared.flag("--fresh") and not cfg.get("ckpt_path")
        resume = None if fresh else _resume_point(command, prepared, folder)
        seed = int(cfg.get("seed_everything", 0))
        seed_everything(seed, workers=True, verbose=False)
        datamodule = instantiate(cfg["data"], "data") if "data" in cfg else None
        if "model" not in cfg:
            raise RecipeError(f"{recipe}: no 'model' section: a recipe needs model.class_path")
        model = instantiate(cfg["model"], "model")
        hand_policies(model, datamodule)
        trainer = _build_trainer(cfg, folder, recipe, seed)
        if fresh:  # only now: a --fresh rerun whose recipe does not build keeps the previous run
            folder.start_over()
        if command == "fit":
            folder.record_recipe(cfg)
        if resume:
            print(f"[compress] {'resuming from' if command == 'fit' else 'using'} {resume}", flush=True)
        result = RunResult(model, datamodule, trainer, folder.path)
        if command == "fit":
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
            _after_fit(cfg, result, folder)
        else:
            fn = trainer.validate if command == "validate" else trainer.test
            result.metrics = fn(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
        return result


def _resume_point(command: str, prepared: Prepared, folder: RunFolder) -> str | None:
    cfg = prepared.cfg
    if cfg.get("ckpt_path"):
        read_checkpoint(cfg["ckpt_path"])
        return str(cfg["ckpt_path"])
    last = folder.last_checkpoint
    if not last.is_file():
        if command != "fit":
            raise UserError(f"{folder.path} has no trained checkpoint ({last} missing): train it first with "
                            f"'python -m compress fit {prepared.path}', or give --ckpt_path=FILE")
        return None
    keys = ("seed_everything", "trainer", "model", "data") if command == "fit" else ("model",)
    changes = folder.check_resume(cfg, prepared.path, prepared.flag("--accept-changes"), keys)
    if changes:
        print(f"[compress] resuming with changed settings (--accept-changes): {'; '.join(changes)}", flush=True)
    read_checkpoint(last)
    return str(last)


def _after_fit(cfg: dict, result: RunResult, folder: RunFolder) -> None:
    student = deployable(result.model)
    if student is None:
        return
    spec = (cfg.get("model", {}).get("init_args", {}) or {}).get("student")
    save_student(student, spec, folder.student_file)
    export = cfg.get("export") or {}
    if export.get("checkpoint"):
        save_student(student, spec, Path(export["checkpoint"]))
    if any(export.get(k) for k in ("onnx", "onnx_int8", "c", "c_int8", "profile")):
        from .export_section import export_student

        result.exported = export_student(student, result.datamodule, export, folder.path)
    for i, spec in enumerate(cfg.get("after_fit") or []):
        hook = instantiate(spec, f"after_fit[{i}]")
        if not callable(hook):
            raise RecipeError(f"after_fit[{i}]: {spec['class_path']} is not callable")
        print(f"[compress] after_fit: {spec['class_path']}", flush=True)
        hook(module=result.model, datamodule=result.datamodule, run_dir=folder.path, exported=result.exported)
