"""Scheduler env: state sizes and normalisation, the decision loops, masks, rewards, invariants, determinism,
CSI reports, bad actions, and the PF baselines."""
import numpy as np
import pytest

from envs.errors import EnvError
from envs.scheduler import state
from envs.scheduler.baselines import BaselineSDS, PFGreedySDS, SUPF
from envs.scheduler.env import SchedulerEnv

UE_PER_CELL = 12      # > |U| = 10 candidates in most cells, a small drop (252 UEs); one drop (seed 5)
                      # is generated for all tests but the determinism one (Sionna: ~1 s per drop)


def _env(**kw):
    return SchedulerEnv(setup="training", n_ue_per_cell=UE_PER_CELL, seed=kw.pop("seed", 5), **kw)


def _random_valid(rng):
    def policy(obs, info):
        m = info["action_mask"].reshape(21, -1, 11)
        a = (rng.random(m.shape) * m).argmax(-1)
        return a if a.shape[1] > 1 else a[:, 0]
    return policy


@pytest.fixture(scope="module")
def env1():
    return _env()


def test_state_sizes_and_normalisation(env1):
    obs, info = env1.reset(seed=5)
    assert obs.shape == (21, 410) == (env1.num_envs, *env1.single_observation_space.shape)   # 10 x (5 + 2 x 18)
    assert info["action_mask"].shape == (21, 18 * 11) and info["action_mask"].reshape(21, 18, 11)[..., 10].all()
    pol = _random_valid(np.random.default_rng(0))
    seen = []
    for _ in range(6 * env1.n_stages):
        obs, r, te, tr, info = env1.step(pol(obs, info))
        seen.append(obs)
        assert r.shape == (21, 18) and not te.any() and not tr.any()
    o = np.stack(seen)
    assert o.dtype == np.float32 and o.min() >= 0.0 and o.max() <= 1.0
    seg = o.reshape(-1, 10, 41)
    assert seg[..., 1].max() > 0.5 and seg[..., 0].max() > 0.0          # ranks 2 and throughputs present
    assert (seg[..., 23:].max() > 0.0)                                    # max cross-correlations appear
    env2 = _env(design="2lds")
    obs, info = env2.reset(seed=5)
    assert obs.shape == (21, 81) and info["action_mask"].shape == (21, 11) and info["rbg"] == 0
    for k in range(20):
        obs, r, _, _, info = env2.step(_random_valid(np.random.default_rng(k))(obs, info))
        assert r.shape == (21,) and 0.0 <= obs.min() and obs.max() <= 1.0
    assert (info["layer"], info["rbg"]) == (1, 2)                       # layer-major: 18 RBGs of layer 0, then 1


def test_invariants_over_a_run(env1):
    obs, info = env1.reset(seed=5)
    rng = np.random.default_rng(1)
    for _ in range(5 * env1.n_stages):
        sc = info["scores"]
        assert (sc["rate"] >= 0).all() and np.isfinite(sc["dpf"]).all()
        a = rng.integers(0, 11, size=(21, 18))                          # also masked choices
        masked = ~np.take_along_axis(info["action_mask"].reshape(21, 18, 11), a[..., None], -1)[..., 0]
        before = env1.sets.slot_cand.copy()
        layer = info["layer"]
        obs, r, _, _, info = env1.step(a)
        if info["tti_end"]:
            assert info["tti_stats"]["bits"] >= 0
            continue
        sets = env1.sets
        placed = sets.slot_cand[..., layer]
        assert (placed[masked] == -1).all() and (r[masked] == -1.0).all()   # masked -> unassigned, -1
        for e in range(21):
            for m in range(18):
                ues = sets.slot_cand[e, m][sets.slot_cand[e, m] >= 0]
                assert len(ues) == len(set(ues.tolist()))                # no UE twice on one RBG
                assert sets.n_layers[e, m] == sets.rank[e, ues].sum() <= 2 * len(ues)
        assert (before[before >= 0] == sets.slot_cand[before >= 0]).all()
    k = env1.kpis()
    assert (k["throughput_bps"] >= 0).all()


