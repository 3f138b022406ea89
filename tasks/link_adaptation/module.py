"""Policy-distillation LightningModule for link adaptation (single- and multi-policy).

A thin subclass of ``compress.distill.DistillationModule``: the student (``student_factory``) is
trained only by knowledge terms (typically ``terms.Policy(teacher_q=True)``: KL from the teacher's
softmax(Q / q_T) to the student's action distribution), on states from ``LARolloutData``. With
several teachers the Distiller routes each state to its scenario group's teacher
(``route_key="route"``) — multi-policy distillation. The student is deployed as argmax of its
outputs, like the teachers.

Additions to the base module:
* with ``eval_scenarios``, the end of every ``eval_every`` epochs (and the last) runs the student in
  closed loop and logs ``val/throughput`` (Mbit/s, mean over the scenarios) and ``val/over_olla``
  (mean ratio to OLLA on the same seeds): a task-level quality an architecture search can maximize.
  It is cheap (a small student over a few hundred links and TTIs); the full table is
  ``tasks.link_adaptation.run``'s job.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from compress.distill import DistillationModule, Distiller
from compress.models import MLP
from envs.link_adaptation import N_ACTIONS, OBS_DIM

__all__ = ["LADistillModule", "student_factory"]


def student_factory(hidden: Sequence[int] = (64, 64), activation: str = "relu") -> MLP:
    """The deployable LA student: an MLP from the 21 observation features to 16 MCS offsets."""
    return MLP(OBS_DIM, N_ACTIONS, hidden=list(hidden), activation=activation)


class LADistillModule(DistillationModule):
    def __init__(self, student, distiller: Optional[Distiller] = None, task_loss: Optional[Callable] = None,
                 task_weight: float = 1.0, lr: float = 1e-3, weight_decay: float = 0.0, optimizer: str = "adam",
                 lr_schedule: Optional[str] = None, eval_scenarios: Optional[Sequence[str]] = None,
                 eval_every: int = 0, eval_links: int = 256, eval_tti: int = 300, eval_seed: int = 7):
        super().__init__(student, distiller=distiller, task_loss=task_loss, task_weight=task_weight, lr=lr,
                         weight_decay=weight_decay, optimizer=optimizer, lr_schedule=lr_schedule)
        if eval_scenarios is not None:
            from envs.scenarios import get_scenario
            for s in eval_scenarios:
                get_scenario(s)  # unknown names fail here, not after training
        self.eval_scenarios = list(eval_scenarios) if eval_scenarios else None
        self.eval_every, self.eval_links, self.eval_tti, self.eval_seed = eval_every, eval_links, eval_tti, eval_seed
        self._olla = None

    def closed_loop(self) -> dict:
        """{"throughput": Mbit/s, "over_olla": ratio}, student greedy, means over ``eval_scenarios``."""
        from tasks.link_adaptation.evaluate import evaluate
        from tasks.link_adaptation.olla import OLLA

        kw = dict(seeds=(self.eval_seed,), num_links=self.eval_links, n_tti=self.eval_tti,
                  warmup_tti=min(50, self.eval_tti // 4))
        if self._olla is None:
            self._olla = evaluate(OLLA(), self.eval_scenarios, **kw)
        was = self.student.training
        res = evaluate(self.student, self.eval_scenarios, **kw)
        self.student.train(was)
        return {"throughput": float(np.mean([r["throughput"] for r in res.values()])),
                "over_olla": float(np.mean([res[s]["throughput"] / self._olla[s]["throughput"] for s in res]))}

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        if not self.eval_scenarios:
            return
        last = self.current_epoch + 1 >= (self.trainer.max_epochs or 0)
        if last or (self.eval_every and (self.current_epoch + 1) % self.eval_every == 0):
            m = self.closed_loop()
            self.log("val/throughput", m["throughput"], prog_bar=True)
            self.log("val/over_olla", m["over_olla"], prog_bar=True)
