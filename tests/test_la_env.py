"""Link-adaptation env: API, determinism, reward = TBS on ACK, fading correlation, CQI timing."""
import math

import numpy as np
import pytest

from envs import bler, nr
from envs.link_adaptation import N_ACTIONS, OBS_DIM, OFFSET_MIN, LinkAdaptationEnv
from envs.scenarios import HELDOUT, SCENARIOS, TRAIN, Scenario, get_scenario, groups


def _run(env, steps, action=None, seed=0):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    a = np.full(env.num_links, -OFFSET_MIN if action is None else action)
    rews = []
    for _ in range(steps):
        obs, r, te, tr, info = env.step(a)
        out.append(obs)
        rews.append(r)
    return np.stack(out), np.stack(rews)


def test_shapes_and_spaces():
    env = LinkAdaptationEnv(TRAIN, num_links=64, seed=0)
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, OBS_DIM) and obs.dtype == np.float32 and OBS_DIM <= 32
    assert env.single_action_space.n == N_ACTIONS == 16
    assert env.observation_space.contains(obs)
    assert sorted(set(info["scenario"].tolist())) == [0, 1, 2, 3]
    obs, r, te, tr, info = env.step(np.zeros(64, dtype=np.int64))
    assert r.shape == te.shape == tr.shape == (64,) and not te.any()


def test_seeded_determinism():
    a = _run(LinkAdaptationEnv("macro_veh", num_links=32), 50, seed=7)
    b = _run(LinkAdaptationEnv("macro_veh", num_links=32), 50, seed=7)
    c = _run(LinkAdaptationEnv("macro_veh", num_links=32), 50, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_reward_is_tbs_on_ack_and_offset_zero_is_cqi_mcs():
    env = LinkAdaptationEnv("micro_ped", num_links=256, seed=0)
    env.reset(seed=0)
    tbs = nr.tbs_per_mcs(SCENARIOS["micro_ped"].n_prb, 1)
    for off in (-3, 0, 2):
        cmcs = env.cqi_mcs()
        _, r, _, _, info = env.step(np.full(256, off - OFFSET_MIN))
        np.testing.assert_array_equal(info["mcs"], np.clip(cmcs + off, 0, 28))
        np.testing.assert_array_equal(r, np.where(info["ack"], tbs[info["mcs"]], 0))


def test_jakes_correlation():
    # macro_veh: f_D = 30/3.6 m/s * 3.5e9 / c = 97.29 Hz; x = 2 pi f_D * 0.5 ms = 0.3056;
    # J0(x) = 1 - x^2/4 + x^4/64 = 0.97679.
    s = SCENARIOS["macro_veh"]
    assert s.doppler_hz == pytest.approx(97.29, abs=0.01)
    assert s.rho == pytest.approx(0.97679, abs=1e-4)
    env = LinkAdaptationEnv("macro_veh", num_links=4000, episode_len=10**6, seed=3)
    env.reset(seed=3)
    h0 = env.h.copy()
    env.step(np.full(4000, -OFFSET_MIN))
    corr = (h0 * env.h).sum() / np.sqrt((h0 ** 2).sum() * (env.h ** 2).sum())
    assert corr == pytest.approx(s.rho, abs=0.005)
    assert get_scenario("macro_ped").rho > s.rho > get_scenario("macro_highway").rho


def test_cqi_period_and_delay():
    s = SCENARIOS["macro_ped"]  # period 10, delay 4
    env = LinkAdaptationEnv(s.name, num_links=50, episode_len=10**6, seed=0)
    env.reset(seed=0)
    ages = []
    for _ in range(40):
        env.step(np.full(50, -OFFSET_MIN))
        ages.append(env.age.copy())
    ages = np.stack(ages)
    assert ages[15:].max() == s.cqi_period - 1 and ages[15:].min() == 0


def test_autoreset_gives_final_obs():
    env = LinkAdaptationEnv("micro_ped", num_links=20, episode_len=5, seed=0)
    env.reset(seed=0)
    seen = 0
    for _ in range(6):
        obs, r, te, tr, info = env.step(np.full(20, -OFFSET_MIN))
        if tr.any():
            seen += tr.sum()
            assert info["_final_obs"].tolist() == tr.tolist()
            assert np.all(obs[tr, 5:] == 0)  # fresh episode: no ACK / MCS history yet
    assert seen >= 20


def test_bler_curves_respect_shannon():
    t = bler.bler_table(1, 52)
    shannon = 10 * np.log10(2 ** nr.mcs_table(1).se - 1)
    gap = t.thr10_db - shannon
    assert np.all(gap > 0) and np.all(gap < 6)
    assert np.all(np.diff(t.thr10_db) > -0.3)  # thresholds rise with MCS
    assert np.all(np.diff(t.bler, axis=1) <= 0)  # BLER never rises with SNR
    # EESM of a flat channel is the SINR itself; of two subbands 1 and 100 with beta 1:
    # -ln((e^-1 + e^-100)/2) = 1.6931 -> 2.287 dB
    assert bler.eesm_db(np.array([[10.0, 10.0, 10.0]]), np.array([3.0]))[0] == pytest.approx(10.0)
    assert bler.eesm_db(np.array([[1.0, 100.0]]), np.array([1.0]))[0] == pytest.approx(10 * math.log10(1.6931472), abs=1e-4)


def test_more_backoff_means_fewer_nacks():
    env = LinkAdaptationEnv("micro_veh", num_links=2000, seed=0)
    nack = {}
    for off in (-4, 0, 3):
        env.reset(seed=1)
        n = 0
        for _ in range(20):
            _, _, _, _, info = env.step(np.full(2000, off - OFFSET_MIN))
            n += (~info["ack"]).sum()
        nack[off] = n
    assert nack[-4] < nack[0] < nack[3]


def test_bad_input():
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        LinkAdaptationEnv("nope")
    with pytest.raises(ValueError, match="speed_kmh must be >= 0"):
        Scenario(name="x", group="g", split="train", carrier_ghz=3.5, scs_khz=30, n_prb=52,
                 speed_kmh=-1, sinr_mean_db=10, sinr_std_db=1, n_taps=1, cqi_period=5,
                 cqi_delay=1, cqi_error_db=0)
    with pytest.raises(ValueError, match="valid ids"):
        LinkAdaptationEnv("macro_ped", mcs_table_id=7)
    env = LinkAdaptationEnv("macro_ped", num_links=8, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(8, dtype=int))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="actions must be in 0..15"):
        env.step(np.full(8, 16))


def test_scenario_sets():
    assert set(TRAIN).isdisjoint(HELDOUT) and len(TRAIN) == 4 and len(HELDOUT) == 4
    assert groups() == {"macro": ["macro_ped", "macro_veh"], "micro": ["micro_ped", "micro_veh"]}
    train_speeds = {SCENARIOS[n].speed_kmh for n in TRAIN}
    train_bands = {SCENARIOS[n].carrier_ghz for n in TRAIN}
    for n in HELDOUT:  # every held-out scenario has an unseen speed or band
        assert SCENARIOS[n].speed_kmh not in train_speeds or SCENARIOS[n].carrier_ghz not in train_bands
