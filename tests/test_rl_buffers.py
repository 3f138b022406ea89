"""compress.rl plumbing: replay (uniform, prioritized), GAE, rollout storage, the collector's autoreset modes."""
import numpy as np
import pytest

from compress.errors import UserError
import torch

from compress.rl import Collector, GymVectorEnv, PrioritizedReplay, ReplayBuffer, RolloutStorage, gae
from compress.rl.prioritized import SumTree


def _rows(n, start=0):
    return {"obs": np.arange(start, start + n, dtype=np.float32)[:, None].repeat(3, 1),
            "act": np.arange(start, start + n)[:, None], "mask": np.ones((n, 4), bool)}


# ------------------------------------------------------------------------------------- uniform replay
def test_replay_dict_schema_wraps_and_round_trips():
    b = ReplayBuffer(5)
    for i in range(3):
        b.add(_rows(2, 2 * i))
    assert b.size == 5 and b.pos == 1
    assert b.data["act"][:, 0].tolist() == [5, 1, 2, 3, 4]           # the 6th row overwrote slot 0
    assert b.data["mask"].dtype == bool and b.data["obs"].dtype == np.float32
    s = b.sample(7, np.random.default_rng(0))
    assert s["obs"].shape == (7, 3) and s["act"].dtype == torch.int64 and s["mask"].dtype == torch.bool
    assert (s["obs"][:, 0].long() == s["act"][:, 0]).all()         # rows stay together
    assert (s["index"] < 5).all()
    c = ReplayBuffer(5)
    c.load_state_dict(b.state_dict())
    assert c.size == 5 and c.pos == 1 and all((c.data[k] == b.data[k]).all() for k in b.data)
    with pytest.raises(ValueError, match="keys"):
        b.add({"obs": np.zeros((1, 3), np.float32)})
    with pytest.raises(ValueError, match="'obs' rows have shape"):
        b.add({**_rows(1), "obs": np.zeros((1, 4), np.float32)})
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0)


# --------------------------------------------------------------------------------------- prioritized
def test_sum_tree_sums_and_finds():
    t = SumTree(5)                      # 8 leaves
    t.set(np.arange(5), np.array([1.0, 2.0, 3.0, 4.0, 0.0]))
    assert t.total == 10.0
    assert t.find(np.array([0.0, 0.999, 1.0, 2.999, 3.0, 5.99, 6.0, 9.999])).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    t.set(np.array([1, 1]), np.array([5.0, 5.0]))       # repeated index: no double counting
    assert t.total == 13.0


def test_per_probabilities_weights_and_updates():
    b = PrioritizedReplay(8, alpha=1.0, eps=1e-12)
    idx = b.add(_rows(4))
    assert b.probabilities(idx).tolist() == pytest.approx([0.25] * 4)   # new samples at max priority (1)
    b.update_priorities(idx, np.array([1.0, 2.0, 3.0, 4.0]))
    assert b.probabilities(idx).tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
    # IS weights (N P(i))^-beta / max over the batch: N P = (0.4, 1.6) -> beta 1: (2.5, 0.625) / 2.5
    rng = np.random.default_rng(0)
    counts = np.zeros(4)
    for _ in range(400):
        s = b.sample(64, rng, beta=1.0)
        counts += np.bincount(s["index"].numpy(), minlength=4)
        w = s["weight"].numpy()
        p = b.probabilities(s["index"].numpy())
        ref = (4 * p) ** -1.0
        np.testing.assert_allclose(w, ref / ref.max(), rtol=1e-6)
    np.testing.assert_allclose(counts / counts.sum(), [0.1, 0.2, 0.3, 0.4], atol=0.01)
    s = b.sample(256, rng, beta=0.5)
    got = dict(zip(s["index"].tolist(), s["weight"].tolist()))
    assert got[3] / got[0] == pytest.approx((0.4 / 1.6) ** 0.5, rel=1e-5)
    # a new transition enters at the largest priority seen (4): P = 4 / 14
    new = b.add(_rows(1, 10))
    assert b.probabilities(new)[0] == pytest.approx(4 / 14)
    # alpha = 0 is uniform whatever the priorities
    u = PrioritizedReplay(4, alpha=0.0)
    i = u.add(_rows(4))
    u.update_priorities(i, np.array([0.1, 10.0, 100.0, 1.0]))
    assert u.probabilities(i).tolist() == pytest.approx([0.25] * 4)
    # the checkpoint restores the exact tree
    c = PrioritizedReplay(8, alpha=1.0, eps=1e-12)
    c.load_state_dict(b.state_dict())
    assert (c.tree.tree == b.tree.tree).all() and c.max_priority == b.max_priority == pytest.approx(4.0)
    with pytest.raises(ValueError, match="finite"):
        b.update_priorities(idx, np.array([1.0, np.nan, 1.0, 1.0]))


