"""Parameters and multiply-accumulates (MACs) per layer, counted by forward hooks.

Why our own hooks and not a library: the students are a handful of Linear/Conv/GRU layers, the
formulas are short and exact, and the usual counters either miss recurrent layers
(``torch.utils.flop_counter`` sees no FLOPs in CPU ``aten::gru``) or are unmaintained (thop).
One MAC = one multiply + one add; element-wise ops (activations, bias adds, norms) are not MACs.

Formulas (per forward of the given input, B = batch*spatial positions handled by the layer):
- Linear: out.numel() * in_features
- ConvNd: out.numel() * (in_channels / groups) * prod(kernel_size)
- ConvTransposeNd: in.numel() * (out_channels / groups) * prod(kernel_size)
- RNN/GRU/LSTM: per time step, layer and direction: G * H * (input_size_l + H), with G = 1/3/4
  gates (input_size_l = input size for layer 0, H * directions above it; LSTM projections add H*P)
- MultiheadAttention: the four projections + the two attention matmuls

``convention="thop"`` counts instead as the ``thop`` package does (what many papers call FLOPs, e.g.
the beam-tracking seed's Table II): its rules and its module walk (norms and average pools counted,
modules without a rule -- ``nn.MultiheadAttention`` among them -- neither ops nor parameters), see
``compress.profile.thop_convention``.  ``LayerStat.macs`` then holds the operations in that convention.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from compress.errors import UserError

__all__ = ["LayerStat", "count_layers", "count_totals", "check_input_fits", "CONVENTIONS"]

CONVENTIONS = ("macs", "thop")


@dataclass
class LayerStat:
    name: str
    type: str
    params: int
    macs: int
    out_shape: list

    def to_dict(self) -> dict:
        return asdict(self)


def _first_tensor(x):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for v in x:
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _macs(module: nn.Module, inputs, output) -> int:
    out = _first_tensor(output)
    inp = _first_tensor(inputs)
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return inp.numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.modules.conv._ConvNd):
        return out.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.RNNBase):
        gates = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}[module.mode]
        if inp.dim() == 2:  # unbatched (L, H_in)
            steps, batch = inp.shape[0], 1
        elif module.batch_first:
            batch, steps = inp.shape[0], inp.shape[1]
        else:
            steps, batch = inp.shape[0], inp.shape[1]
        h = module.hidden_size
        dirs = 2 if module.bidirectional else 1
        h_out = module.proj_size if module.proj_size > 0 else h
        total = 0
        for layer in range(module.num_layers):
            in_size = module.input_size if layer == 0 else h_out * dirs
            per_step = gates * h * (in_size + h_out) + (h * h_out if module.proj_size > 0 else 0)
            total += per_step * dirs
        return total * steps * batch
    if isinstance(module, (nn.RNNCell, nn.GRUCell, nn.LSTMCell)):
        gates = {nn.RNNCell: 1, nn.GRUCell: 3, nn.LSTMCell: 4}[type(module)]
        batch = inp.shape[0] if inp.dim() == 2 else 1
        return gates * module.hidden_size * (module.input_size + module.hidden_size) * batch
    if isinstance(module, nn.MultiheadAttention):
        q = _first_tensor(inputs)
        kv = inputs[1] if len(inputs) > 1 else q
        e = module.embed_dim
        lq = q.shape[0 if not module.batch_first else 1] if q.dim() == 3 else q.shape[0]
        lk = kv.shape[0 if not module.batch_first else 1] if kv.dim() == 3 else kv.shape[0]
        batch = q.numel() // (lq * e)
        proj = (lq * e * e + 2 * lk * module.kdim * e + lq * e * e)  # q, k, v, out (kdim == vdim usually)
        attn = 2 * lq * lk * e
        return (proj + attn) * batch
    return 0


_COUNTED = (nn.Linear, nn.modules.conv._ConvNd, nn.RNNBase, nn.RNNCell, nn.GRUCell, nn.LSTMCell,
            nn.MultiheadAttention)


def count_layers(model: nn.Module, example_input, convention: str = "macs") -> list[LayerStat]:
    """One forward pass (eval mode, no grad) with hooks; returns leaf/counted layers in call order.

    Parameters are attributed to the module that owns them directly; layers never called still
    appear (with 0 MACs) so the parameter total is exact.  ``convention="thop"``: see the module docstring.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown counting convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    if convention == "thop":
        return _count_thop(model, example_input)
    stats: dict[str, LayerStat] = {}
    handles = []
    names = {}
    for name, m in model.named_modules():
        names[m] = name
        own = sum(p.numel() for p in m.parameters(recurse=False))
        counted = isinstance(m, _COUNTED)
        if own == 0 and not counted:
            continue
        if any(isinstance(a, _COUNTED) for a in _ancestors(model, name)):
            continue  # e.g. MultiheadAttention.out_proj is counted by its parent

        def hook(mod, inputs, output, _name=name):
            st = stats[_name]
            st.macs += _macs(mod, inputs, output)
            out = _first_tensor(output)
            st.out_shape = list(out.shape) if out is not None else []

        stats[name] = LayerStat(name or "<root>", type(m).__name__,
                                sum(p.numel() for p in m.parameters()) if counted else own, 0, [])
        handles.append(m.register_forward_hook(hook))
    _run(model, example_input, handles)
    return list(stats.values())