def test_single_ue_on_an_rbg_gets_its_su_estimate(env1):
    obs, info = env1.reset(seed=5)
    obs, r, _, _, info = env1.step(SUPF()(obs, info))
    sets = env1.sets
    est = sets.estimated_sinr()
    e, m = np.nonzero(sets.slot_cand[..., 0] >= 0)
    c = sets.slot_cand[e, m, 0]
    np.testing.assert_allclose(est[e, m, 0], sets.su[e, m, c], rtol=1e-5)
    two = sets.rank[e, c] == 2
    np.testing.assert_allclose(est[e, m, 1][two], sets.su[e, m, c][two], rtol=1e-5)


def test_realised_precoder_is_rzf_of_the_reported_pmis(env1, monkeypatch):
    """The Q kept up to date by the Schur updates gives G = V (V^H V + alpha I)^-1 (mumimo.rzf); one UE
    alone on an RBG is sent on its own PMI."""
    from envs.scheduler import mumimo
    seen = {}
    real = env1._realize

    def spy():
        seen["Q"], seen["slot_cand"], seen["cand"] = env1.sets.Q.copy(), env1.sets.slot_cand.copy(), env1.cand.copy()
        return real()
    monkeypatch.setattr(env1, "_realize", spy)
    obs, info = env1.reset(seed=5)
    pol = BaselineSDS()
    for _ in range(env1.n_stages):
        obs, r, _, _, info = env1.step(pol(obs, info))
    Q, slots, cand = seen["Q"], seen["slot_cand"], seen["cand"]
    w = env1.pmi_t                                                       # (U + 1, M, 2, 32)
    checked = {1: 0, 2: 0}
    for e in range(21):
        for m in range(18):
            ues = [(j, cand[e, c]) for j, c in enumerate(slots[e, m]) if c >= 0]
            if not ues:
                continue
            cols = [(2 * j + a, u, a) for j, u in ues for a in range(env1.rank[u])]
            V = np.stack([w[u, m, a] for _, u, a in cols], 1)            # (32, n) active PMI columns
            idx = [s for s, _, _ in cols]
            G = V @ Q[e, m][np.ix_(idx, idx)]
            G /= np.linalg.norm(G, axis=0)
            np.testing.assert_allclose(G, mumimo.rzf(V, env1.cfg.rzf_alpha), atol=2e-4)
            if len(ues) == 1:
                np.testing.assert_allclose(G, V, atol=2e-4)
            checked[min(len(ues), 2)] += 1
    assert checked[1] + checked[2] > 100 and checked[2] > 0


def test_csi_reports_are_type1_and_differential_cqi(env1):
    env1.reset(seed=5)
    assert set(np.unique(env1.rank)) <= {1, 2} and (env1.rank == 2).any()
    d = env1.cqi_sb - env1.cqi_wb[:, None]
    assert d.min() >= -1 and d.max() <= 2 and env1.cqi_wb.max() <= 15
    w = np.swapaxes(env1.pmi_t[:-1], 2, 3)                             # (U, M, 32, 2)
    gram = np.conj(np.swapaxes(w, 2, 3)) @ w
    one = env1.rank == 1
    np.testing.assert_allclose(gram[~one][..., [0, 1], [0, 1]], 1.0, atol=1e-5)
    np.testing.assert_allclose(np.abs(gram[~one][..., 0, 1]), 0.0, atol=1e-5)   # rank-2 layers orthogonal
    assert np.abs(w[one][..., 1]).max() == 0.0
    # the scheduler's Gram from the Type-I structure equals V^H V of the candidates' reported precoders
    sets, cand = env1.sets, env1.cand
    e, m = 4, 7
    cu = cand[e][cand[e] >= 0]
    V = np.concatenate([w[u, m][:, :env1.rank[u]] for u in cu], axis=1)
    idx = np.concatenate([[2 * i + k for k in range(env1.rank[u])] for i, u in enumerate(cu)])
    np.testing.assert_allclose(sets.K[e, m][np.ix_(idx, idx)], np.conj(V.T) @ V, atol=1e-5)


