"""Students for SINR power control: Sun et al.'s MLP and a size-agnostic interference GNN.

Both take channel amplitudes ``H`` of shape ``(B, K, K)`` (``H[b, i, j]``: transmitter ``j`` -> receiver ``i``)
and return powers ``(B, K)`` in ``[0, pmax]`` through a sigmoid, so every output is feasible by construction.

* ``PowerMLP``: ``K^2 -> 200 -> 80 -> 80 -> K`` with ReLU (Sun et al. 2018), input the flattened amplitudes,
  optionally standardised by fixed ``in_mean`` / ``in_std`` (measured: without it, sum-rate-trained MLPs
  often saturate at full power, 50% of WMMSE at K = 10; with the Rayleigh mean/std, ~70-80%).
  Fixed K: it must be trained per network size.
* ``PowerGNN``: message passing over the complete interference graph, written in plain torch (dense
  ``(B, K, K, d)`` edge tensors are cheap at these sizes; torch_geometric would add a heavy dependency for no
  speed gain). Node ``i`` starts from its direct gain; the message from ``j`` to ``i`` sees ``j``'s state, its
  current power, the interference ``j`` causes at ``i`` (``G_ij``) and suffers from ``i`` (``G_ji``). Messages
  are aggregated by **max and mean** -- both independent of K, so a network trained at K = 10 can run at
  K = 20 or 30 (sum aggregation would shift the feature scale with K). Each layer re-estimates the powers,
  as in IGCNet (Shen et al. 2019), so later layers reason about the actual interference. With
  ``neighbors=k`` each receiver only hears its k most strongly coupled links (large sparse D2D layouts:
  cost ``K k d`` instead of ``K^2 d``). ``scale`` is the
  mean gain used to normalise inputs (1 for the Gaussian IC; for D2D gains, a log transform is applied:
  ``log_gains=True``).
"""
from __future__ import annotations

import torch
from torch import nn

from compress.errors import UserError

__all__ = ["PowerMLP", "PowerGNN"]


def _check_input(H: torch.Tensor, K: int | None, name: str) -> torch.Tensor:
    if not isinstance(H, torch.Tensor):
        raise UserError(f"{name}: expected a torch.Tensor (B, K, K), got {type(H).__name__}")
    if H.dim() == 2 and K is not None and H.shape[-1] == K * K:
        H = H.reshape(H.shape[0], K, K)
    if H.dim() != 3 or H.shape[-1] != H.shape[-2]:
        raise UserError(f"{name}: expected channels of shape (B, K, K), got {tuple(H.shape)}")
    if K is not None and H.shape[-1] != K:
        raise UserError(f"{name}: built for K={K} users, got channels with K={H.shape[-1]}")
    return H


class PowerMLP(nn.Module):
    """Sun et al.'s power-control MLP: ``K^2 -> hidden... -> K``, sigmoid output scaled by ``pmax``
    (``decision="binary"``: on/off powers ``{0, pmax}`` in eval mode)."""

    def __init__(self, K: int = 10, hidden: tuple[int, ...] = (200, 80, 80), pmax: float = 1.0,
                 in_mean: float = 0.0, in_std: float = 1.0, output: str = "sigmoid", decision: str = "soft"):
        super().__init__()
        if K < 2:
            raise UserError(f"PowerMLP: K must be >= 2, got {K}")
        if output not in ("sigmoid", "clip"):
            raise UserError(f"PowerMLP: output must be 'sigmoid' or 'clip', got '{output}'")
        if decision not in ("soft", "binary"):
            raise UserError(f"PowerMLP: decision must be 'soft' or 'binary', got '{decision}'")
        # decision="binary": in eval mode (the deployed policy) each user transmits at pmax if the output is
        # >= pmax/2, else stays silent; training still sees the relaxed output. Why: WMMSE's powers at K = 10
        # are ~96% exactly 0 or pmax (binarising WMMSE keeps 100.0% of its sum-rate), so the teacher's map is
        # an on/off choice per user. An MLP fit to it hedges on the users it is unsure of (p ~ 0.3-0.7) and a
        # half-on user both loses its own rate and still interferes: measured at K = 10, the same supervised
        # MLP gives 89% of WMMSE with soft powers and 95% with the binary decision (AD MLP: 92% -> 95%).
        self.decision = decision
        # "clip" is Sun et al.'s relu6(x)/6-style output: linear inside [0, pmax], so exact 0/pmax targets of
        # WMMSE are reachable (slightly better for supervised training; its zero gradient outside the box
        # can strand units in sum-rate training, hence sigmoid by default)
        self.output = output
        if in_std <= 0:
            raise UserError(f"PowerMLP: in_std must be > 0, got {in_std}")
        self.K, self.pmax = K, pmax
        # fixed input standardisation (Rayleigh amplitudes: mean sqrt(pi)/2 = 0.886, std sqrt(1 - pi/4) = 0.463)
        self.register_buffer("in_mean", torch.tensor(float(in_mean)))
        self.register_buffer("in_std", torch.tensor(float(in_std)))
        dims = [K * K, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims, dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], K))
        self.net = nn.Sequential(*layers)

    def logits(self, H: torch.Tensor) -> torch.Tensor:
        H = _check_input(H, self.K, "PowerMLP")
        return self.net((H.reshape(H.shape[0], -1) - self.in_mean) / self.in_std)

    def forward(self, H: torch.Tensor) -> torch.Tensor:
        z = self.logits(H)
        if self.decision == "binary" and not self.training:
            # output >= pmax / 2, and never all users silent (zero rate; any one user alone has a positive
            # rate): the most confident user is always on -- it is already on whenever anyone is
            on = (z >= (0.5 if self.output == "clip" else 0.0)) | (z >= z.amax(-1, keepdim=True))
            return on.to(z.dtype) * self.pmax
        if self.output == "clip":
            return z.clamp(0.0, 1.0) * self.pmax
        return torch.sigmoid(z) * self.pmax


