"""A masked multi-branch contextual bandit with a known optimum: a toy 1LDS scheduling decision.

Each step, every one of ``num_envs`` instances draws a new context: ``n_users`` candidates, each with a
weight ``w_k ~ U[0.25, 1]`` (a PF-like priority) and a rate ``u_bk ~ U[0, 1]`` on each of ``n_branches``
resource blocks, and an action mask (candidate k allowed on block b with probability ``p_valid``; a block
with no allowed candidate gets one, so some blocks have a single choice). The action picks one candidate
per block; block b pays ``w_k * u_bk`` for the chosen k (invalid choices pay ``invalid_reward``). The
reward is the mean over blocks, or the per-block vector with ``per_branch_reward=True`` (the seed's
per-RBG rewards). Episodes are one step long (terminated every step, same-step autoreset).

Observation: one segment per candidate, ``[w_k, u_1k, ..., u_Bk]`` (float32, ``n_users * (1 + n_branches)``),
so permuting candidates (segments) and relabelling actions gives an equally valid sample
(``UserPermutations``: the seed's C.2.3 augmentation). Known optimum per context:
``mean_b max_{valid k} w_k u_bk`` (``info["optimal_reward"]``). ``info["expert_action"]`` is a heuristic
expert that ignores the weights (the highest-rate candidate per block), good but not optimal.
``info["action_mask"]`` is ``(num_envs, n_branches * n_users)``, block-major.

No dependency on compress or tasks; the state (generator and current context) has ``state_dict`` /
``load_state_dict`` so that a checkpointed run resumes exactly.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from .errors import EnvError

__all__ = ["MaskedBandit", "UserPermutations"]


class MaskedBandit(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 16, n_branches: int = 4, n_users: int = 5, p_valid: float = 0.7,
                 per_branch_reward: bool = False, invalid_reward: float = -1.0, seed: int | None = None):
        if int(num_envs) < 1 or int(n_branches) < 1 or int(n_users) < 1:
            raise EnvError(f"num_envs, n_branches, n_users must be >= 1, got {num_envs}, {n_branches}, {n_users}")
        if not 0.0 < p_valid <= 1.0:
            raise EnvError(f"p_valid must be in (0, 1], got {p_valid}")
        self.num_envs, self.n_branches, self.n_users = int(num_envs), int(n_branches), int(n_users)
        self.p_valid, self.per_branch_reward, self.invalid_reward = float(p_valid), bool(per_branch_reward), float(invalid_reward)
        self.obs_dim = self.n_users * (1 + self.n_branches)
        self.single_observation_space = spaces.Box(0.0, 1.0, (self.obs_dim,), np.float32)
        self.single_action_space = spaces.MultiDiscrete(np.full(self.n_branches, self.n_users))
        self.observation_space = spaces.Box(0.0, 1.0, (self.num_envs, self.obs_dim), np.float32)
        self.action_space = spaces.MultiDiscrete(np.full((self.num_envs, self.n_branches), self.n_users))
        self._rng = np.random.default_rng(seed)
        self._draw()

    # ------------------------------------------------------------------------------------ contexts
    def _draw(self) -> None:
        n, b, k = self.num_envs, self.n_branches, self.n_users
        self.w = self._rng.uniform(0.25, 1.0, (n, k))
        self.u = self._rng.uniform(0.0, 1.0, (n, b, k))
        mask = self._rng.random((n, b, k)) < self.p_valid
        empty = ~mask.any(-1)
        if empty.any():
            pick = self._rng.integers(0, k, int(empty.sum()))
            rows, blocks = np.nonzero(empty)
            mask[rows, blocks, pick] = True
        self.mask = mask

    def _obs(self) -> np.ndarray:
        seg = np.concatenate([self.w[:, :, None], self.u.transpose(0, 2, 1)], axis=2)   # (n, k, 1 + b)
        return seg.reshape(self.num_envs, self.obs_dim).astype(np.float32)

    def values(self) -> np.ndarray:
        """``w_k * u_bk`` of the current context, ``(num_envs, n_branches, n_users)``."""
        return self.w[:, None, :] * self.u

    def _info(self) -> dict:
        v = self.values()
        best = np.where(self.mask, v, -np.inf).max(-1)
        expert = np.where(self.mask, self.u, -np.inf).argmax(-1)
        return {"action_mask": self.mask.reshape(self.num_envs, -1).copy(), "optimal_reward": best.mean(-1),
                "expert_action": expert}

    # ----------------------------------------------------------------------------------- vector API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._draw()
        return self._obs(), self._info()

    def step(self, actions):
        a = np.asarray(actions, dtype=np.int64).reshape(self.num_envs, self.n_branches)
        if (a < 0).any() or (a >= self.n_users).any():
            raise EnvError(f"actions must be in [0, {self.n_users}), got {a.min()}..{a.max()}")
        v = np.take_along_axis(self.values(), a[..., None], -1)[..., 0]
        ok = np.take_along_axis(self.mask, a[..., None], -1)[..., 0]
        r_branch = np.where(ok, v, self.invalid_reward)
        final_info = self._info()
        final_obs = self._obs()
        self._draw()
        info = self._info()
        info.update(final_obs=final_obs, _final_obs=np.ones(self.num_envs, bool), final_info=final_info,
                    _final_info=np.ones(self.num_envs, bool))
        reward = r_branch if self.per_branch_reward else r_branch.mean(-1)
        term = np.ones(self.num_envs, bool)
        return self._obs(), reward, term, np.zeros(self.num_envs, bool), info

    # ----------------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        import torch

        return {"rng": self._rng.bit_generator.state, "w": torch.from_numpy(self.w.copy()),
                "u": torch.from_numpy(self.u.copy()), "mask": torch.from_numpy(self.mask.copy())}

    def load_state_dict(self, state: dict) -> None:
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state["rng"]
        self.w, self.u, self.mask = state["w"].numpy().copy(), state["u"].numpy().copy(), state["mask"].numpy().copy()


class UserPermutations:
    """The seed's data augmentation (C.2.3) for ``MaskedBandit``: ``n_perm`` copies of a batch with the
    candidates (observation segments) shuffled, masks and actions relabelled to match. Called by
    ``compress.rl.PPO(augment=...)`` with ``{"obs", "act", "mask"}``; returns a list of aligned copies."""

    def __init__(self, n_branches: int = 4, n_users: int = 5, n_perm: int = 1, seed: int = 0):
        if int(n_perm) < 1:
            raise EnvError(f"n_perm must be >= 1, got {n_perm}")
        self.n_branches, self.n_users, self.n_perm = int(n_branches), int(n_users), int(n_perm)
        self._rng = np.random.default_rng(seed)

    def __call__(self, batch: dict) -> list[dict]:
        import torch

        copies = []
        for _ in range(self.n_perm):
            perm = self._rng.permutation(self.n_users)          # new slot j holds old candidate perm[j]
            inv = np.argsort(perm)                              # old candidate i sits in new slot inv[i]
            obs = torch.as_tensor(batch["obs"])
            seg = obs.reshape(len(obs), self.n_users, -1)[:, torch.as_tensor(perm)]
            c = {"obs": seg.reshape(len(obs), -1), "act": torch.as_tensor(inv)[torch.as_tensor(batch["act"]).long()]}
            if "mask" in batch:
                m = torch.as_tensor(batch["mask"]).reshape(len(obs), self.n_branches, self.n_users)
                c["mask"] = m[:, :, torch.as_tensor(perm)].reshape(len(obs), -1)
            copies.append(c)
        return copies
