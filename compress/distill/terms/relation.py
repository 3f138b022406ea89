"""Relation knowledge: the geometry among samples of a batch rather than each sample's output.

* ``RKDDistance`` and ``RKDAngle``: Park et al., "Relational Knowledge Distillation", CVPR 2019.
  Distances are normalised by their mean over distinct pairs; both use the Huber (smooth-L1) loss.
* ``SimilarityPreserving``: Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019:
  ``‖ norm(Gs) − norm(Gt) ‖_F² / b²`` with ``G = A Aᵀ`` row-L2-normalised.

Student and teacher embeddings may have different widths: only b x b (or b x b x b) relations are
compared.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Term

from compress.errors import UserError

__all__ = ["RKDDistance", "RKDAngle", "SimilarityPreserving", "normalized_distances", "triplet_angles"]


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def _check_batch(term: Term, student: torch.Tensor, teacher: torch.Tensor) -> None:
    if student.shape[0] != teacher.shape[0]:
        raise UserError(f"term '{term.term_name}': student batch {student.shape[0]} != teacher batch "
                         f"{teacher.shape[0]}")
    if student.shape[0] < 2:
        raise UserError(f"term '{term.term_name}' needs a batch of at least 2 samples")


def normalized_distances(x: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances divided by their mean over pairs i != j."""
    x = _flat(x)
    d = torch.cdist(x, x, p=2)
    n = x.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=x.device)
    mean = d[off].mean().clamp_min(1e-12)
    return d / mean


def triplet_angles(x: torch.Tensor) -> torch.Tensor:
    """cos of the angle at j between (x_i − x_j) and (x_k − x_j), for all i, j, k: shape (b, b, b)."""
    x = _flat(x)
    diff = x.unsqueeze(0) - x.unsqueeze(1)  # diff[j, i] = x_i - x_j
    unit = F.normalize(diff, p=2, dim=2)
    return torch.bmm(unit, unit.transpose(1, 2))  # [j, i, k]


class RKDDistance(Term):
    def loss(self, student, teacher, batch=None):
        _check_batch(self, student, teacher)
        with torch.no_grad():
            t = normalized_distances(teacher.to(student.dtype))
        return F.smooth_l1_loss(normalized_distances(student), t)


class RKDAngle(Term):
    def loss(self, student, teacher, batch=None):
        _check_batch(self, student, teacher)
        with torch.no_grad():
            t = triplet_angles(teacher.to(student.dtype))
        return F.smooth_l1_loss(triplet_angles(student), t)


class SimilarityPreserving(Term):
    def loss(self, student, teacher, batch=None):
        _check_batch(self, student, teacher)
        b = student.shape[0]
        gs = F.normalize(_flat(student) @ _flat(student).t(), p=2, dim=1)
        with torch.no_grad():
            tf = _flat(teacher.to(student.dtype))
            gt = F.normalize(tf @ tf.t(), p=2, dim=1)
        return ((gs - gt) ** 2).sum() / (b * b)
