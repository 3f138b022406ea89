"""Scheduler env, physical layer: TR 38.901 UMa path loss / LOS probability, antenna facts, the RBG table,
the Type-I codebook, RZF, and the channel synthesis."""
import math

import numpy as np
import pytest

from envs import nr
from envs.errors import EnvError
from envs.scheduler import antenna, mumimo
from envs.scheduler.channel import LinkChannels

FC_GHZ, H_BS, H_UT = 4.0, 25.0, 1.5
D2D = np.array([50.0, 100.0, 200.0, 700.0, 1000.0])


def _uma_by_hand(d2d: float):
    """TR 38.901 Table 7.4.1-1 (UMa) and 7.4.2-1 with h_E = 1 m (h_UT < 13 m), written out."""
    d3d = math.hypot(d2d, H_BS - H_UT)
    d_bp = 4 * (H_BS - 1.0) * (H_UT - 1.0) * FC_GHZ * 1e9 / 299_792_458.0
    if d2d <= d_bp:
        los = 28.0 + 22.0 * math.log10(d3d) + 20.0 * math.log10(FC_GHZ)
    else:
        los = (28.0 + 40.0 * math.log10(d3d) + 20.0 * math.log10(FC_GHZ)
               - 9.0 * math.log10(d_bp ** 2 + (H_BS - H_UT) ** 2))
    nlos = max(los, 13.54 + 39.08 * math.log10(d3d) + 20.0 * math.log10(FC_GHZ) - 0.6 * (H_UT - 1.5))
    p_los = 1.0 if d2d <= 18 else 18.0 / d2d + math.exp(-d2d / 63.0) * (1.0 - 18.0 / d2d)
    return los, nlos, p_los


def test_uma_pathloss_and_los_probability_match_38901():
    from envs.scheduler.deployment import uma_pathloss_and_los_probability
    pl_los, p_los = uma_pathloss_and_los_probability(D2D, los=True, carrier_hz=FC_GHZ * 1e9)
    pl_nlos, _ = uma_pathloss_and_los_probability(D2D, los=False, carrier_hz=FC_GHZ * 1e9)
    hand = np.array([_uma_by_hand(d) for d in D2D])
    np.testing.assert_allclose(pl_los, hand[:, 0], atol=1e-6)
    np.testing.assert_allclose(pl_nlos, hand[:, 1], atol=1e-6)
    np.testing.assert_allclose(p_los, hand[:, 2], atol=1e-7)
    # literal values (computed by hand once): 100 m LOS 84.298 dB, NLOS 104.197 dB, P_LOS 0.34767;
    # 700 m is beyond the 640.4 m breakpoint: LOS 103.333 dB
    assert pl_los[1] == pytest.approx(84.298, abs=1e-3) and pl_nlos[1] == pytest.approx(104.197, abs=1e-3)
    assert p_los[1] == pytest.approx(0.34767, abs=1e-5) and pl_los[3] == pytest.approx(103.333, abs=1e-3)


def test_element_pattern_table_7_3_1():
    th, ph = np.radians([90.0, 90.0, 90.0, 155.0, 90.0]), np.radians([0.0, 65.0 / 2, 180.0, 0.0, 60.0])
    g = antenna.element_gain_db(th, ph)
    # boresight 8 dBi; at the half-power angle -3 dB; behind the panel the 30 dB floor
    np.testing.assert_allclose(g[:3], [8.0, 5.0, -22.0], atol=1e-9)
    assert g[3] == pytest.approx(8.0 - 12.0, abs=1e-9)                 # 65 deg below boresight: -12 dB
    assert g[4] == pytest.approx(8.0 - 12.0 * (60 / 65) ** 2, abs=1e-9)


def test_gcs_to_lcs_downtilt_maps_sector_centre_to_boresight():
    beta = math.radians(12.0)
    th, ph = antenna.gcs_to_lcs(np.radians(102.0), np.radians(30.0), math.radians(30.0), beta)
    assert math.degrees(th) == pytest.approx(90.0, abs=1e-9) and abs(ph) < 1e-12


def test_port_response_gain_and_phases():
    r = antenna.port_response(np.array(np.pi / 2), np.array(0.0))
    # boresight: element 8 dBi x sub-array 6 -> |r|^2 = 10^0.8 * 6 on every port, all in phase
    np.testing.assert_allclose(np.abs(r) ** 2, 10 ** 0.8 * 6, rtol=1e-9)
    np.testing.assert_allclose(np.angle(r), 0.0, atol=1e-9)


