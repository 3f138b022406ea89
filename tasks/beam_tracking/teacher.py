"""The seed's teachers (Nguyen et al., seed 002; released ``ImageModalityNet`` / ``FusionModalityNet``).

Image teacher: five blocks Conv3x3 -> BN -> ReLU -> MaxPool2 (1-4-8-16-32-64 channels, 224 -> 7),
channel attention (64 -> 32 -> 64) and spatial attention (7x7 conv), flatten, FC 3136-512-128-64-64
(dropout 0.5/0.3/0.2), LayerNorm, GRU(64, 64, 2 layers, dropout 0.8), additive temporal attention
(64 -> 128 -> 1) whose context is added to each step, classifier 64-64-64-64 (dropout 0.5/0.3).
1,787,418 parameters; 157.83 MFLOPs in the thop convention with 8 input steps (Table II).

Image+radar teacher: the same image CNN without the attention gates, a radar CNN (four Conv3x3
stride 2, 2-4-16-32-64 channels, 128x64 -> 8x4, FC 2048-512-128-64-64), concatenation -> Linear 64 +
ReLU + dropout 0.3, LayerNorm, GRU(64, 64, 2 layers, dropout 0.5), 8-head self-attention with residual,
the same classifier.  2,947,740 parameters (thop, which skips the attention, reports 2,931,100: the
paper's "2.931M"), 179.25 MFLOPs.

Every size is a knob; ``image_size``/``radar_shape`` follow the data's resolution.  At reduced resolution
the pools stop at the paper's 7x7 image map (and the radar strides at its 8x4 map), so a 64 px teacher
has exactly the paper's parameters (``pool_to=None``, ``radar_stride_to=None``: always pool/stride).
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from envs.beam import check_modality

from .blocks import BeamNet, ChannelAttention, SelfAttention, SpatialAttention, StepEncoder, TemporalAttention, \
    Unpack, conv_bn_relu, mlp

__all__ = ["BeamTeacher"]


class _ImageCNN(nn.Module):
    """Conv blocks with 2x2 max pools; with ``pool_to`` a block skips its pool when the map would fall
    below ``pool_to`` and an adaptive max pool ends at ``pool_to x pool_to`` (224 px: the seed's five pools
    to 7x7, no adaptive pool; 64 px: three pools to 8x8, then 7x7), so the flatten width -- and the
    parameter count -- are the paper's at any resolution >= 7 * 2**k."""

    def __init__(self, image_size: int, channels: Sequence[int], attention: bool, fc: Sequence[int],
                 fc_dropouts: Sequence[float], feature_size: int, pool_to: int | None):
        super().__init__()
        layers: list[nn.Module] = []
        cin, size = 1, image_size
        for c in channels:
            layers += conv_bn_relu(cin, c)
            if pool_to is None or size // 2 >= pool_to:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            cin = c
        if size < 1 or (pool_to is not None and size < pool_to):
            raise ValueError(f"image_size {image_size} is too small for {len(channels)} pooling stages"
                             + (f" to {pool_to}x{pool_to}" if pool_to else ""))
        if pool_to is not None and size != pool_to:
            layers.append(nn.AdaptiveMaxPool2d(pool_to))
            size = pool_to
        self.cnn = nn.Sequential(*layers)
        self.attention = nn.Sequential(ChannelAttention(cin, cin // 2), SpatialAttention(cin)) if attention \
            else nn.Identity()
        self.fc = mlp([cin * size * size, *fc, feature_size], fc_dropouts)

    def forward(self, img):
        return self.fc(self.attention(self.cnn(img)).flatten(1))


class _RadarCNN(nn.Module):
    """Stride-2 conv blocks; with ``stride_to`` a block keeps stride 1 once the map reached ``stride_to``
    (128x64 maps: the seed's four stride-2 convs to 8x4; 64x32 maps: three, then stride 1)."""

    def __init__(self, radar_shape: Sequence[int], channels: Sequence[int], fc: Sequence[int],
                 fc_dropouts: Sequence[float], feature_size: int, stride_to: Sequence[int] | None):
        super().__init__()
        layers: list[nn.Module] = []
        cin, (h, w) = 2, radar_shape
        for c in channels:
            stride = 2 if stride_to is None or (h // 2 >= stride_to[0] and w // 2 >= stride_to[1]) else 1
            layers += conv_bn_relu(cin, c, stride=stride)
            cin = c
            if stride == 2:
                h, w = (h + 1) // 2, (w + 1) // 2
        self.cnn = nn.Sequential(*layers)
        self.fc = mlp([cin * h * w, *fc, feature_size], fc_dropouts)

    def forward(self, maps):
        return self.fc(self.cnn(maps).flatten(1))


class BeamTeacher(BeamNet):
    """The seed's teacher for ``modality`` ('image' or 'image_radar'); ``None`` knobs take its values."""

    def __init__(self, modality: str = "image", image_size: int = 224, radar_shape: Sequence[int] = (128, 64),
                 channels: Sequence[int] = (4, 8, 16, 32, 64), attention: bool | None = None,
                 fc: Sequence[int] = (512, 128, 64), fc_dropouts: Sequence[float] = (0.5, 0.3, 0.2),
                 radar_channels: Sequence[int] = (4, 16, 32, 64), feature_size: int = 64, gru_hidden: int = 64,
                 gru_layers: int = 2, gru_dropout: float | None = None, temporal: str | None = None,
                 attn_hidden: int = 128, heads: int = 8, classifier: Sequence[int] = (64, 64),
                 classifier_dropouts: Sequence[float] = (0.5, 0.3), num_classes: int = 64, horizon: int = 4,
                 pool_to: int | None = 7, radar_stride_to: Sequence[int] | None = (8, 4)):
        check_modality(modality)
        fusion = modality == "image_radar"
        attention = (not fusion) if attention is None else attention
        gru_dropout = (0.5 if fusion else 0.8) if gru_dropout is None else gru_dropout
        temporal = ("mha" if fusion else "additive") if temporal is None else temporal
        if temporal not in ("additive", "mha", "none"):
            raise ValueError(f"temporal must be 'additive', 'mha' or 'none', got {temporal!r}")
        unpack = Unpack(image_size, radar_shape if fusion else None)
        image = _ImageCNN(image_size, channels, attention, fc, fc_dropouts, feature_size, pool_to)
        radar = _RadarCNN(radar_shape, radar_channels, fc, fc_dropouts, feature_size, radar_stride_to) \
            if fusion else None
        mix = nn.Sequential(nn.Linear(2 * feature_size, feature_size), nn.ReLU(), nn.Dropout(0.3)) if fusion else None
        block = {"additive": lambda: TemporalAttention(gru_hidden, attn_hidden),
                 "mha": lambda: SelfAttention(gru_hidden, heads), "none": nn.Identity}[temporal]()
        super().__init__(StepEncoder(unpack, image, radar, mix), unpack.width, feature_size, gru_hidden, gru_layers,
                         gru_dropout, block, mlp([gru_hidden, *classifier, num_classes], classifier_dropouts),
                         horizon)
        self.modality = modality
