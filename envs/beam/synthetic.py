"""Synthetic multi-modal beam-tracking sequences shaped like DeepSense 6G scenario 9 (seeded, fast).

No small public substitute of scenario 9 exists (see the research note), so this generator renders
its own: a base station at the origin with a 16-element 60 GHz array (64-beam oversampled DFT
codebook, ``envs.beam.codebook``), a camera and a 77 GHz FMCW radar (``envs.beam.radar``) looking
across a street (+y).  A user vehicle drives along one of the lanes past the station (left to
right, so the beam index rises); each frame yields what the real data set records:

* ``unit1_pwr_60ghz``: the 64 beam powers ``|w_k^H h|^2`` for a line-of-sight path (cos element
  pattern) plus a weak reflection off a wall, with per-frame fading phase, receiver noise and a
  log-normal measurement error; the label is their argmax (edge beams saturate as in scenario 9);
* ``unit1_rgb``: a low-resolution rendering (pinhole camera across the street: a car keeps its size
  and row along its lane, only its column moves) over a static background with flicker, sensor noise,
  moving distractors (pedestrians, a car on the far lane driving the other way) and occluding
  poles; then the seed's motion-mask pipeline (``envs.beam.camera``);
* ``unit1_radar``: the raw FMCW cube of the vehicle's scatterers, pedestrians, static and swaying
  clutter and noise; then the seed's range-angle / Doppler-angle maps.

Statistics matched to scenario 9 (its label CSV): 136 sequences with the lengths of scenario 9
(30-65 frames, mean 43.9), about 9 Hz, two lanes whose tracks start at beam 2 (74% of the
sequences) or 15 (26%) and end at 62-63, beams rising within a sequence with a mean ``|delta beam|``
of about 1.7 per step and about a quarter of the steps unchanged.  ``tests/test_beam_data.py``
measures these on generated data.

Knobs for heterogeneous edge nodes (issue 16): ``lanes`` (lateral distances and probabilities),
``speed`` (faster vehicles give shorter sequences), ``lighting`` (1 = day, lower = darker scene,
same sensor noise), ``distractors`` (mean pedestrians per sequence) and ``opposite_traffic``.
``resolution`` is the image size (224 as in the seed), ``radar_scale`` the radar sub-cube factor.
Every sequence has its own generator ``default_rng([seed, index])``, so a sequence does not depend
on how many others are made.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .camera import motion_masks
from .codebook import beam_powers, codebook
from .radar import RadarConfig, radar_maps, synthesize_cube
from .windows import BeamFrames

__all__ = ["SceneConfig", "RawSequence", "SCENARIO9_LENGTHS", "generate_sequence", "process_sequence",
           "generate_frames"]

#: sequence lengths of DeepSense 6G scenario 9 (from its label CSV): {length: count}, 136 sequences
SCENARIO9_LENGTHS = {30: 1, 32: 1, 33: 2, 34: 2, 35: 3, 36: 2, 37: 7, 38: 4, 39: 5, 40: 6, 41: 11, 42: 12, 43: 14,
                     44: 13, 45: 10, 46: 6, 47: 8, 48: 10, 49: 3, 50: 3, 52: 2, 53: 2, 54: 2, 56: 1, 57: 1, 59: 2,
                     60: 1, 63: 1, 65: 1}

DT = 0.11                 # s between frames (scenario 9: ~9 Hz)
CAM_HALF_FOV = np.radians(55.0)
CAM_HEIGHT = 4.0          # m above the road
VEH_LEN, VEH_WID, VEH_H = 4.5, 1.8, 1.5
PED_W, PED_H = 0.5, 1.7


@dataclass(frozen=True)
class SceneConfig:
    n_sequences: int = 136
    seed: int = 0
    resolution: int = 224
    radar_scale: int = 1
    #: (lateral distance in m, probability, first beam of the track, 0-based)
    lanes: tuple = ((12.0, 0.74, 1), (16.0, 0.26, 14))
    speed: float = 1.0
    lighting: float = 1.0
    distractors: float = 1.5
    opposite_traffic: float = 0.5
    occluders: float = 0.6
    flicker: float = 0.005
    sensor_noise: float = 2.0          # std in 8-bit grey levels
    power_noise_db: float = 1.0
    n_beams: int = 64
    n_elements: int = 16
    theta_max_deg: float = 45.0
    radar: bool = True

    def __post_init__(self):
        if self.n_sequences < 1:
            raise ValueError(f"SceneConfig: n_sequences must be >= 1, got {self.n_sequences}")
        if self.resolution < 16:
            raise ValueError(f"SceneConfig: resolution must be >= 16 pixels, got {self.resolution}")
        if self.speed <= 0 or self.lighting <= 0:
            raise ValueError("SceneConfig: speed and lighting must be > 0")
        probs = [p for _, p, _ in self.lanes]
        if not self.lanes or min(probs) < 0 or sum(probs) <= 0:
            raise ValueError(f"SceneConfig: lanes must be (distance, probability, start beam) triples, "
                             f"got {self.lanes}")

    @property
    def radar_config(self) -> RadarConfig:
        return RadarConfig(scale=self.radar_scale)


@dataclass
class RawSequence:
    """What the sensors record for one sequence, in the real data set's units."""

    rgb: np.ndarray                  # uint8 [L, H, W, 3]
    powers: np.ndarray               # float32 [L, 64]
    beams: np.ndarray                # int64 [L], 0-based (= argmax of powers)
    cubes: np.ndarray | None = None  # complex64 [L, 4, samples, chirps]
    info: dict = field(default_factory=dict)


