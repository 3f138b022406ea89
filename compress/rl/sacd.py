"""Soft actor-critic for discrete actions, SACD (Christodoulou 2019), as the seed trains its 2LDS actors:
twin critics with Polyak targets, masks stored with the transitions, the state-aware target entropy
``H(s) = beta * log |A(s)|`` per branch, prioritized replay on the mean |TD| of the two critics.

Per training step, in the order of the seed's Algorithm 2 (losses in ``losses/sac.py``):
  0. ``env_steps_per_update`` vector-env steps with actions sampled from the actor (the run starts with
     ``warmup_env_steps`` uniformly random valid actions) into the replay buffer;
  1. a minibatch (PER: probabilities P(i) and importance weights w_i, beta annealed from ``per_beta0`` to 1);
  2. critics: ``y = r + gamma (1 - d) sum_a' pi(a'|s') [min_j Qbar_j(s', a') - alpha log pi(a'|s')]``, the
     exact expectation over next actions (gamma = 0: y = r, the next state is not even evaluated);
     ``L = mean_i w_i [(Q_1(s_i, a_i) - y_i)^2 + (Q_2(s_i, a_i) - y_i)^2]``; one Adam step on both critics;
  3. actor: ``J_pi = mean_i w_i sum_a pi(a|s_i) [alpha log pi(a|s_i) - min_j Q_j(s_i, a)]`` with the updated critics;
  4. temperature: ``J(alpha) = mean_i w_i sum_a pi(a|s_i) [-alpha (log pi(a|s_i) + H(s_i))]``;
  5. targets: ``Qbar_j <- tau Q_j + (1 - tau) Qbar_j``;
  6. priorities: ``|delta_i| = (|Q_1(s_i, a_i) - y_i| + |Q_2(s_i, a_i) - y_i|) / 2``.
Multi-branch actions: every term per branch (each branch's critic head ``Q_b(s, a_b)``, its own mask and
target entropy, its own reward if the env gives ``(N, n_branches)`` rewards), averaged over branches.

Networks: ``student`` (the actor, logits ``(B, sum(sizes))``: the deployable network), ``critic``
(Q-values, same layout) and ``critic2`` (default: a copy of ``critic`` with fresh weights).
Defaults are general-purpose; the seed's Table 5 values for its scheduler: gamma 0, lr 1e-4 (actor and
critics), batch 32, buffer N_gNB x 1000, PER omega 0.5, tau 0.001, beta 0.4 (2LDS).
"""
from __future__ import annotations

import copy
import math
from typing import Optional, Sequence

import torch
from torch import nn

from .base import RLModule
from .envs import VectorEnv
from .losses import q_taken, sac_actor_loss, sac_alpha_loss, sac_soft_value, target_entropy
from .policies import MaskedCategorical, epsilon_greedy
from .prioritized import PrioritizedReplay
from .replay import ReplayBuffer
from ..errors import UserError

__all__ = ["SACD", "fresh_copy"]


