"""Deep Q-learning over a vector env, as a LightningModule (Mnih et al. 2015; double DQN, van Hasselt 2016).

Why DQN (and not PPO) for discrete-action teachers such as link adaptation's MCS offset per TTI:
off-policy replay reuses every transition of thousands of parallel env instances (PPO would discard
each batch after a few epochs); its output is a Q-value per action, which policy distillation consumes
(``terms.Policy(teacher_q=True)``: softmax(Q / q_T)) and which says how much worse each alternative is.

Variant: double DQN (online net picks the next action, a Polyak-averaged target net values it), Huber or
MSE loss (with stochastic rewards much larger than 1, Huber's linear zone estimates a median instead of
the expected reward: e.g. TBS-or-nothing HARQ outcomes want ``loss="mse"`` or rewards scaled below 1),
epsilon-greedy exploration decaying linearly over ``eps_decay_frac`` of training, reward scaling, and
optionally a learning rate decaying linearly to ``lr_end`` over the run (steadier final policies).
``gamma=0`` makes it a contextual bandit (regress the immediate reward): right when actions do not
change the environment's state, only what the agent observes next. Actions may have several branches
(``MultiDiscrete``): one Q-head per branch, independent-branch targets, masks from the env.

Per training step, in this order (the order, and so the random stream, of the original single-file DQN:
trained weights are bit-identical): ``env_steps_per_update`` epsilon-greedy vector-env steps into the
replay buffer (the first step of a run first resets the env and takes ``warmup_env_steps`` random steps),
one minibatch, one Adam step on the TD loss with gradient-norm clipping, one Polyak update of the target.
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import RLModule
from .envs import VectorEnv
from .losses import double_dqn_target, q_taken
from .policies import epsilon_greedy
from .replay import ReplayBuffer
from ..errors import UserError

__all__ = ["DQN"]


class DQN(RLModule):
    def __init__(self, env: VectorEnv, student: nn.Module, gamma: float = 0.99, lr: float = 1e-3,
                 batch_size: int = 256, buffer_size: int = 200_000, warmup_env_steps: int = 10,
                 eps_start: float = 1.0, eps_end: float = 0.02, eps_decay_frac: float = 0.5,
                 tau: float = 0.01, double: bool = True, reward_scale: float = 1.0,
                 steps_per_epoch: int = 500, env_steps_per_update: int = 1, grad_clip: float = 10.0,
                 loss: str = "huber", lr_end: Optional[float] = None, branches: Optional[Sequence[int]] = None,
                 mask_key: Optional[str] = "action_mask", seed: int = 0):
        super().__init__()
        if not 0.0 <= gamma < 1.0:
            raise UserError(f"gamma must be in [0, 1), got {gamma}")
        if not 0.0 < tau <= 1.0:
            raise UserError(f"tau must be in (0, 1], got {tau}")
        if loss not in ("huber", "mse"):
            raise UserError(f"loss must be 'huber' or 'mse', got {loss!r}")
        if not 0.0 <= eps_end <= eps_start <= 1.0:
            raise UserError(f"need 0 <= eps_end <= eps_start <= 1, got {eps_start}, {eps_end}")
        self.save_hyperparameters(ignore=["env", "student"])
        self.setup_rl(env, student, branches, seed, reward_scale, mask_key, steps_per_epoch)
        self.target = copy.deepcopy(student).requires_grad_(False)
        if lr_end is not None and not 0.0 <= lr_end <= lr:
            raise UserError(f"lr_end must be in [0, lr={lr}], got {lr_end}")
        self.gamma, self.lr, self.tau, self.double = float(gamma), float(lr), float(tau), bool(double)
        self.lr_end = lr_end
        self.batch_size, self.loss_kind, self.grad_clip = int(batch_size), loss, float(grad_clip)
        self.eps_start, self.eps_end, self.eps_decay_frac = eps_start, eps_end, eps_decay_frac
        self.env_steps_per_update, self.warmup_env_steps = int(env_steps_per_update), int(warmup_env_steps)
        self.buffer = ReplayBuffer(buffer_size)

    @property
    def epsilon(self) -> float:
        frac = min(1.0, self.global_step / max(1.0, self.eps_decay_frac * self.total_updates))
        return self.eps_start + frac * (self.eps_end - self.eps_start)

    # ------------------------------------------------------------------------------------- acting
    @torch.no_grad()
    def _collect(self, eps: float) -> None:
        def policy(obs, mask):
            q = self.student(torch.as_tensor(obs, dtype=torch.float32))
            return epsilon_greedy(q, self.branches, mask, eps, self.rng), {}

        tr = self.collector.step(policy)
        tr.pop("ended")
        self.buffer.add(tr)

    # ----------------------------------------------------------------------------------- training
    def training_step(self, batch, batch_idx):
        if not self.collector.started:
            self.collector.reset()
            for _ in range(self.warmup_env_steps):
                self._collect(1.0)
        for _ in range(self.env_steps_per_update):
            self._collect(self.epsilon)
        data = self.buffer.sample(self.batch_size, self.rng)

        q = q_taken(self.student(data["obs"]), data["act"], self.branches)            # Q(s, a), (B, n)
        with torch.no_grad():                                                          # y = r + g (1-d) Q'(s', a*)
            nxt = self.gamma > 0
            target = double_dqn_target(
                data["rew"], data["done"], self.gamma, self.branches,
                next_q_target=self.target(data["next_obs"]) if nxt else None,
                next_q_online=self.student(data["next_obs"]) if nxt and self.double else None,
                next_mask=data.get("next_mask"), double=self.double)
        loss = F.smooth_l1_loss(q, target) if self.loss_kind == "huber" else F.mse_loss(q, target)
        self.updates += 1
        self.log_metrics({"train/loss": loss.detach(), "train/reward": self.collector.last_reward,
                          "train/epsilon": self.epsilon}, prog_bar=("train/loss", "train/reward"))
        return loss

    def on_before_optimizer_step(self, optimizer):
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.grad_clip)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        with torch.no_grad():                                                          # target <- lerp(target, online, tau)
            for p, tp in zip(self.student.parameters(), self.target.parameters()):
                tp.lerp_(p, self.tau)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.student.parameters(), lr=self.lr)
        if self.lr_end is None:
            return opt
        total, end = max(1, int(self.trainer.estimated_stepping_batches)), self.lr_end / self.lr
        decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 + (end - 1.0) * min(1.0, step / total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": decay, "interval": "step"}}

    # --------------------------------------------------------------------------------- checkpoint
    def rl_state_dict(self) -> dict:
        return {**super().rl_state_dict(), "buffer": self.buffer.state_dict()}

    def load_rl_state_dict(self, state: dict) -> None:
        super().load_rl_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])
