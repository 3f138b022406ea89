"""One random drop of the seed's deployment, from Sionna's TR 38.901 UMa code, as compact numpy arrays.

What Sionna (``sionna-no-rt``, its public ``sionna.sys.gen_hexgrid_topology``,
``sionna.phy.channel.tr38901.UMaScenario``, ``LSPGenerator`` and ``RaysGenerator``) supplies, per drop:

* topology: 7 sites x 3 sectors = 21 cells, wrap-around (each UE sees the nearest image of every
  site), ISD 200 m, gNB 25 m, UE 1.5 m, 3 km/h in a random direction, 80% indoor (Dense Urban,
  TR 38.913 Table 6.1.2-1; O2I "low-loss" model), min 2D distance 35 m, panels mechanically tilted
  to their sector centre;
* per UE-cell link: LOS state (TR 38.901 7.4.2), path loss (basic UMa 7.4.1 + O2I 7.4.3), shadow
  fading and the other large-scale parameters with their cross- and spatial correlations (7.5 steps
  1-4), and the clusters and rays of steps 5-9 (delays, powers, per-ray AoA/ZoA/AoD/ZoD, XPR).

What this module keeps (a standard-faithful reduction, so channels can be re-synthesised fast):

* all links: the average power gain per Rx antenna and Tx port, ``gbar`` (path gain x shadowing x
  the 38.901 element / sub-array gain towards every cluster), which also decides the serving cell
  (max RSRP) and stands for a cell's interference when it transmits with precoders averaged out;
* the serving link and the ``n_interferers`` (default 2) strongest other links per UE: a cluster model
  with the ``n_clusters`` strongest clusters (power renormalised) plus the LOS ray. Each cluster leaves
  the gNB in its mean direction (38.901's intra-cluster departure spread c_ASD is 1.8-3.6 deg, far
  below the 14 deg beam of 8 columns, so it is dropped); its 20 rays keep their own arrival angles,
  Doppler shifts, XPR and random phases. See ``channel.py`` for the synthesis. Why 2 interferers with
  full channels (measured on one 210-UE drop): the strongest 1 / 2 / 4 / 6 other cells carry on average
  63% / 84% / 96% / 98% of a UE's received inter-cell power (10th percentile 37% / 67% / 88% / 95%);
  4 instead of 2 changed the baseline SDS's geomean by < 1% and PF greedy's geomean gain by < 1 point
  on two drops (9.6 vs 9.6%, 9.2 vs 8.5%), and costs ~40% more env time. The rest of the interference
  is kept, as average power.

Measured (2 shared, heavily loaded cores, one thread): Sionna's LSP + ray generation ~1.0 s + 1.6 s for
420 UEs x 21 cells (~half for 210; importing torch + Sionna ~4.5 s once per process); the numpy
reduction below ~0.3 s. It runs once per drop, so drops are generated once and cached per process.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from envs.errors import EnvError
from envs.scheduler import antenna

SPEED_OF_LIGHT = 299_792_458.0
N_SITES, N_SECTORS = 7, 3
N_CELLS = N_SITES * N_SECTORS
RAYS_PER_CLUSTER = 20
RX_POL = np.radians([45.0, -45.0])     # UE: 2 cross-polarised (+-45 deg) antennas at 2 positions, omni
TX_POL = np.radians([45.0, -45.0])     # gNB ports: +-45 deg slant (38.901 polarization model 2)


@dataclass(frozen=True)
class DropSpec:
    """Geometry of one drop (the seed's Table 4 and Dense Urban defaults)."""

    n_ue_per_cell: int = 10
    isd: float = 200.0
    carrier_hz: float = 4e9
    h_bs: float = 25.0
    h_ut: float = 1.5
    speed_kmh: float = 3.0
    indoor_probability: float = 0.8
    n_clusters: int = 12       # strongest clusters kept per spatial link (+ the LOS ray)
    n_interferers: int = 2     # strongest other cells per UE with full spatial channels

    def __post_init__(self):
        if self.n_ue_per_cell < 1:
            raise EnvError(f"n_ue_per_cell must be >= 1, got {self.n_ue_per_cell}")
        if not 0.0 <= self.indoor_probability <= 1.0:
            raise EnvError(f"indoor_probability must be in [0, 1], got {self.indoor_probability}")
        if not 1 <= self.n_clusters <= 20:
            raise EnvError(f"n_clusters must be in 1..20, got {self.n_clusters}")
        if not 0 <= self.n_interferers <= N_CELLS - 1:
            raise EnvError(f"n_interferers must be in 0..{N_CELLS - 1}, got {self.n_interferers}")
        if self.speed_kmh < 0 or self.isd <= 0 or self.carrier_hz <= 0:
            raise EnvError("speed_kmh must be >= 0, isd and carrier_hz > 0")

    @property
    def wavelength(self) -> float:
        return SPEED_OF_LIGHT / self.carrier_hz


@dataclass
class Drop:
    """Numpy arrays of one drop. U = number of UEs, S = 1 + n_interferers spatial links per UE,
    C = n_clusters + 1 (slot 0: the LOS ray, zero on NLOS links), R = 20 rays."""

    spec: DropSpec
    ue_xy: np.ndarray        # (U, 2) m
    indoor: np.ndarray       # (U,) bool
    serving: np.ndarray      # (U,) cell index 0..20 (max RSRP)
    gbar: np.ndarray         # (U, 21) mean |h|^2 per Rx antenna and Tx port (linear)
    los: np.ndarray          # (U,) LOS to the serving cell
    link_cell: np.ndarray    # (U, S) cell of each spatial link, serving first
    delay: np.ndarray        # (U, S, C) s
    a_tx: np.ndarray         # (U, S, C, 16) complex64 port response per cluster (one polarization)
    ray_coef: np.ndarray     # (U, S, C, R, 4, 2) complex64 [rx antenna, tx polarization]
    ray_doppler: np.ndarray  # (U, S, C, R) Hz


def _sionna_links(spec: DropSpec, seed: int) -> dict:
    """Topology, LSPs and rays of one drop from Sionna, as numpy arrays."""
    import torch
    torch_state = torch.get_rng_state()    # before importing Sionna: its import seeds torch's generator too
    from sionna.phy import config
    from sionna.phy.channel.tr38901 import PanelArray, UMaScenario
    from sionna.phy.channel.tr38901.lsp import LSPGenerator
    from sionna.phy.channel.tr38901.rays import RaysGenerator
    from sionna.sys import gen_hexgrid_topology

    # Sionna's seed setter reseeds torch's global generator (randomly, when the old seed None is put
    # back): it is restored below, so building a drop leaves the caller's torch random stream alone
    old_seed = config.seed
    config.seed = int(seed) % (2 ** 63)
    try:
        with torch.no_grad():
            v = spec.speed_kmh / 3.6
            topo = gen_hexgrid_topology(
                batch_size=1, num_rings=1, num_ut_per_sector=spec.n_ue_per_cell, scenario="uma",
                isd=spec.isd, bs_height=spec.h_bs, min_ut_height=spec.h_ut, max_ut_height=spec.h_ut,
                indoor_probability=spec.indoor_probability, min_ut_velocity=v, max_ut_velocity=v,
                precision="single", device="cpu")
            ut_loc, bs_loc, ut_or, bs_or, ut_vel, in_state, _, bs_vloc = topo
            # Arrays only matter for Sionna's channel coefficients, which we do not use.
            ut_arr = PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization="dual",
                                polarization_type="cross", antenna_pattern="omni",
                                carrier_frequency=spec.carrier_hz, precision="single", device="cpu")
            bs_arr = PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization="dual",
                                polarization_type="cross", antenna_pattern="38.901",
                                carrier_frequency=spec.carrier_hz, precision="single", device="cpu")
            sc = UMaScenario(spec.carrier_hz, "low", ut_arr, bs_arr, "downlink", precision="single",
                             device="cpu")
            sc.set_topology(ut_loc, bs_loc, ut_or, bs_or, ut_vel, in_state, None, bs_vloc)
            lsp_gen = LSPGenerator(sc)
            lsp_gen.topology_updated_callback()
            lsp = lsp_gen()
            ray_gen = RaysGenerator(sc)
            ray_gen.topology_updated_callback()
            rays = ray_gen(lsp)
            n = lambda t: t[0].detach().cpu().numpy()
            return dict(
                ut_loc=n(ut_loc), bs_or=n(bs_or), ut_or=n(ut_or), ut_vel=n(ut_vel), indoor=n(in_state),
                los=n(sc.los), pl_db=n(lsp.pathloss), sf=n(lsp.sf), k=n(lsp.k_factor),
                d3d=n(sc.distance_3d), los_aod=np.radians(n(sc.los_aod)), los_zod=np.radians(n(sc.los_zod)),
                los_aoa=np.radians(n(sc.los_aoa)), los_zoa=np.radians(n(sc.los_zoa)),
                delays=n(rays.delays), powers=n(rays.powers), aoa=n(rays.aoa), aod=n(rays.aod),
                zoa=n(rays.zoa), zod=n(rays.zod), xpr=n(rays.xpr))
    finally:
        config.seed = old_seed
        torch.set_rng_state(torch_state)


