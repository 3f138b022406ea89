"""Operation counts in the convention of ``thop`` (pytorch-OpCounter >= 0.1.1, ultralytics-thop 2.x).

Many papers report "FLOPs" as ``thop.profile(model, inputs)`` returns them; to compare with their
tables the profiler can count the same way (``count_layers(..., convention="thop")``).  thop walks the
module tree: a module whose *exact type* has a rule is counted (ops and all its parameters) and not
descended into; any other module is descended into, its own parameters are not counted and its
functional work (``x * gate``, ``F.softmax``, ``torch.cat``, additions) counts nothing.  So
``nn.MultiheadAttention`` (no rule) contributes neither ops nor parameters, and its ``out_proj``
(a ``NonDynamicallyQuantizableLinear``, not exactly ``nn.Linear``) neither.

Rules (per forward call, from the tensors seen):

* Conv / ConvTranspose (any dim, any groups): ``out.numel() * (in_channels / groups) * prod(kernel)``
  (one per multiply-accumulate, biases not counted);
* Linear: ``in_features * out.numel()``;
* BatchNorm / LayerNorm / InstanceNorm / GroupNorm: ``2 * in.numel()``, doubled when affine;
* AvgPool: ``out.numel()``; AdaptiveAvgPool: ``(prod(in_spatial / out_spatial) + 1) * out.numel()``;
* LeakyReLU, PReLU: ``in.numel()``; Softmax: ``rows * (3 * n - 1)``; Upsample: ``out.numel()`` times
  1 (nearest), 5 (linear), 11 (bilinear), 259 (bicubic), 31 (trilinear);
* ReLU, ReLU6, Dropout, MaxPool, AdaptiveMaxPool, ZeroPad2d: 0 (but their type has a rule);
* RNN / GRU / LSTM (and cells), per step, layer and direction, with ``I`` the layer input and ``H`` the
  hidden size: RNN ``H(I+H) + H (+2H bias)``; GRU ``2[(I+H)H + H (+2H)] + (I+H)H + H (+2H) + H + 3H``;
  LSTM ``4[(I+H)H + H (+2H)] + 3H + H``.

Unlike thop, a root module that itself has a rule is counted (thop starts below the root).
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["thop_rule", "has_thop_rule"]


def _rnn_cell(kind: str, i: int, h: int, bias: bool) -> int:
    b = 2 * h if bias else 0
    if kind == "RNN":
        return h * (i + h) + h + b
    if kind == "GRU":
        state = (i + h) * h + h + b
        return 2 * state + (i + h) * h + h + b + h + 3 * h
    state = (i + h) * h + h + b  # LSTM
    return 4 * state + 3 * h + h


def _rnn(m: nn.RNNBase, x) -> int:
    kind = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "GRU": "GRU", "LSTM": "LSTM"}[m.mode]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        batch, steps = int(x.batch_sizes.max()), x.batch_sizes.numel()
    elif x.dim() == 2:
        batch, steps = 1, x.shape[0]
    elif m.batch_first:
        batch, steps = x.shape[0], x.shape[1]
    else:
        steps, batch = x.shape[0], x.shape[1]
    dirs = 2 if m.bidirectional else 1
    total = _rnn_cell(kind, m.input_size, m.hidden_size, m.bias) * dirs
    for _ in range(m.num_layers - 1):
        total += _rnn_cell(kind, m.hidden_size * dirs, m.hidden_size, m.bias) * dirs
    return total * steps * batch


_ZERO = (nn.ReLU, nn.ReLU6, nn.Dropout, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d,
         nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.ZeroPad2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LayerNorm, nn.InstanceNorm1d,
          nn.InstanceNorm2d, nn.InstanceNorm3d, nn.GroupNorm)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_UPSAMPLE = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 259, "trilinear": 31}
_RULED = set(_ZERO + _NORMS + _CONVS) | {nn.Linear, nn.LeakyReLU, nn.PReLU, nn.Softmax, nn.AvgPool1d, nn.AvgPool2d,
                                         nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                                         nn.AdaptiveAvgPool3d, nn.Upsample, nn.UpsamplingBilinear2d,
                                         nn.UpsamplingNearest2d, nn.RNN, nn.GRU, nn.LSTM, nn.RNNCell, nn.GRUCell,
                                         nn.LSTMCell}


def has_thop_rule(module: nn.Module) -> bool:
    """Whether thop counts this module itself (exact type match, as thop's lookup table)."""
    return type(module) in _RULED


def _first(t):
    if isinstance(t, (tuple, list)):
        return t[0] if t else None
    return t


def thop_rule(module: nn.Module, inputs, output) -> int:
    """Operations of one forward call of ``module`` in the thop convention (0 for modules without a rule)."""
    x, y = _first(inputs), _first(output)
    t = type(module)
    if t in _ZERO or t not in _RULED:
        return 0
    if t in _CONVS:
        return y.numel() * (x.shape[1] // module.groups) * math.prod(module.weight.shape[2:])
    if t is nn.Linear:
        return module.in_features * y.numel()
    if t in _NORMS:
        affine = getattr(module, "affine", False) or getattr(module, "elementwise_affine", False)
        return 2 * x.numel() * (2 if affine else 1)
    if t in (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d):
        return y.numel()
    if t in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d):
        kernel = math.prod(a / b for a, b in zip(x.shape[2:], y.shape[2:]))
        return int((kernel + 1) * y.numel())
    if t in (nn.LeakyReLU, nn.PReLU):
        return x.numel()
    if t is nn.Softmax:
        n = x.shape[module.dim if module.dim is not None else -1]
        return (x.numel() // n) * (3 * n - 1)
    if t in (nn.Upsample, nn.UpsamplingBilinear2d, nn.UpsamplingNearest2d):
        return y.numel() * _UPSAMPLE.get(module.mode, 0)
    if t in (nn.RNN, nn.GRU, nn.LSTM):
        return _rnn(module, x)
    kind = {nn.RNNCell: "RNN", nn.GRUCell: "GRU", nn.LSTMCell: "LSTM"}[t]
    batch = x.shape[0] if isinstance(x, torch.Tensor) and x.dim() == 2 else 1
    return _rnn_cell(kind, module.input_size, module.hidden_size, module.bias) * batch
