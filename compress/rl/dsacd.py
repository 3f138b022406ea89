"""DSACD: distributional SAC-discrete, the seed's algorithm for its 1LDS actors (Appendix D.1, Algorithm 2).

SACD (``sacd.py``: acting, actor, temperature, targets, PER, the order of the updates) with N-quantile
twin critics (QR-DQN, Dabney et al. 2018) in place of scalar ones; the actor is unchanged, so the
deployed network costs what a DQN's does. What differs, line by line of Algorithm 2:

* critics output ``N`` quantiles per action: ``(B, sum(sizes) * N)``, read as ``(B, sum(sizes), N)``
  (action-major: the N quantiles of action a are adjacent);
* target quantiles (line 10, Eq. 13 with the exact expectation over a', min over critics per quantile):
  ``y_n = r + gamma (1 - d) sum_a' pi(a'|s') [min_j thetabar_{j,n}(s', a') - alpha log pi(a'|s')]``;
  with gamma = 0 the target is the single sample r (N quantiles regress one scalar);
* critic loss (line 13): the quantile Huber loss (``losses/quantile.py``: QR-DQN's sign, midpoints
  tau_hat, kappa = 1; the seed's Eqs. 11-12 are off by the sign of the indicator), summed over quantiles,
  averaged over targets, weighted by w_i, for each critic;
* actor values (line 17, Eq. 14): ``Q(s, a) = 1/N sum_n min_j theta_{j,n}(s, a)``;
* priorities (line 26, Eq. 19): ``|delta_i| = 1/(2N) sum_j sum_n |theta_{j,n}(s_i, a_i) - y_n|``.
Defaults as SACD's, plus the seed's N = 16 quantiles.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from .envs import VectorEnv
from .losses import q_taken, quantile_huber_loss, sac_soft_value
from .policies import MaskedCategorical
from .sacd import SACD
from ..errors import UserError

__all__ = ["DSACD"]


class DSACD(SACD):
    def __init__(self, env: VectorEnv, student: nn.Module, critic: nn.Module, critic2: Optional[nn.Module] = None,
                 n_quantiles: int = 16, kappa: float = 1.0,
                 gamma: float = 0.99, actor_lr: float = 3e-4, critic_lr: float = 3e-4, alpha_lr: float = 3e-4,
                 batch_size: int = 64, buffer_size: int = 100_000, warmup_env_steps: int = 100,
                 env_steps_per_update: int = 1, tau: float = 0.005, target_entropy_beta: float = 0.98,
                 init_alpha: float = 1.0, autotune_alpha: bool = True, prioritized: bool = True,
                 per_alpha: float = 0.5, per_beta0: float = 0.4, per_eps: float = 1e-6, adam_eps: float = 1e-4,
                 max_grad_norm: float = 0.0, reward_scale: float = 1.0, branches: Optional[Sequence[int]] = None,
                 mask_key: Optional[str] = "action_mask", steps_per_epoch: int = 1000, seed: int = 0):
        if int(n_quantiles) < 1:
            raise UserError(f"n_quantiles must be >= 1, got {n_quantiles}")
        if kappa <= 0:
            raise UserError(f"kappa must be > 0, got {kappa}")
        super().__init__(env, student, critic, critic2, gamma=gamma, actor_lr=actor_lr, critic_lr=critic_lr,
                         alpha_lr=alpha_lr, batch_size=batch_size, buffer_size=buffer_size,
                         warmup_env_steps=warmup_env_steps, env_steps_per_update=env_steps_per_update, tau=tau,
                         target_entropy_beta=target_entropy_beta, init_alpha=init_alpha, autotune_alpha=autotune_alpha,
                         prioritized=prioritized, per_alpha=per_alpha, per_beta0=per_beta0, per_eps=per_eps,
                         adam_eps=adam_eps, max_grad_norm=max_grad_norm, reward_scale=reward_scale, branches=branches,
                         mask_key=mask_key, steps_per_epoch=steps_per_epoch, seed=seed)
        self.save_hyperparameters(ignore=["env", "student", "critic", "critic2"])
        self.n_quantiles, self.kappa = int(n_quantiles), float(kappa)

    def quantiles(self, net: nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """Flat ``(B, sum(sizes), N)`` quantiles."""
        out = net(obs)
        want = self.branches.total * self.n_quantiles
        if out.shape[-1] != want:
            raise UserError(f"DSACD critic outputs {out.shape[-1]} values per sample; {self.branches.total} actions x "
                             f"{self.n_quantiles} quantiles need {want}")
        return out.reshape(out.shape[0], self.branches.total, self.n_quantiles)

    def q_values(self, net: nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """``(B, n, width, N)`` quantiles per branch."""
        return self.branches.view(self.quantiles(net, obs))

    def critic_target(self, data: dict) -> torch.Tensor:
        """``y``: ``(B, n, N)`` target quantiles, or ``(B, n, 1)`` when gamma = 0."""
        rew = data["rew"] if data["rew"].dim() == 2 else data["rew"][:, None]
        rew = rew.expand(-1, self.branches.n).unsqueeze(-1)
        if self.gamma == 0:
            return rew
        nxt = MaskedCategorical(self.student(data["next_obs"]), self.branches, data.get("next_mask"))
        q_next = torch.min(self.q_values(self.target1, data["next_obs"]), self.q_values(self.target2, data["next_obs"]))
        v_next = sac_soft_value(nxt.probs, nxt.logp, q_next, self.alpha)                  # (B, n, N)
        return rew + self.gamma * (1.0 - data["done"])[:, None, None] * v_next

    def critic_loss(self, data: dict, weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            y = self.critic_target(data)
        th1 = q_taken(self.quantiles(self.critic1, data["obs"]), data["act"], self.branches)   # (B, n, N)
        th2 = q_taken(self.quantiles(self.critic2, data["obs"]), data["act"], self.branches)
        per_sample = (quantile_huber_loss(th1, y, self.kappa) + quantile_huber_loss(th2, y, self.kappa)).mean(-1)
        loss = per_sample.mean() if weight is None else (weight * per_sample).mean()
        td = (((th1 - y).abs() + (th2 - y).abs()) / 2).mean(-1).mean(-1)                    # Eq. 19
        return loss, td.detach()

    def actor_q(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.min(self.q_values(self.critic1, obs), self.q_values(self.critic2, obs)).mean(-1)
