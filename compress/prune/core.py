"""Structured pruning on torch-pruning's DependencyGraph: physically remove channels to meet a budget.

Design decisions
- The DependencyGraph (torch-pruning) finds every layer coupled to a channel (the next layer's
  inputs, norms, residual adds), so removing a channel keeps the network consistent and the
  pruned model is genuinely smaller and faster when exported, unlike weight masking.
- A target is a *budget on a measured quantity*, never a raw channel ratio: the number of
  parameters (``target_ratio`` = kept fraction of the parameters, ``budget_params``), the bytes
  (``budget_bytes``, fp32 parameter bytes unless you pass ``bytes_fn``), or the deployed latency
  (``budget_latency_us``, measured by compress.profile in a fresh one-thread process on the
  deployed runtime, because eager PyTorch latency does not rank tiny models correctly).
  The channel ratio that meets the budget is found by bisection on throw-away copies of the
  model, so rounding (``round_to``) and uneven layer sizes are accounted for exactly.
- Local (per-layer uniform) ranking is the default: with global ranking a single layer can be
  pruned to almost nothing, which hurts accuracy after fine-tuning for small MLP students.
- Output heads are protected by default: the Linear/Conv layers whose outputs reach the model
  output without passing another such layer (found on the autograd graph, so multi-branch heads
  are all protected), because their output size is the task's interface.
- Taylor importance (|w * dL/dw|, Molchanov et al. 2019) uses the gradients currently stored in
  ``.grad``; the Lightning callback accumulates them over the epoch before each pruning step.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

import torch_pruning as tp

from compress.errors import UserError

__all__ = ["PruneResult", "prune_model", "find_output_layers", "count_params", "check_not_qat", "interpolate_budgets",
           "kept_indices"]

_PRUNABLE = (nn.Linear, nn.modules.conv._ConvNd)
QAT_ERROR = "pruning a QAT-prepared model is not supported: prune -> fine-tune -> QAT"


@dataclass
class PruneResult:
    """What one ``prune_model`` call did. ``measure_*`` are in the budget's unit."""

    channel_ratio: float
    params_before: int
    params_after: int
    measure: str
    budget: float
    measure_before: float
    measure_after: float
    evaluations: list = field(default_factory=list)  # (channel_ratio, measured) pairs tried
    kept: dict = field(default_factory=dict)  # parameter name -> flat indices kept (with track_kept=True)

    def __str__(self) -> str:
        text = f"pruned {self.channel_ratio:.1%} of channels: params {self.params_before} -> {self.params_after}"
        if self.measure == "params":
            return f"{text} (budget {self.budget:.0f})"
        return f"{text}; {self.measure} {self.measure_before:.4g} -> {self.measure_after:.4g} (budget {self.budget:.4g})"


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_not_qat(model: nn.Module) -> None:
    """Raise RuntimeError if ``model`` has QAT modules (order: prune -> fine-tune -> QAT)."""
    try:
        from compress.quant import is_qat_prepared
    except ImportError:  # the quant package is optional at import time
        return
    if is_qat_prepared(model):
        raise UserError(QAT_ERROR)


def _flatten_outputs(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _flatten_outputs(o)]
    return []


def find_output_layers(model: nn.Module, example_input) -> list[nn.Module]:
    """Linear/Conv layers whose output reaches the model output without another Linear/Conv.

    Walks the autograd graph back from every output; a node whose inputs include a layer's
    weight (directly or through a transpose/view) marks that layer as a head and stops the walk.
    Falls back to the last registered Linear when the graph is not available.
    """
    owners = {}
    for m in model.modules():
        if isinstance(m, _PRUNABLE):
            for p in (m.weight, getattr(m, "bias", None)):
                if p is not None:
                    owners[p] = m
    training = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.enable_grad():
            outs = _flatten_outputs(model(*_as_args(example_input)))
    finally:
        for m, t in training.items():
            m.train(t)
    heads: list[nn.Module] = []
    stack = [o.grad_fn for o in outs if o.grad_fn is not None]
    seen = set()

    def layer_of(fn, depth=0):
        if fn is None or depth > 3:
            return None
        var = getattr(fn, "variable", None)
        if var is not None:
            return owners.get(var)
        nexts = [n for n, _ in fn.next_functions if n is not None]
        if depth > 0 and len(nexts) != 1:  # only follow single-input shape ops (t, view, permute)
            return None
        for n in nexts:
            found = layer_of(n, depth + 1)
            if found is not None:
                return found
        return None

    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        found = [layer_of(n, 1) for n, _ in fn.next_functions if n is not None]
        found = [f for f in found if f is not None]
        if found:
            heads.extend(f for f in found if f not in heads)
            continue
        stack.extend(n for n, _ in fn.next_functions if n is not None)
    if not heads:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        heads = linears[-1:]
    return heads


