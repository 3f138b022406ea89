"""Loader for the DeepSense 6G scenario-9 layout (Alkhateeb et al. 2023): a label CSV plus its files.

The CSV (``scenario9.csv`` of the data set; ``../shared/data/deepsense_scenario9_labels.csv`` here) has
one row per sample, with paths relative to the CSV's folder:

* ``unit1_rgb``: the camera image (``./unit1/camera_data/*.jpg``);
* ``unit1_radar``: the FMCW frame, a ``.mat`` file whose ``data`` is ``[4 Rx, 256 samples, 128 chirps]``;
* ``unit1_pwr_60ghz``: a text file with the 64 received beam powers;
* ``unit1_beam_index``: the best beam, 1-based; ``seq_index``: the sequence (rows of a sequence are
  contiguous and in time order).

``read_index`` parses the CSV alone (enough for windows and splits); ``load_frames`` reads the files
and applies the seed's preprocessing (``envs.beam.camera``, ``envs.beam.radar``) into the same
``BeamFrames`` the synthetic generator produces.  Labels come from ``unit1_beam_index - 1`` or, as the
seed does, from the argmax of the power files (``labels="power"``).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera import load_rgb, motion_masks
from .radar import RadarConfig, radar_maps
from .windows import BeamFrames, check_modality, sequences

__all__ = ["DeepSenseIndex", "read_index", "load_frames", "read_radar", "read_powers", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS = ("unit1_rgb", "unit1_pwr_60ghz", "unit1_beam_index", "seq_index")


@dataclass
class DeepSenseIndex:
    """The parsed label CSV: per-row file paths (absolute), 0-based beams and sequence ids."""

    csv_path: Path
    rgb: list
    power: list
    radar: list | None
    beams: np.ndarray
    seq: np.ndarray

    def __len__(self) -> int:
        return len(self.beams)


def _int(value: str, column: str, row: int, path: Path) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise ValueError(f"{path}: row {row}: column '{column}' must be an integer, got {value!r}") from None


def read_index(csv_path, need_radar: bool = False) -> DeepSenseIndex:
    """Parse a scenario label CSV; missing columns, bad beams or non-contiguous sequences are errors."""
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"label CSV not found: {path}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        wanted = REQUIRED_COLUMNS + (("unit1_radar",) if need_radar else ())
        missing = [c for c in wanted if c not in columns]
        if missing:
            have = ", ".join(c for c in columns if c)
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (has: {have})")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path}: no rows")
    root = path.parent
    beams = np.empty(len(rows), np.int64)
    seq = np.empty(len(rows), np.int64)
    for i, r in enumerate(rows):
        b = _int(r["unit1_beam_index"], "unit1_beam_index", i + 2, path)
        if not 1 <= b <= 64:
            raise ValueError(f"{path}: row {i + 2}: unit1_beam_index {b} is outside 1..64 (it is 1-based)")
        beams[i] = b - 1
        seq[i] = _int(r["seq_index"], "seq_index", i + 2, path)
    sequences(seq)  # contiguity check, one clear error
    rgb = [root / r["unit1_rgb"] for r in rows]
    power = [root / r["unit1_pwr_60ghz"] for r in rows]
    radar = [root / r["unit1_radar"] for r in rows] if "unit1_radar" in columns else None
    return DeepSenseIndex(path, rgb, power, radar, beams, seq)


def read_radar(path, cfg: RadarConfig) -> np.ndarray:
    """The ``data`` cube of a radar ``.mat`` file, checked to be ``[4, 256, 128]``."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"radar file not found: {path}")
    mat = loadmat(str(path))
    if "data" not in mat:
        raise ValueError(f"{path}: no variable 'data' (has: {', '.join(k for k in mat if not k.startswith('__'))})")
    cube = np.asarray(mat["data"])
    expect = (cfg.n_rx, cfg.n_samples, cfg.n_chirps)
    if cube.shape != expect:
        raise ValueError(f"{path}: radar 'data' has shape {list(cube.shape)}, expected {list(expect)} "
                         "[Rx, samples, chirps]")
    return cube


def read_powers(path, n_beams: int = 64) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"power file not found: {path}")
    p = np.loadtxt(path, dtype=np.float64).reshape(-1)
    if p.shape != (n_beams,):
        raise ValueError(f"{path}: expected {n_beams} beam powers, got {p.size}")
    return p


def load_frames(index: DeepSenseIndex, modality: str = "image", resolution: int = 224, radar_scale: int = 1,
                labels: str = "csv") -> BeamFrames:
    """Read every file of ``index`` and preprocess it as the seed does (see the module docstring)."""
    check_modality(modality)
    if labels not in ("csv", "power"):
        raise ValueError(f"labels must be 'csv' (unit1_beam_index) or 'power' (argmax of unit1_pwr_60ghz), "
                         f"got {labels!r}")
    if modality == "image_radar" and index.radar is None:
        raise ValueError(f"{index.csv_path}: modality 'image_radar' needs the column unit1_radar")
    rcfg = RadarConfig(scale=radar_scale)
    masks, maps = [], []
    for sid, first, length in sequences(index.seq):
        rgb = []
        for i in range(first, first + length):
            p = index.rgb[i]
            if not p.is_file():
                raise FileNotFoundError(f"{index.csv_path}: row {i + 2} names image {p}, which does not exist")
            rgb.append(load_rgb(p, resolution))
        masks.append(np.concatenate([np.zeros((1, resolution, resolution), np.uint8), motion_masks(np.stack(rgb))]))
        if modality == "image_radar":
            maps.append(radar_maps(np.stack([read_radar(index.radar[i], rcfg)
                                             for i in range(first, first + length)]), rcfg))
    beams = index.beams.copy()
    if labels == "power":
        beams = np.array([int(np.argmax(read_powers(p))) for p in index.power], np.int64)
    return BeamFrames(np.concatenate(masks), beams, index.seq.copy(), np.concatenate(maps) if maps else None)
