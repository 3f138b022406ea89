"""scikit-learn's ``load_digits`` (1,797 8x8 images, 10 classes) as a LightningDataModule.

A real dataset shipped inside a package, so the generic example runs with no download.  Splits are
stratified and seeded: 60% train, 20% validation, 20% test.  Features are scaled to [0, 1].  Batches
are dicts ``{"x", "y", "index"}``; ``index`` lets the teacher-output cache key each sample.
"""
from __future__ import annotations

import numpy as np
import torch

from .splits import ArraySplits

from compress.errors import UserError

__all__ = ["DigitsDataModule", "load_digits_split"]


def load_digits_split(seed: int = 0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    idx = np.arange(len(y))
    tr, rest = train_test_split(idx, test_size=0.4, random_state=seed, stratify=y)
    va, te = train_test_split(rest, test_size=0.5, random_state=seed, stratify=y[rest])
    return {name: (torch.from_numpy(x[i]), torch.from_numpy(y[i]).long()) for name, i in
            (("train", tr), ("val", va), ("test", te))}



class DigitsDataModule(ArraySplits):
    def __init__(self, batch_size: int = 64, seed: int = 0, train_fraction: float = 1.0):
        super().__init__()
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 < train_fraction <= 1:
            raise UserError(f"train_fraction must be in (0, 1], got {train_fraction}")
        self.batch_size, self.seed, self.train_fraction = batch_size, seed, train_fraction
        self.splits = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = load_digits_split(self.seed)
            if self.train_fraction < 1:
                x, y = self.splits["train"]
                n = max(10, int(len(y) * self.train_fraction))
                self.splits["train"] = (x[:n], y[:n])
