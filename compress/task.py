"""The task contract: what a wireless task supplies, and what the framework does with it.

A task is four things, and nothing else (no subclass of the framework's modules just to wire
arguments):

1. **An env or a data module.**  A Gymnasium-style (vector) env in ``envs/`` for what an agent acts in,
   and/or a ``LightningDataModule`` that feeds distillation: a fixed data set, or states rolled out by
   policies.  A data module that rolls out policies implements ``set_policies(teachers, student)``
   (``RolloutData`` below): the framework hands it the run's teachers and the student being trained
   before fitting; it never fishes them out of the trainer.
2. **Student factories** with architecture knobs as arguments (widths, depth, kernel sizes), so a
   recipe and an architecture search can vary them.  The LightningModule keeps the network it deploys
   in ``self.student`` (``deployable``): that is what ``student.pt``, the export section, pruning, QAT
   and the search act on.
3. **An evaluator**: a callable ``evaluator(policy, seeds) -> {group: {metric: value}}`` that scores any
   policy — an ``nn.Module``, an exported artifact path (``.onnx``, a C export), a baseline callable —
   on the same seeds (``compress.export.runner.as_numpy_policy`` runs all three alike).  It is a class
   so that a recipe can name it with its settings; ``bind(datamodule)`` and ``summarize(results)`` are
   optional (``compress.evaluate``).  A module-level ``evaluate(policy, seeds, **settings)`` may wrap it
   for Python users.
4. **Recipes**: YAML jobs naming the above with ``class_path``.

The framework does the rest: distillation (``compress.distill``: ``DistillationModule``, or the RL
modules of ``compress.rl`` for teachers), compression callbacks (``compress.prune``, ``compress.quant``),
export and profiling (the recipe's ``export:`` section, with post-training int8 as ``int8: ptq``), the
closed-loop evaluation of every exported artifact and the results tables (the ``after_fit`` hook
``compress.evaluate.EvaluateDeployed``), and a validation-time task metric for searches
(``compress.evaluate.ClosedLoopMetric``).  ``tests/toy_task/`` is a complete example built this way.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from torch import nn

from .errors import UserError

__all__ = ["RolloutData", "Evaluator", "deployable", "policies_of", "hand_policies"]


@runtime_checkable
class RolloutData(Protocol):
    """A data module whose samples come from rolling out policies (e.g. DAgger for policy distillation)."""

    def set_policies(self, teachers: Sequence, student: nn.Module) -> None:
        """``teachers``: the run's teachers in the distiller's order; ``student``: the network being trained
        (its weights change as training goes on, so rollouts always use the current student)."""


@runtime_checkable
class Evaluator(Protocol):
    def __call__(self, policy, seeds: Sequence[int]) -> dict:
        """``{group: {metric: value}}`` (or a flat ``{metric: value}``) for ``policy`` on ``seeds``."""


def deployable(module) -> nn.Module | None:
    """The network a LightningModule deploys: its ``student`` attribute (None if it has none)."""
    student = getattr(module, "student", None)
    return student if isinstance(student, nn.Module) else None


def policies_of(module) -> tuple[list, nn.Module | None]:
    """(teachers in the distiller's order, student) of a module built on ``compress.distill``."""
    distiller = getattr(module, "distiller", None)
    teachers = [distiller.teacher(n) for n in distiller.teacher_names] if distiller is not None else []
    return teachers, deployable(module)


def hand_policies(module, datamodule) -> None:
    """Give a ``RolloutData`` data module the module's teachers and student (the framework calls this
    before fitting; call it yourself when you drive ``Trainer.fit`` from Python)."""
    if datamodule is None or not hasattr(datamodule, "set_policies"):
        return
    teachers, student = policies_of(module)
    if student is None:
        raise UserError(f"{type(datamodule).__name__} rolls out policies but {type(module).__name__} has no "
                        "'student' network to hand it")
    datamodule.set_policies(teachers, student)
