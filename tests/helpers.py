"""Small model builders and callbacks shared by the tests."""
import os
import signal

import lightning.pytorch as pl
from torch import nn


def mlp(dims, act=nn.ReLU):
    """``nn.Sequential`` of Linear layers through ``dims`` with ``act`` between them."""
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(act())
    return nn.Sequential(*layers)



class KillAt(pl.Callback):
    """SIGKILLs its own process once ``trainer.global_step`` reaches ``step`` (in ``on_train_batch_end``,
    before that step's checkpoint callbacks run): a crash at a known point of training."""

    def __init__(self, step: int):
        self.step = int(step)

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
