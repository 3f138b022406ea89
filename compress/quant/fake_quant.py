"""Fake-quantization modules for quantization-aware training (QAT), built on core PyTorch ops.

Scheme (the one every int8 runtime of this project executes: ONNX Runtime QDQ -> QGemm, and the C export):

* weights: int8, symmetric, per output channel, narrow range [-127, 127], zero-point 0. The scale is
  recomputed from the current weights at every forward (max |w| / 127), so it follows the training.
* activations: int8, per tensor, affine, range [-128, 127]. An EMA min/max observer (the range always
  includes 0 so that 0 is exact and a ReLU output gets zero-point -128) sets scale and zero-point; it can
  be frozen (``freeze_observers``) for the last epochs so the scales stop moving while weights settle.
* biases: int32 with scale = input scale x weight scale (what QDQ runtimes require), fake-quantized too,
  so the PyTorch model computes exactly what the integer kernels compute (up to float summation order).
* where: each quantized layer quantizes its *input*; the model's last quantized layer also quantizes
  its *output* (``quantize_output=True``), so the artifact is int8 in, int8 out (full-integer model).
  ReLU between layers needs no quantizer of its own: the next layer's input quantizer has zero-point
  -128 and clips exactly like ReLU, which is why ONNX Runtime fuses it away.

Gradients are straight-through (zero outside the clipping range): that is what
``torch.fake_quantize_per_*_affine`` implement. Scales are not learned (no LSQ): observers are robust and
need no extra parameters, so a callback can prepare a model mid-training without new parameter groups.

Why not ``torch.ao.quantization``: its eager/FX QAT APIs are deprecated, and Lightning removed its QAT
callback as unmaintainable. These few modules use only maintained core ops.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from compress.errors import UserError

ACT_QMIN, ACT_QMAX = -128, 127  # int8 activations (per tensor, affine)
W_QMAX = 127  # int8 weights (per channel, symmetric, narrow range [-127, 127])
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_EPS = 1e-8


class ActFakeQuant(nn.Module):
    """Per-tensor int8 affine fake-quant with an EMA min/max observer.

    The observer updates in training mode (unless frozen) and also on the very first call in any mode,
    so a model is never used with an uninitialised range. State lives in buffers, so it is saved in
    checkpoints and moves with ``.to(device)``.
    """

    def __init__(self, momentum: float = 0.01) -> None:
        super().__init__()
        if not 0.0 < momentum <= 1.0:
            raise UserError(f"ActFakeQuant: momentum must be in (0, 1], got {momentum}")
        self.momentum = momentum
        self.register_buffer("min_val", torch.tensor(0.0))
        self.register_buffer("max_val", torch.tensor(0.0))
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("frozen", torch.tensor(False))
        self.calibrating = False  # set by ``calibrate``: observe even in eval mode

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        lo, hi = x.detach().min().float(), x.detach().max().float()
        if not bool(self.initialized):
            self.min_val.copy_(lo)
            self.max_val.copy_(hi)
            self.initialized.fill_(True)
        else:
            self.min_val.lerp_(lo, self.momentum)
            self.max_val.lerp_(hi, self.momentum)

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale float32 scalar tensor, zero_point int32 scalar tensor) from the observed range."""
        lo = torch.clamp(self.min_val, max=0.0)
        hi = torch.clamp(self.max_val, min=0.0)
        scale = torch.clamp((hi - lo) / float(ACT_QMAX - ACT_QMIN), min=_EPS).float()
        zp = torch.clamp(ACT_QMIN - torch.round(lo / scale), ACT_QMIN, ACT_QMAX).to(torch.int32)
        return scale, zp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.training and not bool(self.frozen)) or self.calibrating or not bool(self.initialized):
            self.observe(x)
        scale, zp = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x, scale, zp, ACT_QMIN, ACT_QMAX)

    def extra_repr(self) -> str:
        return f"momentum={self.momentum}, range=[{float(self.min_val):.4g}, {float(self.max_val):.4g}]"


