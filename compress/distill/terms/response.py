"""Response knowledge: compare the final outputs of student and teacher.

* ``KL``: Hinton et al. 2015 — ``T² · KL(softmax(t/T) ‖ softmax(s/T))`` averaged over the batch; the T²
  factor keeps gradient magnitudes comparable across temperatures.
* ``JSD``: Jensen–Shannon divergence of the two softmax distributions, bounded in [0, ln 2].
* ``MSE``: regression outputs, Q-values, or algorithm outputs (e.g. WMMSE powers).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Term

from compress.errors import UserError

__all__ = ["KL", "JSD", "MSE", "kl_div", "js_div"]


def kl_div(log_p_teacher: torch.Tensor, log_p_student: torch.Tensor) -> torch.Tensor:
    """Per-row KL(p_t ‖ p_s) from log-probabilities (safe where p_t = 0)."""
    p_t = log_p_teacher.exp()
    terms = torch.where(p_t > 0, p_t * (log_p_teacher - log_p_student), torch.zeros_like(p_t))
    return terms.sum(-1)


def js_div(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Per-row Jensen–Shannon divergence (natural log, so within [0, ln 2])."""
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
    return 0.5 * kl_div(log_p, log_m) + 0.5 * kl_div(log_q, log_m)


class KL(Term):
    """Temperature-scaled KL divergence with the T² factor."""

    def __init__(self, T: float = 4.0, **kw):
        super().__init__(**kw)
        if T <= 0:
            raise UserError(f"KL temperature T must be > 0, got {T}")
        self.T = float(T)

    def loss(self, student, teacher, batch=None):
        self.check_shapes(student, teacher)
        log_s = F.log_softmax(student / self.T, dim=-1)
        log_t = F.log_softmax(teacher / self.T, dim=-1)
        return kl_div(log_t, log_s).mean() * self.T ** 2


class JSD(Term):
    """Jensen–Shannon divergence between temperature-softened distributions."""

    def __init__(self, T: float = 1.0, **kw):
        super().__init__(**kw)
        if T <= 0:
            raise UserError(f"JSD temperature T must be > 0, got {T}")
        self.T = float(T)

    def loss(self, student, teacher, batch=None):
        self.check_shapes(student, teacher)
        return js_div(F.log_softmax(student / self.T, -1), F.log_softmax(teacher / self.T, -1)).mean()


class MSE(Term):
    """Mean squared error between outputs (regression, Q-values, algorithm outputs)."""

    def loss(self, student, teacher, batch=None):
        self.check_shapes(student, teacher)
        return F.mse_loss(student, teacher.to(student.dtype))
