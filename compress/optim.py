"""One way to rebuild a run's optimizers after the model's parameters changed (pruning, QAT).

``rebuild_optimizers(trainer, remap)`` re-runs the module's ``configure_optimizers`` through the
strategy (so the rebuilt optimizers hold exactly the current parameters) and carries over what the
old ones had learned:

* the state (Adam's moments, momentum buffers, step counts) of every parameter that survived: as is
  when it is the same tensor object (QAT layers reuse the float parameters); sliced to the surviving
  entries when pruning replaced it by a smaller one (``remap``: new parameter -> (old parameter, flat
  indices kept), from ``compress.prune.prune_model(..., track_kept=True)``); new parameters (a resized
  connector) start fresh;
* the current learning rates and the LR schedulers' state, so a schedule continues where it was
  instead of restarting.
"""
from __future__ import annotations

import torch

__all__ = ["rebuild_optimizers"]


def _sliced(state: dict, old: torch.Tensor, new: torch.Tensor, kept: torch.Tensor) -> dict:
    out = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.shape == old.shape:
            out[key] = value.detach().flatten()[kept.to(value.device)].view(new.shape).clone()
        else:
            out[key] = value.clone() if isinstance(value, torch.Tensor) else value
    return out


def rebuild_optimizers(trainer, remap: dict | None = None) -> None:
    remap = remap or {}
    strategy = trainer.strategy
    old_opts = list(strategy.optimizers)
    old_lrs = [[g["lr"] for g in opt.param_groups] for opt in old_opts]
    old_sched = [cfg.scheduler.state_dict() for cfg in strategy.lr_scheduler_configs]
    states = {}
    for opt in old_opts:
        for group in opt.param_groups:
            for p in group["params"]:
                if p in opt.state:
                    states[id(p)] = (p, opt.state[p])
    strategy.setup_optimizers(trainer)
    for opt in strategy.optimizers:
        for group in opt.param_groups:
            for p in group["params"]:
                kept = states.get(id(p))
                if kept is not None and kept[0] is p:
                    opt.state[p] = kept[1]
                elif p in remap:
                    old, idx = remap[p]
                    if id(old) in states and states[id(old)][0] is old:
                        opt.state[p] = _sliced(states[id(old)][1], old, p, idx)
    for opt, lrs in zip(strategy.optimizers, old_lrs):
        if len(opt.param_groups) == len(lrs):
            for g, lr in zip(opt.param_groups, lrs):
                g["lr"] = lr
    if len(old_sched) == len(strategy.lr_scheduler_configs):
        for cfg, state in zip(strategy.lr_scheduler_configs, old_sched):
            try:
                cfg.scheduler.load_state_dict(state)
            except (KeyError, ValueError, TypeError):  # a scheduler of another kind: it starts fresh
                pass
