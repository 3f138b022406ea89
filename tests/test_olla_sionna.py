"""Our OLLA against Sionna's ``OuterLoopLinkAdaptation``, decision for decision.

Our OLLA runs in closed loop on the env; its inputs (the CQI's SINR each TTI, the HARQ feedback of the
previous TTI) are recorded and replayed into Sionna's OLLA, whose inner loop is given the env's own BLER
tables as its PHY abstraction (a duck-typed stand-in for ``sionna.sys.PHYAbstraction``: Sionna's default
one interpolates its tables differently, which would compare two BLER models rather than two OLLAs).
Sionna runs in float64. Its offset must equal minus our Delta at every TTI (to 1e-9 dB) and every MCS must
match, except where the SINR lands exactly on a rounding tie of the BLER tables' 0.05 dB grid: Sionna hands
its inner loop a linear SINR, and the harness's dB -> linear -> dB round trip (~1e-15 dB) then decides which
way the tie rounds (measured: 16 of 76,800 decisions at 256 links x 300 TTIs in the second case, each one such a tie).
"""
import numpy as np
import pytest
import torch

from envs.bler import SNR_LO_DB, SNR_STEP_DB
from envs.link_adaptation import LinkAdaptationEnv
from envs.scenarios import Scenario
from tasks.link_adaptation.olla import OLLA, tune_olla

sionna_sys = pytest.importorskip("sionna.sys")

# wide SINR spread: some links sit at MCS 0 or the top MCS, so the clips are exercised too
WIDE = Scenario(name="olla_wide", group="t", split="train", carrier_ghz=3.5, scs_khz=30, n_prb=52,
                speed_kmh=30.0, sinr_mean_db=12.0, sinr_std_db=10.0, n_taps=4, cqi_period=5,
                cqi_delay=2, cqi_error_db=1.0)


class EnvPHY:
    """What Sionna's inner loop asks of a PHY abstraction, answered from the env's BLER tables:
    ``bler_table_interp.shape[2]`` (number of MCSs) and a call returning
    (bits, harq, sinr_eff, tbler, bler) for MCS candidates ``[n_mcs, n_ut]``."""

    def __init__(self, env):
        self.env = env
        self.bler_table_interp = torch.zeros(1, 1, env.n_mcs, 1, 1)

    def __call__(self, mcs_index, sinr=None, sinr_eff=None, num_allocated_re=None, **kwargs):
        db = 10.0 * torch.log10(sinr_eff[0]).double().numpy()             # same SINR for every candidate
        table = torch.from_numpy(self.env.mcs_bler(db)).T                 # (n_mcs, n_ut)
        tbler = torch.gather(table, 0, mcs_index.long())
        return None, None, sinr_eff, tbler, tbler


def record(env, olla, n_tti):
    """Closed loop with our OLLA: per TTI, (CQI SINR dB, feedback of the previous TTI, our MCS, our Delta)."""
    obs, _ = env.reset(seed=3)
    olla.reset(env)
    rec, prev = [], np.full(env.num_links, -1)
    for _ in range(n_tti):
        sinr_db = env.cqi_sinr_db().copy()
        mcs = olla.select_mcs(env)
        rec.append((sinr_db, prev, mcs, olla.delta.copy()))
        obs, r, term, trunc, info = env.step(env.mcs_to_action(mcs))
        assert not trunc.any()   # Sionna's OLLA has no per-link reset: the episodes outlast the run
        olla.update(info, trunc)
        prev = info["ack"].astype(np.int64)                               # 1 ACK, 0 NACK
    return rec


