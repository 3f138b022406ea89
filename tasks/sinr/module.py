"""The SINR adapter: one LightningModule for every training mode of algorithm distillation (AD).

Built on ``compress.distill.DistillationModule``; the teacher is an algorithm (WMMSE for power control,
FPLinQ for D2D scheduling) passed to the ``Distiller`` as a plain callable, with the Distiller's
teacher-output cache prefilled over the whole fixed training set in large batched calls at the start of
fitting (``prefill_cache``: WMMSE is slow per call, fast per batch) and optionally kept on disk
(``cache="path.pt"``).

Modes (``mode``):

* ``supervised``   -- match the teacher: ``supervised_loss="mse"`` (MSE(student, teacher), Sun et al.) or
  ``"bce"`` (binary cross-entropy of ``student/pmax`` against ``teacher/pmax`` read as the probability that the
  user is on: WMMSE's powers are ~96% exactly 0 or pmax, and for that on/off target BCE keeps a full gradient
  where the sigmoid saturates; measured at K = 10, 200k channels x 10 epochs: 96.9% vs 96.4% of WMMSE with
  the MLP's binary decision).
* ``unsupervised`` -- maximise the sum-rate: task loss ``-sum_rate / K`` (per-user mean; dividing by K
  makes beta mean the same at every K and leaves Adam's steps unchanged).
* ``ad``           -- unsupervised + beta * MSE(student, teacher); beta fixed, decreasing (beta -> 0) or
  increasing (0 -> beta) over training (``beta_schedule``), or any ``compress.distill.schedules`` object.
* ``pg``           -- REINFORCE with the AD term: Gaussian policy (power control, std ``pg_sigma`` around the
  student's output, clipped to [0, pmax]) or Bernoulli policy (D2D on/off, probability = student output);
  the baseline is the reward of the student's own deterministic action (self-critical), so the policy is
  pushed only by samples that beat it. ``beta=0`` gives plain policy gradient.

Validation logs ``val/sum_rate`` and ``val/pct_teacher`` (sum-rate as % of the teacher on the same
channels, from the data module's ``ref``); ``history`` keeps ``(epoch, pct)`` for convergence plots.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from compress.distill import Distiller, DistillationModule, schedules, terms
from compress.distill.schedules import Schedule

from .data import teacher_for
from .evaluate import sum_rates

from compress.errors import UserError

__all__ = ["SINRModule", "NegSumRate", "Reinforce", "OnOffBCE", "beta_schedule", "MODES"]

MODES = ("supervised", "unsupervised", "ad", "pg")


def beta_schedule(beta: Union[float, Schedule], kind: str = "fixed") -> Schedule:
    """``fixed``: Constant(beta); ``decreasing``: Linear(beta -> 0); ``increasing``: Linear(0 -> beta)."""
    if isinstance(beta, Schedule):
        return beta
    if not isinstance(beta, (int, float)) or beta < 0:
        raise UserError(f"beta must be a number >= 0 or a Schedule, got {beta!r}")
    if kind == "fixed":
        return schedules.Constant(beta)
    if kind == "decreasing":
        return schedules.Linear(beta, 0.0)
    if kind == "increasing":
        return schedules.Linear(0.0, beta)
    raise UserError(f"beta_schedule must be 'fixed', 'decreasing' or 'increasing', got '{kind}'")


class OnOffBCE(terms.Term):
    """Supervised term: ``BCE(student / pmax, teacher / pmax)`` -- the teacher's power fraction as the target
    probability of transmitting (see the module doc for why)."""

    def __init__(self, pmax: float = 1.0, **kw):
        super().__init__(**kw)
        if pmax <= 0:
            raise UserError(f"OnOffBCE: pmax must be > 0, got {pmax}")
        self.pmax = float(pmax)

    def loss(self, student, teacher, batch=None):
        self.check_shapes(student, teacher)
        target = (teacher.to(student.dtype) / self.pmax).clamp(0.0, 1.0)
        # no clamp on the input: torch's BCE backward guards s(1-s) itself, so saturated but wrong outputs
        # still get the (s - y) gradient through the sigmoid
        return F.binary_cross_entropy(student / self.pmax, target)


class NegSumRate:
    """Task loss ``-mean_batch(sum_rate) / K`` on the relaxed (continuous) output."""

    def __init__(self, problem: str = "gaussian", noise: float = 1.0, gap_db: float = 6.0):
        self.problem, self.noise, self.gap_db = problem, noise, gap_db

    def __call__(self, out: torch.Tensor, batch) -> torch.Tensor:
        x = batch["x"]
        return -sum_rates(self.problem, x, out, self.noise, self.gap_db, binary=False).mean() / x.shape[-1]


class Reinforce:
    """REINFORCE surrogate loss; its gradient is the policy gradient of the mean per-user rate."""

    def __init__(self, problem: str = "gaussian", sigma: float = 0.1, samples: int = 4, pmax: float = 1.0,
                 noise: float = 1.0, gap_db: float = 6.0):
        if sigma <= 0 or samples < 1:
            raise UserError(f"Reinforce: need sigma > 0 and samples >= 1, got sigma={sigma}, samples={samples}")
        self.problem, self.sigma, self.samples, self.pmax = problem, sigma, samples, pmax
        self.noise, self.gap_db = noise, gap_db

    def _reward(self, x, a):
        return sum_rates(self.problem, x, a, self.noise, self.gap_db, binary=False) / x.shape[-1]

    def __call__(self, out: torch.Tensor, batch) -> torch.Tensor:
        x = batch["x"]
        mu = out
        with torch.no_grad():
            xs = x.repeat(self.samples, 1, 1)
            mu_d = mu.detach().repeat(self.samples, 1)
            if self.problem == "d2d":
                a = torch.bernoulli(mu_d.clamp(0, 1))
                base = self._reward(x, (mu.detach() >= 0.5).to(x.dtype)).repeat(self.samples)
                reward = self._reward(xs, a)
            else:
                raw = mu_d + self.sigma * torch.randn_like(mu_d)
                a = raw.clamp(0.0, self.pmax)
                base = self._reward(x, mu.detach()).repeat(self.samples)
                reward = self._reward(xs, a)
            adv = reward - base
        mu_r = mu.repeat(self.samples, 1)
        if self.problem == "d2d":
            q = mu_r.clamp(1e-6, 1 - 1e-6)
            logp = (a * q.log() + (1 - a) * (1 - q).log()).sum(-1)
        else:
            logp = (-(raw - mu_r) ** 2 / (2 * self.sigma ** 2)).sum(-1)
        return -(adv * logp).mean()


class SINRModule(DistillationModule):
    def __init__(self, student: nn.Module, mode: str = "ad", problem: str = "gaussian",
                 beta: Union[float, Schedule] = 1.0, beta_schedule: str = "fixed",
                 teacher: Optional[Callable] = None, cache: Union[bool, str] = True, lr: float = 1e-3,
                 lr_schedule: Optional[str] = "cosine", weight_decay: float = 0.0, pmax: float = 1.0,
                 noise: float = 1.0, gap_db: float = 6.0, pg_sigma: float = 0.1, pg_samples: int = 4,
                 optimizer: str = "adam", input_key: str = "x", supervised_loss: str = "mse"):
        if mode not in MODES:
            raise UserError(f"SINRModule: mode must be one of {MODES}, got '{mode}'")
        if supervised_loss not in ("mse", "bce"):
            raise UserError(f"SINRModule: supervised_loss must be 'mse' or 'bce', got '{supervised_loss}'")
        if problem not in ("gaussian", "d2d"):
            raise UserError(f"SINRModule: problem must be 'gaussian' or 'd2d', got '{problem}'")
        for name, v in (("pmax", pmax), ("noise", noise)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise UserError(f"SINRModule: {name} must be a finite number > 0, got {v!r}")
        if problem == "d2d" and pmax != 1.0:
            raise UserError(f"SINRModule: problem 'd2d' schedules links on/off (a power fraction in [0, 1]); "
                            f"pmax does not apply, got pmax={pmax}")
        # pmax is one setting of the problem: the student's output range and the teacher's budget follow it
        for who, obj in (("student", student), ("teacher", teacher)):
            own = getattr(obj, "pmax", None)
            if problem == "gaussian" and isinstance(own, (int, float)) and float(own) != float(pmax):
                raise UserError(f"SINRModule: the {who}'s pmax ({own}) differs from the module's pmax ({pmax}); "
                                "give both the same value")
        sched = globals()["beta_schedule"](beta, beta_schedule)
        uses_teacher = mode != "unsupervised"
        # a new name, not `teacher`: save_hyperparameters reads this frame's locals, keep hparams plain
        algo = teacher if teacher is not None else teacher_for(problem, pmax, noise)
        if mode == "supervised":
            kd = [OnOffBCE(pmax, weight=schedules.Constant(1.0)) if supervised_loss == "bce"
                  else terms.MSE(weight=schedules.Constant(1.0))]
        else:
            kd = [terms.MSE(weight=sched)] if uses_teacher else []
        distiller = Distiller(teachers=algo if uses_teacher else None, terms=kd,
                              cache=cache if uses_teacher else False)
        if mode in ("unsupervised", "ad"):
            task_loss = NegSumRate(problem, noise, gap_db)
        elif mode == "pg":
            task_loss = Reinforce(problem, pg_sigma, pg_samples, pmax, noise, gap_db)
        else:
            task_loss = None
        with warnings.catch_warnings():  # the base class's save_hyperparameters sees our `teacher` argument
            warnings.filterwarnings("ignore", message=".*Attribute 'teacher' is an instance of `nn.Module`.*")
            super().__init__(student, distiller=distiller, task_loss=task_loss, lr=lr, weight_decay=weight_decay,
                             lr_schedule=lr_schedule, optimizer=optimizer, input_key=input_key,
                             prefill_cache=True)
        self.mode, self.problem, self.noise, self.gap_db = mode, problem, noise, gap_db
        self.history: list[tuple[int, float]] = []
        self._val_sum = self._val_ref = 0.0

    def _rates(self, x, p):
        return sum_rates(self.problem, x, p, self.noise, self.gap_db)

    def on_validation_epoch_start(self) -> None:
        self._val_sum = self._val_ref = 0.0

    def validation_step(self, batch, batch_idx):
        out = self.student(batch["x"])
        sr = self._rates(batch["x"], out)
        self._val_sum += float(sr.sum())
        if "ref" in batch:
            self._val_ref += float(self._rates(batch["x"], batch["ref"]).sum())
        self.log("val/sum_rate", sr.mean(), prog_bar=True, batch_size=out.shape[0])

    def on_validation_epoch_end(self) -> None:
        if self._val_ref > 0:
            pct = 100.0 * self._val_sum / self._val_ref
            self.log("val/pct_teacher", pct, prog_bar=True)
            if not self.trainer.sanity_checking:
                self.history.append((int(self.current_epoch), pct))

    def test_step(self, batch, batch_idx):
        out = self.student(batch["x"])
        sr = self._rates(batch["x"], out)
        self.log("test/sum_rate", sr.mean(), batch_size=out.shape[0])
        if "ref" in batch:
            ref = self._rates(batch["x"], batch["ref"])
            self.log("test/pct_teacher", 100.0 * sr.mean() / ref.mean(), batch_size=out.shape[0])
