"""Relation knowledge on sampled pairs: the form of the beam-tracking seed's released code (Nguyen et al.,
seed 002, ``DistillationLoss.relational_knowledge_distillation_loss``), a variant of Park et al.'s RKD.

For every sample (anchor) of the batch, ``pairs_per_anchor`` distinct partners are drawn at random;
on the flattened embeddings (e.g. the last 4 GRU outputs of a sequence model, 4 x 64 = 256 values):

* distance term: MSE between student and teacher pair distances, each divided by its mean over
  the sampled pairs;
* angle term: MSE between the pairs' cosine distances ``1 - cos(e_i, e_j)`` (a pairwise angle, not
  Park et al.'s triplet angle).

``loss = distance_weight * L_distance + angle_weight * L_angle``; the term's own ``weight`` multiplies
the whole (the seed's alpha).  ``last_steps`` keeps only the last entries of dim 1 (time) of both
signals first.  Student and teacher embeddings may have different widths.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Term

__all__ = ["PairRelation", "sample_pairs"]


def sample_pairs(n: int, k: int, device=None) -> torch.Tensor:
    """``(n * min(k, n-1), 2)`` index pairs: each anchor with distinct random partners other than itself."""
    k = min(k, n - 1)
    scores = torch.rand(n, n, device=device)
    scores.fill_diagonal_(2.0)                                  # never pick the anchor itself
    partners = scores.argsort(dim=1)[:, :k]
    anchors = torch.arange(n, device=device)[:, None].expand(n, k)
    return torch.stack([anchors.reshape(-1), partners.reshape(-1)], dim=1)


def _relations(x: torch.Tensor, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = x[pairs[:, 0]], x[pairs[:, 1]]
    d = (a - b).norm(dim=1)
    mean = d.mean()
    d = d / mean if bool(mean > 0) else d
    return d, 1 - F.cosine_similarity(a, b, dim=1)


class PairRelation(Term):
    def __init__(self, pairs_per_anchor: int = 4, distance_weight: float = 1.0, angle_weight: float = 1.0,
                 last_steps: int | None = None, **kw):
        super().__init__(**kw)
        if pairs_per_anchor < 1:
            raise ValueError(f"PairRelation: pairs_per_anchor must be >= 1, got {pairs_per_anchor}")
        if last_steps is not None and last_steps < 1:
            raise ValueError(f"PairRelation: last_steps must be >= 1 or None, got {last_steps}")
        self.k, self.w_d, self.w_a, self.last_steps = int(pairs_per_anchor), float(distance_weight), \
            float(angle_weight), last_steps

    def loss(self, student, teacher, batch=None):
        if student.shape[0] != teacher.shape[0]:
            raise ValueError(f"term '{self.term_name}': student batch {student.shape[0]} != teacher batch "
                             f"{teacher.shape[0]}")
        if student.shape[0] < 2:
            raise ValueError(f"term '{self.term_name}' needs a batch of at least 2 samples")
        if self.last_steps is not None:
            if student.dim() < 3 or teacher.dim() < 3:
                raise ValueError(f"term '{self.term_name}': last_steps needs (B, T, ...) signals, got "
                                 f"{list(student.shape)} and {list(teacher.shape)}")
            student, teacher = student[:, -self.last_steps:], teacher[:, -self.last_steps:]
        s = student.reshape(student.shape[0], -1)
        t = teacher.reshape(teacher.shape[0], -1).to(s.dtype)
        pairs = sample_pairs(s.shape[0], self.k, s.device)
        ds, cs = _relations(s, pairs)
        with torch.no_grad():
            dt, ct = _relations(t, pairs)
        return self.w_d * F.mse_loss(ds, dt) + self.w_a * F.mse_loss(cs, ct)
