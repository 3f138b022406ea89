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

Under DDP (``torch.distributed`` initialised with W processes) both shard themselves: rank r takes
items r, r+W, r+2W, ... of the epoch's order (padded, as ``DistributedSampler`` does, by repeating
the first items so every rank has the same count).  So with ``EpochShuffle`` the W ranks' batches of
B/W samples at step k are exactly the samples of batch k of batch size B in one process (the DDP
equivalence, tests/test_ddp.py); ``EpochBatches`` deals whole batches to the ranks.  They are
``DistributedSampler`` subclasses only so that Lightning keeps them: it replaces any other sampler
by a ``DistributedSamplerWrapper`` that reshuffles the order with its own generator.
"""
from __future__ import annotations


import torch
from torch.utils.data import DistributedSampler

from compress.errors import UserError

__all__ = ["EpochShuffle", "EpochBatches", "epoch_seed"]


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2 ** 63 - 1)


def _permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator()
    g.manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=g)


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _SelfSharding(DistributedSampler):
    """Shards ``_items()`` by the process's rank at iteration time (``DistributedSampler``'s ``__init__``
    is not called: it would need the process group when the data module is built)."""

    def _items(self) -> list:
        raise NotImplementedError

    def _count(self) -> int:
        raise NotImplementedError

    def __iter__(self):
        items = self._items()
        rank, world = _rank_world()
        if world > 1:
            total = -(-len(items) // world) * world
            items = (items + items[:total - len(items)])[rank:total:world]
        yield from items

    def __len__(self) -> int:
        return -(-self._count() // _rank_world()[1])


class EpochShuffle(_SelfSharding):
    def __init__(self, n: int, seed: int = 0):
        if not isinstance(n, int) or n < 1:
            raise UserError(f"EpochShuffle: n must be an int >= 1, got {n!r}")
        self.n, self.seed, self.epoch = n, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _items(self) -> list[int]:
        return _permutation(self.n, self.seed, self.epoch).tolist()

    def _count(self) -> int:
        return self.n


class EpochBatches(_SelfSharding):
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

    def _items(self) -> list[list[int]]:
        order = _permutation(self.n, self.seed, self.epoch) if self.shuffle else torch.arange(self.n)
        stop = self.n - self.n % self.batch_size if self.drop_last else self.n
        return [order[i:i + self.batch_size].tolist() for i in range(0, stop, self.batch_size)]

    def _count(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)
