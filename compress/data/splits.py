"""A data module over in-memory train / val / test arrays: dict batches, shuffled by (seed, epoch) only.

Subclasses fill ``self.splits = {"train": (x, y), "val": ..., "test": ...}`` in ``setup`` and set
``batch_size`` and ``seed``; batches are ``{"x", "y", "index"}``.  Shuffling by (seed, epoch) only means a
resumed run sees the same batches as an uninterrupted one (``EpochShuffle``).
"""
from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from .sampling import EpochShuffle

__all__ = ["ArraySplits", "DictSamples"]


class DictSamples(Dataset):
    def __init__(self, x, y):
        self.x, self.y = torch.as_tensor(x), torch.as_tensor(y)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i], "index": i}


class ArraySplits(pl.LightningDataModule):
    batch_size: int
    seed: int
    splits: dict

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        ds = DictSamples(*self.splits[split])
        return DataLoader(ds, batch_size=self.batch_size, sampler=EpochShuffle(len(ds), self.seed) if shuffle else None)

    def train_dataloader(self):
        return self._loader("train", True)

    def val_dataloader(self):
        return self._loader("val", False)

    def test_dataloader(self):
        return self._loader("test", False)
