"""Data for the SINR task: fixed channel sets with their teacher references, as a LightningDataModule.

Batches are dicts ``{"x": channels (B, K, K), "index": sample ids (B,)}`` (the ids key the Distiller's
teacher-output cache); validation/test batches also carry ``"ref"``, the teacher's output, so that the
sum-rate can be reported as a percentage of the teacher on the same channels.

Batches are cut from whole tensors (a ``BatchSampler`` feeds index lists to ``__getitem__``): collating
samples one by one would cost more than the training step of these tiny students.

``problem``: ``"gaussian"`` (K-user Gaussian IC, teacher WMMSE) or ``"d2d"`` (Cui et al. layouts with
``K`` links, teacher FPLinQ). Train, validation and test sets use the seeds ``seed``, ``seed + 1``, ``seed + 2``.
"""
from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from compress.data import EpochBatches

from envs import d2d, interference

from compress.errors import UserError

__all__ = ["ChannelSet", "SINRDataModule", "make_channels", "teacher_for"]

PROBLEMS = ("gaussian", "d2d")


def make_channels(problem: str, K: int, n: int, seed: int, field: float = 1000.0) -> torch.Tensor:
    """``n`` channel matrices ``(n, K, K)``: amplitudes (gaussian) or noise-normalised gains (d2d)."""
    if problem == "gaussian":
        return interference.gaussian_ic(K, n, seed=seed)
    if problem == "d2d":
        G, _ = d2d.generate(n, d2d.D2DConfig(n_links=K, field=field), seed=seed)
        return G
    raise UserError(f"problem must be one of {PROBLEMS}, got '{problem}'")


def teacher_for(problem: str, pmax: float = 1.0, noise: float = 1.0):
    """The default algorithmic teacher of a problem (a frozen callable); D2D scheduling is on/off (no pmax)."""
    from .fplinq import FPLinQ
    from .wmmse import WMMSE
    if problem == "gaussian":
        return WMMSE(pmax=pmax, noise=noise)
    if problem == "d2d":
        return FPLinQ()
    raise UserError(f"problem must be one of {PROBLEMS}, got '{problem}'")


class ChannelSet(Dataset):
    """Tensor-backed dataset; ``ds[list_of_ids]`` returns a whole dict batch."""

    def __init__(self, x: torch.Tensor, ref: torch.Tensor | None = None):
        self.x, self.ref = x, ref

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, idx):
        idx = torch.as_tensor(idx, dtype=torch.long)
        batch = {"x": self.x[idx], "index": idx}
        if self.ref is not None:
            batch["ref"] = self.ref[idx]
        return batch


def _chunked(fn, x: torch.Tensor, chunk: int = 5000) -> torch.Tensor:
    return torch.cat([fn(x[i:i + chunk]) for i in range(0, x.shape[0], chunk)])


class SINRDataModule(pl.LightningDataModule):
    def __init__(self, problem: str = "gaussian", K: int = 10, n_train: int = 100000, n_val: int = 2000,
                 n_test: int = 5000, batch_size: int = 100, seed: int = 1, field: float = 1000.0,
                 eval_batch_size: int = 1000, pmax: float = 1.0, noise: float = 1.0):
        """``pmax`` / ``noise``: the power budget and noise power the validation/test references (the
        teacher's outputs) are computed with: the same values as the module's."""
        super().__init__()
        for name, v in (("pmax", pmax), ("noise", noise)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise UserError(f"SINRDataModule: {name} must be a finite number > 0, got {v!r}")
        if problem not in PROBLEMS:
            raise UserError(f"SINRDataModule: problem must be one of {PROBLEMS}, got '{problem}'")
        if K < 2:
            raise UserError(f"SINRDataModule: K must be >= 2, got {K}")
        for name, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test), ("batch_size", batch_size)):
            if v < 1:
                raise UserError(f"SINRDataModule: {name} must be >= 1, got {v}")
        self.problem, self.K, self.field = problem, K, field
        self.n_train, self.n_val, self.n_test = n_train, n_val, n_test
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.pmax, self.noise = float(pmax), float(noise)
        self.train_set = self.val_set = self.test_set = None

    def _set(self, n: int, seed: int, with_ref: bool) -> ChannelSet:
        x = make_channels(self.problem, self.K, n, seed, self.field)
        ref = _chunked(teacher_for(self.problem, self.pmax, self.noise), x) if with_ref else None
        return ChannelSet(x, ref)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None and stage in (None, "fit"):
            self.train_set = self._set(self.n_train, self.seed, with_ref=False)
        if self.val_set is None and stage in (None, "fit", "validate"):
            self.val_set = self._set(self.n_val, self.seed + 1, with_ref=True)
        if self.test_set is None and stage in (None, "test"):
            self.test_set = self._set(self.n_test, self.seed + 2, with_ref=True)

    def _loader(self, ds: ChannelSet, bs: int, shuffle: bool) -> DataLoader:
        # batch order by (seed, epoch) only: a resumed run sees the batches of an uninterrupted one
        return DataLoader(ds, batch_size=None, sampler=EpochBatches(len(ds), bs, self.seed, shuffle=shuffle))

    def train_dataloader(self):
        self.setup("fit")
        return self._loader(self.train_set, self.batch_size, True)

    def val_dataloader(self):
        self.setup("validate")
        return self._loader(self.val_set, self.eval_batch_size, False)

    def test_dataloader(self):
        self.setup("test")
        return self._loader(self.test_set, self.eval_batch_size, False)
