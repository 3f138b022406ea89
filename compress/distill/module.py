"""``DistillationModule``: the ready LightningModule on top of ``Distiller``.

``training_step``: run the student, then ``task_weight * task_loss + distiller(...)``.  The task
loss is supplied by the user or a task adapter; validation/test log the task loss and, for
classification (``num_classes``) or regression (``task="regression"``), a torchmetrics metric.

Self-distillation (``self_distill="ema"`` or ``"snapshot"``) adds a teacher made from the student
itself; it is updated after every optimizer step (EMA) or every N epochs (snapshot), and kept in the
checkpoint.  ``prefill_cache=True`` fills the distiller's teacher-output cache over the whole training
set before the first step.

Teachers live outside the module tree: the Lightning checkpoint holds the student (``student.*``)
and the distiller's trainable connectors, never a teacher.
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional

import lightning.pytorch as pl
import torch
import torchmetrics
from torch import nn

from .distiller import Distiller, batch_input
from .losses import as_task_loss, batch_target
from .teachers import EMATeacher, SnapshotTeacher

from compress.errors import UserError

__all__ = ["DistillationModule", "LeanHooks"]


class LeanHooks:
    """Two costs Lightning's loop pays on every batch that a module can spare it (measured with
    tools/bench_overhead.py; Lightning's whole fixed cost is ~0.4 ms a step on this project's CPUs):

    - Lightning sets ``_current_fx_name`` on the module ~12 times a step; through ``nn.Module.__setattr__``
      (parameter/buffer/module bookkeeping) that is ~4 µs each.  The attribute is plain data: store it directly.
    - Lightning inspects the signature of the step method on every batch (``inspect.getfullargspec``, ~30 µs).
      A ``__signature__`` computed once, when the class is defined, makes ``inspect`` return at once.
    """

    _STEP_METHODS = ("training_step", "validation_step", "test_step", "predict_step")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in cls._STEP_METHODS:
            fn = cls.__dict__.get(name)
            if inspect.isfunction(fn) and "__signature__" not in fn.__dict__:
                fn.__signature__ = inspect.signature(fn)

    def __setattr__(self, name, value):
        if name == "_current_fx_name":
            self.__dict__[name] = value
            return
        super().__setattr__(name, value)


class DistillationModule(LeanHooks, pl.LightningModule):
    def __init__(self, student: nn.Module, distiller: Optional[Distiller] = None,
                 task_loss: Optional[Callable] = None, task_weight: float = 1.0, lr: float = 1e-3,
                 weight_decay: float = 0.0, optimizer: str = "adam", task: Optional[str] = None,
                 num_classes: Optional[int] = None, input_key: str = "x", target_key: str = "y",
                 self_distill: Optional[str] = None, ema_decay: float = 0.99, snapshot_every: int = 1,
                 lr_schedule: Optional[str] = None, kd_inputs: Optional[str] = None, mixup_alpha: float = 1.0,
                 noise_std: float = 0.1, prefill_cache: bool = False):
        super().__init__()
        if not isinstance(student, nn.Module):
            raise UserError(f"student must be an nn.Module, got {type(student).__name__}")
        if optimizer not in ("adam", "adamw", "sgd"):
            raise UserError(f"optimizer must be 'adam', 'adamw' or 'sgd', got '{optimizer}'")
        if lr <= 0:
            raise UserError(f"lr must be > 0, got {lr}")
        if task not in (None, "classification", "regression"):
            raise UserError(f"task must be 'classification', 'regression' or None, got '{task}'")
        if task is None and num_classes is not None:
            task = "classification"
        if task == "classification" and not num_classes:
            raise UserError("task='classification' needs num_classes")
        if kd_inputs not in (None, "mixup", "noise"):
            raise UserError(f"kd_inputs must be None, 'mixup' or 'noise', got '{kd_inputs}'")
        if lr_schedule not in (None, "cosine"):
            raise UserError(f"lr_schedule must be None or 'cosine', got '{lr_schedule}'")
        # hparams are saved for logs and checkpoints only; the module reads its settings from
        # attributes, so a subclass with its own __init__ signature keeps working
        self.save_hyperparameters(ignore=["student", "distiller", "task_loss"])
        self.input_key, self.target_key = input_key, target_key
        self.lr, self.weight_decay, self.optimizer_name, self.lr_schedule = lr, weight_decay, optimizer, lr_schedule
        self.kd_inputs, self.mixup_alpha, self.noise_std = kd_inputs, mixup_alpha, noise_std
        self.prefill = bool(prefill_cache)
        self._total_steps = 0
        self._ema_teachers: list = []  # the EMA teachers to update after each step, listed at on_train_start
        self._ema_step = -1            # global step of the last EMA update (one update per optimizer step)
        self.last_loss_terms: dict = {}  # the latest training step's loss terms (read by NonFiniteGuard)
        self.student = student
        self.distiller = distiller if distiller is not None else Distiller()
        self.distiller.input_key = input_key
        self.task_loss = as_task_loss(task_loss, target_key)
        self.task_weight = float(task_weight)
        if self_distill not in (None, "ema", "snapshot"):
            raise UserError(f"self_distill must be None, 'ema' or 'snapshot', got '{self_distill}'")
        if self_distill is not None and self.distiller.cache is not None:
            raise UserError("self_distill cannot be used with the teacher-output cache (Distiller(cache=...)): "
                            "a self-teacher changes every step, so cached outputs would be stale; disable cache")
        if self_distill == "ema":
            self.distiller.add_teacher("self_ema", EMATeacher(student, ema_decay))
        elif self_distill == "snapshot":
            self.distiller.add_teacher("self_snapshot", SnapshotTeacher(student, snapshot_every))
        if self.task_loss is None and not len(self.distiller.terms):
            raise UserError("nothing to train: give a task_loss, knowledge terms, or both")
        self.distiller.attach(student)
        self.metric_name = None
        if task == "classification":
            self.val_metric = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
            self.test_metric = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
            self.metric_name = "acc"
        elif task == "regression":
            self.val_metric, self.test_metric = torchmetrics.MeanSquaredError(), torchmetrics.MeanSquaredError()
            self.metric_name = "mse"

    # ------------------------------------------------------------------ forward / progress
    def forward(self, x):
        return self.student(x)

    @property
    def progress(self) -> float:
        """Fraction of training done, for knowledge-term schedules (0 when the length is unknown)."""
        total = self._total_steps
        return min(1.0, self.global_step / total) if total else 0.0

    def on_train_start(self) -> None:
        # asked once: with dataloaders rebuilt every epoch the Trainer re-derives it from the data
        est = self.trainer.estimated_stepping_batches
        self._ema_teachers = [t for t in map(self.distiller.teacher, self.distiller.teacher_names)
                              if isinstance(t, EMATeacher)]
        self._ema_step = self.global_step
        self._total_steps = int(est) if est and est != float("inf") else 0

    # ------------------------------------------------------------------ set-up
    def _pending_connectors(self) -> list:
        return [t for t in self.distiller.terms if getattr(t, "needs_build", False)]

    def _dry_run(self, batch) -> None:
        with torch.no_grad():
            out = self.student(batch_input(batch, self.input_key))
            self.distiller(batch, out, progress=0.0)

    def setup(self, stage: str) -> None:
        """Dry-run one batch of the data module so lazily sized connectors exist before the optimizer is
        built, and so a teacher/student shape mismatch is reported before training starts.  Without a
        data module (dataloaders passed to ``fit``) connectors are sized at the first training batch and
        the optimizer is rebuilt to include them (``on_train_batch_start``)."""
        if stage == "fit" and len(self.distiller.terms) and self.trainer.datamodule is not None:
            self._dry_run(next(iter(self.trainer.datamodule.train_dataloader())))

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        if self._pending_connectors():
            self._dry_run(batch)
            from ..optim import rebuild_optimizers

            rebuild_optimizers(self.trainer)

    def on_fit_start(self) -> None:
        """``prefill_cache=True``: run the teachers once over the whole training set, in large chunks, before
        the first step (the data module's training batches; for slow per-call teachers such as WMMSE)."""
        if self.prefill and self.distiller.cache is not None and self.trainer.datamodule is not None:
            self.distiller.prefill_cache(self.trainer.datamodule.train_dataloader())

    def configure_optimizers(self):
        params = [p for p in list(self.student.parameters()) + list(self.distiller.parameters()) if p.requires_grad]
        if self.optimizer_name == "adam":
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        elif self.optimizer_name == "adamw":
            opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        if self.lr_schedule == "cosine":
            total = max(1, int(self.trainer.estimated_stepping_batches))
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        return opt

    # ------------------------------------------------------------------ steps
    def compute_loss(self, batch, student_out):
        """Task + KD loss and a log dict; override to change how they combine."""
        logs = {}
        loss = student_out.new_zeros(())
        if self.task_loss is not None:
            task = self.task_loss(student_out, batch)
            loss = loss + self.task_weight * task
            logs["task"] = task.detach()
        if len(self.distiller.terms):
            if self.kd_inputs is not None:
                batch, student_out = self._kd_batch(batch)
            kd, kd_logs = self.distiller(batch, student_out, progress=self.progress)
            loss = loss + kd
            logs.update(kd_logs)
        self.last_loss_terms = logs
        return loss, logs

    def _kd_batch(self, batch):
        """Function matching (Beyer et al. 2022): the KD terms see inputs the labels cannot follow —
        mixup of two samples, or a noisy copy — labelled by the teacher.  The task loss keeps the
        clean batch.  Such batches bypass the teacher-output cache (their inputs are new)."""
        x = batch_input(batch, self.input_key)
        if self.kd_inputs == "mixup":
            lam = torch.distributions.Beta(self.mixup_alpha, self.mixup_alpha).sample((x.shape[0],))
            lam = lam.view(-1, *([1] * (x.dim() - 1))).to(x)
            x_aug = lam * x + (1 - lam) * x[torch.randperm(x.shape[0], device=x.device)]
        else:
            x_aug = x + self.noise_std * torch.randn_like(x)
        if isinstance(batch, dict):
            aug = {k: v for k, v in batch.items() if k != self.distiller.index_key}
            aug[self.input_key] = x_aug
        else:
            aug = (x_aug, *batch[1:])
        return aug, self.student(x_aug)

    def training_step(self, batch, batch_idx):
        out = self.student(batch_input(batch, self.input_key))
        loss, logs = self.compute_loss(batch, out)
        # metrics are logged only on the steps the logger writes (every trainer.log_every_n_steps):
        # one self.log call costs ~0.1-0.5 ms, as much as a whole training step of a tiny student
        if self._writes_logs():
            bs = out.shape[0]
            self.log("train/loss", loss, prog_bar=True, batch_size=bs)
            for k, v in logs.items():
                self.log(f"train/{k}", v, batch_size=bs)
        return loss

    def _attached_trainer(self):
        try:
            return self.trainer
        except RuntimeError:  # not attached to a Trainer (called from plain Python)
            return None

    def _writes_logs(self) -> bool:
        trainer = self._attached_trainer()
        if trainer is None:
            return False
        return (trainer.global_step + 1) % max(1, trainer.log_every_n_steps) == 0

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        # after each optimizer step, not each batch (gradient accumulation steps less often)
        if self._ema_teachers and self.global_step != self._ema_step:
            self._ema_step = self.global_step
            for t in self._ema_teachers:
                t.update(self.student)

    # ------------------------------------------------------------------ checkpoints
    def _self_teachers(self) -> dict:
        return {n: t for n in self.distiller.teacher_names
                if isinstance(t := self.distiller.teacher(n), (EMATeacher, SnapshotTeacher))}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Self-teachers live outside the module tree (teachers never enter the student's state_dict),
        so their weights are added to the checkpoint here."""
        selfs = self._self_teachers()
        if selfs:
            checkpoint["compress_self_teachers"] = {n: t.module.state_dict() for n, t in selfs.items()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("state_dict") or {}
        for i, term in enumerate(self.distiller.terms):  # connectors sized by the run that saved them
            if getattr(term, "needs_build", False):
                term.build_from_state(state, f"distiller.terms.{i}.")
        saved = checkpoint.get("compress_self_teachers") or {}
        for name, teacher in self._self_teachers().items():
            if name in saved:
                teacher.load_state(self.student, saved[name])

    def on_train_epoch_end(self) -> None:
        for name in self.distiller.teacher_names:
            t = self.distiller.teacher(name)
            if isinstance(t, SnapshotTeacher) and (self.current_epoch + 1) % t.every_n_epochs == 0:
                t.snapshot(self.student)
        if self.distiller.cache is not None:
            self.distiller.cache.save()

    def _eval_step(self, batch, stage: str, metric):
        out = self.student(batch_input(batch, self.input_key))
        bs = out.shape[0]
        if self.task_loss is not None:
            self.log(f"{stage}/loss", self.task_loss(out, batch), prog_bar=True, batch_size=bs)
        if metric is not None:
            target = batch_target(batch, self.target_key)
            pred = out.argmax(-1) if self.metric_name == "acc" else out
            metric(pred, target)
            self.log(f"{stage}/{self.metric_name}", metric, prog_bar=True, batch_size=bs)
        return out

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val", getattr(self, "val_metric", None))

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test", getattr(self, "test_metric", None))

    def predict_step(self, batch, batch_idx):
        return self.student(batch_input(batch, self.input_key))