# ----------------------------------------------------------------------------------------------- GAE
def test_gae_hand_values():
    # gamma 0.9, lambda 0.8; the episode ends after step 1
    rew = torch.tensor([[1.0], [0.0], [2.0]])
    val = torch.tensor([[0.5], [0.4], [0.3]])
    done = torch.tensor([[0.0], [1.0], [0.0]])
    adv, ret = gae(rew, val, done, torch.tensor([0.2]), 0.9, 0.8)
    # t2: 2 + 0.9 * 0.2 - 0.3 = 1.88; t1: 0 - 0.4 = -0.4 (no bootstrap across the end);
    # t0: (1 + 0.9 * 0.4 - 0.5) + 0.9 * 0.8 * (-0.4) = 0.572
    assert adv[:, 0].tolist() == pytest.approx([0.572, -0.4, 1.88])
    assert ret[:, 0].tolist() == pytest.approx([1.072, 0.0, 2.18])
    # lambda = 1: returns are the discounted sums bootstrapped with the last value
    _, ret1 = gae(torch.ones(3, 1), torch.zeros(3, 1), torch.zeros(3, 1), torch.tensor([10.0]), 0.5, 1.0)
    assert ret1[:, 0].tolist() == pytest.approx([1 + 0.5 + 0.25 + 1.25, 1 + 0.5 + 2.5, 1 + 5.0])


def test_rollout_storage():
    r = RolloutStorage(2, 3)
    r.add({"obs": np.zeros((3, 2), np.float32), "rew": np.ones(3, np.float32)})
    r.add({"obs": np.ones((3, 2), np.float32), "rew": np.ones(3, np.float32)})
    assert r.full and r.tensors()["obs"].shape == (2, 3, 2)
    with pytest.raises(ValueError, match="full"):
        r.add({"obs": np.zeros((3, 2), np.float32), "rew": np.ones(3, np.float32)})
    r.clear()
    with pytest.raises(ValueError, match="num_envs=3"):
        r.add({"obs": np.zeros((2, 2), np.float32), "rew": np.ones(2, np.float32)})


# ----------------------------------------------------------------------------------------- collector
def _run_cartpole(mode: str, steps: int = 300):
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    env = SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(3)], autoreset_mode=getattr(AutoresetMode, mode))
    c = Collector(env, n_actions=2, seed=0)
    rng = np.random.default_rng(0)
    rows = [c.step(lambda obs, mask: (rng.integers(0, 2, (len(obs), 1)), {})) for _ in range(steps)]
    return c, rows


@pytest.mark.parametrize("mode", ["SAME_STEP", "NEXT_STEP"])
def test_collector_autoreset_modes(mode):
    c, rows = _run_cartpole(mode)
    n = sum(len(r["obs"]) for r in rows)
    assert c.env_steps == n and c.episodes > 10
    # CartPole pays 1 per step: every episode's return is its length
    assert list(c.returns) == [float(x) for x in c.lengths]
    ended = [r for r in rows if r["ended"].any()]
    for r in ended:
        i = r["ended"]
        # the stored next observation of an episode's last step is its final state (pole fallen or cart out),
        # not the next episode's start (|x| < 0.05 everywhere)
        fin = r["next_obs"][i]
        assert ((np.abs(fin[:, 0]) > 2.4) | (np.abs(fin[:, 2]) > 0.2094)).all()
    if mode == "NEXT_STEP":   # the reset step of each ended instance was dropped
        assert n == 3 * len(rows) - sum(int(r["ended"].sum()) for r in rows[:-1])
    else:
        assert n == 3 * len(rows)


def test_collector_masks_and_state_round_trip():
    from envs.bandit import MaskedBandit

    env = MaskedBandit(4, n_branches=2, n_users=3, seed=0)
    c = Collector(env, n_actions=6, seed=0)
    picks = lambda obs, mask: (mask.reshape(len(obs), 2, 3).argmax(-1), {"tag": np.arange(len(obs))})
    r = c.step(picks)
    assert r["mask"].shape == (4, 6) and r["next_mask"].shape == (4, 6) and r["tag"].tolist() == [0, 1, 2, 3]
    assert (r["rew"] >= 0).all()                       # only valid actions were taken
    state = c.state_dict()
    nxt = [c.step(picks)["obs"] for _ in range(3)]
    c2 = Collector(MaskedBandit(4, n_branches=2, n_users=3, seed=123), n_actions=6, seed=0)
    c2.load_state_dict(state)                          # env state included: the same contexts follow
    assert all((c2.step(picks)["obs"] == o).all() for o in nxt)
    with pytest.raises(ValueError, match=r"info\['action_mask'\] has shape"):
        Collector(MaskedBandit(4, n_branches=2, n_users=3), n_actions=5).reset()
    with pytest.raises(UserError, match="gymnasium vector API"):
        Collector(object())


def test_gym_vector_env_is_same_step_and_checks_its_id():
    env = GymVectorEnv("CartPole-v1", num_envs=2)
    assert env.num_envs == 2 and env.metadata["autoreset_mode"].value == "SameStep"
    with pytest.raises(ValueError, match="env_id: unknown Gymnasium env 'NoSuchEnv-v0'"):
        GymVectorEnv("NoSuchEnv-v0")