def weight_qparams(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric scales (float32) and zero-points (int32 zeros) for a weight tensor."""
    amax = weight.detach().abs().reshape(weight.shape[0], -1).amax(dim=1)
    scale = torch.clamp(amax / W_QMAX, min=_EPS).float()
    return scale, torch.zeros_like(scale, dtype=torch.int32)


class _QATMixin:
    """Shared logic of the QAT layers: fake-quantized input, weight, bias and (optionally) output."""

    input_quant: ActFakeQuant
    output_quant: ActFakeQuant | None

    def _init_qat(self, momentum: float) -> None:
        self.input_quant = ActFakeQuant(momentum)
        self.output_quant = None

    def enable_output_quant(self, momentum: float = 0.01) -> None:
        if self.output_quant is None:
            self.output_quant = ActFakeQuant(momentum)

    def quantized_tensors(self) -> dict[str, torch.Tensor]:
        """The integer tensors an int8 runtime stores, computed exactly as the fake-quant forward uses them.

        Keys: w_int8 (int8, weight shape), w_scale (float32 [out]), b_int32 (int32 [out] or None),
        b_scale (float32 [out]), in_scale/in_zp (scalars), out_scale/out_zp (scalars or None).
        """
        with torch.no_grad():
            w = self.weight.detach()
            w_scale, _ = weight_qparams(w)
            shape = (-1,) + (1,) * (w.dim() - 1)
            w_int = torch.clamp(torch.round(w * (1.0 / w_scale).view(shape)), -W_QMAX, W_QMAX)
            in_scale, in_zp = self.input_quant.qparams()
            b_scale = (in_scale * w_scale).float()
            b_int = None
            if self.bias is not None:
                b_int = torch.clamp(torch.round(self.bias.detach() / b_scale), INT32_MIN, INT32_MAX).to(torch.int32)
            out_scale = out_zp = None
            if self.output_quant is not None:
                out_scale, out_zp = self.output_quant.qparams()
        return dict(
            w_int8=w_int.to(torch.int8), w_scale=w_scale, b_int32=b_int, b_scale=b_scale,
            in_scale=in_scale, in_zp=in_zp, out_scale=out_scale, out_zp=out_zp,
        )

    def _fq_weight_bias(self, in_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        w_scale, w_zp = weight_qparams(self.weight)
        w = torch.fake_quantize_per_channel_affine(self.weight, w_scale, w_zp, 0, -W_QMAX, W_QMAX)
        b = self.bias
        if b is not None:  # int32 bias with scale in_scale * w_scale, straight-through
            b_scale = (in_scale.detach() * w_scale).float()
            b_q = torch.clamp(torch.round(b.detach() / b_scale), INT32_MIN, INT32_MAX) * b_scale
            b = b + (b_q - b).detach()
        return w, b

    def _qat_forward(self, x: torch.Tensor, op) -> torch.Tensor:
        x = self.input_quant(x)
        in_scale, _ = self.input_quant.qparams()
        w, b = self._fq_weight_bias(in_scale)
        y = op(x, w, b)
        if self.output_quant is not None:
            y = self.output_quant(y)
        return y


class QATLinear(_QATMixin, nn.Linear):
    """nn.Linear with int8 fake-quant of input, weight (per channel), bias (int32) and optional output."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, momentum: float = 0.01) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_qat(momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._qat_forward(x, F.linear)


class QATConv1d(_QATMixin, nn.Conv1d):
    """nn.Conv1d with the same int8 fake-quant scheme (weights per output channel)."""

    def __init__(self, *args, momentum: float = 0.01, **kwargs) -> None:
        nn.Conv1d.__init__(self, *args, **kwargs)
        self._init_qat(momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._qat_forward(x, self._conv_forward)


class QATConv2d(_QATMixin, nn.Conv2d):
    """nn.Conv2d with the same int8 fake-quant scheme (weights per output channel)."""

    def __init__(self, *args, momentum: float = 0.01, **kwargs) -> None:
        nn.Conv2d.__init__(self, *args, **kwargs)
        self._init_qat(momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._qat_forward(x, self._conv_forward)


QAT_TYPES = (QATLinear, QATConv1d, QATConv2d)


def _to_qat(m: nn.Module, momentum: float) -> nn.Module:
    """A QAT twin of ``m`` that shares its Parameter objects (so references held elsewhere stay valid)."""
    if type(m) is nn.Linear:
        q = QATLinear(m.in_features, m.out_features, bias=m.bias is not None, momentum=momentum)
    elif type(m) in (nn.Conv1d, nn.Conv2d):
        cls = QATConv1d if type(m) is nn.Conv1d else QATConv2d
        if m.padding_mode != "zeros":
            raise UserError(f"prepare_qat: padding_mode={m.padding_mode!r} is not supported (only 'zeros')")
        q = cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                dilation=m.dilation, groups=m.groups, bias=m.bias is not None, momentum=momentum)
    else:  # pragma: no cover - guarded by the caller
        raise TypeError(type(m).__name__)
    q.weight = m.weight
    q.bias = m.bias
    q.train(m.training)
    return q.to(m.weight.device)


def is_qat_prepared(model: nn.Module) -> bool:
    """True if ``model`` contains any QAT layer (pruning such a model is not supported)."""
    return any(isinstance(m, QAT_TYPES) for m in model.modules())


def qat_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(path, module) of every QAT layer, in registration order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QAT_TYPES)]