def _as_args(example_input) -> tuple:
    return tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)


def _importance(kind):
    if not isinstance(kind, str):
        return kind  # a torch-pruning Importance object
    if kind == "magnitude":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if kind == "taylor":
        return tp.importance.GroupTaylorImportance()
    raise UserError(f"importance must be 'magnitude' or 'taylor', got {kind!r}")


def _prune_once(model, example_input, ratio, importance, ignored, round_to, global_pruning) -> list:
    """Remove ``ratio`` of the prunable channels of ``model`` in place (one torch-pruning step); returns
    torch-pruning's pruning history (what was removed, replayable on a copy of the model)."""
    if ratio <= 0:
        return []
    training = {m: m.training for m in model.modules()}
    model.eval()  # tracing must not update BatchNorm statistics
    try:
        with torch.enable_grad():
            pruner = tp.pruner.MetaPruner(
                model, example_input, importance=_importance(importance), pruning_ratio=float(ratio),
                ignored_layers=list(ignored), round_to=round_to, global_pruning=global_pruning,
                iterative_steps=1)
            pruner.step()
    finally:
        for m, t in training.items():
            m.train(t)
    for p in model.parameters():
        p.grad = None
    return list(pruner.DG.pruning_history())


def kept_indices(original: nn.Module, example_input, history: list) -> dict[str, torch.Tensor]:
    """For every parameter of ``original`` (the model before pruning), the flat indices of the entries
    that a pruning ``history`` keeps: replayed by torch-pruning on a float64 copy whose parameters hold
    their own flat positions.  Optimizer state (Adam's moments) is carried to the pruned model by these."""
    shadow = copy.deepcopy(original).double().eval()
    for p in shadow.parameters():  # requires_grad stays on: the graph is traced through autograd
        p.data = torch.arange(p.numel(), dtype=torch.float64).view_as(p)
    x = tuple(t.double() for t in example_input) if isinstance(example_input, (tuple, list)) else example_input.double()
    with torch.enable_grad():
        graph = tp.DependencyGraph().build_dependency(shadow, example_inputs=x)
        graph.load_pruning_history(history)
    return {name: p.detach().flatten().long() for name, p in shadow.named_parameters()}


def _copy_with_grads(model: nn.Module) -> nn.Module:
    clone = copy.deepcopy(model)
    for p, q in zip(model.parameters(), clone.parameters()):
        if p.grad is not None:
            q.grad = p.grad.detach().clone()
    return clone


def _measure_fn(model, example_input, target_ratio, budget_params, budget_bytes, budget_latency_us,
                bytes_fn, latency_runtime) -> tuple[str, float, Callable[[nn.Module], float]]:
    given = {k: v for k, v in dict(target_ratio=target_ratio, budget_params=budget_params,
                                    budget_bytes=budget_bytes, budget_latency_us=budget_latency_us).items()
             if v is not None}
    if len(given) != 1:
        raise UserError("give exactly one of target_ratio, budget_params, budget_bytes, budget_latency_us; "
                         f"got {sorted(given) or 'none'}")
    (name, value), = given.items()
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise UserError(f"{name} must be a positive number, got {value!r}")
    if name == "target_ratio":
        if value > 1:
            raise UserError(f"target_ratio is the kept fraction of parameters, in (0, 1]; got {value}")
        return "params", value * count_params(model), count_params
    if name == "budget_params":
        return "params", float(value), count_params
    if name == "budget_bytes":
        fn = bytes_fn or (lambda m: 4 * count_params(m))
        return "bytes", float(value), fn
    from compress.profile.latency import measure_latency  # deferred: loads onnx and onnxruntime

    def latency(m):
        return measure_latency(m, example_input, runtime=latency_runtime)["p50_us"]

    return "latency_us", float(value), latency


