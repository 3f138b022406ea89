"""Candidate shuffling (seed 004, Section C.2.3 and Algorithm 2 line 10): the abs(U) candidate UEs' feature
segments are permuted within the state, the actions are mapped back through the same permutation, and the
rewards (per RBG, per decision) are unchanged - the decision "candidate perm[j] on RBG m" is the same
decision whichever slot j it sits in. The actor so learns from the features, not from the TD-PF order of
the shortlist, and every permutation is a new sample.

* ``permute_1lds(obs, mask, perm)``: 1LDS state ``(E, U x (5 + 2M))`` (one segment of ``5 + 2M`` per
  candidate) and flat mask ``(E, M x (U + 1))`` (candidates, then "no allocation", per RBG);
* ``permute_2lds(obs, mask, perm)``: 2LDS state ``(E, 8U + 1)`` (the last entry, the RBG's co-scheduled
  count, is not a candidate's) and mask ``(E, U + 1)``;
* ``to_env_actions(actions, perm)``: the agent's slot j -> candidate ``perm[j]``; U (none) stays U;
* ``PermutedCandidates(env, seed)``: a vector-env wrapper drawing a fresh permutation per cell and stage
  (the candidate scores in ``info["scores"]`` permuted alike, so the PF expert of PPO agrees), for
  ``compress.rl``'s algorithms in a recipe. Like the scheduler env it has no ``state_dict`` (a resumed run
  restarts the env, as ``compress.rl``'s collector warns).

``perm`` is ``(E, U)``: row e's slot j shows candidate ``perm[e, j]``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compress.errors import UserError

__all__ = ["permute_1lds", "permute_2lds", "to_env_actions", "PermutedCandidates"]


def _check_perm(perm: np.ndarray, E: int) -> np.ndarray:
    perm = np.asarray(perm)
    if perm.ndim != 2 or perm.shape[0] != E:
        raise UserError(f"perm must be (E, U) = ({E}, U), got shape {perm.shape}")
    return perm


def permute_1lds(obs: np.ndarray, mask: np.ndarray, perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    E = len(obs)
    perm = _check_perm(perm, E)
    U = perm.shape[1]
    seg = obs.reshape(E, U, -1)
    rows = np.arange(E)[:, None]
    obs_p = seg[rows, perm].reshape(E, -1)
    m = mask.reshape(E, -1, U + 1)
    mask_p = np.concatenate([m[rows[:, :, None], np.arange(m.shape[1])[None, :, None], perm[:, None, :]],
                             m[..., U:]], axis=-1).reshape(E, -1)
    return obs_p, mask_p


def permute_2lds(obs: np.ndarray, mask: np.ndarray, perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    E = len(obs)
    perm = _check_perm(perm, E)
    U = perm.shape[1]
    rows = np.arange(E)[:, None]
    seg = obs[:, : obs.shape[1] - 1].reshape(E, U, -1)
    obs_p = np.concatenate([seg[rows, perm].reshape(E, -1), obs[:, -1:]], axis=1)
    mask_p = np.concatenate([mask[rows, perm], mask[:, U:]], axis=1)
    return obs_p, mask_p


def to_env_actions(actions: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Slot -> candidate: ``(E,)`` or ``(E, M)`` actions in 0..U (U = no allocation)."""
    a = np.asarray(actions)
    perm = _check_perm(perm, len(a))
    U = perm.shape[1]
    flat = a.reshape(len(a), -1)
    cand = np.take_along_axis(perm, np.minimum(flat, U - 1), 1)
    return np.where(flat < U, cand, flat).reshape(a.shape)


def _permute_scores(scores: dict, perm: np.ndarray) -> dict:
    """Candidate axis (the last) of every score array ``(E, [M,] U)``."""
    out = {}
    for k, v in scores.items():
        idx = perm.reshape(perm.shape[0], *([1] * (v.ndim - 2)), perm.shape[1])
        out[k] = np.take_along_axis(v, np.broadcast_to(idx, v.shape), -1)
    return out


class PermutedCandidates:
    """``env`` (an ``envs.scheduler.SchedulerEnv``) seen through a fresh random candidate permutation per
    cell and decision stage (module doc)."""

    def __init__(self, env: Any, seed: int = 0):
        for name in ("num_envs", "reset", "step", "U"):
            if not hasattr(env, name):
                raise UserError(f"PermutedCandidates: env must be an envs.scheduler.SchedulerEnv, "
                                f"{type(env).__name__} has no '{name}'")
        self.env = env
        self.num_envs, self.U = env.num_envs, env.U
        self.design = env.cfg.design
        self.metadata = getattr(env, "metadata", {})
        self.single_action_space = env.single_action_space
        self.single_observation_space = env.single_observation_space
        self.rng = np.random.default_rng(int(seed))
        self.perm = np.tile(np.arange(self.U), (self.num_envs, 1))

    def __getattr__(self, name):              # n_stages, cfg, kpis, ... of the wrapped env
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def _draw(self) -> None:
        self.perm = np.argsort(self.rng.random((self.num_envs, self.U)), axis=1)

    def _apply(self, obs, info: dict):
        perm = self.perm
        permute = permute_1lds if self.design == "1lds" else permute_2lds
        obs, mask = permute(obs, info["action_mask"], perm)
        info = {**info, "action_mask": mask, "scores": _permute_scores(info["scores"], perm)}
        if "final_obs" in info:
            fin, fmask = permute(info["final_obs"], info["final_info"]["action_mask"], perm)
            info["final_obs"], info["final_info"] = fin, {"action_mask": fmask}
        return obs, info

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._draw()
        return self._apply(obs, info)

    def step(self, actions):
        obs, rew, term, trunc, info = self.env.step(to_env_actions(actions, self.perm))
        self._draw()
        obs, info = self._apply(obs, info)
        return obs, rew, term, trunc, info
