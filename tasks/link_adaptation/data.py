"""States for policy distillation: rollouts of the LA env, driven by teachers, then by the student.

Each epoch rolls ``num_links`` links of the training scenarios for ``rollout_tti`` TTIs and keeps
the observations (after ``warmup_tti``) with, per state, the index of the teacher responsible for
its scenario (``batch["route"]``, for ``Distiller(route_key="route")``). Labels are not stored: the
Distiller runs the frozen teachers on each batch, so a state is always labelled by its teacher.

DAgger: in epoch 0 every link follows its teacher's greedy action. From epoch 1 on, a fraction
``student_mix`` of links follows the student being trained instead, so the data set also holds
the states the student's own policy visits (a student that only saw teacher states drifts into
states it never learned, e.g. long NACK runs). States are aggregated over epochs (oldest dropped
above ``max_states``). Needs ``Trainer(reload_dataloaders_every_n_epochs=1)``.

Behaviour policies are handed in by the framework before fitting (``set_policies(teachers, student)``,
the ``compress.task.RolloutData`` protocol): the run's teachers in the distiller's order and the student
being trained; the data module has no teacher of its own and never reads the trainer's module.
"""
from __future__ import annotations

from typing import Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from envs.link_adaptation import LinkAdaptationEnv
from envs.scenarios import get_scenario

from compress.errors import UserError

__all__ = ["LARolloutData", "rollout_states"]


class _DictBatches(TensorDataset):
    """Indexed by a list of indices (via a BatchSampler): one tensor gather per batch."""

    def __getitem__(self, idx):
        x, r = self.tensors
        return {"x": x[idx], "route": r[idx]}


def _greedy(net, obs: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return net(obs).argmax(-1).numpy()


def rollout_states(scenarios, policies: Sequence, route: np.ndarray | None, num_links: int, n_tti: int,
                   warmup_tti: int = 30, student=None, student_mix: float = 0.0, seed: int = 0):
    """Roll the env; returns (obs float32 (n, d), route int64 (n,)).

    ``policies[k]`` (obs tensor -> scores) drives the links whose scenario maps to route k
    (``route`` = route index per scenario, in the scenario list order; None = one policy).
    With ``student`` and ``student_mix > 0`` that fraction of links follows the student instead.
    """
    env = LinkAdaptationEnv(list(scenarios), num_links=num_links, seed=seed)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed + 1)
    link_route = np.zeros(num_links, np.int64) if route is None else np.asarray(route)[env.scn]
    by_student = (rng.random(num_links) < student_mix) if student is not None else np.zeros(num_links, bool)
    xs, rs = [], []
    for t in range(n_tti):
        x = torch.from_numpy(obs)
        act = np.zeros(num_links, np.int64)
        for k in np.unique(link_route):
            sel = np.nonzero((link_route == k) & ~by_student)[0]
            if len(sel):
                act[sel] = _greedy(policies[k], x[sel])
        if by_student.any():
            sel = np.nonzero(by_student)[0]
            act[sel] = _greedy(student, x[sel])
        if t >= warmup_tti:
            xs.append(obs.copy())
            rs.append(link_route.copy())
        obs, *_ = env.step(act)
    return np.concatenate(xs), np.concatenate(rs)


class LARolloutData(pl.LightningDataModule):
    def __init__(self, scenarios: Sequence[str] = ("macro_ped",), teacher_of: dict[str, int] | None = None,
                 num_links: int = 512, rollout_tti: int = 150, warmup_tti: int = 30, batch_size: int = 1024,
                 student_mix: float = 0.5, max_states: int = 400_000, seed: int = 0):
        """``teacher_of``: scenario group (or scenario name) -> teacher index, for multi-teacher
        routing; None = a single teacher for every scenario."""
        super().__init__()
        self.scenarios = [get_scenario(s).name for s in scenarios]
        if teacher_of is not None:
            route = []
            for s in self.scenarios:
                g = get_scenario(s).group
                key = s if s in teacher_of else g
                if key not in teacher_of:
                    raise UserError(f"teacher_of has no entry for scenario '{s}' or its group '{g}'")
                route.append(int(teacher_of[key]))
            self.route = np.array(route)
        else:
            self.route = None
        if not 0.0 <= student_mix <= 1.0:
            raise UserError(f"student_mix must be in [0, 1], got {student_mix}")
        if rollout_tti <= warmup_tti:
            raise UserError(f"rollout_tti ({rollout_tti}) must exceed warmup_tti ({warmup_tti})")
        self.num_links, self.rollout_tti, self.warmup_tti = num_links, rollout_tti, warmup_tti
        self.batch_size, self.student_mix, self.max_states, self.seed = batch_size, student_mix, max_states, seed
        self.x = self.r = None
        self._epoch_done = -1
        self.teachers, self.student = None, None

    def set_policies(self, teachers, student) -> None:
        """The rollout policies (``compress.task.RolloutData``): teachers in route order, and the student."""
        if self.route is not None and int(self.route.max()) >= len(teachers):
            raise UserError(f"teacher_of routes to teacher {int(self.route.max())} but the distiller has "
                            f"{len(teachers)} teachers")
        self.teachers, self.student = list(teachers), student

    def _grow(self, epoch: int) -> None:
        if self.teachers is None:
            raise UserError("LARolloutData has no policies to roll out: the framework hands them over before "
                            "fitting (compress.task.hand_policies(module, datamodule) from Python)")
        teachers, student = self.teachers, self.student
        was = student.training
        student.eval()
        x, r = rollout_states(self.scenarios, teachers, self.route, self.num_links, self.rollout_tti,
                              self.warmup_tti, student if epoch > 0 else None,
                              self.student_mix if epoch > 0 else 0.0, seed=self.seed + 1000 * epoch)
        student.train(was)
        if self.x is None:
            self.x, self.r = x, r
        else:
            self.x = np.concatenate([self.x, x])[-self.max_states:]
            self.r = np.concatenate([self.r, r])[-self.max_states:]
        self._epoch_done = epoch

    def train_dataloader(self):
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        if epoch != self._epoch_done:
            self._grow(epoch)
        ds = _DictBatches(torch.from_numpy(self.x), torch.from_numpy(self.r))
        g = torch.Generator().manual_seed(self.seed + epoch)
        sampler = BatchSampler(RandomSampler(ds, generator=g), self.batch_size, drop_last=True)
        return DataLoader(ds, sampler=sampler, batch_size=None)