def fresh_copy(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with re-initialised parameters (the second critic)."""
    twin = copy.deepcopy(net)
    for m in twin.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return twin


class SACD(RLModule):
    def __init__(self, env: VectorEnv, student: nn.Module, critic: nn.Module, critic2: Optional[nn.Module] = None,
                 gamma: float = 0.99, actor_lr: float = 3e-4, critic_lr: float = 3e-4, alpha_lr: float = 3e-4,
                 batch_size: int = 64, buffer_size: int = 100_000, warmup_env_steps: int = 100,
                 env_steps_per_update: int = 1, tau: float = 0.005, target_entropy_beta: float = 0.98,
                 init_alpha: float = 1.0, autotune_alpha: bool = True, prioritized: bool = True,
                 per_alpha: float = 0.5, per_beta0: float = 0.4, per_eps: float = 1e-6, adam_eps: float = 1e-4,
                 max_grad_norm: float = 0.0, reward_scale: float = 1.0, branches: Optional[Sequence[int]] = None,
                 mask_key: Optional[str] = "action_mask", steps_per_epoch: int = 1000, seed: int = 0):
        super().__init__()
        if not 0.0 <= gamma < 1.0:
            raise UserError(f"gamma must be in [0, 1), got {gamma}")
        if not 0.0 < tau <= 1.0:
            raise UserError(f"tau must be in (0, 1], got {tau}")
        if init_alpha <= 0:
            raise UserError(f"init_alpha must be > 0, got {init_alpha}")
        if not 0.0 <= target_entropy_beta <= 1.0:
            raise UserError(f"target_entropy_beta must be in [0, 1] (a fraction of log|A|), got {target_entropy_beta}")
        if not 0.0 <= per_beta0 <= 1.0:
            raise UserError(f"per_beta0 must be in [0, 1], got {per_beta0}")
        self.save_hyperparameters(ignore=["env", "student", "critic", "critic2"])
        self.automatic_optimization = False
        self.setup_rl(env, student, branches, seed, reward_scale, mask_key, steps_per_epoch)
        self.critic1, self.critic2 = critic, (critic2 if critic2 is not None else fresh_copy(critic))
        self.target1 = copy.deepcopy(self.critic1).requires_grad_(False)
        self.target2 = copy.deepcopy(self.critic2).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(init_alpha)), requires_grad=bool(autotune_alpha))
        self.gamma, self.tau, self.beta, self.autotune = float(gamma), float(tau), float(target_entropy_beta), autotune_alpha
        self.actor_lr, self.critic_lr, self.alpha_lr, self.adam_eps = actor_lr, critic_lr, alpha_lr, adam_eps
        self.batch_size, self.max_grad_norm, self.per_beta0 = int(batch_size), float(max_grad_norm), float(per_beta0)
        self.warmup_env_steps, self.env_steps_per_update = int(warmup_env_steps), int(env_steps_per_update)
        self.buffer = PrioritizedReplay(buffer_size, per_alpha, per_eps) if prioritized else ReplayBuffer(buffer_size)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()

    # ------------------------------------------------------------------ critic values (DSACD overrides)
    def q_values(self, net: nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """``(B, n, width)`` Q-values per branch."""
        return self.branches.view(net(obs))

    def critic_target(self, data: dict) -> torch.Tensor:
        """``y`` of step 2: ``(B, n)``."""
        rew = data["rew"] if data["rew"].dim() == 2 else data["rew"][:, None]
        if self.gamma == 0:
            return rew.expand(-1, self.branches.n)
        nxt = MaskedCategorical(self.student(data["next_obs"]), self.branches, data.get("next_mask"))
        q_next = torch.min(self.q_values(self.target1, data["next_obs"]), self.q_values(self.target2, data["next_obs"]))
        v_next = sac_soft_value(nxt.probs, nxt.logp, q_next, self.alpha)
        return rew + self.gamma * (1.0 - data["done"])[:, None] * v_next

    def critic_loss(self, data: dict, weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss of both critics and the per-sample ``|delta|`` for the priorities."""
        with torch.no_grad():
            y = self.critic_target(data)
        q1 = q_taken(self.critic1(data["obs"]), data["act"], self.branches)
        q2 = q_taken(self.critic2(data["obs"]), data["act"], self.branches)
        per_sample = ((q1 - y) ** 2 + (q2 - y) ** 2).mean(-1)
        loss = per_sample.mean() if weight is None else (weight * per_sample).mean()
        td = (((q1 - y).abs() + (q2 - y).abs()) / 2).mean(-1)
        return loss, td.detach()

    def actor_q(self, obs: torch.Tensor) -> torch.Tensor:
        """``min_j Q_j(s, .)``, ``(B, n, width)``."""
        return torch.min(self.q_values(self.critic1, obs), self.q_values(self.critic2, obs))

    # ------------------------------------------------------------------------------------- acting
    @torch.no_grad()
    def _collect(self, random: bool) -> None:
        def policy(obs, mask):
            logits = self.student(torch.as_tensor(obs))
            if random:
                return epsilon_greedy(logits, self.branches, mask, 1.0, self.rng), {}
            m = None if mask is None else torch.as_tensor(mask)
            return MaskedCategorical(logits, self.branches, m).sample(self.gen).numpy(), {}

        tr = self.collector.step(policy)
        tr.pop("ended")
        self.buffer.add(tr)

    # ----------------------------------------------------------------------------------- training
    def training_step(self, batch, batch_idx):
        critic_opt, actor_opt, *alpha_opt = self.optimizers()
        if not self.collector.started:                                    # 0. act
            self.collector.reset()
            for _ in range(self.warmup_env_steps):
                self._collect(random=True)
        for _ in range(self.env_steps_per_update):
            self._collect(random=False)
        per = isinstance(self.buffer, PrioritizedReplay)                  # 1. sample
        beta = self.per_beta0 + (1.0 - self.per_beta0) * self.progress
        data = self.buffer.sample(self.batch_size, self.rng, beta) if per else self.buffer.sample(self.batch_size, self.rng)
        w = data.get("weight")

        critic_loss, td = self.critic_loss(data, w)                       # 2. critics
        self._step(critic_opt, critic_loss, list(self.critic1.parameters()) + list(self.critic2.parameters()))

        dist = MaskedCategorical(self.student(data["obs"]), self.branches, data.get("mask"))   # 3. actor
        with torch.no_grad():
            q = self.actor_q(data["obs"])
        actor_loss = sac_actor_loss(dist.probs, dist.logp, q, self.alpha, w)
        self._step(actor_opt, actor_loss, list(self.student.parameters()))

        h = target_entropy(self.branches, data.get("mask"), self.beta, len(data["obs"]))   # 4. temperature
        alpha_loss = sac_alpha_loss(self.log_alpha, dist.probs, dist.logp, h, w)
        if alpha_opt:
            self._step(alpha_opt[0], alpha_loss, [])

        with torch.no_grad():                                             # 5. targets
            for net, tgt in ((self.critic1, self.target1), (self.critic2, self.target2)):
                for p, tp in zip(net.parameters(), tgt.parameters()):
                    tp.lerp_(p, self.tau)
        if per:                                                           # 6. priorities
            self.buffer.update_priorities(data["index"], td)
        self.updates += 1
        self.log_metrics({"train/critic_loss": critic_loss.detach(), "train/actor_loss": actor_loss.detach(),
                          "train/alpha": self.alpha, "train/entropy": dist.entropy().mean().detach(),
                          "train/entropy_target": h.mean()})

    def _step(self, opt, loss: torch.Tensor, params: list) -> None:
        opt.zero_grad()
        self.manual_backward(loss)
        if self.max_grad_norm > 0 and params:
            nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        opt.step()

    def configure_optimizers(self):
        opts = [torch.optim.Adam(list(self.critic1.parameters()) + list(self.critic2.parameters()),
                                 lr=self.critic_lr, eps=self.adam_eps),
                torch.optim.Adam(self.student.parameters(), lr=self.actor_lr, eps=self.adam_eps)]
        if self.autotune:
            opts.append(torch.optim.Adam([self.log_alpha], lr=self.alpha_lr, eps=self.adam_eps))
        return opts

    # --------------------------------------------------------------------------------- checkpoint
    def rl_state_dict(self) -> dict:
        return {**super().rl_state_dict(), "buffer": self.buffer.state_dict()}

    def load_rl_state_dict(self, state: dict) -> None:
        super().load_rl_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])