class _MPLayer(nn.Module):
    """One round of message passing. The edge stage is a single affine map + ReLU whose sender part is
    computed per node and broadcast, so the ``(B, K, K, d)`` edge tensor costs only elementwise work
    (no ``K^2 d^2`` matmul): ~50x cheaper than an edge MLP at K = 50, which decides D2D training time."""

    def __init__(self, d: int, edge_dim: int):
        super().__init__()
        self.sender = nn.Linear(d + 1, d)
        self.edge = nn.Linear(edge_dim, d, bias=False)
        self.upd = nn.Sequential(nn.Linear(3 * d + 1, d), nn.ReLU(), nn.Linear(d, d))
        self.head = nn.Linear(d, 1)

    def forward(self, h, p, edges, mask, nbr=None):
        B, K, d = h.shape
        src = self.sender(torch.cat((h, p.unsqueeze(-1)), -1))            # (B, K, d), indexed by sender j
        if nbr is None:                                                  # complete graph
            src_e = src.unsqueeze(1)
        else:                                                            # nbr[b, i, t]: t-th sender of i
            k = nbr.shape[-1]
            src_e = src.unsqueeze(1).expand(B, K, K, d).gather(2, nbr.unsqueeze(-1).expand(B, K, k, d))
        m = torch.relu(src_e + self.edge(edges))                         # m[b, i, j]: message j -> i
        m_max = m.masked_fill(~mask, 0.0).amax(2)                        # messages are >= 0: 0 is neutral
        m_mean = (m * mask).sum(2) / mask.sum(2).clamp_min(1)
        h = torch.relu(h + self.upd(torch.cat((h, p.unsqueeze(-1), m_max, m_mean), -1)))
        return h, self.head(h).squeeze(-1)


class PowerGNN(nn.Module):
    """Interference-graph GNN for any K (see module doc). Output powers ``(B, K)`` in ``[0, pmax]``."""

    def __init__(self, hidden: int = 32, layers: int = 3, pmax: float = 1.0, log_gains: bool = False,
                 gain_offset: float = 0.0, gain_scale: float = 1.0, neighbors: int | None = None):
        super().__init__()
        if layers < 1 or hidden < 1:
            raise UserError(f"PowerGNN: need layers >= 1 and hidden >= 1, got layers={layers}, hidden={hidden}")
        if neighbors is not None and neighbors < 1:
            raise UserError(f"PowerGNN: neighbors must be None (complete graph) or >= 1, got {neighbors}")
        self.pmax, self.log_gains, self.neighbors = pmax, log_gains, neighbors
        self.gain_offset, self.gain_scale = gain_offset, gain_scale
        self.embed = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.layers = nn.ModuleList(_MPLayer(hidden, 2) for _ in range(layers))

    def _gains(self, H: torch.Tensor) -> torch.Tensor:
        """Input features: squared amplitudes, or for D2D (``log_gains``) standardised log10 gains."""
        if self.log_gains:
            return (torch.log10(H.clamp_min(1e-30)) - self.gain_offset) / self.gain_scale
        return H * H

    def logits(self, H: torch.Tensor) -> torch.Tensor:
        H = _check_input(H, None, "PowerGNN")
        B, K, _ = H.shape
        if K < 2:
            raise UserError(f"PowerGNN: K must be >= 2, got {K}")
        G = self._gains(H)
        direct = torch.diagonal(G, dim1=-2, dim2=-1)
        edges = torch.stack((G, G.transpose(1, 2)), -1)                  # [G_ij, G_ji] on edge j -> i
        mask = ~torch.eye(K, dtype=torch.bool, device=H.device).view(1, K, K, 1)
        nbr = None
        if self.neighbors is not None and self.neighbors < K - 1:
            # sparse interference graph: each receiver listens to the k links it couples to most strongly
            raw = H * H if not self.log_gains else H
            score = (raw + raw.transpose(1, 2)).masked_fill(~mask[..., 0], float("-inf"))
            nbr = score.topk(self.neighbors, dim=2).indices               # (B, K, k)
            edges = edges.gather(2, nbr.unsqueeze(-1).expand(B, K, self.neighbors, 2))
            mask = torch.ones(1, 1, 1, 1, dtype=torch.bool, device=H.device)
        h = self.embed(direct.unsqueeze(-1))
        p = torch.full_like(direct, 1.0)
        z = None
        for layer in self.layers:
            h, z = layer(h, p, edges, mask, nbr)
            p = torch.sigmoid(z)
        return z

    def forward(self, H: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(H)) * self.pmax
