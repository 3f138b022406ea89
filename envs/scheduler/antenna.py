"""gNB panel, its 32 CSI-RS ports and the Type-I codebook beams (TR 38.901 7.1 / 7.3, TS 38.214 5.2.2.2.1).

* Element pattern: TR 38.901 Table 7.3-1 (65 deg half-power beamwidths, 30 dB side-lobe and front-back
  limits, 8 dBi maximum gain).
* Global -> local angles of a panel with bearing alpha, (mechanical) downtilt beta and slant gamma:
  TR 38.901 eq. (7.1-7), (7.1-8).
* The seed's panel (12 rows x 8 columns x 2 polarizations, d_H = 0.5 lambda, d_V = 0.8 lambda) is
  virtualised to 32 ports, the usual 3GPP/IMT-2020 TXRU model (TR 36.897): each port drives a vertical
  sub-array of 6 co-polarised elements with uniform weights 1/sqrt(6) (no electrical tilt; the panel is
  mechanically tilted to its sector centre, as Sionna's hex-grid topology does), so the ports form an
  (N1, N2) = (8, 2) grid per polarization: 8 columns 0.5 lambda apart, 2 sub-arrays 4.8 lambda apart.
* Port order follows 38.214: port p = q * 16 + n1 * N2 + n2 (polarization q, column n1, sub-array n2),
  so a Type-I beam v_{l,m} = a_l (x) u_m with a_l[n1] = exp(j 2 pi l n1 / (O1 N1)),
  u_m[n2] = exp(j 2 pi m n2 / (O2 N2)), O1 = O2 = 4: 32 x 8 = 256 beams per polarization.
"""
from __future__ import annotations

import numpy as np

N1, N2, O1, O2 = 8, 2, 4, 4
PORTS_PER_POL = N1 * N2
N_PORTS = 2 * PORTS_PER_POL
SUBARRAY = 6            # vertical elements per port (12 rows / N2)
D_H, D_V = 0.5, 0.8     # element spacings in wavelengths
G_MAX_DBI = 8.0


def element_gain_db(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """TR 38.901 Table 7.3-1 element gain (dBi) at local zenith ``theta`` and azimuth ``phi`` (radians)."""
    th, ph = np.degrees(theta), np.degrees(np.angle(np.exp(1j * phi)))   # azimuth wrapped to (-180, 180]
    a_v = -np.minimum(12.0 * ((th - 90.0) / 65.0) ** 2, 30.0)
    a_h = -np.minimum(12.0 * (ph / 65.0) ** 2, 30.0)
    return G_MAX_DBI - np.minimum(-(a_v + a_h), 30.0)


def gcs_to_lcs(theta: np.ndarray, phi: np.ndarray, alpha, beta, gamma=0.0):
    """Local (theta', phi') of global (theta, phi) for a panel rotated by (alpha, beta, gamma), eq. (7.1-7/8)."""
    cb, sb, cg, sg = np.cos(beta), np.sin(beta), np.cos(gamma), np.sin(gamma)
    ct, st, cd, sd = np.cos(theta), np.sin(theta), np.cos(phi - alpha), np.sin(phi - alpha)
    th = np.arccos(np.clip(cb * cg * ct + (sb * cg * cd - sg * sd) * st, -1.0, 1.0))
    ph = np.angle(cb * st * cd - sb * ct + 1j * (cb * sg * ct + (sb * sg * cd + cg * sd) * st))
    return th, ph


def port_response(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Field seen by the 16 ports of one polarization for a plane wave leaving at local (theta, phi).

    Returns complex (..., 16): sqrt(element gain) x the 6-element sub-array factor x the port phase.
    |response|^2 is the port's power gain (up to 8 dBi + 10 log10(6) = 15.8 dBi at boresight).
    """
    theta, phi = np.asarray(theta, np.float64), np.asarray(phi, np.float64)
    amp = 10.0 ** (element_gain_db(theta, phi) / 20.0)
    ct, sy = np.cos(theta), np.sin(theta) * np.sin(phi)
    k = np.arange(SUBARRAY)
    af = np.exp(2j * np.pi * D_V * k * ct[..., None]).sum(-1) / np.sqrt(SUBARRAY)
    n1, n2 = np.arange(N1), np.arange(N2)
    ph_h = np.exp(2j * np.pi * D_H * n1 * sy[..., None])                       # (..., N1)
    ph_v = np.exp(2j * np.pi * SUBARRAY * D_V * n2 * ct[..., None])            # (..., N2)
    steer = (ph_h[..., :, None] * ph_v[..., None, :]).reshape(*ph_h.shape[:-1], PORTS_PER_POL)
    return (amp * af)[..., None] * steer


def typei_beams() -> np.ndarray:
    """The 256 unit-norm Type-I DFT beams v_{l,m} (rows: index l * O2 N2 + m), shape (256, 16)."""
    l, m = np.arange(O1 * N1), np.arange(O2 * N2)
    a = np.exp(2j * np.pi * np.outer(l, np.arange(N1)) / (O1 * N1))    # (32, 8)
    u = np.exp(2j * np.pi * np.outer(m, np.arange(N2)) / (O2 * N2))    # (8, 2)
    v = (a[:, None, :, None] * u[None, :, None, :]).reshape(O1 * N1 * O2 * N2, PORTS_PER_POL)
    return (v / np.sqrt(PORTS_PER_POL)).astype(np.complex64)


def beam_index(l: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Row of :func:`typei_beams` for beam (l, m), indices taken modulo the oversampled grid."""
    return (np.asarray(l) % (O1 * N1)) * (O2 * N2) + np.asarray(m) % (O2 * N2)


# Rank-2 second-beam offsets (k1, k2) for i_{1,3} = 0..3 when N1 > N2 > 1 (38.214 Table 5.2.2.2.1-3).
RANK2_OFFSETS = ((0, 0), (O1, 0), (0, O2), (2 * O1, 0))