def _run(model: nn.Module, example_input, handles) -> None:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            args = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
            model(*args)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


def _count_thop(model: nn.Module, example_input) -> list[LayerStat]:
    from compress.profile.thop_convention import has_thop_rule, thop_rule

    ruled: list[tuple[str, nn.Module]] = []

    def walk(module: nn.Module, prefix: str) -> None:
        if has_thop_rule(module):
            ruled.append((prefix, module))
            return
        for name, child in module.named_children():
            walk(child, f"{prefix}.{name}" if prefix else name)

    walk(model, "")
    stats = {name: LayerStat(name or "<root>", type(m).__name__, sum(p.numel() for p in m.parameters()), 0, [])
             for name, m in ruled}
    handles = []
    for name, m in ruled:
        def hook(mod, inputs, output, _name=name):
            st = stats[_name]
            st.macs += thop_rule(mod, inputs, output)
            out = _first_tensor(output)
            st.out_shape = list(out.shape) if out is not None else []
        handles.append(m.register_forward_hook(hook))
    _run(model, example_input, handles)
    return list(stats.values())


def count_totals(model: nn.Module, example_input, convention: str = "macs") -> tuple[int, int]:
    """``(parameters, operations)`` of one forward pass in ``convention`` ("macs": every parameter and
    MACs; "thop": the parameters and operations thop reports)."""
    layers = count_layers(model, example_input, convention)
    params = sum(p.numel() for p in model.parameters()) if convention == "macs" else sum(x.params for x in layers)
    return params, sum(x.macs for x in layers)


def _ancestors(model: nn.Module, name: str):
    parts = name.split(".") if name else []
    for i in range(1, len(parts)):
        yield model.get_submodule(".".join(parts[:i]))


def check_input_fits(model: nn.Module, example_input) -> None:
    """Run one forward; turn a shape error into a one-line ValueError naming expected vs got."""
    args = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    got = [list(a.shape) for a in args if isinstance(a, torch.Tensor)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*args)
    except (RuntimeError, ValueError, IndexError) as exc:
        first = next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd, nn.RNNBase))),
                     None)
        if isinstance(first, nn.Linear):
            expected = f"[*, {first.in_features}]"
        elif isinstance(first, nn.modules.conv._ConvNd):
            expected = f"[N, {first.in_channels}, ...]"
        elif isinstance(first, nn.RNNBase):
            expected = f"[..., {first.input_size}]"
        else:
            expected = "(unknown)"
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        got_s = got[0] if len(got) == 1 else got
        raise UserError(f"input shape {got_s} does not fit the model: expected {expected} ({msg[:120]})") from None
    finally:
        model.train(was_training)
