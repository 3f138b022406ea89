"""Generic student/teacher architectures (no wireless knowledge here)."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from compress.errors import UserError

__all__ = ["MLP", "ACTIVATIONS"]

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU,
               "gelu": nn.GELU, "silu": nn.SiLU}


class MLP(nn.Module):
    """``in -> hidden[0] -> ... -> out`` with one activation between layers; input flattened.

    Layers sit in ``self.net`` (an ``nn.Sequential``), so taps name them ``net.0``, ``net.1``...  The
    MLP is the deployable student family: the C exporter and the profiler understand it fully.
    """

    def __init__(self, in_features: int, out_features: int, hidden: Sequence[int] = (64, 64),
                 activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        if in_features < 1 or out_features < 1 or any(h < 1 for h in hidden):
            raise UserError(f"MLP sizes must be >= 1, got in={in_features}, hidden={list(hidden)}, "
                             f"out={out_features}")
        if activation not in ACTIVATIONS:
            raise UserError(f"unknown activation '{activation}' (choose from {', '.join(ACTIVATIONS)})")
        self.in_features, self.out_features = in_features, out_features
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        if x.dim() > 2:
            x = x.flatten(1)
        if x.shape[-1] != self.in_features:
            raise UserError(f"MLP expects inputs with {self.in_features} features, got shape {tuple(x.shape)}")
        return self.net(x)