def test_rewards_eq_20_21_and_greedy_indicator_by_hand():
    dpf = np.array([[2.0, 1.0, -1.0]])
    valid = np.array([[True, True, True]])
    for a, want in [(0, 1.0), (1, 0.5), (2, -0.5), (3, 0.0)]:
        assert state.reward_pf(dpf, valid, np.array([a]))[0] == pytest.approx(want)
    assert state.reward_pf(np.array([[2.0, -5.0]]), np.array([[True, True]]), np.array([1]))[0] == -1.0   # clipped
    neg = np.array([[-1.0, -2.0]])
    ok = np.array([[True, True]])
    assert state.reward_pf(neg, ok, np.array([2]))[0] == 1.0 and state.reward_pf(neg, ok, np.array([0]))[0] == -1.0
    assert state.reward_pf(dpf, np.array([[False, True, True]]), np.array([0]))[0] == -1.0      # masked choice
    assert state.reward_pf(dpf, np.array([[False, True, True]]), np.array([1]))[0] == 1.0       # best valid
    v = lambda d, a: state.greedy_indicator(np.array([d]), np.ones((1, len(d)), bool), np.array([a]))[0]
    assert v([2.0, 1.0], 0) == 1.0 and v([2.0, 1.0], 1) == -1.0 and v([2.0, 1.0], 2) == -1.0
    assert v([-1.0, -2.0], 2) == 1.0 and v([-1.0, -2.0], 0) == -1.0
    rng = np.random.default_rng(0)                                      # the env's one-pass version agrees
    d, ok, a = rng.normal(size=(50, 6)), rng.random((50, 6)) > 0.3, rng.integers(0, 7, 50)
    r2, v2, _ = state.decision_rewards(d, ok, a)
    np.testing.assert_array_equal(r2, state.reward_pf(d, ok, a))
    np.testing.assert_array_equal(v2, state.greedy_indicator(d, ok, a))


def test_ppo_rewards_are_p_times_v_then_k_times_v():
    env = _env(reward="ppo")
    obs, info = env.reset(seed=5)
    for stage in range(env.n_stages + 1):
        P = info["P"].copy()
        a = BaselineSDS()(obs, info)
        obs, r, _, _, info = env.step(a)
        scale = P[:, None] if stage % env.n_stages == 0 else 0.2
        np.testing.assert_allclose(r, scale * info["v"])
    assert set(np.unique(info["v"])) <= {-1.0, 1.0}


def test_same_seed_same_numbers():
    def run(seed):
        env = _env(seed=seed)
        obs, info = env.reset()
        out = []
        for _ in range(2 * env.n_stages):
            obs, r, _, _, info = env.step(PFGreedySDS()(obs, info))
            out.append(r)
        return np.stack(out), env.kpis()["throughput_bps"]
    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_bad_actions_are_clear_errors(env1):
    obs, info = env1.reset(seed=5)
    with pytest.raises(EnvError, match="shape"):
        env1.step(np.zeros(21, np.int64))
    with pytest.raises(EnvError, match="0..10"):
        env1.step(np.full((21, 18), 11))
    with pytest.raises(TypeError, match="integers"):
        env1.step(np.zeros((21, 18)))


def _info(layer, dpf, dthr, valid):
    return {"layer": layer, "scores": {"dpf": np.array([dpf]), "dthr": np.array([dthr]), "valid": np.array([valid])}}


def test_baselines_decide_as_appendix_e():
    dpf, dthr, ok = [0.5, 2.0, 1.0, -0.1], [1.0, 3.0, 2.0, -1.0], [True, True, True, True]
    for pol in (SUPF(), BaselineSDS(), PFGreedySDS()):                   # layer 1: FDS PF argmax
        assert pol(None, _info(0, dpf, dthr, ok))[0] == 1
    assert SUPF()(None, _info(1, dpf, dthr, ok))[0] == 4                 # SU: no further layers
    assert BaselineSDS()(None, _info(1, dpf, dthr, ok))[0] == 0          # first in PF order raising throughput
    assert PFGreedySDS()(None, _info(1, dpf, dthr, ok))[0] == 1          # largest PF gain that raises it
    assert BaselineSDS()(None, _info(1, dpf, dthr, [False, True, True, True]))[0] == 1
    assert PFGreedySDS()(None, _info(1, [0.5, 2.0], [1.0, -3.0], [True, True]))[0] == 0   # throughput must rise
    assert PFGreedySDS()(None, _info(1, [-0.5], [1.0], [True]))[0] == 1                  # PF must rise: none
    assert BaselineSDS()(None, _info(1, [-0.5, 0.1], [-1.0, -2.0], [True, True]))[0] == 2
