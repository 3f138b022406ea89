"""Policy knowledge: KL or JSD between action distributions of an actor (or Q-network) and a teacher.

Actions may be split into branches (a multi-branch output such as 1LDS's per-RBG heads): each
branch is its own softmax, losses are averaged over branches.  An action mask (True = allowed) from
``batch[mask_key]`` removes invalid actions from both distributions before the softmax.  A Q-value
teacher (DQN) is turned into a policy with ``softmax(Q / q_T)``; the student may be a Q-network too
(``student_q=True`` uses the same temperature on the student side).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .base import Term
from .response import js_div, kl_div

from compress.errors import UserError

__all__ = ["Policy"]

_NEG = -1e9


class Policy(Term):
    def __init__(self, kind: str = "kl", T: float = 1.0, branches: Sequence[int] | None = None,
                 mask_key: str | None = None, teacher_q: bool = False, q_T: float = 1.0,
                 student_q: bool = False, **kw):
        super().__init__(**kw)
        if kind not in ("kl", "jsd"):
            raise UserError(f"Policy kind must be 'kl' or 'jsd', got '{kind}'")
        if T <= 0 or q_T <= 0:
            raise UserError(f"Policy temperatures must be > 0, got T={T}, q_T={q_T}")
        self.kind, self.T, self.q_T = kind, float(T), float(q_T)
        self.branches = list(branches) if branches else None
        self.mask_key, self.teacher_q, self.student_q = mask_key, teacher_q, student_q

    def _mask(self, batch, like: torch.Tensor) -> torch.Tensor | None:
        if self.mask_key is None:
            return None
        if not isinstance(batch, dict) or self.mask_key not in batch:
            raise UserError(f"term '{self.term_name}': batch has no action mask under key '{self.mask_key}'")
        mask = batch[self.mask_key].to(torch.bool)
        if mask.shape != like.shape:
            raise UserError(f"term '{self.term_name}': action mask shape {tuple(mask.shape)} does not match "
                             f"logits shape {tuple(like.shape)}")
        return mask

    def loss(self, student, teacher, batch=None):
        self.check_shapes(student, teacher)
        sizes = self.branches or [student.shape[-1]]
        if sum(sizes) != student.shape[-1]:
            raise UserError(f"term '{self.term_name}': branches {sizes} sum to {sum(sizes)} but the output has "
                             f"{student.shape[-1]} actions")
        mask = self._mask(batch, student)
        s_scale = self.q_T if self.student_q else self.T
        t_scale = self.q_T if self.teacher_q else self.T
        s, t = student / s_scale, teacher.to(student.dtype) / t_scale
        if mask is not None:
            s = s.masked_fill(~mask, _NEG)
            t = t.masked_fill(~mask, _NEG)
        losses = []
        for s_b, t_b in zip(torch.split(s, sizes, -1), torch.split(t, sizes, -1)):
            log_s, log_t = F.log_softmax(s_b, -1), F.log_softmax(t_b, -1)
            losses.append(kl_div(log_t, log_s) if self.kind == "kl" else js_div(log_s, log_t))
        return torch.stack(losses, -1).mean()