def _pol_matrix(xpr_inv_sqrt: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Per-ray coupling f_rx(p)^T X f_tx(q) for the +-45 deg ports, shape (..., 2 rx pol, 2 tx pol).

    X = [[e^{j P_tt}, k^-1/2 e^{j P_tp}], [k^-1/2 e^{j P_pt}, e^{j P_pp}]] (TR 38.901 eq. 7.5-28).
    """
    e = np.exp(1j * phases)                              # (..., 4)
    x = np.stack([e[..., 0], xpr_inv_sqrt * e[..., 1], xpr_inv_sqrt * e[..., 2], e[..., 3]], -1)
    x = x.reshape(*x.shape[:-1], 2, 2)
    fr = np.stack([np.cos(RX_POL), np.sin(RX_POL)], -1)  # (2 pol, 2 [theta, phi])
    ft = np.stack([np.cos(TX_POL), np.sin(TX_POL)], -1)
    return np.einsum("pa,...ab,qb->...pq", fr, x, ft)


def _rx_phase(zoa, aoa, ut_az):
    """Phase of the UE's 2 antenna positions (0.5 lambda apart along its x axis), shape (..., 2)."""
    d = np.sin(zoa) * np.cos(aoa - ut_az)
    return np.exp(1j * np.pi * d[..., None] * np.arange(2))


def build_drop(spec: DropSpec, seed: int) -> Drop:
    """Generate one drop: Sionna's 38.901 links reduced to the arrays of :class:`Drop`."""
    s = _sionna_links(spec, seed)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) % (2 ** 63), 7]))
    n_bs, n_ue = s["pl_db"].shape
    lam = spec.wavelength
    pg = 10.0 ** (-s["pl_db"] / 10.0) * s["sf"]                                       # (B, U)
    alpha, beta = s["bs_or"][:, 0][:, None], s["bs_or"][:, 1][:, None]

    # cluster mean departure directions and the panel's response to them -------------------------
    aod_c = np.angle(np.exp(1j * s["aod"]).mean(-1))                                 # (B, U, 20)
    zod_c = s["zod"].mean(-1)
    th, ph = antenna.gcs_to_lcs(zod_c, aod_c, alpha[..., None], beta[..., None])
    a_cl = antenna.port_response(th, ph)                                             # (B, U, 20, 16)
    g_cl = (np.abs(a_cl[..., 0]) ** 2)                                              # port power gain
    th_l, ph_l = antenna.gcs_to_lcs(s["los_zod"], s["los_aod"], alpha, beta)
    a_los = antenna.port_response(th_l, ph_l)                                        # (B, U, 16)
    k = np.where(s["los"], s["k"], 0.0)
    w_nlos, w_los = 1.0 / (k + 1.0), k / (k + 1.0)
    pol_gain = 0.5 * (1.0 + (1.0 / s["xpr"]).mean(-1))                               # (B, U, 20)
    gbar = pg * (w_nlos * (s["powers"] * g_cl * pol_gain).sum(-1) + w_los * 0.5 * np.abs(a_los[..., 0]) ** 2)
    gbar = gbar.T.astype(np.float64)                                                  # (U, B)

    serving = np.argmax(gbar, axis=1)
    order = np.argsort(-gbar, axis=1)
    others = np.array([[c for c in row if c != sv][: spec.n_interferers] for row, sv in zip(order, serving)],
                      dtype=np.int64).reshape(n_ue, spec.n_interferers)
    link_cell = np.concatenate([serving[:, None], others], axis=1)                 # (U, S)
    b_idx, u_idx = link_cell.T, np.arange(n_ue)[None, :]                              # (S, U)

    # strongest clusters per spatial link -------------------------------------------------------------
    pw = s["powers"][b_idx, u_idx]                                                    # (S, U, 20)
    keep = np.argsort(-pw, axis=-1)[..., : spec.n_clusters]
    take = lambda x: np.take_along_axis(x[b_idx, u_idx], keep.reshape(*keep.shape, *([1] * (x.ndim - 3))), 2)
    pw_k = np.take_along_axis(pw, keep, -1)
    pw_k = pw_k / np.maximum(pw_k.sum(-1, keepdims=True), 1e-30)
    delay = take(s["delays"])
    a_k = take(a_cl)                                                                   # (S, U, Nc, 16)
    aoa, zoa, xpr = take(s["aoa"]), take(s["zoa"]), take(s["xpr"])                     # (S, U, Nc, 20)
    ut_az = s["ut_or"][:, 0][None, :, None, None]
    vel = s["ut_vel"]                                                                 # (U, 3)
    vhat = vel / np.maximum(np.linalg.norm(vel, axis=-1, keepdims=True), 1e-12)
    speed = np.linalg.norm(vel, axis=-1)[None, :, None, None]
    rdir = np.stack([np.sin(zoa) * np.cos(aoa), np.sin(zoa) * np.sin(aoa), np.cos(zoa)], -1)
    doppler = speed / lam * np.einsum("sucrx,ux->sucr", rdir, vhat)
    phases = rng.uniform(-np.pi, np.pi, size=(*xpr.shape, 4))
    pol = _pol_matrix(1.0 / np.sqrt(xpr), phases)                                     # (S, U, Nc, 20, 2, 2)
    rxp = _rx_phase(zoa, aoa, ut_az)                                                  # (S, U, Nc, 20, 2)
    amp = np.sqrt(pg[b_idx, u_idx] * w_nlos[b_idx, u_idx])[..., None, None] * np.sqrt(pw_k / RAYS_PER_CLUSTER)[..., None]
    coef = amp[..., None, None, None] * rxp[..., :, None, None] * pol[..., None, :, :]   # (S,U,Nc,20,2pos,2pol,2q)
    coef = coef.reshape(*coef.shape[:4], 4, 2)

    # the LOS ray (cluster slot 0) ----------------------------------------------------------------------
    los_l = s["los"][b_idx, u_idx]
    x_los = np.broadcast_to(np.array([[1.0, 0.0], [0.0, -1.0]]), (*los_l.shape, 2, 2))
    fr = np.stack([np.cos(RX_POL), np.sin(RX_POL)], -1)
    ft = np.stack([np.cos(TX_POL), np.sin(TX_POL)], -1)
    pol_los = np.einsum("pa,...ab,qb->...pq", fr, x_los, ft)
    rxp_los = _rx_phase(s["los_zoa"][b_idx, u_idx], s["los_aoa"][b_idx, u_idx], s["ut_or"][:, 0][None, :])
    ph0 = np.exp(-2j * np.pi * s["d3d"][b_idx, u_idx] / lam)
    amp_l = np.sqrt(pg[b_idx, u_idx] * w_los[b_idx, u_idx]) * ph0
    coef_l = (amp_l[..., None, None, None] * rxp_los[..., :, None, None] * pol_los[..., None, :, :]).reshape(*los_l.shape, 4, 2)
    ldir = np.stack([np.sin(s["los_zoa"]) * np.cos(s["los_aoa"]), np.sin(s["los_zoa"]) * np.sin(s["los_aoa"]),
                     np.cos(s["los_zoa"])], -1)[b_idx, u_idx]
    dop_l = speed[..., 0, 0] / lam * np.einsum("sux,ux->su", ldir, vhat)

    S, U, Nc, R = len(b_idx), n_ue, spec.n_clusters + 1, RAYS_PER_CLUSTER
    ray_coef = np.zeros((S, U, Nc, R, 4, 2), np.complex64)
    ray_coef[:, :, 1:] = coef
    ray_coef[:, :, 0, 0] = np.where(los_l[..., None, None], coef_l, 0.0)
    ray_dop = np.zeros((S, U, Nc, R), np.float32)
    ray_dop[:, :, 1:] = doppler
    ray_dop[:, :, 0, 0] = dop_l
    a_all = np.zeros((S, U, Nc, antenna.PORTS_PER_POL), np.complex64)
    a_all[:, :, 1:] = a_k
    a_all[:, :, 0] = a_los[b_idx, u_idx]
    d_all = np.zeros((S, U, Nc), np.float64)
    d_all[:, :, 1:] = np.where(pw_k > 0, delay, 0.0)
    tr = lambda x: np.ascontiguousarray(np.swapaxes(x, 0, 1))
    return Drop(spec=spec, ue_xy=s["ut_loc"][:, :2].astype(np.float64), indoor=s["indoor"].astype(bool),
                serving=serving.astype(np.int64), gbar=gbar, los=s["los"][serving, np.arange(n_ue)].astype(bool),
                link_cell=link_cell, delay=tr(d_all), a_tx=tr(a_all), ray_coef=tr(ray_coef),
                ray_doppler=tr(ray_dop))


