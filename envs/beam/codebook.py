"""60 GHz beam codebook of the synthetic scenario: a uniform linear array with an oversampled DFT codebook.

DeepSense 6G scenario 9's base station (unit 1) sweeps 64 beams of a 16-element phased array and
records the received power of each (``unit1_pwr_60ghz``); the label is the beam of maximum power.
Here: ``N`` elements at half-wavelength spacing, beam ``k`` steered to
``sin(theta_k) = s_max * (2k - (K-1)) / (K-1)`` (64 beams over +-``theta_max``, i.e. oversampled
about 4x against the ``2/N`` DFT spacing), ``w_k = a(theta_k) / sqrt(N)`` with
``a(theta)_n = exp(j pi n sin(theta))``.  Power of beam ``k`` for channel ``h``: ``|w_k^H h|^2``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["steering", "codebook", "beam_powers"]


def steering(sin_theta, n_elements: int) -> np.ndarray:
    """``[..., N]`` array responses ``exp(j pi n sin(theta))``."""
    s = np.asarray(sin_theta, np.float64)[..., None]
    return np.exp(1j * np.pi * s * np.arange(n_elements))


def codebook(n_beams: int = 64, n_elements: int = 16, theta_max_deg: float = 45.0) -> np.ndarray:
    """``[K, N]`` unit-norm beamformers, beam 0 at ``-theta_max``, beam K-1 at ``+theta_max``."""
    s_max = np.sin(np.radians(theta_max_deg))
    s = s_max * np.linspace(-1.0, 1.0, n_beams)
    return steering(s, n_elements) / np.sqrt(n_elements)


def beam_powers(channel: np.ndarray, book: np.ndarray) -> np.ndarray:
    """``|w_k^H h|^2`` for channels ``[..., N]`` -> ``[..., K]``."""
    return np.abs(channel @ book.conj().T) ** 2