@pytest.mark.parametrize("target,step,clip", [(0.1, 1.0, 20.0), (0.2, 0.7, 3.0)])
def test_same_mcs_as_sionna_every_tti(target, step, clip):
    env = LinkAdaptationEnv([WIDE], num_links=128, episode_len=10**6, seed=3)
    rec = record(env, OLLA(bler_target=target, step_up_db=step, delta_max_db=clip), n_tti=250)
    ref = sionna_sys.OuterLoopLinkAdaptation(EnvPHY(env), num_ut=env.num_links, bler_target=target,
                                             delta_up=step, offset_min=-clip, offset_max=clip,
                                             precision="double", device="cpu")
    mismatches = ties = 0
    offsets = []
    for sinr_db, harq, mcs, delta in rec:
        got = ref(torch.ones(env.num_links, dtype=torch.int32), torch.from_numpy(harq),
                  torch.from_numpy(10.0 ** (sinr_db / 10.0))).numpy()
        offsets.append(ref.offset.numpy().copy())
        np.testing.assert_allclose(-offsets[-1], delta, rtol=0, atol=1e-9)
        bad = got != mcs
        pos = (sinr_db[bad] + delta[bad] - SNR_LO_DB) / SNR_STEP_DB
        ties += int((np.abs(pos - np.floor(pos) - 0.5) < 1e-6).sum())
        mismatches += int(bad.sum())
    assert mismatches == ties                       # every disagreement is a rounding tie
    assert mismatches <= 1e-3 * len(rec) * env.num_links
    offsets = np.array(offsets)
    # the replay is not trivial: offsets wandered, and some links hit the clip
    assert offsets.std() > 0.5
    if clip < 20:
        assert (np.abs(offsets) == clip).any()
    mcs_all = np.array([r[2] for r in rec])
    assert len(np.unique(mcs_all)) > 10


def test_initial_offset_and_reset():
    env = LinkAdaptationEnv([WIDE], num_links=4, seed=0)
    env.reset(seed=0)
    o = OLLA(bler_target=0.1, step_up_db=0.9, delta_init_db=-2.0)
    o.reset(env)
    np.testing.assert_allclose(o.delta, [-2.0] * 4)
    o.update({"ack": np.array([True, False, True, True])}, np.array([False, False, True, False]))
    np.testing.assert_allclose(o.delta, [-1.9, -2.9, -2.0, -1.9])   # the new UE starts again at -2


def test_lower_init_picks_lower_mcs():
    env = LinkAdaptationEnv([WIDE], num_links=256, seed=0)
    env.reset(seed=0)
    hi, lo = OLLA(delta_init_db=0.0), OLLA(delta_init_db=-4.0)
    hi.reset(env), lo.reset(env)
    m_hi, m_lo = hi.select_mcs(env), lo.select_mcs(env)
    assert (m_lo <= m_hi).all() and (m_lo < m_hi).mean() > 0.5


def test_tune_olla_returns_the_best_of_its_grid():
    kw = dict(links_per_point=64, n_tti=80, warmup_tti=20)
    out = tune_olla("micro_veh", seeds=(1,), steps_db=(0.5, 2.0), inits_db=(-6.0, 0.0), **kw)
    assert len(out["grid"]) == 4
    best = max(out["grid"], key=lambda g: g["throughput"])
    assert out["throughput"] == best["throughput"]
    assert out["params"] == {k: best[k] for k in ("bler_target", "step_up_db", "delta_init_db")}
    # the grid points really differ (a -6 dB start costs throughput in 80 TTIs)
    assert len({round(g["throughput"], 6) for g in out["grid"]}) == 4


def test_per_link_settings_act_like_one_olla_per_setting():
    """The vectorized OLLA of tune_olla: links with setting c decide exactly as OLLA(c) would."""
    env = LinkAdaptationEnv([WIDE], num_links=90, episode_len=40, seed=4)
    obs, _ = env.reset(seed=4)
    settings = [(0.1, 0.5, 0.0), (0.2, 1.0, -2.0), (0.3, 2.0, 2.0)]
    c = np.arange(90) % 3
    vec = OLLA(*(np.array([s[i] for s in settings])[c] for i in range(3)))
    single = [OLLA(*s) for s in settings]
    vec.reset(env)
    for o in single:
        o.reset(env)
    for _ in range(120):                                   # episodes of 40 TTIs: resets are exercised
        m = vec.select_mcs(env)
        for k, o in enumerate(single):
            np.testing.assert_array_equal(m[c == k], o.select_mcs(env)[c == k])
        obs, r, term, trunc, info = env.step(env.mcs_to_action(m))
        vec.update(info, trunc)
        for o in single:
            o.update(info, trunc)
    for k, o in enumerate(single):
        np.testing.assert_allclose(vec.delta[c == k], o.delta[c == k])
