"""Plumbing every ``compress.rl`` algorithm shares, so each algorithm file holds only the algorithm.

* The "data": a dataloader of ``steps_per_epoch`` step numbers. Acting happens inside ``training_step``
  (collect -> sample -> update), so a checkpoint written between two steps is consistent: the buffer,
  collector and random generators are those after the last update, nothing is in flight.
* Randomness the module owns: ``self.rng`` (numpy: exploration, replay sampling) and ``self.gen`` (torch:
  sampling actions). Global RNGs are used only to initialise networks (``seed_everything``).
* Checkpoint: ``on_save_checkpoint`` adds the collector (env state included when the env has
  ``state_dict``), the buffers, both generators and the algorithm's counters under ``checkpoint["rl"]``;
  networks, targets, ``log_alpha`` are module state and the optimizers are Lightning's. Everything is
  tensors, numbers and containers (``torch.load(weights_only=True)`` reads it).
* ``total_updates``: the run's length in training steps (``trainer.estimated_stepping_batches``), the
  horizon of the algorithms' schedules. With manual optimization Lightning counts every optimizer step in
  ``global_step`` (SAC takes three per update), so bound RL runs by ``trainer.max_epochs``, not
  ``max_steps``.
"""
from __future__ import annotations

from typing import Any, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from ..distill import LeanHooks
from .collector import Collector
from .envs import branch_sizes, check_vector_env
from .policies import Branches, greedy
from ..errors import UserError

__all__ = ["RLModule", "output_size"]


class _Steps(IterableDataset):
    def __init__(self, n: int):
        self.n = int(n)

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


def output_size(net: nn.Module) -> int | None:
    """``out_features`` of the last ``nn.Linear`` in ``net`` (None if it has none)."""
    out = getattr(net, "out_features", None)
    if isinstance(out, int):
        return out
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


class RLModule(LeanHooks, pl.LightningModule):
    """Base of the algorithms: env + collector + generators + checkpointed RL state."""

    student: nn.Module

    def setup_rl(self, env: Any, student: nn.Module, branches: Sequence[int] | None, seed: int,
                 reward_scale: float, mask_key: str | None, steps_per_epoch: int) -> None:
        check_vector_env(env)
        if not isinstance(student, nn.Module):
            raise UserError(f"student must be an nn.Module (the actor / Q-network), got {type(student).__name__}")
        if int(steps_per_epoch) < 1:
            raise UserError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        sizes = branch_sizes(env, branches)
        if sizes is None:
            n = output_size(student)
            if n is None:
                raise UserError("cannot tell the action branches: the env has no single_action_space and the "
                                 "student no final nn.Linear; pass branches=[...]")
            sizes = [n]
        self.branches = Branches(sizes)
        self.env, self.student, self.seed = env, student, int(seed)
        self.steps_per_epoch = int(steps_per_epoch)
        self.collector = Collector(env, self.branches.total, reward_scale, mask_key, seed)
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(int(seed))
        self.updates = 0
        self._total_updates: int | None = None

    # ---------------------------------------------------------------------------------- the loop
    def train_dataloader(self):
        return DataLoader(_Steps(self.steps_per_epoch), batch_size=None)

    def on_train_start(self):
        # computed once: Trainer.estimated_stepping_batches is too slow to query every step
        est = self.trainer.estimated_stepping_batches
        self._total_updates = int(est) if est not in (None, float("inf")) else self.steps_per_epoch

    @property
    def total_updates(self) -> int:
        return self._total_updates or self.steps_per_epoch

    @property
    def progress(self) -> float:
        return min(1.0, self.updates / max(1, self.total_updates))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.student(obs)

    @torch.no_grad()
    def act_greedy(self, obs: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Deployment policy: argmax per branch over the valid actions, ``(N, n_branches)``."""
        out = self.student(torch.as_tensor(obs, dtype=torch.float32))
        return greedy(out, self.branches, None if mask is None else torch.as_tensor(mask)).numpy()

    def log_metrics(self, metrics: dict, prog_bar: tuple = ()) -> None:
        """``self.log`` every ``trainer.log_every_n_steps`` updates only: a ``self.log`` call costs ~1 ms in
        Lightning 2.6 (measured), more than a whole update of a small network, and the logger writes the
        latest values at that cadence anyway. Adds the episode statistics of the collector."""
        try:
            every = max(1, int(self.trainer.log_every_n_steps or 1))
        except RuntimeError:  # not attached to a Trainer
            every = 1
        if (self.updates - 1) % every:
            return
        c = self.collector
        metrics = {**metrics, "train/env_steps": float(c.env_steps)}
        if c.returns:
            metrics["train/episode_return"] = c.mean_return
            prog_bar = (*prog_bar, "train/episode_return")
        for k, v in metrics.items():
            self.log(k, v, prog_bar=k in prog_bar)

    # ---------------------------------------------------------------------------------- checkpoint
    def rl_state_dict(self) -> dict:
        """Subclasses add their buffers: ``{**super().rl_state_dict(), "buffer": ...}``."""
        return {"collector": self.collector.state_dict(), "rng": self.rng.bit_generator.state,
                "gen": self.gen.get_state(), "updates": self.updates}

    def load_rl_state_dict(self, state: dict) -> None:
        self.collector.load_state_dict(state["collector"])
        self.rng.bit_generator.state = state["rng"]
        self.gen.set_state(state["gen"])
        self.updates = int(state["updates"])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rl"] = self.rl_state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "rl" in checkpoint:
            self.load_rl_state_dict(checkpoint["rl"])
