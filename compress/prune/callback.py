"""``PruningCallback``: structured pruning inside a Lightning fit, with the optimizer rebuilt.

Design decisions
- Pruning happens at the start of a training batch (the first batch of a pruning epoch; with
  Taylor importance after ``taylor_batches`` batches whose gradients were accumulated), because
  Lightning fetches ``trainer.optimizers[0]`` after ``on_train_batch_start``: the rebuilt
  optimizer is used from the very next step.  torch-pruning replaces pruned weights with new
  ``nn.Parameter`` objects, so an optimizer that is not rebuilt keeps updating the old, detached
  tensors and the pruned layers silently stop learning (Torch-Pruning #120/#140/#291).
- The optimizer is rebuilt with ``compress.optim.rebuild_optimizers`` (the module's own
  ``configure_optimizers``): the current learning rates and the LR-scheduler states are carried over
  so a schedule does not restart, and the optimizer state (Adam's m, v) of every surviving weight is
  kept, sliced to the kept channels (``prune_model(track_kept=True)``).
- The iterative schedule interpolates the *budget* linearly from the first step's measurement to
  the final budget over ``steps`` steps, ``every_n_epochs`` apart, starting at ``start_epoch``.
- Distiller taps are re-resolved after every step (``pl_module.distiller.refresh()``).
- Checkpoints: every checkpoint gets the pruned module's structure (compress.serialize), so a
  pruned ``.ckpt`` reloads without the original architecture (``compress.prune.load_module``), and
  resuming (``fit(ckpt_path=...)``) or testing from a pruned checkpoint reshapes the module in place
  just before Lightning loads the weights (through the module's ``on_load_checkpoint``).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from compress.optim import rebuild_optimizers
from compress.prune.core import PruneResult, check_not_qat, count_params, interpolate_budgets, prune_model
from compress.serialize import _MODULE_INTERNALS, SPEC_KEY, module_from_checkpoint, module_spec, \
    spec_checkpoint_entry
from compress.errors import UserError

__all__ = ["PruningCallback", "reshape_like"]


def reshape_like(target: nn.Module, source: nn.Module) -> None:
    """Make ``target`` structurally identical to ``source`` in place (same module objects, so hooks
    and references such as distiller taps survive): attributes, parameters and buffers are copied
    from ``source`` for every submodule path."""
    src = dict(source.named_modules())
    tgt = dict(target.named_modules())
    if src.keys() != tgt.keys() or any(type(src[k]) is not type(tgt[k]) for k in src):
        raise UserError("checkpoint structure does not match the module's submodules/classes; "
                         "load it with compress.prune.load_module instead")
    for name, s in src.items():
        t = tgt[name]
        for key, value in s.__dict__.items():
            if key not in _MODULE_INTERNALS or key in ("training", "_non_persistent_buffers_set"):
                t.__dict__[key] = value
        for key, p in s._parameters.items():
            t._parameters[key] = p
        for key, b in s._buffers.items():
            t._buffers[key] = b
        if isinstance(t, nn.RNNBase):
            t._init_flat_weights()


class PruningCallback(Callback):
    """Structured (channel) pruning of ``pl_module.<module_attr>`` during ``Trainer.fit``.

    Give exactly one target: ``target_ratio`` (kept fraction of the parameters), ``budget_params``,
    ``budget_bytes`` (fp32 parameter bytes) or ``budget_latency_us`` (p50 on ``latency_runtime``).
    ``schedule="oneshot"`` prunes once at ``start_epoch``; ``"iterative"`` takes ``steps`` steps every
    ``every_n_epochs`` epochs.  ``ignored_layers``: module paths (or modules) whose output channels
    are kept; default: the output heads.  ``example_input``: a tensor or a shape such as [1, 16];
    default: ``pl_module.example_input_array`` or the first sample of the training batch.
    """

    def __init__(self, target_ratio: float | None = None, budget_params: int | None = None,
                 budget_bytes: int | None = None, budget_latency_us: float | None = None,
                 importance: str = "magnitude", schedule: str = "oneshot", steps: int = 1,
                 start_epoch: int = 0, every_n_epochs: int = 1, round_to: int | None = None,
                 ignored_layers: Sequence | None = None, module_attr: str = "student",
                 example_input=None, global_pruning: bool = False, taylor_batches: int = 8,
                 latency_runtime: str = "onnxruntime", trusted: Iterable[str] = ()):
        super().__init__()
        targets = dict(target_ratio=target_ratio, budget_params=budget_params, budget_bytes=budget_bytes,
                       budget_latency_us=budget_latency_us)
        given = {k: v for k, v in targets.items() if v is not None}
        if len(given) != 1:
            raise UserError("PruningCallback: give exactly one of target_ratio, budget_params, budget_bytes, "
                             f"budget_latency_us; got {sorted(given) or 'none'}")
        (self.target_kind, self.target_value), = given.items()
        if not isinstance(self.target_value, (int, float)) or self.target_value <= 0 or \
                (self.target_kind == "target_ratio" and self.target_value > 1):
            raise UserError(f"PruningCallback: {self.target_kind} must be positive"
                             f"{' and <= 1 (kept fraction)' if self.target_kind == 'target_ratio' else ''}, "
                             f"got {self.target_value!r}")
        if importance not in ("magnitude", "taylor"):
            raise UserError(f"PruningCallback: importance must be 'magnitude' or 'taylor', got {importance!r}")
        if schedule not in ("oneshot", "iterative"):
            raise UserError(f"PruningCallback: schedule must be 'oneshot' or 'iterative', got {schedule!r}")
        if schedule == "oneshot" and steps != 1:
            raise UserError(f"PruningCallback: schedule='oneshot' takes steps=1, got steps={steps}")
        for name, v, lo in (("steps", steps, 1), ("start_epoch", start_epoch, 0), ("every_n_epochs", every_n_epochs, 1),
                            ("taylor_batches", taylor_batches, 1)):
            if not isinstance(v, int) or v < lo:
                raise UserError(f"PruningCallback: {name} must be an int >= {lo}, got {v!r}")
        self.importance = importance
        self.schedule = schedule
        self.steps = steps
        self.start_epoch = start_epoch
        self.every_n_epochs = every_n_epochs
        self.round_to = round_to
        self.ignored_layers = ignored_layers
        self.module_attr = module_attr
        self.example_input = example_input
        self.global_pruning = global_pruning
        self.taylor_batches = taylor_batches
        self.latency_runtime = latency_runtime
        self.trusted = tuple(trusted)
        # state (saved in checkpoints)
        self.steps_done = 0
        self.start_measure: float | None = None
        self.params0: int | None = None
        self.history: list[dict] = []
        # transient
        self._grad_sum: dict[nn.Parameter, torch.Tensor] = {}
        self._grad_batches = 0

    # ----------------------------------------------------------------- helpers
    def _module(self, pl_module) -> nn.Module:
        module = getattr(pl_module, self.module_attr, None) if self.module_attr else pl_module
        if not isinstance(module, nn.Module):
            raise UserError(f"PruningCallback: the LightningModule has no nn.Module attribute "
                             f"module_attr={self.module_attr!r}")
        return module

    def _due(self, epoch: int) -> bool:
        if self.steps_done >= self.steps or epoch < self.start_epoch:
            return False
        return (epoch - self.start_epoch) % self.every_n_epochs == 0 and \
            (epoch - self.start_epoch) // self.every_n_epochs >= self.steps_done

    def _example(self, pl_module, batch) -> torch.Tensor:
        x = self.example_input
        if x is None:
            x = getattr(pl_module, "example_input_array", None)
        if x is None:
            x = batch
            if isinstance(x, dict):
                key = getattr(getattr(pl_module, "distiller", None), "input_key", None) or "x"
                if key not in x:
                    raise UserError(f"PruningCallback: batch has no key {key!r} for the example input; "
                                     "pass example_input=[1, n_features]")
                x = x[key]
            elif isinstance(x, (tuple, list)):
                x = x[0]
            if not isinstance(x, torch.Tensor):
                raise UserError("PruningCallback: cannot infer the example input from the batch; "
                                 "pass example_input=[1, n_features]")
            x = x[:1]
        elif isinstance(x, (list, tuple)) and all(isinstance(d, int) for d in x):
            x = torch.randn(*x)
        if not isinstance(x, torch.Tensor):
            raise UserError(f"PruningCallback: example_input must be a tensor or a shape list, got {type(x).__name__}")
        return x.detach().to(pl_module.device)

    def _ignored(self, module: nn.Module):
        if self.ignored_layers is None:
            return None
        out = []
        for item in self.ignored_layers:
            if isinstance(item, str):
                try:
                    out.append(module.get_submodule(item))
                except AttributeError:
                    raise UserError(f"PruningCallback: ignored_layers entry {item!r} is not a submodule of "
                                     f"{self.module_attr!r}") from None
            else:
                out.append(item)
        return out

    def _budget_kwargs(self, module, x) -> dict:
        kind, value = self.target_kind, float(self.target_value)
        if kind == "target_ratio":
            kind, value = "budget_params", value * self.params0
        if self.start_measure is None:
            if kind == "budget_params":
                self.start_measure = float(count_params(module))
            elif kind == "budget_bytes":
                self.start_measure = 4.0 * count_params(module)
            else:
                from compress.profile.latency import measure_latency
                self.start_measure = measure_latency(module, x, runtime=self.latency_runtime)["p50_us"]
        budgets = interpolate_budgets(self.start_measure, value, self.steps)
        return {kind: budgets[self.steps_done]}

    # ----------------------------------------------------------------- hooks
    def setup(self, trainer, pl_module, stage: str) -> None:
        module = self._module(pl_module)
        check_not_qat(module)
        module_spec(module)  # fail early (clear ValueError) if the structure cannot be saved
        # Lightning calls the LightningModule's on_load_checkpoint(checkpoint) right before it loads the
        # weights (a callback's own hook runs after), and trainer.ckpt_path is only known after setup: so we
        # wrap the module's hook to reshape the pruned module from the checkpoint's structure first.
        if getattr(pl_module, "_compress_prune_hooked", None) is not self:
            original = pl_module.on_load_checkpoint

            def on_load_checkpoint(checkpoint, _original=original):
                self._restore_structure(pl_module, checkpoint)
                return _original(checkpoint)

            pl_module.on_load_checkpoint = on_load_checkpoint
            pl_module._compress_prune_hooked = self

    def _restore_structure(self, pl_module, checkpoint: dict) -> None:
        entry = checkpoint.get(SPEC_KEY) if isinstance(checkpoint, dict) else None
        if not (isinstance(entry, dict) and entry.get("module_attr") == self.module_attr):
            return
        restored = module_from_checkpoint(checkpoint, trusted=self.trusted, source="checkpoint")
        reshape_like(self._module(pl_module), restored.to(pl_module.device))
        self._refresh_distiller(pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if not self._due(trainer.current_epoch):
            return
        if self.importance == "taylor" and self._grad_batches < self.taylor_batches:
            return  # keep accumulating gradients (on_after_backward)
        self._step(trainer, pl_module, batch)

    def on_after_backward(self, trainer, pl_module) -> None:
        if self.importance != "taylor" or not self._due(trainer.current_epoch):
            return
        for p in self._module(pl_module).parameters():
            if p.grad is not None:
                g = p.grad.detach()
                self._grad_sum[p] = self._grad_sum[p] + g if p in self._grad_sum else g.clone()
        self._grad_batches += 1

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Taylor with an epoch shorter than taylor_batches: prune with what was accumulated.
        if self.importance == "taylor" and self._due(trainer.current_epoch) and self._grad_batches > 0:
            self._step(trainer, pl_module, None)

    def _step(self, trainer, pl_module, batch) -> PruneResult:
        module = self._module(pl_module)
        check_not_qat(module)
        x = self._example(pl_module, batch)
        if self.params0 is None:
            self.params0 = count_params(module)
        if self.importance == "taylor":
            for p, g in self._grad_sum.items():
                p.grad = g / self._grad_batches
        before = dict(module.named_parameters())
        result = prune_model(module, x, importance=self.importance, round_to=self.round_to,
                             ignored_layers=self._ignored(module), global_pruning=self.global_pruning,
                             latency_runtime=self.latency_runtime, track_kept=True, **self._budget_kwargs(module, x))
        remap = {p: (before[n], result.kept[n]) for n, p in module.named_parameters()
                 if n in before and before[n] is not p and n in result.kept}
        self._grad_sum, self._grad_batches = {}, 0
        self.steps_done += 1
        # refresh first: connectors resized for the pruned widths must be in the rebuilt optimizer
        self._refresh_distiller(pl_module, x)
        rebuild_optimizers(trainer, remap)
        record = {"epoch": trainer.current_epoch, "step": self.steps_done, "channel_ratio": result.channel_ratio,
                  "params": result.params_after, result.measure: result.measure_after}
        self.history.append(record)
        rank_zero_info(f"PruningCallback step {self.steps_done}/{self.steps}: {result}")
        return result

    @staticmethod
    def _refresh_distiller(pl_module, example_input=None) -> None:
        refresh = getattr(getattr(pl_module, "distiller", None), "refresh", None)
        if callable(refresh):
            refresh(example_input)

    # ----------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[SPEC_KEY] = spec_checkpoint_entry(self._module(pl_module), self.module_attr)

    def state_dict(self) -> dict:
        return {"steps_done": self.steps_done, "start_measure": self.start_measure, "params0": self.params0,
                "history": list(self.history)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.steps_done = int(state_dict.get("steps_done", 0))
        self.start_measure = state_dict.get("start_measure")
        self.params0 = state_dict.get("params0")
        self.history = list(state_dict.get("history", []))
