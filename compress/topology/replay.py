"""Rehearsal for semi-centralized distillation (seed 002, section III-B): a small replay set of the
server's data mixed into an edge node's fine-tuning, against catastrophic forgetting.

* ``WriteReplay(n)``: an ``after_fit`` hook for the server's student recipe; it draws ``n`` training
  samples of the run's data module (a random choice seeded by ``seed``, over one pass of the training
  loader, whose order follows the global generator: after a seeded training, the run's seed) and writes them, as they enter the
  network (``{"x": ..., "y": ...}`` tensors), to ``<run_dir>/replay.pt`` (atomically).  This file is
  what the server ships; its size is what the ledger counts.  Inputs whose values are all integers in
  0..255 (binary motion masks, 8-bit pixels) are stored as uint8, exactly (``ReplayMix`` casts them back).
* ``ReplayMix(local, replay)``: a data module for the node: every training batch of the ``local`` data
  module gets ``per_batch`` replay samples appended (drawn with the global generator, i.e. the run's
  seed).  Their ``index`` continues after the local samples', so a teacher-output cache keeps the two
  apart.  Validation and test are the local module's.
"""
from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch

from ..atomic import atomic_torch_save
from ..errors import UserError
from ..serialize import load_weights_only

__all__ = ["WriteReplay", "ReplayMix", "REPLAY_FILE", "read_replay", "compact"]

REPLAY_FILE = "replay.pt"


class WriteReplay:
    """``n`` samples (``None``: all of them, e.g. a node's whole local set uploaded as a data update) of one
    pass over the data module's training loader (a loader that drops an incomplete last batch drops those)."""

    def __init__(self, n: int | None = 64, seed: int = 0, filename: str = REPLAY_FILE, input_key: str = "x",
                 target_key: str = "y"):
        if n is not None and n < 1:
            raise UserError(f"WriteReplay: n must be >= 1 (or None: all samples), got {n}")
        self.n, self.seed, self.filename, self.input_key, self.target_key = n, seed, filename, input_key, target_key

    def __call__(self, *, datamodule=None, run_dir=None, **_) -> Path:
        if datamodule is None:
            raise UserError("WriteReplay needs the run's data module (a recipe with a data section)")
        xs, ys = [], []
        for batch in datamodule.train_dataloader():
            xs.append(batch[self.input_key])
            ys.append(batch[self.target_key])
        if not xs:
            raise UserError(f"WriteReplay: {type(datamodule).__name__} has no training samples to replay")
        x, y = torch.cat(xs), torch.cat(ys)
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))[:self.n]
        path = Path(run_dir) / self.filename
        atomic_torch_save({"x": compact(x[pick]).contiguous(), "y": y[pick].contiguous()}, path)
        print(f"[compress] replay set: {len(pick)} samples -> {path} ({path.stat().st_size:,} bytes)", flush=True)
        return path


def compact(x: torch.Tensor) -> torch.Tensor:
    """``x`` as uint8 when that is exact (every value an integer in 0..255), else unchanged."""
    if x.is_floating_point() and x.numel() and bool(((x >= 0) & (x <= 255) & (x == x.round())).all()):
        return x.to(torch.uint8)
    return x


def read_replay(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    obj = load_weights_only(path, "replay set", " (written by the server's WriteReplay hook)")
    if not isinstance(obj, dict) or not isinstance(obj.get("x"), torch.Tensor) or not isinstance(obj.get("y"), torch.Tensor):
        raise UserError(f"{path}: a replay set needs tensors under the keys 'x' and 'y'")
    if len(obj["x"]) != len(obj["y"]) or len(obj["x"]) == 0:
        raise UserError(f"{path}: 'x' and 'y' must hold the same number (> 0) of samples, "
                        f"got {len(obj['x'])} and {len(obj['y'])}")
    return obj["x"], obj["y"]


class _MixedLoader:
    def __init__(self, loader, x, y, per_batch: int, offset: int, keys: tuple[str, str, str]):
        self.loader, self.x, self.y, self.per_batch, self.offset = loader, x, y, per_batch, offset
        self.input_key, self.target_key, self.index_key = keys

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if not isinstance(batch, dict):
                raise UserError("ReplayMix: the local data module must give dict batches")
            bx = batch[self.input_key]
            if tuple(bx.shape[1:]) != tuple(self.x.shape[1:]):
                raise UserError(f"ReplayMix: replay samples have shape {list(self.x.shape[1:])}, the local "
                                f"data's '{self.input_key}' {list(bx.shape[1:])}: replay set from another setup")
            pick = torch.randint(len(self.x), (self.per_batch,))
            out = {self.input_key: torch.cat([bx, self.x[pick].to(bx.dtype)]),
                   self.target_key: torch.cat([batch[self.target_key], self.y[pick].to(batch[self.target_key].dtype)])}
            if self.index_key in batch:
                out[self.index_key] = torch.cat([torch.as_tensor(batch[self.index_key]).reshape(-1),
                                                 self.offset + pick])
            yield out


class ReplayMix(pl.LightningDataModule):
    def __init__(self, local: pl.LightningDataModule, replay: str, per_batch: int = 8, input_key: str = "x",
                 target_key: str = "y", index_key: str = "index"):
        super().__init__()
        if not isinstance(local, pl.LightningDataModule):
            raise UserError(f"ReplayMix: local must be a data module spec, got {type(local).__name__}")
        if per_batch < 1:
            raise UserError(f"ReplayMix: per_batch must be >= 1, got {per_batch}")
        self.local, self.replay_path, self.per_batch = local, replay, per_batch
        self.keys = (input_key, target_key, index_key)
        self.x, self.y = read_replay(replay)

    def setup(self, stage: str | None = None) -> None:
        self.local.setup(stage)

    def _offset(self, loader) -> int:
        ds = getattr(loader, "dataset", None)
        try:
            return len(ds)
        except TypeError:
            return 1 + max(int(torch.as_tensor(b[self.keys[2]]).max()) for b in loader)

    def train_dataloader(self):
        loader = self.local.train_dataloader()
        return _MixedLoader(loader, self.x, self.y, self.per_batch, self._offset(loader), self.keys)

    def val_dataloader(self):
        return self.local.val_dataloader()

    def test_dataloader(self):
        return self.local.test_dataloader()
