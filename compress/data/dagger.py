"""DAgger state aggregation for policy distillation: a data module whose states come from rollouts.

Each epoch a subclass rolls out the run's policies (``rollout``): epoch 0 by the teachers alone, later
epochs with a fraction ``student_mix`` of the rollouts driven by the student being trained, so the data
also holds the states the student's own decisions lead to. States are aggregated over epochs (the oldest
dropped above ``max_states``); batches are ``{"x": states, aux_key: aux}`` in a per-(seed, epoch) random
order. Needs ``Trainer(reload_dataloaders_every_n_epochs=1)``. Labels are not stored: the Distiller runs
the frozen teachers on each batch. Policies are handed in by the framework (``set_policies``, the
``compress.task.RolloutData`` protocol).
"""
from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from compress.errors import UserError

__all__ = ["DaggerStates"]


class _DictBatches(TensorDataset):
    """Indexed by a list of indices (via a BatchSampler): one tensor gather per batch."""

    def __init__(self, x, aux, aux_key):
        super().__init__(x, aux)
        self.aux_key = aux_key

    def __getitem__(self, idx):
        x, aux = self.tensors
        return {"x": x[idx], self.aux_key: aux[idx]}


class DaggerStates(pl.LightningDataModule):
    """Subclasses set ``aux_key`` and implement ``rollout(epoch, student, student_mix) -> (x, aux)`` (numpy,
    one row per state; ``student`` is None in epoch 0); they may check the teachers in ``check_teachers``."""

    aux_key = "aux"

    def __init__(self, batch_size: int, student_mix: float, max_states: int, seed: int):
        super().__init__()
        if not 0.0 <= student_mix <= 1.0:
            raise UserError(f"student_mix must be in [0, 1], got {student_mix}")
        self.batch_size, self.student_mix = int(batch_size), float(student_mix)
        self.max_states, self.seed = int(max_states), int(seed)
        self.x = self.aux = None
        self._epoch_done = -1
        self.teachers, self.student = None, None

    def check_teachers(self, teachers) -> None:
        """Raise a UserError if the distiller's teachers do not fit this data module."""

    def rollout(self, epoch: int, student, student_mix: float) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def set_policies(self, teachers, student) -> None:
        """The rollout policies (``compress.task.RolloutData``): the distiller's teachers and the student."""
        self.check_teachers(teachers)
        self.teachers, self.student = list(teachers), student

    def _grow(self, epoch: int) -> None:
        if self.teachers is None:
            raise UserError(f"{type(self).__name__} has no policies to roll out: the framework hands them over "
                            "before fitting (compress.task.hand_policies(module, datamodule) from Python)")
        was = self.student.training
        self.student.eval()
        x, aux = self.rollout(epoch, self.student if epoch > 0 else None, self.student_mix if epoch > 0 else 0.0)
        self.student.train(was)
        if self.x is None:
            self.x, self.aux = x, aux
        else:
            self.x = np.concatenate([self.x, x])[-self.max_states:]
            self.aux = np.concatenate([self.aux, aux])[-self.max_states:]
        self._epoch_done = epoch

    def calibration_batches(self, n: int, size: int = 1000) -> list[torch.Tensor]:
        """Post-training int8 calibration data (``export.int8: ptq``): the first ``n * size`` states held,
        i.e. the teachers' own rollouts of epoch 0 (rolled out here if the module holds none, e.g. when a
        finished run is exported again)."""
        if self.x is None:
            self._grow(0)
        x = torch.from_numpy(np.ascontiguousarray(self.x[:n * size], dtype=np.float32))
        return [x[i:i + size] for i in range(0, len(x), size)]

    def train_dataloader(self):
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        if epoch != self._epoch_done:
            self._grow(epoch)
        ds = _DictBatches(torch.from_numpy(self.x), torch.from_numpy(self.aux), self.aux_key)
        g = torch.Generator().manual_seed(self.seed + epoch)
        sampler = BatchSampler(RandomSampler(ds, generator=g), self.batch_size, drop_last=True)
        return DataLoader(ds, sampler=sampler, batch_size=None)