def prepare_qat(model: nn.Module, *, skip=(), quantize_output: bool = True, momentum: float = 0.01) -> nn.Module:
    """Swap every nn.Linear / nn.Conv1d / nn.Conv2d of ``model`` for its QAT version, in place.

    Weights and biases are kept (the very same Parameter objects). ``skip``: module paths (as in
    ``named_modules``) to leave in float, e.g. ``skip=("head",)``; a path that does not exist is an error.
    ``quantize_output``: the last quantized layer (in registration order, which is forward order for the
    Sequential-like students this targets) also quantizes its output, making the model int8 in/int8 out.
    Returns ``model``. Raises RuntimeError if ``model`` is already QAT-prepared.
    """
    if not isinstance(model, nn.Module):
        raise UserError(f"prepare_qat: model must be an nn.Module, got {type(model).__name__}")
    if is_qat_prepared(model):
        raise UserError("prepare_qat: model is already QAT-prepared (prepare it only once)")
    if isinstance(skip, str):
        skip = (skip,)
    names = dict(model.named_modules())
    missing = [s for s in skip if s not in names]
    if missing:
        raise UserError(f"prepare_qat: skip names unknown modules {missing}")
    skipped = tuple(skip)

    def is_skipped(path: str) -> bool:
        return any(path == s or path.startswith(s + ".") for s in skipped)

    targets = [(n, m) for n, m in model.named_modules()
               if type(m) in (nn.Linear, nn.Conv1d, nn.Conv2d) and n != "" and not is_skipped(n)]
    if isinstance(model, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        raise UserError("prepare_qat: wrap a bare layer in nn.Sequential first (it is swapped in its parent)")
    if not targets:
        raise UserError("prepare_qat: model has no nn.Linear/nn.Conv1d/nn.Conv2d to quantize")
    for path, m in targets:
        parent_path, _, attr = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, attr, _to_qat(m, momentum))
    if quantize_output:
        qat_layers(model)[-1][1].enable_output_quant(momentum)
    return model


