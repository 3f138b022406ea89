"""Env protocol helpers: what ``compress.rl`` expects of an environment, checked once, in ``__init__``.

An env is a *vector* env with the Gymnasium 1.x API: ``num_envs``, ``reset(seed=) -> (obs, info)`` and
``step(actions) -> (obs, reward, terminated, truncated, info)`` over all ``num_envs`` instances at once;
``gymnasium.vector.VectorEnv`` subclasses (``SyncVectorEnv``, ``envs.link_adaptation.LinkAdaptationEnv``)
are the usual case, any object with these members works from Python.

* Actions: one integer per *branch* (``Discrete(n)``: one branch of ``n``; ``MultiDiscrete(nvec)``: one branch
  per entry, e.g. one per RBG of a 1LDS scheduler). Networks output the branches' logits or Q-values
  concatenated, ``(B, sum(sizes))`` (``Branches`` in ``policies.py``).
* Action masks (True = allowed), optional: ``info["action_mask"]`` of shape ``(num_envs, sum(sizes))`` for
  the returned observations; for the last observation of an episode (same-step autoreset) in
  ``info["final_info"]["action_mask"]``.
* Rewards: ``(num_envs,)``, or ``(num_envs, n_branches)`` for per-branch rewards (the seed's per-RBG
  rewards).
* Autoreset: ``metadata["autoreset_mode"]`` ``SameStep`` (the last observation is in ``info["final_obs"]``
  where ``info["_final_obs"]``) or ``NextStep`` (Gymnasium's default: the step after an episode's end
  only resets that instance; the collector drops that non-transition). An env without the key is taken
  as ``SameStep`` (what an env that never ends, or ends every step, looks like).
* Exact resume: an env that has ``state_dict()`` / ``load_state_dict(state)`` (plain tensors, numbers
  and containers) is checkpointed with the run; one without is reset on resume (the run goes on, but is
  no longer step-for-step the uninterrupted one).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from ..errors import UserError

__all__ = ["VectorEnv", "check_vector_env", "branch_sizes", "autoreset_mode", "final_next_obs",
           "env_mask", "final_mask", "GymVectorEnv"]

SAME_STEP, NEXT_STEP = AutoresetMode.SAME_STEP.value, AutoresetMode.NEXT_STEP.value


def check_vector_env(env: Any, who: str = "env") -> None:
    """TypeError naming the first missing member of the vector-env API."""
    for name in ("num_envs", "reset", "step"):
        if not hasattr(env, name):
            raise UserError(f"{who} must have the gymnasium vector API (num_envs, reset, step); "
                            f"{type(env).__name__} has no '{name}'")
    mode = autoreset_mode(env)
    if mode not in (SAME_STEP, NEXT_STEP):
        raise UserError(f"{who}: autoreset_mode {mode!r} is not supported (use SameStep or NextStep)")


def autoreset_mode(env: Any) -> str:
    mode = (getattr(env, "metadata", None) or {}).get("autoreset_mode", SAME_STEP)
    return getattr(mode, "value", mode)


def branch_sizes(env: Any, branches: Sequence[int] | None = None) -> list[int] | None:
    """Branch sizes: ``branches`` if given, else from ``env.single_action_space`` (Discrete or
    MultiDiscrete); None when the env declares neither (one branch sized by the network's output)."""
    if branches is not None:
        sizes = [int(b) for b in branches]
        if not sizes or any(b < 1 for b in sizes):
            raise UserError(f"branches must be a non-empty list of sizes >= 1, got {list(branches)}")
        return sizes
    space = getattr(env, "single_action_space", None)
    if space is None:
        return None
    if hasattr(space, "nvec"):
        nvec = np.asarray(space.nvec)
        if nvec.ndim != 1:
            raise UserError(f"env.single_action_space: MultiDiscrete must be 1-D, got shape {nvec.shape}")
        return [int(n) for n in nvec]
    if hasattr(space, "n"):
        return [int(space.n)]
    raise UserError(f"env.single_action_space must be Discrete or MultiDiscrete, got {type(space).__name__}")


def final_next_obs(next_obs: np.ndarray, info: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """The observation that followed each action: ``info["final_obs"]`` where an episode ended this step
    (same-step autoreset), else the returned one. Also returns the rows that ended (or None)."""
    if "_final_obs" not in info:
        return next_obs, None
    ended = np.asarray(info["_final_obs"], dtype=bool)
    if not ended.any():
        return next_obs, ended
    final = info["final_obs"]
    out = np.array(next_obs, copy=True)
    if isinstance(final, np.ndarray) and final.dtype == object:  # SyncVectorEnv: one array per instance
        out[ended] = np.stack([np.asarray(o) for o in final[ended]])
    else:                                                         # a batched env: one (num_envs, ...) array
        out[ended] = np.asarray(final)[ended]
    return out, ended


def env_mask(info: dict, key: str | None, shape: tuple[int, int]) -> np.ndarray | None:
    """``info[key]`` as a bool array of ``shape`` (None when the env gives no mask)."""
    if key is None or key not in info:
        return None
    mask = np.asarray(info[key], dtype=bool)
    if mask.shape != shape:
        raise UserError(f"info['{key}'] has shape {mask.shape}, expected {shape} (num_envs, sum of branch sizes)")
    return mask


def final_mask(mask: np.ndarray | None, info: dict, key: str | None, ended: np.ndarray | None) -> np.ndarray | None:
    """Masks of the observations that followed each action: ``info["final_info"][key]`` for rows whose
    episode ended (all True if the env does not report it), the returned mask elsewhere."""
    if mask is None or ended is None or not ended.any():
        return mask
    out = mask.copy()
    fin = info.get("final_info") or {}
    if isinstance(fin, dict) and key in fin:
        out[ended] = np.asarray(fin[key], dtype=bool)[ended]
    else:
        out[ended] = True
    return out


class GymVectorEnv(SyncVectorEnv):
    """``num_envs`` copies of a registered Gymnasium env (e.g. ``CartPole-v1``) in one ``SyncVectorEnv``
    with same-step autoreset, buildable from a recipe:
    ``env: {class_path: compress.rl.GymVectorEnv, init_args: {env_id: CartPole-v1, num_envs: 8}}``."""

    def __init__(self, env_id: str, num_envs: int = 1, env_kwargs: dict | None = None):
        import gymnasium as gym

        if int(num_envs) < 1:
            raise UserError(f"num_envs must be >= 1, got {num_envs}")
        try:
            gym.spec(env_id)
        except Exception as exc:  # gymnasium raises its own NameNotFound / VersionNotFound
            raise UserError(f"env_id: unknown Gymnasium env '{env_id}' ({exc})") from None
        kwargs = dict(env_kwargs or {})
        super().__init__([lambda: gym.make(env_id, **kwargs) for _ in range(int(num_envs))],
                         autoreset_mode=AutoresetMode.SAME_STEP)
        self.env_id = env_id

    def __repr__(self) -> str:
        return f"GymVectorEnv({self.env_id!r}, num_envs={self.num_envs})"
