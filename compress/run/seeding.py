"""``EpochSeeding``: every epoch's randomness depends only on the recipe's seed and the epoch number.

At the start of each training epoch the global generators of ``torch``, ``numpy`` and ``random`` are
reseeded with ``f(seed, epoch)``, before the epoch's data loader is iterated (so a shuffling sampler
without a generator of its own draws its order from it).  An uninterrupted run and a run resumed at
the start of an epoch then draw the same numbers for the rest of training, whatever happened before
the resume (sanity checks, reloaded data, a different process): this is what makes a killed run end
with the uninterrupted run's weights.  Components with generators of their own (an RL agent's numpy
generator, a data module's per-epoch seed) keep them in their own checkpoint state.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

__all__ = ["EpochSeeding", "epoch_seed"]


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2 ** 32)


class EpochSeeding(Callback):
    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = int(seed)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        s = epoch_seed(self.seed, trainer.current_epoch)
        torch.manual_seed(s)
        np.random.seed(s)
        random.seed(s)
