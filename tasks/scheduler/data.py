"""States for distilling a deep scheduler actor: DAgger rollouts of the scheduler env (``env``: its
settings, e.g. ``{setup: evaluation, traffic: mixed, n_drops: 1}``; default the training set-up).

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

Several teachers (an ensemble, e.g. DSACD runs of several seeds): the rollouts follow the mean of their
logits, which is what ``Distiller(combine="mean")`` distils; give the distiller that combine.

Policies come from the framework (``set_policies(teachers, student)``, ``compress.task.RolloutData``).
"""
from __future__ import annotations

import numpy as np
import torch

from compress.data.dagger import DaggerStates
from compress.errors import UserError

from .evaluate import masked_greedy

__all__ = ["MeanLogits", "SchedRolloutData", "rollout_states"]


class MeanLogits(torch.nn.Module):
    """An ensemble of actors as one actor: the mean of their logits (``Distiller(combine="mean")``). The
    actors are held, not registered: they stay their owner's (the distiller's frozen teachers)."""

    def __init__(self, actors):
        super().__init__()
        self.actors = list(actors)

    def forward(self, x):
        return torch.stack([a(x) for a in self.actors]).mean(0)


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


class SchedRolloutData(DaggerStates):
    aux_key = "mask"

    def __init__(self, rollout_tti: int = 60, warmup_tti: int = 20, batch_size: int = 512, student_mix: float = 0.5,
                 max_states: int = 200_000, permute: bool = True, seed: int = 0, env: dict | None = None):
        super().__init__(batch_size, student_mix, max_states, seed)
        self.env_kw = dict(env or {})                   # SchedulerEnv settings (default: the training set-up)
        if "seed" in self.env_kw:
            raise UserError("SchedRolloutData: give the rollouts' seed as seed, not env.seed")
        if rollout_tti <= warmup_tti or warmup_tti < 0:
            raise UserError(f"rollout_tti ({rollout_tti}) must exceed warmup_tti ({warmup_tti}) >= 0")
        self.rollout_tti, self.warmup_tti, self.permute = int(rollout_tti), int(warmup_tti), bool(permute)

    def check_teachers(self, teachers) -> None:
        if not teachers:
            raise UserError("SchedRolloutData rolls out the distiller's teachers, and it has none")

    def rollout(self, epoch: int, student, student_mix: float):
        teacher = self.teachers[0] if len(self.teachers) == 1 else MeanLogits(self.teachers)
        return rollout_states(teacher, student, student_mix, self.rollout_tti, self.warmup_tti,
                              seed=self.seed + 1000 * epoch, permute=self.permute, **self.env_kw)
