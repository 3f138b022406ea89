"""A candidate-shared 1LDS network: the same small MLP scores every (candidate, RBG) pair.

Same input and output as ``Actor1LDS`` / ``Critic1LDS`` (the 410-value state of one user layer, 18 x 11
logits, or 18 x 11 x N quantiles for a critic, branch-major), so it goes wherever a 1LDS actor or critic
goes (DSACD, the env's policy, a distillation teacher, ONNX export). Inside, the state is read as the
candidates' segments ``[R^, h^, d^, b^, o^, g^_1..g^_M, rho_1..rho_M]`` (``envs/scheduler/state.py``) and
each pair (u, m) becomes a token of 11 features: the UE's five, its g^_m and rho_m, two of the RBG's
context (the largest g^ and the mean rho over the present candidates on m), the candidate's place in
the TD-PF order (u / abs(U)), and how deep the TTI's co-scheduling already is (the sum of the
candidates' d^ = the mean number of UEs already on an RBG, / 8). One MLP (``width`` x ``depth``, ReLU)
maps every token to a hidden vector and a linear head to the pair's output(s); "no allocation" on RBG m
is scored from the element-wise max of its candidates' hidden vectors (empty slots give zeros).

Why (a deviation from the seed's flat MLPs, for the DSACD teacher and the critics): the PF decision is
the same function of a candidate's own features on every RBG; a flat MLP has to learn it for each of the
180 pairs from data, this one once. Measured (README "Deep schedulers"): fitted to the same states, a flat
2 x 256 MLP makes 0.89 of the best layer-1 PF gain, this 2 x 64 one 0.98. The place-in-order feature
keeps the TD-PF ranking the flat MLP reads from the input order, so the network is weight-shared, not
permutation-invariant. The deployed student is this network at width 8, distilled from the 2 x 64
teacher (the seed's flat 2 x 32 kept none of the teacher's gain); ``c_source`` writes its C (fp32 or
int8, ``tasks/scheduler/shared_c.py``), so ``compress.export.export_c`` and the recipes' ``export``
section take it like a layer chain, and ONNX export works as well.
"""
from __future__ import annotations

import torch
from torch import nn

from compress.errors import UserError
from tasks.scheduler.models import N_UE_FEATURES, in_1lds

__all__ = ["Shared1LDS"]

TOKEN_FEATURES = N_UE_FEATURES + 6


def _mlp(n_in: int, width: int, depth: int) -> nn.Sequential:
    layers, d = [], n_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    return nn.Sequential(*layers)


class Shared1LDS(nn.Module):
    """(B, U (5 + 2M)) -> (B, M (U + 1) n_out): ``n_out = 1`` for an actor, N quantiles for a critic."""

    def __init__(self, n_cand: int = 10, n_rbg: int = 18, width: int = 64, depth: int = 2, n_out: int = 1):
        super().__init__()
        if min(int(n_cand), int(n_rbg), int(width), int(depth), int(n_out)) < 1:
            raise UserError(f"Shared1LDS: n_cand, n_rbg, width, depth, n_out must be >= 1, got "
                            f"{n_cand}, {n_rbg}, {width}, {depth}, {n_out}")
        self.n_cand, self.n_rbg, self.n_out = int(n_cand), int(n_rbg), int(n_out)
        self.in_features = in_1lds(self.n_cand, self.n_rbg)
        self.body = _mlp(TOKEN_FEATURES, int(width), int(depth))
        self.head = nn.Linear(int(width), self.n_out)
        self.none = nn.Sequential(nn.Linear(int(width), int(width)), nn.ReLU(), nn.Linear(int(width), self.n_out))

    @property
    def branches(self) -> list[int]:
        return [self.n_cand + 1] * self.n_rbg

    def tokens(self, x: torch.Tensor):
        """(B, M, U, 11) token features and the (B, 1, U, 1) candidate-present mask."""
        B, U, M = x.shape[0], self.n_cand, self.n_rbg
        if x.shape[-1] != self.in_features:
            raise UserError(f"Shared1LDS expects (B, {self.in_features}) states, got {tuple(x.shape)}")
        seg = x.reshape(B, U, N_UE_FEATURES + 2 * M)
        ue, g, rho = seg[..., :N_UE_FEATURES], seg[..., N_UE_FEATURES:N_UE_FEATURES + M], seg[..., N_UE_FEATURES + M:]
        present = (seg.abs().sum(-1) > 0).to(x.dtype)                                # (B, U)
        n = present.sum(-1).clamp(min=1.0)[:, None]                                  # (B, 1)
        g_max = g.max(1).values                                                      # (B, M); empty slots are 0
        rho_mean = (rho * present[..., None]).sum(1) / n                             # (B, M)
        depth = ue[..., 2].sum(1) * M / (8.0 * M)                                    # (B,) sum d^ / 8
        g, rho = g.transpose(1, 2), rho.transpose(1, 2)                              # (B, M, U)
        slot = torch.arange(U, dtype=x.dtype, device=x.device) / U                   # place in the TD-PF order
        tok = torch.cat([ue[:, None].expand(B, M, U, N_UE_FEATURES), g[..., None], rho[..., None],
                         g_max[..., None, None].expand(B, M, U, 1), rho_mean[..., None, None].expand(B, M, U, 1),
                         slot.expand(B, M, U)[..., None], depth[:, None, None, None].expand(B, M, U, 1)], -1)
        return tok, present[:, None, :, None]

    def c_source(self, name: str, int8: bool) -> dict:
        """Dependency-free C of this network (fp32, or int8 when QAT-prepared) for ``compress.export.export_c``
        (``tasks/scheduler/shared_c.py``)."""
        from tasks.scheduler.shared_c import shared_1lds_c_source
        return shared_1lds_c_source(self, name, int8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tok, present = self.tokens(x)
        h = self.body(tok) * present                                                 # (B, M, U, w), empty = 0
        ue = self.head(h)                                                            # (B, M, U, n_out)
        none = self.none(h.max(2).values)[:, :, None]                                # (B, M, 1, n_out)
        return torch.cat([ue, none], 2).reshape(x.shape[0], -1)
