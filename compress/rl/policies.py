"""Policies over multi-branch discrete actions: greedy, epsilon-greedy, masked categorical.

A network outputs the logits (or Q-values) of all branches concatenated, ``(B, sum(sizes))`` — one
forward pass for a 1LDS actor's 18 RBG branches — and an action is one index per branch, ``(B, n_branches)``.
``Branches`` views the flat output as ``(B, n_branches, max_size)``; short branches are padded with
entries that are never valid.

Masks (True = allowed) have the flat layout ``(B, sum(sizes))``, like ``compress.distill.terms.Policy``'s.
A branch whose mask allows nothing is treated as unmasked (a terminal state's mask may be empty; a
distribution over nothing has no defined value).

NaN safety (the masked-SAC/PPO bug of pytorch/rl#1750, sb3-contrib#81): invalid logits are set to
``-inf`` before the softmax, and their log-probabilities are then replaced by 0, so ``p * logp`` is
``0 * 0`` at invalid actions; the replacement is a ``torch.where`` on the log-softmax *output*, whose
gradient at the replaced entries is 0 (the softmax there is 0), so no ``0 * inf`` appears forward or
backward.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from ..errors import UserError

__all__ = ["Branches", "MaskedCategorical", "greedy", "epsilon_greedy"]


class Branches:
    """Layout of a flat multi-branch output: ``sizes`` per branch, concatenated."""

    def __init__(self, sizes: Sequence[int]):
        self.sizes = [int(s) for s in sizes]
        if not self.sizes or any(s < 1 for s in self.sizes):
            raise UserError(f"branch sizes must be >= 1, got {list(sizes)}")
        self.n, self.total, self.width = len(self.sizes), sum(self.sizes), max(self.sizes)
        self.equal = len(set(self.sizes)) == 1
        offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        cols = np.arange(self.width)
        pad = cols[None, :] >= np.asarray(self.sizes)[:, None]                     # (n, width)
        index = np.where(pad, 0, offsets[:, None] + cols[None, :])
        self.index = torch.as_tensor(index.reshape(-1), dtype=torch.long)
        self.pad = torch.as_tensor(pad)

    def __repr__(self) -> str:
        return f"Branches({self.sizes})"

    def check(self, flat: torch.Tensor, what: str = "network output") -> None:
        if flat.dim() < 2 or flat.shape[1] != self.total:
            raise UserError(f"{what} has {flat.shape[1] if flat.dim() > 1 else 'no'} entries per sample, the branches {self.sizes} "
                             f"need {self.total}")

    def view(self, flat: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """``(B, sum(sizes), *rest)`` -> ``(B, n, width, *rest)``; padding entries set to ``fill``."""
        if self.equal:
            return flat.reshape(flat.shape[0], self.n, self.width, *flat.shape[2:])
        out = flat.index_select(1, self.index.to(flat.device))
        out = out.reshape(flat.shape[0], self.n, self.width, *flat.shape[2:])
        pad = self.pad.to(flat.device).reshape(1, self.n, self.width, *([1] * (flat.dim() - 2)))
        return out.masked_fill(pad, fill)

    def flat(self, padded: torch.Tensor) -> torch.Tensor:
        """Inverse of ``view``: ``(B, n, width, *rest)`` -> ``(B, sum(sizes), *rest)``."""
        b = padded.shape[0]
        p = padded.reshape(b, self.n * self.width, *padded.shape[3:])
        if self.equal:
            return p
        keep = (~self.pad).reshape(-1).nonzero().squeeze(1).to(padded.device)
        return p.index_select(1, keep)

    def valid(self, mask: torch.Tensor | None, batch: int, device=None) -> torch.Tensor:
        """``(B, n, width)`` bool: the mask per branch, padding False, empty branches all valid."""
        base = ~self.pad.to(device)
        if mask is None:
            return base.expand(batch, -1, -1)
        m = self.view(mask.to(torch.bool), fill=False) & base
        empty = ~m.any(-1, keepdim=True)
        return torch.where(empty, base.expand_as(m), m)

    def counts(self, mask: torch.Tensor | None, batch: int, device=None) -> torch.Tensor:
        """Number of valid actions per branch, ``(B, n)`` float (``|A_b(s)|``)."""
        return self.valid(mask, batch, device).sum(-1).to(torch.float32)


class MaskedCategorical:
    """One categorical per branch from flat logits ``(B, sum(sizes))`` and an optional flat mask.

    ``logp``/``probs`` are ``(B, n, width)`` with 0 at invalid and padding entries; ``log_prob(actions)``
    and ``entropy()`` are per branch ``(B, n)`` (sum over branches for the joint action, whose
    probability is the product of the branches' — the seed's PPO ratio)."""

    def __init__(self, logits: torch.Tensor, branches: Branches, mask: torch.Tensor | None = None):
        branches.check(logits, "logits")
        self.branches = branches
        self.valid = branches.valid(mask, logits.shape[0], logits.device)
        z = branches.view(logits).masked_fill(~self.valid, float("-inf"))
        self.logp = torch.where(self.valid, torch.log_softmax(z, -1), torch.zeros((), dtype=z.dtype, device=z.device))
        self.probs = torch.where(self.valid, self.logp.exp(), torch.zeros((), dtype=z.dtype, device=z.device))

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        return -(self.probs * self.logp).sum(-1)

    def mode(self) -> torch.Tensor:
        return self.logp.masked_fill(~self.valid, float("-inf")).argmax(-1)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        b, n, w = self.probs.shape
        flat = self.probs.detach().reshape(b * n, w)
        return torch.multinomial(flat, 1, generator=generator).reshape(b, n)


def greedy(values: torch.Tensor, branches: Branches, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Argmax per branch over the valid actions, ``(B, n)``; values are logits or Q-values."""
    branches.check(values)
    v = branches.view(values)
    if mask is not None or not branches.equal:
        v = v.masked_fill(~branches.valid(mask, values.shape[0], values.device), float("-inf"))
    return v.argmax(-1)


def epsilon_greedy(values: torch.Tensor, branches: Branches, mask: np.ndarray | None, eps: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Greedy actions; each env row explores with probability ``eps`` (all its branches then uniform
    over their valid actions). Draws ``rng.random(N)`` always, then per branch, in order: the random
    stream DQN has always consumed (a recipe's numbers do not move)."""
    act = greedy(values, branches, None if mask is None else torch.as_tensor(mask)).numpy()
    explore = rng.random(len(act)) < eps
    if explore.any():
        act = act.copy()
        k = int(explore.sum())
        valid = None if mask is None else branches.valid(torch.as_tensor(mask[explore]), k).numpy()
        for b, size in enumerate(branches.sizes):
            if valid is None:
                act[explore, b] = rng.integers(0, size, k)
            else:  # uniform over the valid actions: argmax of uniform keys, invalid keys at -1
                keys = np.where(valid[:, b, :size], rng.random((k, size)), -1.0)
                act[explore, b] = keys.argmax(-1)
    return act
