"""Deep Q-learning over a batched (vector) environment, as a LightningModule.

Why DQN (and not PPO) for the discrete-action teachers this project needs (e.g. picking one of a
few MCS offsets per TTI, reward = delivered bits):

* off-policy with a replay buffer: a vector env with thousands of parallel instances produces
  thousands of transitions per step; DQN reuses all of them, PPO would throw each batch away after a
  few epochs, so DQN needs far fewer env steps and less wall time on 2 CPU cores;
* its output is a Q-value per action, which is exactly what policy distillation consumes
  (``terms.Policy(teacher_q=True)`` turns Q into softmax(Q / q_T)), and which carries more than a
  greedy action: how much worse each alternative is;
* the action set is small and discrete, DQN's home ground; no entropy/advantage tuning.

Variant: double DQN (online net picks the next action, a Polyak-averaged target net values it),
Huber loss (or MSE: with stochastic rewards much larger than 1, Huber's linear zone estimates a
median instead of the expected reward — e.g. TBS-or-nothing HARQ outcomes — so such tasks should
pick ``loss="mse"`` or scale rewards below 1), epsilon-greedy exploration decaying linearly over ``eps_decay_frac`` of training,
per-step reward scaling. ``gamma=0`` turns it into a contextual bandit (regress the immediate
reward), which is the right call when actions do not change the environment's state, only what
the agent observes next.

Interface (generic, nothing task specific): ``env`` is any object with the gymnasium vector API
(``num_envs``, ``reset(seed=) -> (obs, info)``, ``step(actions) -> (obs, reward, terminated,
truncated, info)``, ``info["final_obs"]`` / ``info["_final_obs"]`` on same-step autoreset) and
numpy float observations of shape (num_envs, obs_dim); ``q_net`` maps (B, obs_dim) -> (B, n_actions).
"""
from __future__ import annotations

import copy

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from compress.errors import UserError

__all__ = ["DQN", "ReplayBuffer", "greedy_policy"]


class ReplayBuffer:
    """Fixed-size ring buffer of transitions in numpy arrays (float32 obs)."""

    def __init__(self, capacity: int, obs_dim: int):
        if capacity < 1:
            raise UserError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity, self.size, self.pos = int(capacity), 0, 0
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.act = np.zeros(capacity, np.int64)
        self.rew = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)

    def add(self, obs, act, rew, next_obs, done) -> None:
        n = len(act)
        if n > self.capacity:
            raise UserError(f"cannot add {n} transitions to a buffer of capacity {self.capacity}")
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx], self.act[idx], self.rew[idx] = obs, act, rew
        self.next_obs[idx], self.done[idx] = next_obs, done
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> dict:
        i = rng.integers(0, self.size, n)
        return {"obs": torch.from_numpy(self.obs[i]), "act": torch.from_numpy(self.act[i]),
                "rew": torch.from_numpy(self.rew[i]), "next_obs": torch.from_numpy(self.next_obs[i]),
                "done": torch.from_numpy(self.done[i])}


class _Rollouts(IterableDataset):
    """Each item: step the env once (all instances), store the transitions, sample a minibatch."""

    def __init__(self, module: "DQN"):
        self.m = module

    def __iter__(self):
        for _ in range(self.m.steps_per_epoch):
            for _ in range(self.m.env_steps_per_update):
                self.m.collect()
            yield self.m.buffer.sample(self.m.batch_size, self.m.rng)

    def __len__(self):
        return self.m.steps_per_epoch


def greedy_policy(q_net: nn.Module):
    """obs (numpy, (N, d)) -> greedy actions (numpy int64, (N,)) from a Q-network."""
    def act(obs):
        with torch.no_grad():
            return q_net(torch.as_tensor(obs, dtype=torch.float32)).argmax(-1).numpy()
    return act