@pytest.mark.parametrize("n_bwp,config,p", [(18, 1, 2), (36, 2, 4), (37, 1, 4), (72, 2, 8), (106, 1, 8),
                                            (144, 2, 16), (145, 1, 16), (273, 2, 16)])
def test_rbg_table_5_1_2_2_1_1(n_bwp, config, p):
    assert nr.nominal_rbg_size(n_bwp, config) == p


def test_rbg_sizes():
    s = nr.rbg_sizes(273, 16)
    assert len(s) == 18 and s.sum() == 273 and s[-1] == 1 and (s[:-1] == 16).all()
    s = nr.rbg_sizes(10, 4, n_start=3)       # ceil((10 + 3) / 4) = 4: first 4 - 3 = 1, last 13 mod 4 = 1
    assert s.tolist() == [1, 4, 4, 1]
    assert nr.rbg_sizes(18, 1).tolist() == [1] * 18
    with pytest.raises(EnvError, match="n_bwp"):
        nr.nominal_rbg_size(276)


def test_typei_beams_are_unit_norm_dft_with_orthogonal_offsets():
    b = antenna.typei_beams()
    assert b.shape == (256, 16)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-6)
    i = antenna.beam_index(5, 3)
    for k1, k2 in antenna.RANK2_OFFSETS[1:]:                            # i_{1,3} offsets: orthogonal beams
        j = antenna.beam_index(5 + k1, 3 + k2)
        assert abs(np.vdot(b[i], b[j])) < 1e-5
    # beam (l, m) matches the port phases of its direction: l / (O1 N1) = d_H sin(theta) sin(phi)
    r = antenna.port_response(np.array(np.pi / 2), np.arcsin(np.array(8.0 / 32 / 0.5)))
    gains = np.abs(b.conj() @ r) ** 2
    assert np.argmax(gains) in [antenna.beam_index(8, m) for m in range(8)]


def test_rzf_single_user_is_mrt_and_two_users_are_zero_forced():
    rng = np.random.default_rng(0)
    h = rng.standard_normal(32) + 1j * rng.standard_normal(32)       # one single-antenna UE, channel h (1 x 32)
    g = mumimo.rzf(h.conj()[:, None], alpha=0.3)
    np.testing.assert_allclose(g[:, 0], h.conj() / np.linalg.norm(h), atol=1e-12)   # MRT: h^H / ||h||
    H = rng.standard_normal((2, 32)) + 1j * rng.standard_normal((2, 32))
    G = mumimo.rzf(H.conj().T, alpha=1e-9)
    leak = np.abs(H @ G)
    assert leak[0, 1] < 1e-6 * leak[0, 0] and leak[1, 0] < 1e-6 * leak[1, 1]


def test_channel_synthesis_is_the_sum_of_rays():
    """One link, two clusters, one ray each: H_m(t) = sum_n e^{-j 2 pi f_m tau_n} c_n e^{j 2 pi nu_n t} a_n."""
    rng = np.random.default_rng(1)
    C, R = 2, 1
    delay = np.array([[[0.0, 300e-9]]])
    a = (rng.standard_normal((1, 1, C, 16)) + 1j * rng.standard_normal((1, 1, C, 16))).astype(np.complex64)
    coef = (rng.standard_normal((1, 1, C, R, 4, 2)) + 1j * rng.standard_normal((1, 1, C, R, 4, 2))).astype(np.complex64)
    dop = np.array([[[[5.0], [-11.0]]]])
    f = np.array([-1e6, 2e6])
    ch = LinkChannels(delay, a, coef, dop, f)
    t = 0.0123
    h = ch.synthesize(np.array([0]), t)[0, 0]                                    # (M, 4, 32)
    for m in range(2):
        want = np.zeros((4, 2, 16), complex)
        for n in range(C):
            want += (np.exp(-2j * np.pi * f[m] * delay[0, 0, n]) * np.exp(2j * np.pi * dop[0, 0, n, 0] * t)
                     * coef[0, 0, n, 0][:, :, None] * a[0, 0, n][None, None, :])
        np.testing.assert_allclose(h[m], want.reshape(4, 32), rtol=2e-4, atol=1e-5)
    ch.update(np.array([0]), t)
    np.testing.assert_allclose(ch.H_srv[0], h, rtol=1e-6)


def test_building_a_drop_leaves_torch_global_random_stream_alone():
    """Sionna's seed setter reseeds torch's default generator (randomly when its old seed, None, is put
    back); a drop built between two draws must not change what a seeded caller draws next."""
    import torch

    from envs.scheduler.deployment import DropSpec, build_drop
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build_drop(DropSpec(n_ue_per_cell=2), seed=5)
    assert torch.equal(torch.rand(3), expected)
