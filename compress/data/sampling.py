"""Shuffled batches whose order depends only on (seed, epoch): resumable, reproducible.

Lightning calls ``set_epoch(epoch)`` on a loader's sampler (and batch sampler) before every epoch,
also when it resumes from a checkpoint, and the permutation here is drawn lazily, at the epoch's
first batch, from a generator seeded with ``(seed, epoch)``.  So epoch ``e`` of a resumed run sees
exactly the batches of epoch ``e`` of an uninterrupted run, whatever the global random state, and
the global generator is not touched.

* ``EpochShuffle(n, seed)``: a sampler of indices 0..n-1 (use with ``DataLoader(sampler=...)``);
* ``EpochBatches(n, batch_size, seed)``: a batch sampler yielding index lists (for datasets that
  cut a whole batch from in-memory tensors in one ``__getitem__`` call: ``DataLoader(ds,
  sampler=EpochBatches(...), batch_size=None)``); ``shuffle=False`` gives the batches in order.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler

from compress.errors import UserError

__all__ = ["EpochShuffle", "EpochBatches", "epoch_seed"]


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2 ** 63 - 1)


def _permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator()
    g.manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=g)


class EpochShuffle(Sampler[int]):
    def __init__(self, n: int, seed: int = 0):
        if not isinstance(n, int) or n < 1:
            raise UserError(f"EpochShuffle: n must be an int >= 1, got {n!r}")
        self.n, self.seed, self.epoch = n, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        yield from _permutation(self.n, self.seed, self.epoch).tolist()

    def __len__(self) -> int:
        return self.n


class EpochBatches(Sampler[list]):
    def __init__(self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True, drop_last: bool = False):
        if not isinstance(n, int) or n < 1:
            raise UserError(f"EpochBatches: n must be an int >= 1, got {n!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"EpochBatches: batch_size must be an int >= 1, got {batch_size!r}")
        if drop_last and batch_size > n:
            raise UserError(f"EpochBatches: batch_size {batch_size} > {n} samples with drop_last: no batch at all")
        self.n, self.batch_size, self.seed = n, batch_size, int(seed)
        self.shuffle, self.drop_last, self.epoch = shuffle, drop_last, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[list]:
        order = _permutation(self.n, self.seed, self.epoch) if self.shuffle else torch.arange(self.n)
        stop = self.n - self.n % self.batch_size if self.drop_last else self.n
        for i in range(0, stop, self.batch_size):
            yield order[i:i + self.batch_size].tolist()

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)
