"""``EpochSeeding``: every epoch's randomness depends only on the recipe's seed and the epoch number.

At the first batch of each training epoch (after the batch was fetched, before the step) the global
generators of ``torch``, ``numpy`` and ``random`` are reseeded with ``f(seed, epoch)``.  An
uninterrupted run and a run resumed at the start of an epoch then draw the same numbers (dropout,
mixup, exploration) for the rest of training, whatever happened before the resume (sanity checks,
reloaded data, a different process): this, with data orders that depend on (seed, epoch) only
(``compress.data.EpochShuffle`` / ``EpochBatches``), is what makes a killed run end with the
uninterrupted run's weights.  Not earlier in the epoch: Lightning creates the first epoch's data
iterator before ``on_train_epoch_start`` on a resumed run and after it otherwise, and creating a
``DataLoader`` iterator draws from the global generator.  Components with generators of their own (an
RL agent's numpy generator) keep them in their own checkpoint state.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from ..data.sampling import epoch_seed

__all__ = ["EpochSeeding"]


class EpochSeeding(Callback):
    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = int(seed)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if batch_idx != 0:
            return
        s = epoch_seed(self.seed, trainer.current_epoch) % (2 ** 32)
        torch.manual_seed(s)
        np.random.seed(s)
        random.seed(s)
