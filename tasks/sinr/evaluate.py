"""Closed-loop scoring of any SINR policy (teacher, student, baseline, exported model) on the same channels.

A policy maps channels ``(B, K, K)`` to powers / activations ``(B, K)`` in ``[0, pmax]``. For D2D scheduling,
continuous outputs are turned into an on/off schedule by ``x >= 0.5`` before scoring (a student's output is
an activation probability; the deployed decision is binary).
"""
from __future__ import annotations

from typing import Callable

import torch

from envs import d2d, interference

from compress.errors import UserError

__all__ = ["sum_rates", "evaluate", "pct_of"]


def sum_rates(problem: str, x: torch.Tensor, p: torch.Tensor, noise: float = 1.0, gap_db: float = 6.0,
              binary: bool | None = None) -> torch.Tensor:
    """Per-sample sum-rate (bit/s/Hz) of powers/schedules ``p`` on channels ``x``."""
    if problem == "gaussian":
        return interference.sum_rate(x, p, noise)
    if problem == "d2d":
        if binary is None or binary:
            p = (p >= 0.5).to(x.dtype)
        return d2d.sum_rate(x, p, gap_db)
    raise UserError(f"problem must be 'gaussian' or 'd2d', got '{problem}'")


@torch.no_grad()
def evaluate(policy: Callable, x: torch.Tensor, problem: str = "gaussian", chunk: int = 1000,
             **kw) -> float:
    """Mean sum-rate of ``policy`` over the channel set ``x`` (evaluated in chunks, eval mode).

    Chunks of 1000: a GNN holds ``(chunk, K, K, hidden)`` edge tensors, ~0.1 GB at K = 30."""
    was_training = getattr(policy, "training", False)
    if hasattr(policy, "eval"):
        policy.eval()
    try:
        total = 0.0
        for i in range(0, x.shape[0], chunk):
            xb = x[i:i + chunk]
            total += float(sum_rates(problem, xb, policy(xb), **kw).sum())
    finally:
        if was_training:
            policy.train()
    return total / x.shape[0]


def pct_of(value: float, reference: float) -> float:
    """``100 * value / reference``."""
    return 100.0 * value / reference