def prune_model(model: nn.Module, example_input, *, target_ratio: float | None = None,
                budget_params: int | None = None, budget_bytes: int | None = None,
                budget_latency_us: float | None = None, importance="magnitude",
                round_to: int | None = None, ignored_layers: Iterable[nn.Module] | None = None,
                global_pruning: bool = False, bytes_fn: Callable[[nn.Module], float] | None = None,
                latency_runtime: str = "onnxruntime", max_channel_ratio: float = 0.95,
                track_kept: bool = False) -> PruneResult:
    """Prune ``model`` in place to the smallest channel ratio that meets one budget.

    target_ratio: kept fraction of the parameters (0.25 = a 25% parameter budget).
    budget_params: max parameter count. budget_bytes: max bytes by ``bytes_fn`` (default 4 bytes
    per parameter, i.e. fp32; pass ``compress.quant.int8_param_bytes`` for an int8 deployment).
    budget_latency_us: max p50 latency on ``latency_runtime`` (batch 1, one thread, fresh process).
    ignored_layers: layers whose output channels are kept (default: the output heads).
    track_kept: also return, per parameter name, the flat indices of the entries pruning kept
    (``PruneResult.kept``), so optimizer state can follow the surviving weights.
    Raises UserError on a QAT-prepared model or if the budget cannot be met.
    """
    check_not_qat(model)
    measure_name, budget, measure = _measure_fn(model, example_input, target_ratio, budget_params,
                                                budget_bytes, budget_latency_us, bytes_fn, latency_runtime)
    if importance == "taylor" and not any(m.weight.grad is not None for m in model.modules()
                                          if isinstance(m, _PRUNABLE)):
        raise UserError("importance='taylor' needs gradients in .grad: call loss.backward() on a few "
                         "batches before prune_model (the PruningCallback does this for you)")
    if round_to is not None and (not isinstance(round_to, int) or round_to < 1):
        raise UserError(f"round_to must be a positive int or None, got {round_to!r}")
    ignored = list(find_output_layers(model, example_input) if ignored_layers is None else ignored_layers)
    names = {m: n for n, m in model.named_modules()}
    ignored_names = [names[m] for m in ignored if m in names]

    params_before = count_params(model)
    before = measure(model)
    evaluations = [(0.0, before)]
    if before <= budget:
        return PruneResult(0.0, params_before, params_before, measure_name, budget, before, before, evaluations)

    def trial(ratio: float) -> float:
        clone = _copy_with_grads(model)
        _prune_once(clone, example_input, ratio, importance, [clone.get_submodule(n) for n in ignored_names],
                    round_to, global_pruning)
        value = measure(clone)
        evaluations.append((ratio, value))
        return value

    # torch-pruning skips a layer whose every channel would go, so cap the ratio where the narrowest
    # prunable layer still keeps one channel (beyond it the measure would jump back up).
    widths = [getattr(m, "out_features", None) or getattr(m, "out_channels", 0) for m in model.modules()
              if isinstance(m, _PRUNABLE) and m not in ignored]
    cap = min([1.0 - 1.5 / w for w in widths if w > 1] or [0.0])
    lo, hi = 0.0, max(0.0, min(float(max_channel_ratio), cap))
    at_max = trial(hi)
    if at_max > budget:
        raise UserError(f"{measure_name} budget {budget:.6g} cannot be met: pruning {hi:.0%} of the channels "
                         f"still gives {at_max:.6g} (protected layers: {ignored_names})")
    iters = 7 if measure_name == "latency_us" else 14
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if trial(mid) <= budget:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-3:
            break
    original = copy.deepcopy(model) if track_kept else None
    history = _prune_once(model, example_input, hi, importance, ignored, round_to, global_pruning)
    after = measure(model) if measure_name != "latency_us" else min(v for r, v in evaluations if r == hi)
    result = PruneResult(hi, params_before, count_params(model), measure_name, budget, before, after, evaluations)
    if track_kept:
        result.kept = kept_indices(original, example_input, history)
    return result


def interpolate_budgets(start: float, final: float, steps: int) -> Sequence[float]:
    """Per-step budgets of an iterative schedule: linear in the measured quantity, ending at ``final``."""
    return [start + (final - start) * (k + 1) / steps for k in range(steps)]

