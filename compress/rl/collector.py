"""Collector: steps a vector env with a policy and hands back transitions; keeps episode statistics.

``step(policy)`` calls ``policy(obs, mask) -> (actions, extras)`` on the current observations (numpy
``(N, ...)`` float32, mask ``(N, sum(sizes))`` bool or None; actions ``(N, n_branches)`` int; extras a dict
of per-row arrays such as PPO's log-probabilities and values), steps the env and returns one dict of rows:

    obs, act, rew (float32, scaled by reward_scale), next_obs (the episode's last observation where it
    ended: same-step autoreset's info["final_obs"]), done (float32: terminated, not truncated), ended
    (terminated or truncated), [mask, next_mask], **extras

With next-step autoreset (Gymnasium's default) the step after an episode's end only resets those
instances: their rows are dropped from the result. ``state_dict()`` holds the current observations,
masks, episode statistics and, if the env has ``state_dict()``, the env's own state.
"""
from __future__ import annotations

import warnings
from collections import deque
from typing import Any, Callable

import numpy as np
import torch

from .envs import NEXT_STEP, autoreset_mode, check_vector_env, env_mask, final_mask, final_next_obs

__all__ = ["Collector"]

Policy = Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, dict]]


class Collector:
    def __init__(self, env: Any, n_actions: int | None = None, reward_scale: float = 1.0,
                 mask_key: str | None = "action_mask", seed: int = 0, window: int = 100):
        check_vector_env(env)
        self.env, self.num_envs = env, int(env.num_envs)
        self.n_actions, self.reward_scale, self.mask_key, self.seed = n_actions, float(reward_scale), mask_key, int(seed)
        self.next_step = autoreset_mode(env) == NEXT_STEP
        self.discrete = getattr(getattr(env, "single_action_space", None), "nvec", None) is None
        self.started = False
        self.obs: np.ndarray | None = None
        self.mask: np.ndarray | None = None
        self.info: dict = {}   # the env's info for the current observations (e.g. an expert's actions)
        self._resetting = np.zeros(self.num_envs, dtype=bool)
        self.ep_return = np.zeros(self.num_envs)
        self.ep_len = np.zeros(self.num_envs, dtype=np.int64)
        self.returns: deque[float] = deque(maxlen=int(window))
        self.lengths: deque[int] = deque(maxlen=int(window))
        self.env_steps = self.episodes = 0
        self.finished: list[tuple[int, float]] = []   # (instance, return) of the episodes that ended last step

    # ------------------------------------------------------------------------------------- stepping
    def reset(self) -> None:
        obs, info = self.env.reset(seed=self.seed)
        self.obs = np.asarray(obs, dtype=np.float32)
        self.mask, self.info = self._mask(info), info
        self._resetting[:] = False
        self.started = True

    def _mask(self, info: dict) -> np.ndarray | None:
        if self.n_actions is None:
            return None
        return env_mask(info, self.mask_key, (self.num_envs, self.n_actions))

    def step(self, policy: Policy) -> dict[str, np.ndarray]:
        if not self.started:
            self.reset()
        obs, mask = self.obs, self.mask
        act, extras = policy(obs, mask)
        act = np.asarray(act)
        env_act = act[:, 0] if (self.discrete and act.ndim == 2 and act.shape[1] == 1) else act
        nxt, rew, term, trunc, info = self.env.step(env_act)
        nxt = np.asarray(nxt, dtype=np.float32)
        nxt_store, ended_now = final_next_obs(nxt, info)
        new_mask = self._mask(info)
        next_mask = final_mask(new_mask, info, self.mask_key, ended_now)
        raw = np.asarray(rew, dtype=np.float64)
        rew = raw * self.reward_scale
        term, trunc = np.asarray(term, dtype=bool), np.asarray(trunc, dtype=bool)
        ended = term | trunc
        out = {"obs": obs, "act": act, "rew": rew.astype(np.float32), "next_obs": nxt_store,
               "done": term.astype(np.float32), "ended": ended}
        if mask is not None:
            out["mask"], out["next_mask"] = mask, next_mask
        out.update({k: np.asarray(v) for k, v in extras.items()})
        valid = ~self._resetting
        # episode statistics in the env's own reward units (summed over branches for per-branch rewards)
        step_ret = raw.reshape(self.num_envs, -1).sum(-1)
        self.ep_return[valid] += step_ret[valid]
        self.ep_len[valid] += 1
        done_rows = ended & valid
        self.finished = [(int(i), float(self.ep_return[i])) for i in np.flatnonzero(done_rows)]
        if done_rows.any():
            self.returns.extend(self.ep_return[done_rows].tolist())
            self.lengths.extend(self.ep_len[done_rows].tolist())
            self.episodes += int(done_rows.sum())
            self.ep_return[done_rows] = 0.0
            self.ep_len[done_rows] = 0
        self.env_steps += int(valid.sum())
        if self.next_step:
            self._resetting = ended.copy()
            if not valid.all():
                out = {k: v[valid] for k, v in out.items()}
        self.obs, self.mask, self.info = nxt, new_mask, info
        self.last_reward = float(rew.mean())
        return out

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    # ----------------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        env_state = self.env.state_dict() if hasattr(self.env, "state_dict") else None
        t = lambda a: None if a is None else torch.from_numpy(np.array(a, copy=True))
        return {"started": self.started, "obs": t(self.obs), "mask": t(self.mask), "resetting": t(self._resetting),
                "ep_return": t(self.ep_return), "ep_len": t(self.ep_len), "returns": list(self.returns),
                "lengths": list(self.lengths), "env_steps": self.env_steps, "episodes": self.episodes,
                "info": {k: t(v) for k, v in self.info.items()   # numeric entries (masks, expert actions)
                         if isinstance(v, np.ndarray) and v.dtype.kind in "biuf"},
                "env": env_state}

    def load_state_dict(self, state: dict) -> None:
        n = lambda a: None if a is None else a.numpy().copy()
        self.started = bool(state["started"])
        self.obs, self.mask, self._resetting = n(state["obs"]), n(state["mask"]), n(state["resetting"])
        self.ep_return, self.ep_len = n(state["ep_return"]), n(state["ep_len"])
        self.returns.clear(), self.returns.extend(state["returns"])
        self.lengths.clear(), self.lengths.extend(state["lengths"])
        self.env_steps, self.episodes = int(state["env_steps"]), int(state["episodes"])
        self.info = {k: n(v) for k, v in state["info"].items()}
        if state["env"] is not None and hasattr(self.env, "load_state_dict"):
            self.env.load_state_dict(state["env"])
        elif self.started:
            warnings.warn(f"{type(self.env).__name__} has no state_dict/load_state_dict: its state is not in the "
                          "checkpoint, so it is reset and the resumed run differs from an uninterrupted one",
                          stacklevel=2)
            self.seed += self.env_steps  # a fresh stream, not a replay of the first episodes
            self.reset()
            self.ep_return[:] = 0.0
            self.ep_len[:] = 0
