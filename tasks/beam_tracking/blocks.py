"""Building blocks of the seed's beam predictors (Nguyen et al., seed 002; the authors' released models).

Every model maps the packed input ``x (B, T, F)`` (``envs.beam.windows``: per step a flattened motion
mask, then for image+radar the two radar maps) to beam logits for t0..t3, ``(B, 4, 64)``:

    per-step encoder (CNN on the mask [and the radar maps]) -> LayerNorm -> GRU -> temporal block
    -> classifier on every step -> the last ``horizon`` steps

The temporal block is a submodule named ``temporal`` in every model (the seed's ``enhanced_seq_out``:
GRU output plus attention context, or the GRU output itself), so relation knowledge can tap
``"temporal"`` (or ``"gru"``, whose tuple output the tap reduces to the sequence) on any of them.

Module types follow the released code one to one, so the thop-convention FLOPs of
``compress.profile`` reproduce the paper's Table II.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ChannelAttention", "SpatialAttention", "TemporalAttention", "SelfAttention", "conv_bn_relu", "ds_block",
           "mlp", "BeamNet", "StepEncoder", "Unpack"]


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation style gate: avg pool -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid, times x."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, reduced, 1), nn.ReLU(),
                                  nn.Conv2d(reduced, channels, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.gate(x)


class SpatialAttention(nn.Module):
    """A k x k conv to one map -> sigmoid, times x (the released code's form, from all channels)."""

    def __init__(self, channels: int, kernel: int = 7):
        super().__init__()
        self.gate = nn.Sequential(nn.Conv2d(channels, 1, kernel, padding=kernel // 2), nn.Sigmoid())

    def forward(self, x):
        return x * self.gate(x)


class TemporalAttention(nn.Module):
    """Additive attention over time; its context vector is added to every step (residual)."""

    def __init__(self, hidden: int, attn_hidden: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(hidden, attn_hidden), nn.Tanh(), nn.Linear(attn_hidden, 1))

    def forward(self, seq):
        w = F.softmax(self.score(seq), dim=1)                  # (B, T, 1)
        return seq + (seq * w).sum(dim=1, keepdim=True)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the GRU outputs with a residual (the fusion teacher)."""

    def __init__(self, hidden: int, heads: int = 8, dropout: float = 0.1):
        super().__init__()
        self.mha = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)

    def forward(self, seq):
        return seq + self.mha(seq, seq, seq, need_weights=False)[0]


def conv_bn_relu(cin: int, cout: int, stride: int = 1, bias: bool = True) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias), nn.BatchNorm2d(cout), nn.ReLU()]


def ds_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """Depthwise-separable block: dw 3x3 (+BN+ReLU), pw 1x1 (+BN+ReLU), no conv biases."""
    return nn.Sequential(nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
                         nn.BatchNorm2d(cin), nn.ReLU(),
                         nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def mlp(dims: Sequence[int], dropouts: Sequence[float] = (), last_relu: bool = False) -> nn.Sequential:
    """Linear layers through ``dims`` with ReLU (+ dropout ``dropouts[i]`` when given) between them."""
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2 or last_relu:
            layers.append(nn.ReLU())
            if i < len(dropouts) and dropouts[i] > 0:
                layers.append(nn.Dropout(dropouts[i]))
    return nn.Sequential(*layers)


class Unpack(nn.Module):
    """Split packed steps ``(N, F)`` into the mask ``(N, 1, H, W)`` and the radar maps ``(N, 2, Hr, Wr)``."""

    def __init__(self, image_size: int, radar_shape: Sequence[int] | None):
        super().__init__()
        self.image_size = int(image_size)
        self.radar_shape = tuple(int(d) for d in radar_shape) if radar_shape else None
        self.width = self.image_size ** 2 + (2 * self.radar_shape[0] * self.radar_shape[1] if self.radar_shape else 0)

    def forward(self, steps):
        hw = self.image_size ** 2
        img = steps[:, :hw].reshape(-1, 1, self.image_size, self.image_size)
        if self.radar_shape is None:
            return img, None
        return img, steps[:, hw:].reshape(-1, 2, *self.radar_shape)


class StepEncoder(nn.Module):
    """Per-step features: image branch, optional radar branch (concatenated), optional fusion MLP."""

    def __init__(self, unpack: Unpack, image: nn.Module, radar: nn.Module | None = None,
                 fusion: nn.Module | None = None):
        super().__init__()
        self.unpack, self.image, self.radar, self.fusion = unpack, image, radar, fusion

    def forward(self, steps):
        img, maps = self.unpack(steps)
        f = self.image(img)
        if self.radar is not None:
            f = torch.cat([f, self.radar(maps)], dim=1)
        return f if self.fusion is None else self.fusion(f)


class BeamNet(nn.Module):
    """Encoder per step -> LayerNorm -> GRU -> ``temporal`` -> classifier; returns the last ``horizon`` steps."""

    def __init__(self, encoder: nn.Module, width: int, feature_size: int, gru_hidden: int, gru_layers: int,
                 gru_dropout: float, temporal: nn.Module, classifier: nn.Module, horizon: int):
        super().__init__()
        if gru_layers < 1 or gru_hidden < 1 or feature_size < 1:
            raise ValueError(f"gru_layers, gru_hidden and feature_size must be >= 1, got {gru_layers}, {gru_hidden}, "
                             f"{feature_size}")
        self.width, self.horizon = int(width), int(horizon)
        self.encoder = encoder
        self.layer_norm = nn.LayerNorm(feature_size)
        self.gru = nn.GRU(feature_size, gru_hidden, gru_layers, batch_first=True,
                          dropout=gru_dropout if gru_layers > 1 else 0.0)
        self.temporal = temporal
        self.classifier = classifier

    def forward(self, x):
        if x.dim() != 3 or x.shape[-1] != self.width:
            raise ValueError(f"{type(self).__name__} expects packed steps (B, T, {self.width}), got {list(x.shape)}")
        b, t, _ = x.shape
        feats = self.encoder(x.reshape(b * t, -1)).reshape(b, t, -1)
        seq, _ = self.gru(self.layer_norm(feats))
        logits = self.classifier(self.temporal(seq))
        return logits[:, -self.horizon:]