def _lengths(cfg: SceneConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    lens = np.array(list(SCENARIO9_LENGTHS), dtype=np.float64)
    p = np.array(list(SCENARIO9_LENGTHS.values()), dtype=np.float64)
    picked = rng.choice(lens, size=n, p=p / p.sum())
    return np.maximum(16, np.round(picked / cfg.speed)).astype(int)


def _track(cfg: SceneConfig, rng, length: int):
    """Lane distance, x positions and x velocities of the user vehicle over ``length`` frames."""
    probs = np.array([p for _, p, _ in cfg.lanes], dtype=np.float64)
    lane = int(rng.choice(len(cfg.lanes), p=probs / probs.sum()))
    y, _, start_beam = cfg.lanes[lane]
    s_max = np.sin(np.radians(cfg.theta_max_deg))
    s_start = s_max * (2 * start_beam - (cfg.n_beams - 1)) / (cfg.n_beams - 1)
    # tracks from the left codebook edge start beyond it (saturated beams first); others start at their beam
    th0 = np.arcsin(s_start) - np.radians(rng.uniform(2.0, 8.0) if start_beam <= 1 else rng.uniform(0.0, 1.5))
    th1 = np.radians(cfg.theta_max_deg) + np.radians(rng.uniform(3.0, 9.0))
    x0, x1 = y * np.tan(th0), y * np.tan(th1)
    # speed with a slowly varying jitter, scaled so the track ends at x1
    jitter = np.cumsum(rng.normal(0.0, 0.03, length - 1))
    steps = np.clip(1.0 + jitter - jitter.mean(), 0.6, 1.4)
    steps = steps / steps.sum() * (x1 - x0)
    x = x0 + np.concatenate([[0.0], np.cumsum(steps)])
    vx = np.concatenate([steps, steps[-1:]]) / DT
    return lane, float(y), x, vx


def _powers(cfg: SceneConfig, rng, x, y, book, refl_sin, refl_amp):
    """Beam powers per frame: LOS (cos element pattern) + wall reflection + noise, log-normal error."""
    r = np.hypot(x, y)
    s = x / r
    cos_t = np.sqrt(1 - s ** 2)
    n = cfg.n_elements
    los = (cos_t * (10.0 / r))[:, None] * np.exp(1j * np.pi * s[:, None] * np.arange(n))
    phase = np.exp(2j * np.pi * rng.random(len(x)))[:, None]
    refl = refl_amp * (10.0 / r)[:, None] * phase * np.exp(1j * np.pi * refl_sin * np.arange(n))[None, :]
    noise = (rng.standard_normal((len(x), n)) + 1j * rng.standard_normal((len(x), n))) * 0.03
    p = beam_powers(los + refl + noise, book)
    p *= 10 ** (rng.normal(0.0, cfg.power_noise_db, p.shape) / 10)
    return p.astype(np.float32)


def _background(cfg: SceneConfig, rng, res: int) -> np.ndarray:
    """Static RGB scene in [0, 1]: sky, buildings, pavement, road, low-frequency texture."""
    rows = np.linspace(0, 1, res)[:, None]
    cols = np.linspace(0, 1, res)[None, :]
    horizon = 0.5 + rng.uniform(-0.05, 0.05)
    sky = 0.75 + 0.1 * (1 - rows / horizon)
    road = 0.35 + 0.1 * (rows - horizon)
    base = np.where(rows < horizon, sky, road) + 0 * cols
    for _ in range(rng.integers(3, 7)):          # buildings along the horizon
        c0, w = rng.uniform(0, 1), rng.uniform(0.05, 0.25)
        top = horizon - rng.uniform(0.05, 0.3)
        shade = rng.uniform(0.3, 0.7)
        inside = (cols >= c0) & (cols <= c0 + w) & (rows >= top) & (rows < horizon)
        base = np.where(inside, shade, base)
    tex = np.zeros((res, res))
    for _ in range(4):                            # low-frequency texture
        fx, fy = rng.uniform(1, 6, 2)
        tex += np.sin(2 * np.pi * (fx * cols + fy * rows) + rng.uniform(0, 2 * np.pi))
    img = np.clip(base + 0.03 * tex, 0, 1)
    tint = rng.uniform(0.9, 1.1, 3)
    return np.clip(img[:, :, None] * tint[None, None, :], 0, 1)


def _coverage(lo, hi, n: int) -> np.ndarray:
    """Fraction of each of ``n`` unit pixels covered by [lo, hi) (anti-aliased box edges)."""
    edges = np.arange(n)
    return np.clip(np.minimum(edges + 1, hi) - np.maximum(edges, lo), 0, 1)


class _Camera:
    """Pinhole camera at the station looking across the street (+y), 110 degrees horizontal field; a 16:9
    frame squeezed to a square, as the seed's resize of scenario 9's 960x540 images to 224x224 does
    (vertical focal length 16/9 of the horizontal one).  A car on a lane keeps its apparent size and
    image row (its depth is the lane's); only its column follows its position."""

    def __init__(self, res: int):
        self.res = res
        self.f = (res / 2) / np.tan(CAM_HALF_FOV)  # horizontal focal length in pixels
        self.fv = self.f * 16 / 9

    def column(self, x, depth):
        return self.res / 2 + self.f * x / depth

    def box(self, x, y, length, height, depth=0.0, ground=0.0):
        """Pixel extents (u0, u1, v0, v1) of an upright box of ``length`` along x, ``depth`` along y, whose
        near face is centred at (x, y)."""
        xs = np.array([x - length / 2, x + length / 2])
        us = np.concatenate([self.column(xs, y), self.column(xs, y + depth)])
        v1 = self.res / 2 + self.fv * (CAM_HEIGHT - ground) / y
        v0 = self.res / 2 + self.fv * (CAM_HEIGHT - ground - height) / y
        return us.min(), us.max(), v0, v1

    def paint(self, img, box, color, alpha: float = 1.0):
        u0, u1, v0, v1 = box
        m = _coverage(v0, v1, self.res)[:, None] * _coverage(u0, u1, self.res)[None, :] * alpha
        img *= 1 - m[:, :, None]
        img += m[:, :, None] * np.asarray(color)[None, None, :]


def generate_sequence(cfg: SceneConfig, index: int, length: int | None = None) -> RawSequence:
    """The raw recording of sequence ``index`` (its own seeded generator)."""
    rng = np.random.default_rng([cfg.seed, index])
    if length is None:
        length = int(_lengths(cfg, rng, 1)[0])
    lane, y, x, vx = _track(cfg, rng, length)
    book = codebook(cfg.n_beams, cfg.n_elements, cfg.theta_max_deg)
    refl_sin = rng.uniform(-0.6, 0.6)
    refl_amp = rng.uniform(0.05, 0.35)
    powers = _powers(cfg, rng, x, y, book, refl_sin, refl_amp)
    beams = powers.argmax(axis=1).astype(np.int64)

    res = cfg.resolution
    cam = _Camera(res)
    light = cfg.lighting
    bg = _background(cfg, rng, res) * light
    road = float(bg[int(0.8 * res)].mean())
    tone = rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.5) * light  # car darker or brighter than the road
    body = np.clip(road + tone + rng.uniform(-0.1, 0.1, 3) * light, 0, 1)
    # distractors: pedestrians (position, velocity) and one car on a far lane driving the other way
    n_ped = rng.poisson(cfg.distractors)
    ped_xy = np.stack([rng.uniform(-14, 14, n_ped), rng.uniform(5, 20, n_ped)], axis=1)
    ped_v = rng.normal(0, 1.0, (n_ped, 2))
    ped_v *= (rng.uniform(0.8, 1.6, n_ped) / np.maximum(np.linalg.norm(ped_v, axis=1), 1e-6))[:, None]
    ped_col = rng.uniform(0.1, 0.9, (n_ped, 3)) * light
    opposite = rng.random() < cfg.opposite_traffic
    opp_y = 21.0
    opp_x0 = rng.uniform(10, 30)
    opp_v = -rng.uniform(4, 8)
    opp_col = rng.uniform(0.1, 0.9, 3) * light
    n_occ = rng.binomial(2, cfg.occluders / 2)
    occ = [(rng.uniform(-0.8, 0.8) * CAM_HALF_FOV, rng.uniform(0.02, 0.06)) for _ in range(n_occ)]
    occ_col = rng.uniform(0.2, 0.6, 3) * light

    frames = np.empty((length, res, res, 3), dtype=np.uint8)
    for t in range(length):
        img = bg.copy()
        if opposite:
            ox = opp_x0 + opp_v * DT * t
            cam.paint(img, cam.box(ox, opp_y, VEH_LEN, VEH_H, VEH_WID), opp_col)
        for k in range(n_ped):
            px, py = ped_xy[k] + ped_v[k] * DT * t
            if py > 2.0:                                         # not (yet) walked out of the view
                cam.paint(img, cam.box(px, py, PED_W, PED_H), ped_col[k])
        cam.paint(img, cam.box(x[t], y, VEH_LEN, VEH_H, VEH_WID), body)
        cam.paint(img, cam.box(x[t], y, 0.6 * VEH_LEN, 0.35 * VEH_H, ground=0.9 * VEH_H), body * 0.4)
        for th, w in occ:                                        # poles in front of everything
            cam.paint(img, (cam.column(np.tan(th - w / 2), 1.0), cam.column(np.tan(th + w / 2), 1.0), 0, res), occ_col)
        gain = 1 + rng.normal(0, cfg.flicker) + (rng.random() < 0.03) * rng.normal(0, 5 * cfg.flicker)
        img = img * gain * 255 + rng.normal(0, cfg.sensor_noise, img.shape)
        frames[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    cubes = None
    if cfg.radar:
        rcfg = cfg.radar_config
        cubes = np.empty((length, rcfg.n_rx, rcfg.samples, rcfg.chirps), dtype=np.complex64)
        rcs = rng.uniform(0.7, 1.3)
        walls = np.stack([rng.uniform(-15, 15, 4), rng.uniform(18, 24, 4)], axis=1)
        trees = np.stack([rng.uniform(-15, 15, 3), rng.uniform(4, 22, 3)], axis=1)
        for t in range(length):
            pts, vel, amp = [], [], []
            for off in np.linspace(-VEH_LEN / 2, VEH_LEN / 2, 4):   # scatterers along the user's car
                px = x[t] + off
                rr = np.hypot(px, y)
                pts.append((px, y)); vel.append(vx[t] * px / rr); amp.append(rcs * 40 / rr ** 2)
            if opposite:
                ox = opp_x0 + opp_v * DT * t
                for off in (-1.5, 1.5):
                    rr = np.hypot(ox + off, opp_y)
                    pts.append((ox + off, opp_y)); vel.append(opp_v * (ox + off) / rr); amp.append(30 / rr ** 2)
            for k in range(n_ped):
                px, py = ped_xy[k] + ped_v[k] * DT * t
                rr = np.hypot(px, py)
                pts.append((px, py)); vel.append((ped_v[k] @ np.array([px, py])) / rr); amp.append(4 / rr ** 2)
            for wx, wy in walls:                                    # static: removed by the chirp-mean step
                pts.append((wx, wy)); vel.append(0.0); amp.append(60 / (wx ** 2 + wy ** 2))
            for tx, ty in trees:                                    # swaying foliage: small Doppler
                pts.append((tx, ty)); vel.append(rng.normal(0, 0.3)); amp.append(8 / (tx ** 2 + ty ** 2))
            p = np.asarray(pts)
            rr = np.hypot(p[:, 0], p[:, 1])
            phases = np.exp(2j * np.pi * rng.random(len(rr)))
            cubes[t] = synthesize_cube(rr, vel, p[:, 0] / rr, np.asarray(amp) * phases, rcfg, 1.0, rng)
    return RawSequence(frames, powers, beams, cubes, info={"lane": lane, "lane_distance": y, "length": length})


def process_sequence(raw: RawSequence, cfg: RadarConfig | None = None):
    """Raw recording -> (masks [L, H, W] with zeros first, radar maps [L, 2, Hr, Wr] or None)."""
    masks = np.concatenate([np.zeros((1, *raw.rgb.shape[1:3]), np.uint8), motion_masks(raw.rgb)])
    radar = None
    if raw.cubes is not None:
        rcfg = cfg or RadarConfig(scale=RadarConfig().n_samples // raw.cubes.shape[2])
        radar = radar_maps(raw.cubes, rcfg)
    return masks, radar


def generate_frames(cfg: SceneConfig) -> BeamFrames:
    """All ``cfg.n_sequences`` sequences, preprocessed (the raw recordings are not kept)."""
    lengths = _lengths(cfg, np.random.default_rng([cfg.seed, 10 ** 6]), cfg.n_sequences)
    masks, radar, beams, seq = [], [], [], []
    for i in range(cfg.n_sequences):
        raw = generate_sequence(cfg, i, int(lengths[i]))
        m, r = process_sequence(raw, cfg.radar_config if cfg.radar else None)
        masks.append(m); beams.append(raw.beams); seq.append(np.full(len(raw.beams), i + 1, np.int64))
        if r is not None:
            radar.append(r)
    return BeamFrames(np.concatenate(masks), np.concatenate(beams), np.concatenate(seq),
                      np.concatenate(radar) if radar else None)


def with_changes(cfg: SceneConfig, **changes) -> SceneConfig:
    """A copy of ``cfg`` with some fields changed (e.g. another seed or lighting for an edge node)."""
    return replace(cfg, **changes)
