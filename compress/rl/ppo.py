"""PPO with an optional expert-guidance JSD term (Schulman et al. 2017; the seed's Appendix C, Algorithm 1).

One training step = one PPO iteration, as in CleanRL's ppo.py:
  1. roll the current policy out for ``rollout_steps`` vector-env steps (actions sampled per branch from
     the masked categorical; joint log-probability = sum over branches), storing the expert's actions in
     the expert buffer when there is an expert (Algorithm 1 lines 8-22);
  2. GAE advantages and returns (truncated episodes bootstrap with V(final obs));
  3. optional augmentation (the seed's C.2.3 permutations of UE feature segments): ``augment(batch)``
     gets ``{"obs", "act", "mask"?}`` and returns a list of copies aligned row by row (the same transitions
     seen under another candidate order); copies keep their original's advantage and return, their
     old log-probabilities and values are recomputed under the rollout policy;
  4. ``update_epochs`` passes over shuffled minibatches; each minibatch step minimizes
     ``L_clip + vf_coef * L_V - ent_coef * H`` (Eqs. 6-9) and is followed, when an expert is set, by one
     step of ``jsd_coef * JSD(pi || expert)`` on a minibatch of the expert buffer with a separate
     optimizer on the actor (the seed's alternating optimization, Algorithm 1 lines 25-33; with the
     paper's one epoch of one 128-sample minibatch it is exactly one PPO step then one JSD step).

The expert: ``expert(obs, mask) -> actions (N, n_branches)`` (a callable such as a PF scheduler), or
``expert_info_key``: the env reports the expert's actions for the current observations in ``info[key]``.
``jsd_coef`` may be a ``compress.distill.schedules`` schedule over training progress (guidance "during
early training": ``Linear(1.0, 0.0)``); ``jsd_lr`` is the JSD optimizer's learning rate (Algorithm 1's
lambda_JSD; default ``lr``).

Hyperparameter defaults are CleanRL's for CartPole (lr 2.5e-4 annealed, 128 steps, GAE 0.95, 4 epochs,
clip 0.2, vf 0.5, entropy 0.01, grad norm 0.5); the seed's Table 5 for the scheduler: gamma 0.95,
actor lr 1e-4, critic lr 2e-4, minibatch 128, one epoch, clip 0.2, expert buffer 4000.
Needs same-step autoreset (the rollout is a T x N grid); per-branch rewards are summed (one value per state).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..distill.schedules import Schedule, as_schedule
from .base import RLModule
from .envs import VectorEnv
from .losses import expert_jsd, ppo_clip_loss, ppo_value_loss
from .policies import MaskedCategorical
from .replay import ReplayBuffer
from .rollout import RolloutStorage, gae
from ..errors import UserError

__all__ = ["PPO"]


class PPO(RLModule):
    def __init__(self, env: VectorEnv, student: nn.Module, critic: nn.Module, rollout_steps: int = 128,
                 gamma: float = 0.99, gae_lambda: float = 0.95, lr: float = 2.5e-4, critic_lr: Optional[float] = None,
                 anneal_lr: bool = True, update_epochs: int = 4, minibatch_size: int = 128, clip: float = 0.2,
                 clip_vloss: bool = True, vf_coef: float = 0.5, ent_coef: float = 0.01, norm_adv: bool = True,
                 max_grad_norm: float = 0.5, adam_eps: float = 1e-5, expert: Optional[Callable] = None,
                 expert_info_key: Optional[str] = None, jsd_coef: Union[float, Schedule] = 1.0,
                 jsd_lr: Optional[float] = None,
                 expert_buffer_size: int = 4000, expert_batch_size: int = 128, augment: Optional[Callable] = None,
                 reward_scale: float = 1.0, branches: Optional[Sequence[int]] = None,
                 mask_key: Optional[str] = "action_mask", steps_per_epoch: int = 10, seed: int = 0):
        super().__init__()
        if not 0.0 <= gamma <= 1.0 or not 0.0 <= gae_lambda <= 1.0:
            raise UserError(f"gamma and gae_lambda must be in [0, 1], got {gamma}, {gae_lambda}")
        if not 0.0 < clip < 1.0:
            raise UserError(f"clip must be in (0, 1), got {clip}")
        if int(update_epochs) < 1 or int(minibatch_size) < 1:
            raise UserError(f"update_epochs and minibatch_size must be >= 1, got {update_epochs}, {minibatch_size}")
        if expert is not None and expert_info_key is not None:
            raise UserError("give either expert (a callable) or expert_info_key, not both")
        if expert is not None and not callable(expert):
            raise UserError(f"expert must be callable (obs, mask) -> actions, got {type(expert).__name__}")
        if augment is not None and not callable(augment):
            raise UserError(f"augment must be callable (batch dict) -> list of dicts, got {type(augment).__name__}")
        self.save_hyperparameters(ignore=["env", "student", "critic", "expert", "augment"])
        self.automatic_optimization = False
        self.setup_rl(env, student, branches, seed, reward_scale, mask_key, steps_per_epoch)
        if self.collector.next_step:
            raise UserError("PPO needs an env with same-step autoreset (metadata['autoreset_mode'] = SameStep), "
                             "e.g. compress.rl.GymVectorEnv or SyncVectorEnv(..., autoreset_mode=SAME_STEP)")
        self.critic = critic
        self.rollout_steps, self.gamma, self.gae_lambda = int(rollout_steps), float(gamma), float(gae_lambda)
        self.lr, self.critic_lr, self.anneal_lr, self.adam_eps = float(lr), float(critic_lr or lr), anneal_lr, adam_eps
        self.update_epochs, self.minibatch_size, self.clip, self.clip_vloss = int(update_epochs), int(minibatch_size), clip, clip_vloss
        self.vf_coef, self.ent_coef, self.norm_adv, self.max_grad_norm = vf_coef, ent_coef, norm_adv, max_grad_norm
        self.expert, self.expert_info_key, self.jsd_coef = expert, expert_info_key, as_schedule(jsd_coef)
        self.jsd_lr = float(jsd_lr or lr)
        self.guided = expert is not None or expert_info_key is not None
        self.expert_batch_size, self.augment = int(expert_batch_size), augment
        self.expert_buffer = ReplayBuffer(expert_buffer_size)
        self.storage = RolloutStorage(self.rollout_steps, self.collector.num_envs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).reshape(obs.shape[0])

    # ---------------------------------------------------------------------------------- 1. rollout
    @torch.no_grad()
    def _policy(self, obs: np.ndarray, mask: np.ndarray | None):
        x = torch.as_tensor(obs)
        m = None if mask is None else torch.as_tensor(mask)
        dist = MaskedCategorical(self.student(x), self.branches, m)
        act = dist.sample(self.gen)
        extras = {"logp": dist.log_prob(act).sum(-1).numpy(), "value": self.value(x).numpy()}
        if self.expert is not None:
            extras["expert_act"] = np.asarray(self.expert(obs, mask), dtype=np.int64).reshape(act.shape)
        elif self.expert_info_key is not None:
            if self.expert_info_key not in self.collector.info:
                raise UserError(f"expert_info_key '{self.expert_info_key}' is not in the env's info")
            extras["expert_act"] = np.asarray(self.collector.info[self.expert_info_key], np.int64).reshape(act.shape)
        return act.numpy(), extras

    @torch.no_grad()
    def rollout(self) -> dict[str, torch.Tensor]:
        self.storage.clear()
        while not self.storage.full:
            tr = self.collector.step(self._policy)
            rew = torch.as_tensor(tr["rew"]).reshape(len(tr["rew"]), -1).sum(-1)
            trunc = torch.as_tensor(tr["ended"] & (tr["done"] == 0))
            if trunc.any():                                   # cut, not ended: bootstrap with V(final obs)
                rew[trunc] += self.gamma * self.value(torch.as_tensor(tr["next_obs"])[trunc])
            step = {"obs": tr["obs"], "act": tr["act"], "logp": tr["logp"], "value": tr["value"],
                    "rew": rew.numpy(), "ended": tr["ended"].astype(np.float32)}
            if "mask" in tr:
                step["mask"] = tr["mask"]
            if "expert_act" in tr:
                exp = {"obs": tr["obs"], "act": tr["expert_act"], **({"mask": tr["mask"]} if "mask" in tr else {})}
                for b in [exp, *self._augmented(exp)]:
                    self.expert_buffer.add(b)
            self.storage.add(step)
        r = self.storage.tensors()
        # ------------------------------------------------------------------------------ 2. GAE
        last_value = self.value(torch.as_tensor(self.collector.obs))
        adv, ret = gae(r["rew"], r["value"], r["ended"], last_value, self.gamma, self.gae_lambda)
        flat = lambda t: t.reshape(-1, *t.shape[2:])
        batch = {k: flat(r[k]) for k in ("obs", "act", "logp", "value") + (("mask",) if "mask" in r else ())}
        batch["adv"], batch["ret"] = flat(adv), flat(ret)
        # ------------------------------------------------------------------------------ 3. augmentation
        copies = self._augmented({k: batch[k] for k in ("obs", "act", "mask") if k in batch})
        for c in copies:
            c = {k: torch.as_tensor(v) for k, v in c.items()}
            dist = MaskedCategorical(self.student(c["obs"]), self.branches, c.get("mask"))
            c.update(logp=dist.log_prob(c["act"]).sum(-1), value=self.value(c["obs"]), adv=batch["adv"], ret=batch["ret"])
            batch = {k: torch.cat([batch[k], c[k]]) for k in batch}
        return batch

    def _augmented(self, batch: dict) -> list[dict]:
        if self.augment is None:
            return []
        copies = list(self.augment(batch))
        for c in copies:
            if set(c) != set(batch) or any(len(c[k]) != len(batch[k]) for k in batch):
                raise UserError("augment must return copies with the same keys and rows as its input")
        return copies

    # ---------------------------------------------------------------------------------- 4. update
    def training_step(self, batch, batch_idx):
        ppo_opt, jsd_opt = self.optimizers()
        if self.anneal_lr:                                    # linear decay to 0 over the run (CleanRL)
            frac = 1.0 - self.updates / max(1, self.total_updates)
            for g, base in zip(ppo_opt.param_groups, (self.lr, self.critic_lr)):
                g["lr"] = base * frac
        b = self.rollout()
        params = list(self.student.parameters()) + list(self.critic.parameters())
        n = len(b["obs"])
        logs = []
        for _ in range(self.update_epochs):
            perm = torch.randperm(n, generator=self.gen)
            for start in range(0, n, self.minibatch_size):
                i = perm[start:start + self.minibatch_size]
                dist = MaskedCategorical(self.student(b["obs"][i]), self.branches, b["mask"][i] if "mask" in b else None)
                logp, ent = dist.log_prob(b["act"][i]).sum(-1), dist.entropy().sum(-1)
                adv = b["adv"][i]
                if self.norm_adv and len(i) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg_loss = ppo_clip_loss(logp, b["logp"][i], adv, self.clip)                       # Eq. 8
                v_loss = ppo_value_loss(self.value(b["obs"][i]), b["ret"][i], b["value"][i],     # Eq. 7
                                        self.clip if self.clip_vloss else None)
                loss = pg_loss + self.vf_coef * v_loss - self.ent_coef * ent.mean()               # Eq. 6
                ppo_opt.zero_grad()
                self.manual_backward(loss)
                if self.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(params, self.max_grad_norm)
                ppo_opt.step()
                jsd = self._expert_step(jsd_opt)
                with torch.no_grad():
                    ratio_log = logp.detach() - b["logp"][i]
                    logs.append(torch.stack([pg_loss.detach(), v_loss.detach(), ent.mean().detach(), jsd,
                                             ((ratio_log.exp() - 1) - ratio_log).mean(),
                                             ((ratio_log.exp() - 1).abs() > self.clip).float().mean()]))
        self.updates += 1
        m = torch.stack(logs).mean(0)
        self.log_metrics({f"train/{k}": v for k, v in zip(("pg_loss", "v_loss", "entropy", "jsd", "approx_kl",
                                                             "clipfrac"), m)})

    def _expert_step(self, jsd_opt) -> torch.Tensor:
        """One step on ``jsd_coef * JSD(pi || expert)`` over an expert minibatch (Eq. 5, Algorithm 1 l. 31-33)."""
        coef = self.jsd_coef(self.progress)
        if not self.guided or coef == 0 or len(self.expert_buffer) == 0:
            return torch.zeros(())
        e = self.expert_buffer.sample(self.expert_batch_size, self.rng)
        jsd = expert_jsd(self.student(e["obs"]), e["act"], self.branches, e.get("mask")).mean()
        jsd_opt.zero_grad()
        self.manual_backward(coef * jsd)
        if self.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.student.parameters(), self.max_grad_norm)
        jsd_opt.step()
        return jsd.detach()

    def configure_optimizers(self):
        ppo = torch.optim.Adam([{"params": self.student.parameters(), "lr": self.lr},
                                {"params": self.critic.parameters(), "lr": self.critic_lr}], eps=self.adam_eps)
        jsd = torch.optim.Adam(self.student.parameters(), lr=self.jsd_lr, eps=self.adam_eps)
        return [ppo, jsd]

    # --------------------------------------------------------------------------------- checkpoint
    def rl_state_dict(self) -> dict:
        return {**super().rl_state_dict(), "expert_buffer": self.expert_buffer.state_dict()}

    def load_rl_state_dict(self, state: dict) -> None:
        super().load_rl_state_dict(state)
        self.expert_buffer.load_state_dict(state["expert_buffer"])
