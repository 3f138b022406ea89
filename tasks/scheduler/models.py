"""The deep schedulers' networks (seed 004, Tables 5-6 and Fig. 4): actors and critics of 1LDS and 2LDS.

* 1LDS actor: the state of one user layer for all RBGs, abs(U) x (5 + 2 N_RBG) = 410 inputs, one logit
  per RBG branch and choice, N_RBG x (abs(U) + 1) = 18 x 11 = 198 outputs from one forward pass, laid out
  branch-major (``logits.reshape(B, N_RBG, abs(U) + 1)``: entry [m, u] = candidate u on RBG m, u = abs(U)
  = no allocation) - the flat layout of ``compress.rl``'s ``Branches`` and the env's flat masks;
* 2LDS actor: one RBG and layer, abs(U) x 8 + 1 = 81 inputs, abs(U) + 1 = 11 outputs;
* critics: the same inputs, one value (SACD) or N quantiles (DSACD, N = 16) per output
  (``(B, outputs x N)``, action-major as ``compress.rl.DSACD`` reads them).

All are ``compress.models.MLP`` (ReLU, the family the C exporter and profiler understand fully) with the
architecture knobs ``width`` and ``depth`` (the seed: 2 x 32 for every actor and critic; a ``hidden``
list overrides both).
"""
from __future__ import annotations

from typing import Optional, Sequence

from compress.errors import UserError
from compress.models import MLP

__all__ = ["Actor1LDS", "Critic1LDS", "Actor2LDS", "Critic2LDS", "in_1lds", "out_1lds", "in_2lds"]

N_UE_FEATURES = 5     # R^, h^, d^, b^, o^ (envs/scheduler/state.py)


def in_1lds(n_cand: int = 10, n_rbg: int = 18) -> int:
    return n_cand * (N_UE_FEATURES + 2 * n_rbg)


def out_1lds(n_cand: int = 10, n_rbg: int = 18) -> int:
    return n_rbg * (n_cand + 1)


def in_2lds(n_cand: int = 10) -> int:
    return n_cand * 8 + 1


def _hidden(width: int, depth: int, hidden: Optional[Sequence[int]]) -> list[int]:
    if hidden is not None:
        return [int(h) for h in hidden]
    if int(width) < 1 or int(depth) < 0:
        raise UserError(f"width must be >= 1 and depth >= 0, got width={width}, depth={depth}")
    return [int(width)] * int(depth)


def _check(n_cand: int, n_rbg: int, n_quantiles: int = 1) -> None:
    if int(n_cand) < 1 or int(n_rbg) < 1 or int(n_quantiles) < 1:
        raise UserError(f"n_cand, n_rbg and n_quantiles must be >= 1, got {n_cand}, {n_rbg}, {n_quantiles}")


class Actor1LDS(MLP):
    """410 -> width^depth -> 198 logits (18 RBG branches of 11 choices)."""

    def __init__(self, n_cand: int = 10, n_rbg: int = 18, width: int = 32, depth: int = 2,
                 hidden: Optional[Sequence[int]] = None):
        _check(n_cand, n_rbg)
        self.n_cand, self.n_rbg = int(n_cand), int(n_rbg)
        super().__init__(in_1lds(n_cand, n_rbg), out_1lds(n_cand, n_rbg), _hidden(width, depth, hidden))

    @property
    def branches(self) -> list[int]:
        return [self.n_cand + 1] * self.n_rbg


class Critic1LDS(MLP):
    """410 -> width^depth -> 198 x N (N = 1: SACD's Q-values; the seed's DSACD: N = 16 quantiles)."""

    def __init__(self, n_cand: int = 10, n_rbg: int = 18, n_quantiles: int = 16, width: int = 32, depth: int = 2,
                 hidden: Optional[Sequence[int]] = None):
        _check(n_cand, n_rbg, n_quantiles)
        super().__init__(in_1lds(n_cand, n_rbg), out_1lds(n_cand, n_rbg) * int(n_quantiles),
                         _hidden(width, depth, hidden))


class Actor2LDS(MLP):
    """81 -> width^depth -> 11 logits (one RBG, one layer)."""

    def __init__(self, n_cand: int = 10, width: int = 32, depth: int = 2, hidden: Optional[Sequence[int]] = None):
        _check(n_cand, 1)
        self.n_cand = int(n_cand)
        super().__init__(in_2lds(n_cand), n_cand + 1, _hidden(width, depth, hidden))


class Critic2LDS(MLP):
    """81 -> width^depth -> 11 x N (SACD: N = 1)."""

    def __init__(self, n_cand: int = 10, n_quantiles: int = 1, width: int = 32, depth: int = 2,
                 hidden: Optional[Sequence[int]] = None):
        _check(n_cand, 1, n_quantiles)
        super().__init__(in_2lds(n_cand), (n_cand + 1) * int(n_quantiles), _hidden(width, depth, hidden))
