"""OLLA converges to its BLER target and moves its offset by the target's step ratio."""
import numpy as np
import pytest

from envs.link_adaptation import LinkAdaptationEnv
from envs.scenarios import Scenario
from tasks.link_adaptation.olla import OLLA

# Mid-range SINR so that OLLA's offset is rarely pinned at MCS 0 or the top MCS (where no
# outer loop can hold a BLER target).
MID = Scenario(name="olla_mid", group="t", split="train", carrier_ghz=3.5, scs_khz=30, n_prb=52,
               speed_kmh=10.0, sinr_mean_db=10.0, sinr_std_db=3.0, n_taps=4, cqi_period=5,
               cqi_delay=2, cqi_error_db=1.0)


def test_long_run_nack_rate_is_target():
    env = LinkAdaptationEnv([MID], num_links=1000, episode_len=10**6, seed=1)
    obs, _ = env.reset(seed=1)
    olla = OLLA(bler_target=0.1)
    olla.reset(env)
    nack = n = 0
    for t in range(2500):
        obs, r, te, tr, info = env.step(olla.act(obs, env))
        olla.update(info, tr)
        if t >= 500:
            nack += int((~info["ack"]).sum())
            n += env.num_links
    assert nack / n == pytest.approx(0.100, abs=0.005)


def test_step_ratio_and_updates():
    o = OLLA(bler_target=0.1, step_up_db=0.9)
    assert o.step_down == pytest.approx(0.1)  # 0.9 * 0.1 / 0.9
    env = LinkAdaptationEnv([MID], num_links=3, seed=0)
    env.reset(seed=0)
    o.reset(env)
    o.update({"ack": np.array([True, False, True])}, np.array([False, False, True]))
    np.testing.assert_allclose(o.delta, [0.1, -0.9, 0.0])


def test_bad_target():
    with pytest.raises(ValueError, match="bler_target"):
        OLLA(bler_target=1.5)
