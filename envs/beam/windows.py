"""Frames, windows and the packed model input shared by the real loader and the synthetic generator.

``BeamFrames`` holds the preprocessed frames of a set of sequences, in order and contiguous per
sequence: ``masks[i]`` is the motion mask between frames ``i-1`` and ``i`` (zeros at a sequence's first
frame), ``radar[i]`` the two radar maps of frame ``i``, ``beams[i]`` its best beam (0-based) and
``seq[i]`` its sequence id.

Windows (the seed's ``gen_data_seq``): inside each sequence, every start ``s`` with
``s + n_in + n_future < len`` gives inputs ``s .. s+n_in-1`` and labels ``[beam(s+n_in-1),
beam(s+n_in) .. beam(s+n_in+n_future-1)]`` (t0 = the last input frame, t1..t3 the future).  Sequences
are split in their order of appearance: the first ``int(0.7 * n)`` train, the rest test.

Model input (one tensor, so every deployment tool sees a single input): ``x[b, t]`` is step ``t`` of
``T = n_in + n_future - 1`` steps, flattened and concatenated: the motion mask (``H*W``), then for
``image_radar`` the two radar maps (``2*Hr*Wr``).  As in the seed, the image part carries the
``n_in - 1`` masks followed by ``n_future`` zero frames and the radar part the ``n_in`` maps followed
by ``n_future - 1`` zero maps; the model's outputs at the last ``n_future + 1`` steps are t0..t3.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["MODALITIES", "N_IN", "N_FUTURE", "BeamFrames", "check_modality", "step_size", "window_starts",
           "split_sequences", "sequences", "assemble"]

MODALITIES = ("image", "image_radar")
N_IN, N_FUTURE = 8, 3


def check_modality(modality) -> str:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}: choose one of {', '.join(MODALITIES)}")
    return modality


def step_size(modality: str, image_size: int, radar_shape: tuple[int, int] | None) -> int:
    """Width of one packed step of the model input."""
    check_modality(modality)
    n = image_size * image_size
    if modality == "image_radar":
        n += 2 * radar_shape[0] * radar_shape[1]
    return n


@dataclass
class BeamFrames:
    masks: np.ndarray                  # uint8 [N, H, W]
    beams: np.ndarray                  # int64 [N], 0-based
    seq: np.ndarray                    # int64 [N], contiguous per sequence
    radar: np.ndarray | None = None    # float32 [N, 2, Hr, Wr]

    def __post_init__(self):
        n = len(self.beams)
        if self.masks.shape[0] != n or self.seq.shape[0] != n or (self.radar is not None and len(self.radar) != n):
            raise ValueError("BeamFrames: masks, beams, seq (and radar) must have one entry per frame")

    @property
    def image_size(self) -> int:
        return int(self.masks.shape[1])

    @property
    def radar_shape(self) -> tuple[int, int] | None:
        return None if self.radar is None else (int(self.radar.shape[2]), int(self.radar.shape[3]))

    def sequences(self) -> list[tuple[int, int, int]]:
        """``(sequence id, first frame, length)`` in order of appearance."""
        return sequences(self.seq)


def sequences(seq) -> list[tuple[int, int, int]]:
    """``(sequence id, first frame, length)`` of a per-frame sequence-id array, in order of appearance."""
    seq = np.asarray(seq)
    if len(seq) == 0:
        return []
    change = np.flatnonzero(np.diff(seq)) + 1
    firsts = np.concatenate([[0], change])
    lens = np.diff(np.concatenate([firsts, [len(seq)]]))
    ids = seq[firsts]
    if len(np.unique(ids)) != len(ids):
        raise ValueError("the frames of a sequence must be contiguous (sorted by seq_index)")
    return [(int(i), int(f), int(n)) for i, f, n in zip(ids, firsts, lens)]


def window_starts(seq, seq_ids=None, n_in: int = N_IN, n_future: int = N_FUTURE) -> np.ndarray:
    """Global frame indices of the window starts inside the given sequences (all when None).

    ``seq`` is the per-frame sequence id (``BeamFrames.seq``).  A sequence too short for one window is
    an error naming it (the seed's rule ``start + n_in + n_future < length`` needs ``n_in + n_future + 1``
    frames)."""
    if n_in < 2 or n_future < 0:
        raise ValueError(f"windows need n_in >= 2 inputs and n_future >= 0 labels, got {n_in}, {n_future}")
    need = n_in + n_future + 1
    wanted = None if seq_ids is None else set(int(s) for s in seq_ids)
    starts = []
    for sid, first, length in sequences(seq):
        if wanted is not None and sid not in wanted:
            continue
        if length < need:
            raise ValueError(f"a window of {n_in} inputs + {n_future} future labels is longer than sequence {sid} "
                             f"({length} frames; the seed's rule start + {n_in + n_future} < length needs {need})")
        starts.extend(range(first, first + length - n_in - n_future))
    return np.asarray(starts, dtype=np.int64)


def split_sequences(seq, train_fraction: float = 0.7) -> tuple[list[int], list[int]]:
    """The first ``int(train_fraction * n)`` sequences (in order of appearance) train, the rest test."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    ids = [s for s, _, _ in sequences(seq)]
    k = int(train_fraction * len(ids))
    return ids[:k], ids[k:]


def assemble(frames: BeamFrames, starts, modality: str, n_in: int = N_IN, n_future: int = N_FUTURE):
    """Packed inputs ``x`` (B, T, F) float32 and labels ``y`` (B, n_future + 1) int64 for window starts."""
    check_modality(modality)
    if modality == "image_radar" and frames.radar is None:
        raise ValueError("modality 'image_radar' needs radar maps, but these frames have none")
    s = torch.as_tensor(np.asarray(starts), dtype=torch.long)
    b, steps = len(s), n_in + n_future - 1
    masks = torch.from_numpy(frames.masks)
    hw = masks.shape[1] * masks.shape[2]
    img = torch.zeros(b, steps, hw)
    idx = s[:, None] + torch.arange(1, n_in)[None, :]                     # masks of frames s+1 .. s+n_in-1
    img[:, :n_in - 1] = masks[idx].reshape(b, n_in - 1, hw).float()
    parts = [img]
    if modality == "image_radar":
        radar = torch.from_numpy(frames.radar)
        rw = radar[0].numel()
        rad = torch.zeros(b, steps, rw)
        rad[:, :n_in] = radar[s[:, None] + torch.arange(n_in)[None, :]].reshape(b, n_in, rw)
        parts.append(rad)
    x = torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]
    beams = torch.from_numpy(frames.beams)
    y = beams[s[:, None] + (n_in - 1) + torch.arange(n_future + 1)[None, :]]
    return x, y.long()
