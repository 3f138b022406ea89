"""The seed's students (Nguyen et al., seed 002; released ``ImageStudentModalityNet`` / ``StudentModalityNet``).

Image student: Conv3x3 stride 2 (1 -> 18) + BN + ReLU + MaxPool3/2, three depthwise-separable blocks
18 -> 36 -> 72 -> 144 each followed by MaxPool3/2 (224 -> 7), channel (144 -> 72 -> 144) and spatial
attention, global max pool, 144 -> 64 -> 64, LayerNorm, GRU(64, 64), temporal attention 64 -> 64 -> 1
with the residual, classifier 64-64-64 (dropout 0.3).  94,778 parameters, 92.25 MFLOPs (thop, 8 steps).

Image+radar student: image Conv3x3 stride 2 (1 -> 12) then depthwise-separable blocks of stride 2
12-16-24-40-96 (224 -> 7); radar Conv3x3 stride 2 (2 -> 12) then 12-16-24-96 (128x64 -> 8x4); each
branch reduced by average + max pooling, concatenated to 384 -> 128 (dropout 0.3) -> 64, LayerNorm,
GRU(64, 64), no attention, classifier 64-64-64-64 (dropout 0.5/0.3).  105,940 parameters, 42.72 MFLOPs.

Every size is a knob (for ``compress.search``); ``None`` takes the seed's value for the modality.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from envs.beam import check_modality

from .blocks import BeamNet, ChannelAttention, SpatialAttention, StepEncoder, TemporalAttention, Unpack, \
    ds_block, mlp

__all__ = ["BeamStudent", "StudentCNN"]


class StudentCNN(nn.Module):
    """Stem conv (stride 2) + depthwise-separable blocks; downsampling by max pools or block strides;
    optional channel/spatial attention; global ``max`` or ``avgmax`` (concatenated) pooling."""

    def __init__(self, in_channels: int, stem: int, widths: Sequence[int], downsample: str = "pool",
                 attention: bool = False, pooling: str = "max"):
        super().__init__()
        if downsample not in ("pool", "stride"):
            raise ValueError(f"downsample must be 'pool' or 'stride', got {downsample!r}")
        if pooling not in ("max", "avgmax"):
            raise ValueError(f"pooling must be 'max' or 'avgmax', got {pooling!r}")
        pool = downsample == "pool"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, stem, 3, stride=2, padding=1, bias=False),
                                   nn.BatchNorm2d(stem), nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        cin = stem
        for c in widths:
            layers.append(ds_block(cin, c, stride=1 if pool else 2))
            if pool:
                layers.append(nn.MaxPool2d(3, stride=2, padding=1))
            cin = c
        self.cnn = nn.Sequential(*layers)
        self.attention = nn.Sequential(ChannelAttention(cin, max(cin // 2, 1)), SpatialAttention(cin)) \
            if attention else nn.Identity()
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.avg_pool = nn.AdaptiveAvgPool2d(1) if pooling == "avgmax" else None
        self.out_features = cin * (2 if self.avg_pool is not None else 1)

    def forward(self, x):
        x = self.attention(self.cnn(x))
        if self.avg_pool is None:
            return self.max_pool(x).flatten(1)
        return torch.cat([self.avg_pool(x).flatten(1), self.max_pool(x).flatten(1)], dim=1)


class BeamStudent(BeamNet):
    """The seed's student for ``modality`` ('image' or 'image_radar'); ``None`` knobs take its values."""

    def __init__(self, modality: str = "image", image_size: int = 224, radar_shape: Sequence[int] = (128, 64),
                 stem: int | None = None, widths: Sequence[int] | None = None, downsample: str | None = None,
                 attention: bool | None = None, pooling: str | None = None, radar_stem: int = 12,
                 radar_widths: Sequence[int] = (16, 24, 96), fusion: Sequence[int] | None = None,
                 fusion_dropouts: Sequence[float] | None = None, feature_size: int = 64, gru_hidden: int = 64,
                 gru_layers: int = 1, temporal: str | None = None, attn_hidden: int = 64,
                 classifier: Sequence[int] | None = None, classifier_dropouts: Sequence[float] | None = None,
                 num_classes: int = 64, horizon: int = 4):
        check_modality(modality)
        two = modality == "image_radar"

        def pick(value, image_default, fusion_default):
            return (fusion_default if two else image_default) if value is None else value

        stem = pick(stem, 18, 12)
        widths = pick(widths, (36, 72, 144), (16, 24, 40, 96))
        downsample = pick(downsample, "pool", "stride")
        attention = pick(attention, True, False)
        pooling = pick(pooling, "max", "avgmax")
        fusion = pick(fusion, (64,), (128,))
        fusion_dropouts = pick(fusion_dropouts, (), (0.3,))
        temporal = pick(temporal, "additive", "none")
        classifier = pick(classifier, (64,), (64, 64))
        classifier_dropouts = pick(classifier_dropouts, (0.3,), (0.5, 0.3))
        if temporal not in ("additive", "none"):
            raise ValueError(f"temporal must be 'additive' or 'none', got {temporal!r}")
        unpack = Unpack(image_size, radar_shape if two else None)
        image = StudentCNN(1, stem, widths, downsample, attention, pooling)
        radar = StudentCNN(2, radar_stem, radar_widths, "stride", False, pooling) if two else None
        width = image.out_features + (radar.out_features if radar is not None else 0)
        mix = mlp([width, *fusion, feature_size], fusion_dropouts)
        block = TemporalAttention(gru_hidden, attn_hidden) if temporal == "additive" else nn.Identity()
        super().__init__(StepEncoder(unpack, image, radar, mix), unpack.width, feature_size, gru_hidden, gru_layers,
                         0.5, block, mlp([gru_hidden, *classifier, num_classes], classifier_dropouts), horizon)
        self.modality = modality