class DQN(pl.LightningModule):
    def __init__(self, env, q_net: nn.Module, gamma: float = 0.99, lr: float = 1e-3,
                 batch_size: int = 256, buffer_size: int = 200_000, warmup_env_steps: int = 10,
                 eps_start: float = 1.0, eps_end: float = 0.02, eps_decay_frac: float = 0.5,
                 tau: float = 0.01, double: bool = True, reward_scale: float = 1.0,
                 steps_per_epoch: int = 500, env_steps_per_update: int = 1, grad_clip: float = 10.0,
                 loss: str = "huber", seed: int = 0):
        super().__init__()
        for name in ("num_envs", "reset", "step"):
            if not hasattr(env, name):
                raise UserError(f"env must have the gymnasium vector API; it has no '{name}'")
        if not 0.0 <= gamma < 1.0:
            raise UserError(f"gamma must be in [0, 1), got {gamma}")
        if not 0.0 < tau <= 1.0:
            raise UserError(f"tau must be in (0, 1], got {tau}")
        if loss not in ("huber", "mse"):
            raise UserError(f"loss must be 'huber' or 'mse', got {loss!r}")
        if not 0.0 <= eps_end <= eps_start <= 1.0:
            raise UserError(f"need 0 <= eps_end <= eps_start <= 1, got {eps_start}, {eps_end}")
        self.save_hyperparameters(ignore=["env", "q_net"])
        self.env, self.q_net = env, q_net
        self.target = copy.deepcopy(q_net).requires_grad_(False)
        self.gamma, self.lr, self.tau, self.double = float(gamma), float(lr), float(tau), bool(double)
        self.batch_size, self.reward_scale = int(batch_size), float(reward_scale)
        self.eps_start, self.eps_end, self.eps_decay_frac = eps_start, eps_end, eps_decay_frac
        self.steps_per_epoch, self.env_steps_per_update = int(steps_per_epoch), int(env_steps_per_update)
        self.warmup_env_steps, self.grad_clip = int(warmup_env_steps), float(grad_clip)
        self.rng = np.random.default_rng(seed)
        self.seed, self.loss_kind = int(seed), loss
        self.buffer = None
        self._obs = None
        self._ep_return = None
        self._returns: list[float] = []

    def forward(self, obs):
        return self.q_net(obs)

    # ---------------------------------------------------------------------------------- acting
    def on_train_start(self):
        # computed once: Trainer.estimated_stepping_batches is too slow to query every step
        est = self.trainer.estimated_stepping_batches
        self._total_steps = int(est) if est not in (None, float("inf")) else self.steps_per_epoch

    @property
    def epsilon(self) -> float:
        total = getattr(self, "_total_steps", self.steps_per_epoch)
        frac = min(1.0, self.global_step / max(1.0, self.eps_decay_frac * total))
        return self.eps_start + frac * (self.eps_end - self.eps_start)

    @torch.no_grad()
    def collect(self) -> None:
        """One step of every env instance with epsilon-greedy actions; transitions -> replay."""
        if self._obs is None:
            self._obs, _ = self.env.reset(seed=self.seed)
            self.buffer = ReplayBuffer(self.hparams.buffer_size, self._obs.shape[1])
            self._ep_return = np.zeros(self.env.num_envs)
            for _ in range(self.warmup_env_steps):
                self._step(1.0)
        self._step(self.epsilon)

    def _step(self, eps: float) -> None:
        obs = self._obs
        n = len(obs)
        q = self.q_net(torch.as_tensor(obs, dtype=torch.float32))
        act = q.argmax(-1).numpy()
        explore = self.rng.random(n) < eps
        if explore.any():
            act = act.copy()
            act[explore] = self.rng.integers(0, q.shape[-1], int(explore.sum()))
        nxt, rew, term, trunc, info = self.env.step(act)
        nxt_store = nxt
        if "_final_obs" in info:
            nxt_store = nxt.copy()
            fo = np.asarray(info["_final_obs"], dtype=bool)
            nxt_store[fo] = np.asarray(info["final_obs"])[fo]
        rew = np.asarray(rew, dtype=np.float64) * self.reward_scale
        self.buffer.add(obs, act, rew, nxt_store, np.asarray(term, dtype=np.float32))
        self._ep_return += rew
        ended = np.asarray(term) | np.asarray(trunc)
        if ended.any():
            self._returns.extend(self._ep_return[ended].tolist())
            self._ep_return[ended] = 0.0
        self._obs = nxt
        self._last_reward = float(rew.mean())

    # ---------------------------------------------------------------------------------- training
    def train_dataloader(self):
        return DataLoader(_Rollouts(self), batch_size=None)

    def training_step(self, batch, batch_idx):
        q = self.q_net(batch["obs"]).gather(1, batch["act"][:, None])[:, 0]
        with torch.no_grad():
            target = batch["rew"]
            if self.gamma > 0:
                nq = self.target(batch["next_obs"])
                if self.double:
                    a = self.q_net(batch["next_obs"]).argmax(-1, keepdim=True)
                    nv = nq.gather(1, a)[:, 0]
                else:
                    nv = nq.max(-1).values
                target = target + self.gamma * (1.0 - batch["done"]) * nv
        loss = F.smooth_l1_loss(q, target) if self.loss_kind == "huber" else F.mse_loss(q, target)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/reward", self._last_reward, prog_bar=True)
        self.log("train/epsilon", self.epsilon)
        return loss

    def on_before_optimizer_step(self, optimizer):
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.q_net.parameters(), self.grad_clip)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        with torch.no_grad():
            for p, tp in zip(self.q_net.parameters(), self.target.parameters()):
                tp.lerp_(p, self.tau)

    def configure_optimizers(self):
        return torch.optim.Adam(self.q_net.parameters(), lr=self.lr)
