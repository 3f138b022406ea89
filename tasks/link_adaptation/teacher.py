"""RL teachers for link adaptation: generic DQN (compress.rl) on the LA env of some scenarios.

``LATeacher`` only binds the generic ``compress.rl.DQN`` to a ``LinkAdaptationEnv`` built from
scenario names, so a teacher is one YAML recipe (``recipes/la_teacher_*.yaml``). The Q-network is
called ``student`` because that is the attribute the project's CLI saves (and that
``compress.distill.RecipeTeacher`` loads back from ``cache/teachers/``): the teacher recipe's
"student" is the teacher network.

Why ``gamma = 0`` in the recipes: the MCS choice does not change the channel, only what the
agent observes next (its own ACK/MCS history), so the throughput-optimal policy is myopic, and
regressing the immediate delivered bits per offset trains faster and more stably than
bootstrapping (measured: same or better throughput in the same number of updates).
Rewards are scaled by 1e-4 (bits -> tens of kbit per unit) to keep Q-values O(1), and the loss is
MSE: a reward is the whole TBS or nothing, and Huber's linear zone would fit the median outcome
rather than the expected bits (measured: Huber teachers ran at ~20% BLER and lost to OLLA in
micro_veh).
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from compress.rl import DQN
from envs.link_adaptation import LinkAdaptationEnv

__all__ = ["LATeacher"]


class LATeacher(DQN):
    def __init__(self, student: nn.Module, scenarios: Sequence[str] = ("macro_ped",), num_links: int = 512,
                 episode_len: int = 500, gamma: float = 0.0, lr: float = 5e-4, batch_size: int = 512,
                 buffer_size: int = 200_000, eps_start: float = 1.0, eps_end: float = 0.02,
                 eps_decay_frac: float = 0.5, tau: float = 0.01, reward_scale: float = 1e-4,
                 steps_per_epoch: int = 500, loss: str = "mse", seed: int = 0):
        env = LinkAdaptationEnv(list(scenarios), num_links=num_links, episode_len=episode_len, seed=seed)
        super().__init__(env, student, gamma=gamma, lr=lr, batch_size=batch_size, buffer_size=buffer_size,
                         eps_start=eps_start, eps_end=eps_end, eps_decay_frac=eps_decay_frac, tau=tau,
                         reward_scale=reward_scale, steps_per_epoch=steps_per_epoch, loss=loss, seed=seed)
        self.student = student
        self.scenarios = list(scenarios)
