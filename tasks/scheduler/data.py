"""States for distilling a deep scheduler actor: DAgger rollouts of the scheduler env (training set-up).

Each epoch rolls the env for ``rollout_tti`` TTIs (every decision stage of every cell) and keeps, after
``warmup_tti``, the 1LDS states with their action masks: batches ``{"x": (B, 410), "mask": (B, 198)}`` for
``compress.distill.terms.Policy(branches=[11] * 18, mask_key="mask")`` (per-branch masked policy KD).
Labels are not stored: the Distiller runs the frozen teacher on each batch.

DAgger: epoch 0 follows the teacher's masked greedy decisions; from epoch 1 on a fraction ``student_mix``
of the cells follows the student being trained, so the data holds the states the student's own
allocations lead to (its mistakes change the RBG occupancy, the co-scheduling correlations rho and the
PF averages that later states see). States are aggregated over epochs (oldest dropped above
``max_states``); needs ``Trainer(reload_dataloaders_every_n_epochs=1)``. Optionally the candidates are
shuffled (``permute``: the seed's augmentation; the teacher labels the permuted state itself).

Policies come from the framework (``set_policies(teachers, student)``, ``compress.task.RolloutData``).
"""
from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from compress.errors import UserError

from .evaluate import masked_greedy

__all__ = ["SchedRolloutData", "rollout_states"]


class _DictBatches(TensorDataset):
    def __getitem__(self, idx):
        x, m = self.tensors
        return {"x": x[idx], "mask": m[idx]}


def rollout_states(teacher, student=None, student_mix: float = 0.0, n_tti: int = 60, warmup_tti: int = 20,
                   seed: int = 0, permute: bool = False, **env_kw):
    """Roll the 1LDS env; returns (states float32 (n, 410), masks bool (n, 198))."""
    from envs.scheduler import SchedulerEnv

    from .augment import PermutedCandidates

    env = SchedulerEnv(setup=env_kw.pop("setup", "training"), seed=seed, **env_kw)
    if permute:
        env = PermutedCandidates(env, seed=seed + 7)
    rng = np.random.default_rng(seed + 1)
    E, width = env.num_envs, env.U + 1
    by_student = (rng.random(E) < student_mix) if student is not None else np.zeros(E, bool)
    obs, info = env.reset(seed=seed)
    xs, ms = [], []
    for t in range(n_tti):
        for _ in range(env.n_stages):
            mask = info["action_mask"]
            with torch.no_grad():
                logits = teacher(torch.as_tensor(obs)).numpy()
                if by_student.any():
                    logits[by_student] = student(torch.as_tensor(obs[by_student])).numpy()
            if t >= warmup_tti:
                xs.append(obs.copy())
                ms.append(mask.copy())
            obs, _, _, _, info = env.step(masked_greedy(logits, mask, width))
    return np.concatenate(xs), np.concatenate(ms)


class SchedRolloutData(pl.LightningDataModule):
    def __init__(self, rollout_tti: int = 60, warmup_tti: int = 20, batch_size: int = 512, student_mix: float = 0.5,
                 max_states: int = 200_000, permute: bool = True, seed: int = 0):
        super().__init__()
        if not 0.0 <= student_mix <= 1.0:
            raise UserError(f"student_mix must be in [0, 1], got {student_mix}")
        if rollout_tti <= warmup_tti or warmup_tti < 0:
            raise UserError(f"rollout_tti ({rollout_tti}) must exceed warmup_tti ({warmup_tti}) >= 0")
        self.rollout_tti, self.warmup_tti, self.batch_size = int(rollout_tti), int(warmup_tti), int(batch_size)
        self.student_mix, self.max_states, self.permute, self.seed = float(student_mix), int(max_states), bool(permute), int(seed)
        self.x = self.m = None
        self._epoch_done = -1
        self.teachers, self.student = None, None

    def set_policies(self, teachers, student) -> None:
        if len(teachers) != 1:
            raise UserError(f"SchedRolloutData rolls out one teacher, the distiller has {len(teachers)}")
        self.teachers, self.student = list(teachers), student

    def _grow(self, epoch: int) -> None:
        if self.teachers is None:
            raise UserError("SchedRolloutData has no policies to roll out: the framework hands them over before "
                            "fitting (compress.task.hand_policies(module, datamodule) from Python)")
        teacher, student = self.teachers[0], self.student
        was = student.training
        student.eval()
        x, m = rollout_states(teacher, student if epoch > 0 else None, self.student_mix if epoch > 0 else 0.0,
                              self.rollout_tti, self.warmup_tti, seed=self.seed + 1000 * epoch, permute=self.permute)
        student.train(was)
        if self.x is None:
            self.x, self.m = x, m
        else:
            self.x = np.concatenate([self.x, x])[-self.max_states:]
            self.m = np.concatenate([self.m, m])[-self.max_states:]
        self._epoch_done = epoch

    def calibration_batches(self, n: int, size: int = 1000) -> list[torch.Tensor]:
        """int8 calibration (``export.int8: ptq``): the first ``n * size`` states held (the teacher's)."""
        if self.x is None:
            self._grow(0)
        x = torch.from_numpy(np.ascontiguousarray(self.x[:n * size], dtype=np.float32))
        return [x[i:i + size] for i in range(0, len(x), size)]

    def train_dataloader(self):
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        if epoch != self._epoch_done:
            self._grow(epoch)
        ds = _DictBatches(torch.from_numpy(self.x), torch.from_numpy(self.m))
        g = torch.Generator().manual_seed(self.seed + epoch)
        sampler = BatchSampler(RandomSampler(ds, generator=g), self.batch_size, drop_last=True)
        return DataLoader(ds, sampler=sampler, batch_size=None)
