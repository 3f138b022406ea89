"""Online distillation (deep mutual learning, Zhang et al. 2018): N peers teach each other.

Every peer minimises its own task loss plus ``weight * mean_j KD(peer_i, peer_j.detach())`` over the
other peers.  Peers are trained with manual optimization, one optimizer each, in one step, so that
each peer's update sees the others' outputs from the same batch.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import lightning.pytorch as pl
import torch
import torchmetrics
from torch import nn

from .distiller import batch_input
from .losses import as_task_loss, batch_target
from .module import LeanHooks
from .terms.base import Term
from .terms.response import KL

from compress.errors import UserError

__all__ = ["OnlineDistillationModule"]


class OnlineDistillationModule(LeanHooks, pl.LightningModule):
    def __init__(self, peers: Sequence[nn.Module], term: Optional[Term] = None,
                 task_loss: Optional[Callable] = None, lr: float = 1e-3, num_classes: Optional[int] = None,
                 input_key: str = "x", target_key: str = "y"):
        super().__init__()
        if len(peers) < 2:
            raise UserError(f"online distillation needs at least 2 peers, got {len(peers)}")
        self.save_hyperparameters(ignore=["peers", "term", "task_loss"])
        self.automatic_optimization = False
        self.peers = nn.ModuleList(peers)
        self.term = term if term is not None else KL(T=1.0)
        self.task_loss = as_task_loss(task_loss, target_key)
        self.metrics = None
        if num_classes:
            self.metrics = nn.ModuleList(torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
                                         for _ in peers)

    @property
    def student(self) -> nn.Module:
        """The first peer is the one exported."""
        return self.peers[0]

    def forward(self, x):
        return self.peers[0](x)

    def configure_optimizers(self):
        return [torch.optim.Adam(p.parameters(), lr=self.hparams.lr) for p in self.peers]

    def training_step(self, batch, batch_idx):
        x = batch_input(batch, self.hparams.input_key)
        opts = self.optimizers()
        outs = [p(x) for p in self.peers]
        progress = 0.0
        total = self.trainer.estimated_stepping_batches
        if total and total != float("inf"):
            progress = min(1.0, self.global_step / (total * len(self.peers)))
        w = self.term.weight(progress)
        for i, (peer_out, opt) in enumerate(zip(outs, opts)):
            others = [o.detach() for j, o in enumerate(outs) if j != i]
            kd = torch.stack([self.term(peer_out, o, batch) for o in others]).mean()
            loss = w * kd
            if self.task_loss is not None:
                loss = loss + self.task_loss(peer_out, batch)
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
            self.log(f"train/peer{i}_loss", loss.detach(), prog_bar=i == 0, batch_size=x.shape[0])

    def validation_step(self, batch, batch_idx):
        if self.metrics is None:
            return
        x = batch_input(batch, self.hparams.input_key)
        y = batch_target(batch, self.hparams.target_key)
        for i, (peer, metric) in enumerate(zip(self.peers, self.metrics)):
            metric(peer(x).argmax(-1), y)
            self.log(f"val/peer{i}_acc", metric, prog_bar=i == 0, batch_size=x.shape[0])
