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

Every size is a knob; ``image_size``/``radar_shape`` follow the data's resolution (the flatten width
is ``channels[-1] * (image_size / 2**len(channels))**2``).
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from envs.beam import check_modality

from .blocks import BeamNet, ChannelAttention, SelfAttention, SpatialAttention, StepEncoder, TemporalAttention, \
    Unpack, conv_bn_relu, mlp

__all__ = ["BeamTeacher"]


class _ImageCNN(nn.Module):
    def __init__(self, image_size: int, channels: Sequence[int], attention: bool, fc: Sequence[int],
                 fc_dropouts: Sequence[float], feature_size: int):
        super().__init__()
        layers: list[nn.Module] = []
        cin, size = 1, image_size
        for c in channels:
            layers += conv_bn_relu(cin, c) + [nn.MaxPool2d(2)]
            cin, size = c, size // 2
        if size < 1:
            raise ValueError(f"image_size {image_size} is too small for {len(channels)} pooling stages")
        self.cnn = nn.Sequential(*layers)
        self.attention = nn.Sequential(ChannelAttention(cin, cin // 2), SpatialAttention(cin)) if attention \
            else nn.Identity()
        self.fc = mlp([cin * size * size, *fc, feature_size], fc_dropouts)

    def forward(self, img):
        return self.fc(self.attention(self.cnn(img)).flatten(1))


class _RadarCNN(nn.Module):
    def __init__(self, radar_shape: Sequence[int], channels: Sequence[int], fc: Sequence[int],
                 fc_dropouts: Sequence[float], feature_size: int):
        super().__init__()
        layers: list[nn.Module] = []
        cin, (h, w) = 2, radar_shape
        for c in channels:
            layers += conv_bn_relu(cin, c, stride=2)
            cin, h, w = c, (h + 1) // 2, (w + 1) // 2
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
                 classifier_dropouts: Sequence[float] = (0.5, 0.3), num_classes: int = 64, horizon: int = 4):
        check_modality(modality)
        fusion = modality == "image_radar"
        attention = (not fusion) if attention is None else attention
        gru_dropout = (0.5 if fusion else 0.8) if gru_dropout is None else gru_dropout
        temporal = ("mha" if fusion else "additive") if temporal is None else temporal
        if temporal not in ("additive", "mha", "none"):
            raise ValueError(f"temporal must be 'additive', 'mha' or 'none', got {temporal!r}")
        unpack = Unpack(image_size, radar_shape if fusion else None)
        image = _ImageCNN(image_size, channels, attention, fc, fc_dropouts, feature_size)
        radar = _RadarCNN(radar_shape, radar_channels, fc, fc_dropouts, feature_size) if fusion else None
        mix = nn.Sequential(nn.Linear(2 * feature_size, feature_size), nn.ReLU(), nn.Dropout(0.3)) if fusion else None
        block = {"additive": lambda: TemporalAttention(gru_hidden, attn_hidden),
                 "mha": lambda: SelfAttention(gru_hidden, heads), "none": nn.Identity}[temporal]()
        super().__init__(StepEncoder(unpack, image, radar, mix), unpack.width, feature_size, gru_hidden, gru_layers,
                         gru_dropout, block, mlp([gru_hidden, *classifier, num_classes], classifier_dropouts),
                         horizon)
        self.modality = modality
