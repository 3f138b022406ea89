"""Generic student/teacher architectures (no wireless knowledge here)."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from compress.errors import UserError

__all__ = ["MLP", "CNN1D", "ACTIVATIONS"]

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


class CNN1D(nn.Module):
    """A 1-D convolutional classifier for sequences ``(B, length)`` or ``(B, 1, length)``: conv layers
    (``channels``, ``kernel``, ``stride``, padding ``kernel // 2``, one activation each), flatten, then
    ``hidden`` Linear layers to ``out_features``.  The MNIST-1D reference CNN is three conv layers of 25
    channels, kernel 5, stride 2 (Greydanus 2020: ~94% test accuracy, 5,000 parameters)."""

    def __init__(self, length: int, out_features: int, channels: Sequence[int] = (25, 25, 25), kernel: int = 5,
                 stride: int = 2, hidden: Sequence[int] = (), activation: str = "relu", in_channels: int = 1):
        super().__init__()
        if length < 1 or out_features < 1 or not channels or any(c < 1 for c in channels) or kernel < 1 or stride < 1:
            raise UserError(f"CNN1D sizes must be >= 1, got length={length}, channels={list(channels)}, "
                            f"kernel={kernel}, stride={stride}, out={out_features}")
        if activation not in ACTIVATIONS:
            raise UserError(f"unknown activation '{activation}' (choose from {', '.join(ACTIVATIONS)})")
        self.length, self.in_channels, self.out_features = length, in_channels, out_features
        layers: list[nn.Module] = []
        width, size = in_channels, length
        for c in channels:
            layers += [nn.Conv1d(width, c, kernel, stride=stride, padding=kernel // 2), ACTIVATIONS[activation]()]
            width, size = c, (size + 2 * (kernel // 2) - kernel) // stride + 1
        if size < 1:
            raise UserError(f"CNN1D: {len(channels)} conv layers of stride {stride} leave no output of a length-"
                            f"{length} input")
        self.features = nn.Sequential(*layers)
        dims, head = [width * size, *hidden, out_features], []
        for i in range(len(dims) - 1):
            head.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                head.append(ACTIVATIONS[activation]())
        self.head = nn.Sequential(*head)

    def forward(self, x):
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.shape[1] != self.in_channels or x.shape[-1] != self.length:
            raise UserError(f"CNN1D expects inputs (B, {self.length}) or (B, {self.in_channels}, {self.length}), "
                            f"got shape {tuple(x.shape)}")
        return self.head(self.features(x).flatten(1))
