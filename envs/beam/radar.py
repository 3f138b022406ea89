"""FMCW radar of DeepSense 6G scenario 9: the raw cube, its synthesis for point targets, and the seed's maps.

Sensor (the seed's ``Radar_KPI``): 77 GHz start frequency, chirp slope 15 MHz/us, 5 MS/s complex
sampling, 256 samples per chirp, 128 chirps per frame, chirp repetition 65 us, 4 receive antennas at
half-wavelength spacing.  Derived: bandwidth 768 MHz, range resolution 0.195 m, maximum range 50 m,
maximum radial velocity +-14.9 m/s.  A raw frame is the ``.mat`` variable ``data`` of shape
``[4 Rx, 256 samples, 128 chirps]`` (complex).

Maps (the seed's ``Radar_Cube``/``Range_Angle``/``Doppler_Angle``; Nguyen et al., seed 002):

1. range FFT (size = samples) along the samples axis;
2. the mean over chirps is removed (static objects vanish);
3. Doppler FFT (size = chirps) along the chirps axis, angle FFT (size 64) along the antennas,
   ``fftshift`` of the angle and Doppler axes;
4. range-angle map ``log2(1 + mean_doppler |cube|)``, first half of the range bins kept (0..25 m);
5. Doppler-angle map ``log2(1 + mean_range |cube|)``.

Both maps are ``[128, 64]`` and are stacked as two channels, unnormalised.  (Computed in single precision
with ``scipy.fft``; the seed's float64 numpy chain agrees to ~1e-6 relative.)

``scale`` (1, 2, 4) is this project's resolution knob for fast runs: a sub-cube of the first
``256/scale`` samples and ``128/scale`` chirps with an angle FFT of ``64/scale`` -- physically a shorter
chirp and a shorter frame (coarser range and Doppler resolution, same maximum range and velocity), so
the real loader (which slices the recorded cube) and the generator (which synthesises the sub-cube)
stay consistent.  Maps are then ``[128/scale, 64/scale]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

__all__ = ["RadarConfig", "synthesize_cube", "radar_maps", "C"]

C = 3e8


@dataclass(frozen=True)
class RadarConfig:
    """The scenario-9 FMCW sensor; ``scale`` shrinks the processed cube (see the module docstring)."""

    n_rx: int = 4
    slope_mhz_us: float = 15.0
    f0_ghz: float = 77.0
    fs_msps: float = 5.0
    n_samples: int = 256
    n_chirps: int = 128
    t_pri_us: float = 65.0
    n_angle_fft: int = 64
    scale: int = 1

    def __post_init__(self):
        if self.scale not in (1, 2, 4, 8):
            raise ValueError(f"RadarConfig: scale must be 1, 2, 4 or 8, got {self.scale!r}")

    @property
    def samples(self) -> int:
        return self.n_samples // self.scale

    @property
    def chirps(self) -> int:
        return self.n_chirps // self.scale

    @property
    def angle_bins(self) -> int:
        return self.n_angle_fft // self.scale

    @property
    def range_bins(self) -> int:
        """Range bins kept in the range-angle map (the first half: 0..25 m)."""
        return self.samples // 2

    @property
    def map_shape(self) -> tuple[int, int]:
        """Shape of each map; the range-angle and Doppler-angle maps share it."""
        if self.range_bins != self.chirps:
            raise ValueError("range-angle and Doppler-angle maps differ in height for this configuration")
        return self.range_bins, self.angle_bins

    @property
    def bandwidth_hz(self) -> float:
        return self.slope_mhz_us * 1e12 * self.samples / (self.fs_msps * 1e6)

    @property
    def range_res(self) -> float:
        return C / (2 * self.bandwidth_hz)

    @property
    def wavelength(self) -> float:
        fc = self.f0_ghz * 1e9 + self.slope_mhz_us * 1e12 * (self.samples / (self.fs_msps * 1e6)) / 2
        return C / fc

    @property
    def velocity_max(self) -> float:
        return self.wavelength / (4 * self.t_pri_us * 1e-6)


def synthesize_cube(ranges, velocities, sin_angles, amplitudes, cfg: RadarConfig, noise_std: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Raw cube ``[n_rx, samples, chirps]`` (complex64) of point targets plus white noise.

    Target ``k`` at range ``R``, radial velocity ``v`` (positive = receding) and ``sin(theta)``
    contributes ``a * exp(j2pi (f_b n / fs + f_d m T_PRI + r sin(theta) / 2))`` with beat frequency
    ``f_b = 2 S R / c`` and Doppler ``f_d = 2 v / lambda`` (half-wavelength antenna spacing).
    """
    r = np.asarray(ranges, np.float64)
    v = np.asarray(velocities, np.float64)
    s = np.asarray(sin_angles, np.float64)
    a = np.asarray(amplitudes, np.complex128)
    n = np.arange(cfg.samples)
    m = np.arange(cfg.chirps)
    rx = np.arange(cfg.n_rx)
    f_b = 2 * cfg.slope_mhz_us * 1e12 * r / C
    f_d = 2 * v / cfg.wavelength
    fast = np.exp(2j * np.pi * np.outer(f_b / (cfg.fs_msps * 1e6), n)).astype(np.complex64)       # (K, samples)
    slow = np.exp(2j * np.pi * np.outer(f_d * cfg.t_pri_us * 1e-6, m)).astype(np.complex64)       # (K, chirps)
    space = (a[:, None] * np.exp(1j * np.pi * np.outer(s, rx))).astype(np.complex64)               # (K, rx)
    cube = np.ascontiguousarray((space[:, :, None] * fast[:, None, :]).reshape(len(r), -1).T) @ slow  # (rx*samp, chirp)
    noise = rng.standard_normal((cfg.n_rx * cfg.samples, cfg.chirps, 2), dtype=np.float32)
    cube += noise.view(np.complex64)[..., 0] * np.float32(noise_std / np.sqrt(2))
    return cube.reshape(cfg.n_rx, cfg.samples, cfg.chirps)


