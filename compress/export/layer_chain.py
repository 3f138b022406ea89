"""Find the forward-order chain of layers of a Sequential-like student, for the exporters that write the
graph themselves (C source, int8 QDQ ONNX).

Design decision: the order is *observed*, not assumed. The model runs once on an example input with
forward hooks on its leaf modules; each call is recorded, and the chain is accepted only if every
module's input is exactly (the same tensor object as) the previous module's output, the first input is
the model input and the last output is the model output. A ``forward`` that applies functional ops
(``F.relu``, ``x.view``, ``torch.cat``), branches or skips between modules is therefore detected and
rejected with a one-line error naming the place, instead of being exported wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from compress.quant.fake_quant import QAT_TYPES, ActFakeQuant, QATConv1d, QATConv2d, QATLinear

from compress.errors import UserError


class UnsupportedLayerError(ValueError):
    """A layer (or a forward() structure) that an exporter cannot write; the message names path and type."""


@dataclass
class Step:
    """One call in the forward chain: module path, the module, its kind and kind-specific parameters."""

    path: str
    module: nn.Module
    kind: str  # linear | conv1d | conv2d | relu | leaky_relu | tanh | sigmoid | identity | flatten
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    params: dict = field(default_factory=dict)

    @property
    def quantized(self) -> bool:
        return isinstance(self.module, QAT_TYPES)


def _kind(module: nn.Module) -> tuple[str, dict] | None:
    if isinstance(module, (nn.Linear, QATLinear)):
        return "linear", {}
    if isinstance(module, (nn.Conv1d, QATConv1d)):
        return "conv1d", {}
    if isinstance(module, (nn.Conv2d, QATConv2d)):
        return "conv2d", {}
    if isinstance(module, nn.ReLU):
        return "relu", {}
    if isinstance(module, nn.LeakyReLU):
        return "leaky_relu", {"negative_slope": float(module.negative_slope)}
    if isinstance(module, nn.Tanh):
        return "tanh", {}
    if isinstance(module, nn.Sigmoid):
        return "sigmoid", {}
    if isinstance(module, (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)):
        return "identity", {}  # dropout is the identity in eval mode, which is what is exported
    if isinstance(module, nn.Flatten):
        return "flatten", {"start_dim": module.start_dim, "end_dim": module.end_dim}
    return None


def _label(path: str) -> str:
    return repr(path) if path else "<model>"


def _is_leaf(module: nn.Module) -> bool:
    if isinstance(module, QAT_TYPES):
        return True
    if isinstance(module, ActFakeQuant):
        return False
    return len(list(module.children())) == 0


def example_input_for(model: nn.Module) -> torch.Tensor:
    """A (1, in_features) input derived from the first Linear; convolutions need an explicit input."""
    for path, m in model.named_modules():
        if isinstance(m, nn.Linear):
            p = next(model.parameters())
            return torch.randn(1, m.in_features, dtype=p.dtype, device=p.device)
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            raise UserError(f"example_input is required: the first layer {_label(path)} "
                             f"({type(m).__name__}) does not fix the input length")
    raise UserError("example_input is required: the model has no nn.Linear to infer the input size from")


def trace_chain(model: nn.Module, example_input: torch.Tensor | None = None) -> list[Step]:
    """Observed forward-order list of leaf-module calls of ``model``; raises UnsupportedLayerError.

    Every leaf must be a known kind (see ``Step.kind``); exporters further restrict the kinds they write.
    The model is run once in eval mode under no_grad; its training flag is restored afterwards.
    """
    if not isinstance(model, nn.Module):
        raise UserError(f"expected an nn.Module, got {type(model).__name__}")
    if example_input is None:
        example_input = example_input_for(model)
    if not isinstance(example_input, torch.Tensor):
        raise UserError(f"example_input must be a torch.Tensor, got {type(example_input).__name__}")
    records: list[tuple[str, nn.Module, tuple, object]] = []
    handles = []
    for path, m in model.named_modules():
        if _is_leaf(m):
            handles.append(m.register_forward_hook(
                lambda mod, inp, out, _p=path: records.append((_p, mod, inp, out))))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(example_input)
    except Exception as e:  # the model itself rejects the input: say so in one line
        raise UserError(f"running the model on example_input of shape {tuple(example_input.shape)} failed: "
                         f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not records:
        raise UnsupportedLayerError("model has no layers to export")
    steps: list[Step] = []
    prev_out, prev_label = example_input, "the model input"
    for path, mod, inp, o in records:
        if len(inp) != 1 or inp[0] is not prev_out:
            raise UnsupportedLayerError(
                f"layer {_label(path)} ({type(mod).__name__}) does not take {prev_label} as its only input: "
                "forward() must be a plain chain of modules (no functional ops, branches or skips)")
        kind = _kind(mod)
        if kind is None:
            raise UnsupportedLayerError(f"layer {_label(path)} of type {type(mod).__name__} is not supported")
        if not isinstance(o, torch.Tensor):
            raise UnsupportedLayerError(f"layer {_label(path)} ({type(mod).__name__}) returns "
                                        f"{type(o).__name__}, not a tensor")
        steps.append(Step(path, mod, kind[0], tuple(inp[0].shape), tuple(o.shape), kind[1]))
        prev_out, prev_label = o, f"the output of {_label(path)}"
    if out is not prev_out:
        raise UnsupportedLayerError(
            f"the model output is not the output of its last layer {_label(records[-1][0])}: forward() "
            "must be a plain chain of modules (no functional ops after the last module)")
    return steps
