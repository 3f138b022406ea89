"""Camera preprocessing of the seed (Nguyen et al., seed 002, ``DataFeed``): RGB frames -> binary motion masks.

Per frame: resize to ``size x size`` (bilinear, as torchvision's ``Resize`` on a PIL image), grayscale
with the ITU-R 709 luma weights that ``skimage.color.rgb2gray`` uses (0.2125 R + 0.7154 G + 0.0721 B,
on [0, 1]), Gaussian blur with sigma 1 (``scipy.ndimage.gaussian_filter``, reflect borders).  Between
consecutive frames: absolute difference, then a binary mask of the pixels where it exceeds 10% of its
maximum.  No other normalisation.  8 frames give 7 masks.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

__all__ = ["LUMA", "to_gray", "load_rgb", "motion_mask", "motion_masks"]

LUMA = np.array([0.2125, 0.7154, 0.0721])


def load_rgb(path, size: int) -> np.ndarray:
    """An image file as ``uint8 [size, size, 3]`` RGB (resized only when its size differs)."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[..., H, W, 3]`` -> blurred float64 gray ``[..., H, W]`` in [0, 1]."""
    if rgb.dtype != np.uint8 or rgb.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 RGB [..., H, W, 3], got {rgb.dtype} {list(rgb.shape)}")
    gray = (rgb.astype(np.float64) / 255.0) @ LUMA
    sigma = (0,) * (gray.ndim - 2) + (1.0, 1.0)
    return gaussian_filter(gray, sigma=sigma)


def motion_mask(prev_gray: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """Binary mask (uint8) of ``|gray - prev| > 0.1 * max|gray - prev|``."""
    diff = np.abs(gray - prev_gray)
    return (diff > 0.1 * diff.max()).astype(np.uint8)


def motion_masks(rgb: np.ndarray) -> np.ndarray:
    """Masks of consecutive frames of one sequence: ``uint8 [T, H, W, 3]`` -> ``uint8 [T-1, H, W]``."""
    gray = to_gray(rgb)
    diff = np.abs(gray[1:] - gray[:-1])
    peak = diff.reshape(diff.shape[0], -1).max(axis=1)
    return (diff > 0.1 * peak[:, None, None]).astype(np.uint8)