def radar_maps(cube: np.ndarray, cfg: RadarConfig) -> np.ndarray:
    """The seed's two maps of raw cubes: ``[..., 4, samples, chirps]`` -> ``[..., 2, range_bins, angle_bins]``
    float32 (range-angle, Doppler-angle).  Full-size recorded cubes are sliced to ``cfg``'s sub-cube first.
    The zero-padded angle FFT of the 4 antennas is applied as its (angle_bins x 4) DFT matrix."""
    expect = (cfg.n_rx, cfg.n_samples, cfg.n_chirps)
    if cube.ndim < 3 or cube.shape[-3] != cfg.n_rx or cube.shape[-2] < cfg.samples or cube.shape[-1] < cfg.chirps:
        raise ValueError(f"radar cube has shape {list(cube.shape)}, expected {list(expect)} "
                         "[Rx, samples, chirps]")
    x = np.asarray(cube[..., :cfg.samples, :cfg.chirps], dtype=np.complex64)
    x = sfft.fft(x, n=cfg.samples, axis=-2)
    x -= x.mean(axis=-1, keepdims=True)
    x = sfft.fft(x, n=cfg.chirps, axis=-1, overwrite_x=True)
    lead = x.shape[:-3]
    dft = np.exp(-2j * np.pi * np.outer(np.arange(cfg.angle_bins), np.arange(cfg.n_rx)) / cfg.angle_bins)
    x = np.moveaxis(x, -3, 0).reshape(cfg.n_rx, -1)                              # one BLAS call for all cells
    x = (dft.astype(np.complex64) @ x).reshape(cfg.angle_bins, *lead, cfg.samples, cfg.chirps)
    mag = np.abs(np.moveaxis(x, 0, -3))                                         # (..., angle, range, doppler)
    # the means commute with fftshift, so shift the small maps afterwards
    range_angle = np.fft.fftshift(mag.mean(axis=-1), axes=-2)                   # (..., angle, range)
    doppler_angle = np.fft.fftshift(mag.mean(axis=-2), axes=(-2, -1))           # (..., angle, doppler)
    range_angle = np.log2(1 + range_angle).swapaxes(-1, -2)[..., :cfg.range_bins, :]
    doppler_angle = np.log2(1 + doppler_angle).swapaxes(-1, -2)
    return np.stack([range_angle, doppler_angle], axis=-3).astype(np.float32)
