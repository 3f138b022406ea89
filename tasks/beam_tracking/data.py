"""Beam-tracking data as a LightningDataModule: synthetic scenario-9-like sequences or the real layout.

``source="synthetic"`` generates ``envs.beam.SceneConfig`` sequences (``scene`` overrides its knobs,
e.g. ``{lighting: 0.3, distractors: 4}``); ``source="deepsense"`` reads a scenario label CSV and its
image / radar / power files (``csv``).  Both give ``envs.beam.BeamFrames``; windows of 8 inputs and
3 future labels are cut inside each sequence and the sequences split in order: the first 70% train,
the rest test (the seed's protocol).  Validation uses the test windows, as the seed's training does
(it has no validation split; here validation is only logged, never used to pick a checkpoint), unless
``val_sequences > 0`` holds out the last training sequences instead.

Batches are dicts ``{"x": (B, 10, F) packed steps, "y": (B, 4) beams t0..t3 (0-based), "index": (B,)}``,
assembled from the per-frame arrays by indexing (``envs.beam.assemble``).  ``window_stride`` keeps every
k-th training window (neighbouring windows share 10 of their 11 frames).  Generated or loaded frames are
cached under ``cache_dir`` keyed by the settings and the ``envs/beam`` sources (written atomically).

``radar_norm``: the seed feeds the radar maps unnormalised (``"none"``, the default).  Those log maps sit
on a noise floor of ~7 (log2 units) with a target contrast of ~0.2-1, while the seed's zero-padded future
steps are 0, so the first BatchNorm of the radar branch spends its scale on the floor-vs-padding jump and
the targets nearly vanish.  ``"floor"`` subtracts each map's median (its noise floor: an empty map is then
0, like the padding) and divides each of the two channels by its standard deviation over the training
frames (so the test data never shapes the input scaling).  A deployed model then expects this
normalisation as part of its preprocessing (``BeamDataModule.radar_scaling`` holds the two divisors).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from envs.beam import BeamFrames, SceneConfig, assemble, check_modality, generate_frames, split_sequences, \
    window_starts
from envs.beam.deepsense import load_frames, read_index

__all__ = ["BeamDataModule", "WindowSet", "frames_for", "floor_normalize"]

SOURCES = ("synthetic", "deepsense")
RADAR_NORMS = ("none", "floor")


class WindowSet(Dataset):
    """Windows of a ``BeamFrames``; ``ds[list_of_ids]`` returns a whole dict batch."""

    def __init__(self, frames: BeamFrames, starts: np.ndarray, modality: str):
        self.frames, self.starts, self.modality = frames, np.asarray(starts), modality

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, idx):
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
        x, y = assemble(self.frames, self.starts[idx.numpy()], self.modality)
        return {"x": x, "y": y, "index": idx}


def _sources_digest() -> str:
    import envs.beam as pkg

    h = hashlib.sha1()
    for f in sorted(Path(pkg.__file__).parent.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def floor_normalize(radar: np.ndarray, train_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radar maps ``[N, 2, Hr, Wr]`` minus each map's median, each channel divided by its std over the
    ``train_frames`` (indices); returns the maps and the two divisors."""
    out = radar - np.median(radar.reshape(len(radar), 2, -1), axis=2)[:, :, None, None]
    scale = out[train_frames].std(axis=(0, 2, 3)) + 1e-6
    return (out / scale[None, :, None, None]).astype(np.float32), scale.astype(np.float32)


