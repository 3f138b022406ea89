"""Edge compute of a training run: how many samples each network processed, times its FLOPs per sample.

``EdgeCompute`` is a callback for the recipes that run at an edge node.  Forward hooks on the module's
``student`` and on every teacher of its distiller count the samples of each forward pass during ``fit``
(a teacher whose outputs come from the teacher-output cache is not run, so it is not counted).  At the
end it writes ``edge_compute.json`` into the run folder:

    flops = fwd_flops_per_sample * (3 * samples with grad + samples without grad)

i.e. a backward pass is counted as twice its forward pass (the usual convention: gradients with respect
to activations and to weights each cost about one forward), and a pass under ``no_grad`` as one forward.
FLOPs per sample are ``compress.profile.count_totals`` of one sample of the shape seen in training, in the
``convention`` given (``"thop"``: the operations papers report as FLOPs, as Table II of the seed does).

It also refuses a node without data: a data module with no training batch is one line naming the node.
A run resumed from a checkpoint counts the passes of the resumed part only (the counts are not checkpointed).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from ..atomic import atomic_write_text
from ..errors import UserError, first_line

__all__ = ["EdgeCompute", "COMPUTE_FILE"]

COMPUTE_FILE = "edge_compute.json"


def _first_tensor(args):
    for a in args:
        if isinstance(a, torch.Tensor):
            return a
    return None


class _Counter:
    def __init__(self, module: nn.Module):
        self.module = module
        self.grad = self.nograd = 0
        self.shape = None
        self.handle = module.register_forward_pre_hook(self)

    def __call__(self, module, args):
        x = _first_tensor(args)
        if x is None:
            return
        if self.shape is None:
            self.shape = tuple(x.shape[1:])
        if torch.is_grad_enabled():
            self.grad += int(x.shape[0])
        else:
            self.nograd += int(x.shape[0])

    def report(self, convention: str) -> dict:
        from ..profile import count_totals

        self.handle.remove()
        per = 0
        if self.shape is not None:
            _, per = count_totals(self.module, torch.zeros((1, *self.shape)), convention=convention)
        return {"samples_with_grad": self.grad, "samples_no_grad": self.nograd, "input_shape": list(self.shape or []),
                "flops_per_sample": int(per), "flops": int(per * (3 * self.grad + self.nograd))}


class EdgeCompute(Callback):
    def __init__(self, node: str = "node", convention: str = "thop", filename: str = COMPUTE_FILE):
        self.node, self.convention, self.filename = node, convention, filename
        self._counters: dict[str, _Counter] = {}

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage != "fit":
            return
        dm = trainer.datamodule
        if dm is not None:
            try:
                n = len(dm.train_dataloader())
            except TypeError:   # an iterable without a length: it cannot be checked here
                n = None
            except ValueError as exc:   # samplers refuse an empty data set (torch's, EpochShuffle)
                raise UserError(f"node '{self.node}': its data module ({type(dm).__name__}) gives no training "
                                f"batches ({first_line(exc)}): a node without local data cannot train") from exc
            if n == 0:
                raise UserError(f"node '{self.node}': its data module ({type(dm).__name__}) has no training "
                                "batches: a node without local data cannot train")
        self._counters = {}
        student = getattr(pl_module, "student", None)
        if isinstance(student, nn.Module):
            self._counters["student"] = _Counter(student)
        distiller = getattr(pl_module, "distiller", None)
        for name in getattr(distiller, "teacher_names", []):
            teacher = distiller.teacher(name)
            if isinstance(teacher, nn.Module) and name not in self._counters:
                self._counters[name] = _Counter(teacher)

    def on_fit_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        nets = {name: c.report(self.convention) for name, c in self._counters.items()}
        out = {"node": self.node, "convention": self.convention, "backward": "2x forward", "networks": nets,
               "flops": sum(v["flops"] for v in nets.values())}
        atomic_write_text(Path(trainer.default_root_dir) / self.filename, json.dumps(out, indent=1))
