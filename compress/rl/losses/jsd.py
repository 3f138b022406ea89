"""Expert guidance term of the seed's PPO (Appendix C.2.4): Jensen-Shannon divergence to an expert.

    JSD(pi || e) = 1/2 KL(pi || m) + 1/2 KL(e || m),  m = (pi + e) / 2,   per branch, averaged over branches

in bits (``base=2``), so it lies in [0, 1] as the seed states, and it stays finite for a one-hot expert
(an expert's chosen action, e.g. a PF scheduler's). The seed's Eq. 5 writes the two KLs to ``pi`` and
``e`` themselves (a symmetrized KL), which is unbounded and infinite for a one-hot expert, contradicting
its own text; the text's JSD is implemented. ``expert`` is either actions ``(B, n)`` (integers: one-hot
per branch) or probabilities ``(B, sum(sizes))`` (floats; masked and renormalized per branch).
"""
from __future__ import annotations

import math

import torch

from ..policies import Branches, MaskedCategorical
from ...errors import UserError

__all__ = ["expert_jsd"]


def expert_jsd(logits: torch.Tensor, expert: torch.Tensor, branches: Branches, mask: torch.Tensor | None = None,
               base: float = 2.0) -> torch.Tensor:
    """Per-sample JSD ``(B,)`` between the actor's masked policy and the expert's."""
    dist = MaskedCategorical(logits, branches, mask)
    p, logp = dist.probs, dist.logp
    if expert.dtype.is_floating_point:
        branches.check(expert, "expert probabilities")
        q = branches.view(expert.to(p.dtype)).clamp_min(0) * dist.valid
        q = q / q.sum(-1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)
    else:
        if expert.shape != (logits.shape[0], branches.n):
            raise UserError(f"expert actions have shape {tuple(expert.shape)}, expected {(logits.shape[0], branches.n)}")
        q = torch.zeros_like(p).scatter_(-1, expert.long().unsqueeze(-1), 1.0)
    q = q.detach()
    tiny = torch.finfo(p.dtype).tiny
    log_m = ((p + q) / 2).clamp_min(tiny).log()
    log_q = q.clamp_min(tiny).log()
    jsd = 0.5 * (p * (logp - log_m)).sum(-1) + 0.5 * (q * (log_q - log_m)).sum(-1)     # (B, n), nats
    return jsd.mean(-1) / math.log(base)
