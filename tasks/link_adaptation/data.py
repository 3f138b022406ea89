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

import numpy as np

from envs.link_adaptation import LinkAdaptationEnv
from envs.scenarios import get_scenario

from compress.data.dagger import DaggerStates
from compress.errors import UserError

from .evaluate import as_policy

__all__ = ["LARolloutData", "rollout_states"]


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
    greedy = [as_policy(p) for p in policies]          # argmax of the scores, as deployed
    student_greedy = as_policy(student) if student is not None else None
    xs, rs = [], []
    for t in range(n_tti):
        act = np.zeros(num_links, np.int64)
        for k in np.unique(link_route):
            sel = np.nonzero((link_route == k) & ~by_student)[0]
            if len(sel):
                act[sel] = greedy[k].act(obs[sel], env)
        if by_student.any():
            sel = np.nonzero(by_student)[0]
            act[sel] = student_greedy.act(obs[sel], env)
        if t >= warmup_tti:
            xs.append(obs.copy())
            rs.append(link_route.copy())
        obs, *_ = env.step(act)
    return np.concatenate(xs), np.concatenate(rs)


class LARolloutData(DaggerStates):
    aux_key = "route"

    def __init__(self, scenarios: Sequence[str] = ("macro_ped",), teacher_of: dict[str, int] | None = None,
                 num_links: int = 512, rollout_tti: int = 150, warmup_tti: int = 30, batch_size: int = 1024,
                 student_mix: float = 0.5, max_states: int = 400_000, seed: int = 0):
        """``teacher_of``: scenario group (or scenario name) -> teacher index, for multi-teacher
        routing; None = a single teacher for every scenario."""
        super().__init__(batch_size, student_mix, max_states, seed)
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
        if rollout_tti <= warmup_tti:
            raise UserError(f"rollout_tti ({rollout_tti}) must exceed warmup_tti ({warmup_tti})")
        self.num_links, self.rollout_tti, self.warmup_tti = num_links, rollout_tti, warmup_tti

    def check_teachers(self, teachers) -> None:
        """Teachers come in route order."""
        if self.route is not None and int(self.route.max()) >= len(teachers):
            raise UserError(f"teacher_of routes to teacher {int(self.route.max())} but the distiller has "
                            f"{len(teachers)} teachers")

    def rollout(self, epoch: int, student, student_mix: float):
        return rollout_states(self.scenarios, self.teachers, self.route, self.num_links, self.rollout_tti,
                              self.warmup_tti, student, student_mix, seed=self.seed + 1000 * epoch)