def _save_frames(frames: BeamFrames, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    state = {k: torch.from_numpy(v) for k, v in (("masks", frames.masks), ("beams", frames.beams),
                                                  ("seq", frames.seq), ("radar", frames.radar)) if v is not None}
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_frames(path: Path) -> BeamFrames:
    state = torch.load(path, map_location="cpu", weights_only=True)
    radar = state.get("radar")
    return BeamFrames(state["masks"].numpy(), state["beams"].numpy(), state["seq"].numpy(),
                      radar.numpy() if radar is not None else None)


def frames_for(source: str, modality: str, resolution: int, radar_scale: int, seed: int, n_sequences: int,
               scene: dict | None, csv: str | None, labels: str, cache_dir: str | None) -> BeamFrames:
    """The frames of one data set, from the cache when present."""
    radar = modality == "image_radar"
    if source == "synthetic":
        cfg = SceneConfig(n_sequences=n_sequences, seed=seed, resolution=resolution, radar_scale=radar_scale,
                          radar=radar, **(scene or {}))
        key = repr(sorted(asdict(cfg).items()))
    else:
        if not csv:
            raise ValueError("source 'deepsense' needs csv: the path of the scenario's label CSV")
        key = f"{Path(csv).resolve()}|{modality}|{resolution}|{radar_scale}|{labels}"
    path = None
    if cache_dir:
        digest = hashlib.sha1(f"{source}|{key}|{_sources_digest()}".encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"{source}-{digest}.pt"
        if path.is_file():
            return _load_frames(path)
    if source == "synthetic":
        frames = generate_frames(cfg)
    else:
        frames = load_frames(read_index(csv, need_radar=radar), modality, resolution, radar_scale, labels)
    if path is not None:
        _save_frames(frames, path)
    return frames


class BeamDataModule(pl.LightningDataModule):
    def __init__(self, modality: str = "image", source: str = "synthetic", resolution: int = 224,
                 radar_scale: int = 1, seed: int = 0, n_sequences: int = 136, scene: dict[str, Any] | None = None,
                 csv: str | None = None, labels: str = "csv", train_fraction: float = 0.7, val_sequences: int = 0,
                 window_stride: int = 1, batch_size: int = 32, eval_batch_size: int = 128,
                 cache_dir: str | None = "cache/beam", radar_norm: str = "none"):
        super().__init__()
        check_modality(modality)
        if source not in SOURCES:
            raise ValueError(f"BeamDataModule: source must be one of {', '.join(SOURCES)}, got {source!r}")
        if radar_norm not in RADAR_NORMS:
            raise ValueError(f"BeamDataModule: radar_norm must be one of {', '.join(RADAR_NORMS)}, got {radar_norm!r}")
        if source == "synthetic" and scene:
            bad = sorted(set(scene) - set(SceneConfig.__dataclass_fields__) - {"n_sequences", "seed"})
            if bad:
                raise ValueError(f"BeamDataModule: unknown scene key(s) {', '.join(bad)} "
                                 f"(knobs: {', '.join(SceneConfig.__dataclass_fields__)})")
        for name, v in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size),
                        ("window_stride", window_stride), ("resolution", resolution)):
            if v < 1:
                raise ValueError(f"BeamDataModule: {name} must be >= 1, got {v}")
        if source == "deepsense" and csv and not Path(csv).is_file():
            raise FileNotFoundError(f"BeamDataModule: label CSV not found: {csv}")
        self.modality, self.source, self.resolution, self.radar_scale = modality, source, resolution, radar_scale
        self.seed, self.n_sequences, self.scene = seed, n_sequences, dict(scene or {})
        self.csv, self.labels = csv, labels
        self.train_fraction, self.val_sequences, self.window_stride = train_fraction, val_sequences, window_stride
        self.batch_size, self.eval_batch_size, self.cache_dir = batch_size, eval_batch_size, cache_dir
        self.radar_norm, self.radar_scaling = radar_norm, None
        self.frames: BeamFrames | None = None
        self.train_set = self.val_set = self.test_set = None

    def setup(self, stage: str | None = None) -> None:
        if self.frames is not None:
            return
        self.frames = frames_for(self.source, self.modality, self.resolution, self.radar_scale, self.seed,
                                 self.n_sequences, self.scene, self.csv, self.labels, self.cache_dir)
        train_ids, test_ids = split_sequences(self.frames.seq, self.train_fraction)
        val_ids = test_ids
        if self.val_sequences:
            if not 0 < self.val_sequences < len(train_ids):
                raise ValueError(f"val_sequences must be in 1..{len(train_ids) - 1}, got {self.val_sequences}")
            train_ids, val_ids = train_ids[:-self.val_sequences], train_ids[-self.val_sequences:]
        if self.radar_norm == "floor" and self.frames.radar is not None:
            used = np.flatnonzero(np.isin(self.frames.seq, train_ids))
            radar, self.radar_scaling = floor_normalize(self.frames.radar, used)
            self.frames = BeamFrames(self.frames.masks, self.frames.beams, self.frames.seq, radar)
        train = window_starts(self.frames.seq, train_ids)[::self.window_stride]
        self.train_set = WindowSet(self.frames, train, self.modality)
        self.val_set = WindowSet(self.frames, window_starts(self.frames.seq, val_ids), self.modality)
        self.test_set = WindowSet(self.frames, window_starts(self.frames.seq, test_ids), self.modality)

    def _loader(self, ds: WindowSet, bs: int, shuffle: bool) -> DataLoader:
        # the shuffle follows the global RNG, i.e. the run's seed_everything (not the data seed); the last
        # incomplete training batch is dropped (relation terms need pairs, BatchNorm more than one sample)
        base = RandomSampler(ds) if shuffle else SequentialSampler(ds)
        return DataLoader(ds, batch_size=None, sampler=BatchSampler(base, bs, drop_last=shuffle and len(ds) > bs))

    def train_dataloader(self):
        self.setup("fit")
        return self._loader(self.train_set, self.batch_size, True)

    def val_dataloader(self):
        self.setup("validate")
        return self._loader(self.val_set, self.eval_batch_size, False)

    def test_dataloader(self):
        self.setup("test")
        return self._loader(self.test_set, self.eval_batch_size, False)
