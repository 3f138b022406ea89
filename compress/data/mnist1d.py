"""MNIST-1D (Greydanus 2020) as a LightningDataModule, generated locally, with an optional transfer set.

MNIST-1D is a 1-D, 40-sample analogue of MNIST made from 10 templates by random padding, translation,
scaling, shear and noise (the ``mnist1d`` package's ``make_dataset``; its download path is never used).
It separates model families the way MNIST no longer does (published: MLP ~68%, CNN ~94% test accuracy
with 4,000 training samples), so it shows what a good teacher can teach a small student.

The setting that matters for this project's field: a simulator makes unlimited *unlabelled* inputs,
while labels (or a good teacher's time) are scarce.  ``n_transfer`` adds that many generated inputs to
the training set with label ``-1`` (unlabelled): the task loss skips them
(``compress.distill.losses.PartialLabelCrossEntropy``), the knowledge terms see them labelled by the
teacher only.  The labelled train / val / test splits do not depend on ``n_transfer`` (the transfer
inputs come from their own draw, seed ``data_seed + 1``), so a student trained with and without them is
compared on the same data.  Batches are dicts ``{"x": (B, 40), "y": (B,), "index": (B,)}`` (``index``
keys the teacher-output cache); generated sets are cached under ``cache_dir``.
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np

from compress.atomic import atomic_write
from compress.errors import UserError

from .splits import ArraySplits

__all__ = ["MNIST1DDataModule", "generate"]

UNLABELLED = -1


def generate(n: int, seed: int, cache_dir: str | Path | None = "cache/mnist1d") -> tuple[np.ndarray, np.ndarray]:
    """``n`` MNIST-1D samples ``(x (n, 40) float32, y (n,) int64)`` with the package's default settings.

    ``make_dataset`` reseeds the global ``random`` / ``numpy`` generators: their state is restored."""
    if n < 10:
        raise UserError(f"MNIST-1D: need at least 10 samples (one per class), got {n}")
    n = -(-n // 10) * 10  # make_dataset draws the same number per class
    path = None
    if cache_dir is not None:
        key = hashlib.sha1(f"mnist1d-v1-{n}-{seed}".encode()).hexdigest()[:10]
        path = Path(cache_dir) / f"mnist1d-{n}-{seed}-{key}.npz"
        if path.is_file():
            with np.load(path) as f:
                return f["x"], f["y"]
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = n, seed, 1.0
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
    if path is not None:
        atomic_write(path, lambda f: np.savez(f, x=x, y=y))
    return x, y



class MNIST1DDataModule(ArraySplits):
    def __init__(self, n_train: int = 4000, n_val: int = 1000, n_test: int = 1000, n_transfer: int = 0,
                 batch_size: int = 128, seed: int = 0, data_seed: int = 42, cache_dir: str | None = "cache/mnist1d"):
        super().__init__()
        for name, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test), ("batch_size", batch_size)):
            if not isinstance(v, int) or v < 1:
                raise UserError(f"MNIST1DDataModule: {name} must be an int >= 1, got {v!r}")
        if not isinstance(n_transfer, int) or n_transfer < 0:
            raise UserError(f"MNIST1DDataModule: n_transfer must be an int >= 0, got {n_transfer!r}")
        self.n_train, self.n_val, self.n_test, self.n_transfer = n_train, n_val, n_test, n_transfer
        self.batch_size, self.seed, self.data_seed, self.cache_dir = batch_size, seed, data_seed, cache_dir
        self.splits: dict | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        x, y = generate(self.n_test + self.n_val + self.n_train, self.data_seed, self.cache_dir)
        a, b = self.n_test, self.n_test + self.n_val
        train_x, train_y = x[b:b + self.n_train], y[b:b + self.n_train]
        if self.n_transfer:
            tx, _ = generate(self.n_transfer, self.data_seed + 1, self.cache_dir)
            tx = tx[:self.n_transfer]
            train_x = np.concatenate([train_x, tx])
            train_y = np.concatenate([train_y, np.full(len(tx), UNLABELLED, np.int64)])
        self.splits = {"test": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "train": (train_x, train_y)}
