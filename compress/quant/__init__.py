"""Quantization-aware training (QAT) and int8 artifacts, on core PyTorch ops only.

Public API (stable):

    prepare_qat(model, *, skip=()) -> model      # swaps nn.Linear / nn.Conv1d / nn.Conv2d for QAT versions in place
    is_qat_prepared(model) -> bool               # True if any QAT module is inside (pruning must refuse then)
    QATCallback(start_epoch=0, freeze_observers_epoch=None, module_attr="student")   # Lightning callback
    freeze_observers(model, frozen=True)         # stop/restart the EMA min/max activation observers
    calibrate(model, batches, max_batches=None)  # observers record in eval mode (post-training calibration)
    float_copy(model) -> model                   # a float copy of a QAT model (same weights, no fake quant)
    int8_param_bytes(model) -> int               # int8 weights + fp32 scales + zero-points + int32 biases
    QATLinear, QATConv1d, QATConv2d, ActFakeQuant   # the modules themselves

Why not torch.ao.quantization: its eager/FX APIs are deprecated (and Lightning dropped its QAT callback);
the fake-quant core ops (torch.fake_quantize_per_channel_affine / _per_tensor_affine, straight-through
gradients) are maintained and are all QAT needs for the MLP/CNN students of this project.
"""

from compress.quant.fake_quant import (
    ActFakeQuant,
    QATConv1d,
    QATConv2d,
    QATLinear,
    calibrate,
    float_copy,
    freeze_observers,
    int8_param_bytes,
    is_qat_prepared,
    prepare_qat,
)
from compress.quant.callback import QATCallback

__all__ = [
    "prepare_qat",
    "is_qat_prepared",
    "freeze_observers",
    "calibrate",
    "float_copy",
    "QATCallback",
    "int8_param_bytes",
    "QATLinear",
    "QATConv1d",
    "QATConv2d",
    "ActFakeQuant",
]
