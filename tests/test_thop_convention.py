"""compress.profile's thop convention (what many papers report as FLOPs) against hand-computed counts."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from compress.profile import count_layers, count_totals


class Gated(nn.Module):
    """A custom module: thop counts its children, not its own parameter or its functional ops."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mp = nn.MaxPool2d(2)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = self.bn(self.dw(self.conv(x))) * self.scale
        return self.fc(self.pool(self.mp(y)).flatten(1) * torch.sigmoid(y.mean()))


def test_cnn_rules_match_hand_counts():
    p, ops = count_totals(Gated(), torch.zeros(2, 4, 6, 6), convention="thop")
    conv = 2 * 8 * 6 * 6 * 4 * 9            # out.numel * cin/groups * k*k (bias not counted)
    dw = 2 * 8 * 6 * 6 * 1 * 9
    bn = 2 * (2 * 8 * 6 * 6) * 2            # 2 * in.numel, doubled for the affine BN
    pool = (3 * 3 + 1) * (2 * 8)            # adaptive avg pool 3x3 -> 1: (kernel + 1) * out.numel
    fc = 8 * (2 * 5)
    assert ops == conv + dw + bn + pool + fc
    assert p == (4 * 8 * 9 + 8) + 8 * 9 + 16 + (8 * 5 + 5)     # no Gated.scale
    _, macs = count_totals(Gated(), torch.zeros(2, 4, 6, 6), convention="macs")
    assert macs == conv + dw + fc


def test_recurrent_norm_and_attention_rules():
    gru = nn.GRU(6, 4, num_layers=2, batch_first=True)
    _, ops = count_totals(gru, torch.zeros(3, 5, 6), convention="thop")

    def cell(i, h):   # thop's GRU cell: two gates, the candidate, r * (.), (1 - z) * n + z * h
        return 2 * ((i + h) * h + h + 2 * h) + (i + h) * h + h + 2 * h + h + 3 * h
    assert ops == (cell(6, 4) + cell(4, 4)) * 5 * 3
    ln = nn.LayerNorm(7)
    assert count_totals(ln, torch.zeros(2, 3, 7), convention="thop")[1] == 2 * 42 * 2
    mha = nn.Sequential(nn.Linear(8, 8))
    mha.add_module("attn_free", nn.Identity())
    att = nn.MultiheadAttention(8, 2, batch_first=True)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.att, self.fc = att, nn.Linear(8, 8)

        def forward(self, x):
            return self.fc(self.att(x, x, x)[0])
    p, ops = count_totals(Block(), torch.zeros(1, 3, 8), convention="thop")
    assert (p, ops) == (8 * 8 + 8, 8 * 3 * 8)              # the attention counts nothing, as in thop
    layers = count_layers(Block(), torch.zeros(1, 3, 8), convention="thop")
    assert [x.name for x in layers] == ["fc"]


def test_unknown_convention_is_an_error():
    with pytest.raises(ValueError, match="unknown counting convention 'flops'"):
        count_layers(nn.Linear(2, 2), torch.zeros(1, 2), convention="flops")