def float_copy(model: nn.Module) -> nn.Module:
    """A float copy of a (QAT-prepared) model: every QAT layer back to its plain nn.Linear / nn.Conv with
    the same weights, no fake quantization: what the student computes without int8 rounding."""
    out = copy.deepcopy(model)
    for path, m in qat_layers(out):
        if isinstance(m, QATLinear):
            plain = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        else:
            cls = nn.Conv1d if isinstance(m, QATConv1d) else nn.Conv2d
            plain = cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                        dilation=m.dilation, groups=m.groups, bias=m.bias is not None)
        plain.weight, plain.bias = m.weight, m.bias
        plain.train(m.training)
        parent_path, _, attr = path.rpartition(".")
        setattr(out.get_submodule(parent_path) if parent_path else out, attr, plain)
    return out


def freeze_observers(model: nn.Module, frozen: bool = True) -> int:
    """Freeze (or unfreeze) every activation observer in ``model``; returns how many were changed."""
    n = 0
    for m in model.modules():
        if isinstance(m, ActFakeQuant):
            m.frozen.fill_(bool(frozen))
            n += 1
    return n


def int8_param_bytes(model: nn.Module) -> int:
    """Exact parameter bytes of the int8 deployment of ``model`` (QAT-prepared or still float).

    Per Linear/Conv layer: 1 B per weight (int8) + per output channel 4 B scale (fp32) + 1 B zero-point
    (int8; always 0 but QDQ runtimes need it stored) + 4 B bias (int32, if any); per activation quantizer
    4 B scale (fp32) + 1 B zero-point (int8). A float model is counted as ``prepare_qat`` would make it
    (input quantizer on every layer, output quantizer on the last). Layers left in float by ``skip``
    count 4 B per parameter. Other parameters (e.g. BatchNorm, GRU) count 4 B each (they stay fp32).
    The ONNX int8 file additionally stores one fp32 bias scale per output channel (derivable, = input
    scale x weight scale) and graph structure; the C export stores exactly these tensors.
    """
    prepared = is_qat_prepared(model)
    layer_types = QAT_TYPES if prepared else (nn.Linear, nn.Conv1d, nn.Conv2d)
    total = 0
    counted: set[int] = set()
    layers = [m for m in model.modules() if isinstance(m, layer_types)]
    for i, m in enumerate(layers):
        out_ch = m.weight.shape[0]
        total += m.weight.numel() + 5 * out_ch + 5  # int8 weights, scale+zp per channel, input quantizer
        if m.bias is not None:
            total += 4 * out_ch
        has_out = (m.output_quant is not None) if prepared else (i == len(layers) - 1)
        total += 5 if has_out else 0
        counted.update(id(p) for p in m.parameters(recurse=False))
    for p in model.parameters():
        if id(p) not in counted:
            total += 4 * p.numel()
            counted.add(id(p))
    return total


@torch.no_grad()
def calibrate(model: nn.Module, batches, max_batches: int | None = None) -> int:
    """Feed ``batches`` through ``model`` in eval mode with every activation observer recording.

    Post-training calibration of a QAT-prepared model (or a warm start before QAT): dropout and
    batch-norm stay in eval form, only the observers move. ``batches``: an iterable of tensors, or of
    tuples/lists/dicts whose first value is the input. Returns the number of batches used.
    """
    observers = [m for m in model.modules() if isinstance(m, ActFakeQuant)]
    if not observers:
        raise UserError("calibrate: model has no QAT observers (call prepare_qat first)")
    was_training = model.training
    model.eval()
    n = 0
    try:
        for m in observers:
            m.calibrating = True
        for batch in batches:
            if max_batches is not None and n >= max_batches:
                break
            if isinstance(batch, dict):
                batch = next(iter(batch.values()))
            elif isinstance(batch, (tuple, list)):
                batch = batch[0]
            if not isinstance(batch, torch.Tensor):
                raise UserError(f"calibrate: batch {n} is {type(batch).__name__}, expected a tensor input")
            model(batch)
            n += 1
    finally:
        for m in observers:
            m.calibrating = False
        model.train(was_training)
    if n == 0:
        raise UserError("calibrate: no batches given")
    return n