@functools.lru_cache(maxsize=24)
def cached_drop(spec: DropSpec, seed: int) -> Drop:
    """:func:`build_drop`, generated once per process (treat the arrays as read-only)."""
    return build_drop(spec, seed)


def uma_pathloss_and_los_probability(d2d: np.ndarray, los: bool, carrier_hz: float = 4e9,
                                     h_bs: float = 25.0, h_ut: float = 1.5):
    """Sionna's UMa basic path loss (dB) and LOS probability for outdoor UEs at 2D distances ``d2d``
    from one gNB (the code this env uses), for tests against the TR 38.901 formulas."""
    import torch
    from sionna.phy.channel.tr38901 import PanelArray, UMaScenario

    d2d = np.asarray(d2d, dtype=np.float64)
    n = len(d2d)
    arr = PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization="single",
                     polarization_type="V", antenna_pattern="omni", carrier_frequency=carrier_hz,
                     precision="double", device="cpu")
    sc = UMaScenario(carrier_hz, "low", arr, arr, "downlink", precision="double", device="cpu")
    ut = torch.zeros(1, n, 3, dtype=torch.float64)
    ut[0, :, 0] = torch.as_tensor(d2d)
    ut[0, :, 2] = h_ut
    bs = torch.tensor([[[0.0, 0.0, h_bs]]], dtype=torch.float64)
    z = lambda *s: torch.zeros(*s, dtype=torch.float64)
    sc.set_topology(ut, bs, z(1, n, 3), z(1, 1, 3), z(1, n, 3), torch.zeros(1, n, dtype=torch.bool), los)
    return sc.basic_pathloss[0, 0].numpy(), sc.los_probability[0, 0].numpy()
