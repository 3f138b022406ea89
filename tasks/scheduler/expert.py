"""The PF expert of the seed's PPO (Appendix C, Algorithm 1): the env's info gains the expert's actions.

``WithExpert(env, expert="pf_greedy")`` wraps an ``envs.scheduler.SchedulerEnv`` (or a wrapper of it such as
``PermutedCandidates``, whose permuted candidate scores the expert then reads, so its actions are in the
agent's slot order) and adds ``info["expert_action"]``: the PF heuristic's decision for the returned
state, ``(E, 18)`` for 1LDS - for ``compress.rl.PPO(expert_info_key="expert_action")``, whose JSD term pulls
the actor towards it. Any policy of ``envs.scheduler.POLICIES`` can be the expert.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compress.errors import UserError

__all__ = ["WithExpert"]


class WithExpert:
    def __init__(self, env: Any, expert: str = "pf_greedy", key: str = "expert_action"):
        from envs.scheduler import POLICIES

        if expert not in POLICIES:
            raise UserError(f"WithExpert: expert '{expert}' unknown; valid: {sorted(POLICIES)}")
        for name in ("num_envs", "reset", "step"):
            if not hasattr(env, name):
                raise UserError(f"WithExpert: env {type(env).__name__} has no '{name}'")
        self.env, self.key, self.expert = env, key, POLICIES[expert]()
        self.num_envs = env.num_envs
        self.metadata = getattr(env, "metadata", {})
        self.single_action_space = env.single_action_space
        self.single_observation_space = env.single_observation_space

    def __getattr__(self, name):
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def _add(self, obs, info: dict) -> dict:
        act = np.asarray(self.expert(obs, info))
        return {**info, self.key: act.reshape(self.num_envs, -1)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, self._add(obs, info)

    def step(self, actions):
        obs, rew, term, trunc, info = self.env.step(actions)
        return obs, rew, term, trunc, self._add(obs, info)
