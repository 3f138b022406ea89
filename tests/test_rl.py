"""Generic DQN (compress.rl) on toy vector envs: it must learn, handle autoreset, and reject bad input."""
import lightning.pytorch as pl
import numpy as np
import pytest
from compress.errors import UserError
import torch
from torch import nn

from compress.rl import DQN, ReplayBuffer, greedy_policy


class ContextBandit:
    """N parallel one-step problems: obs = one-hot context k of 4; reward 1 iff action == (k + 1) % 4."""

    def __init__(self, n=64, seed=0):
        self.num_envs, self.rng = n, np.random.default_rng(seed)

    def _obs(self):
        self.k = self.rng.integers(0, 4, self.num_envs)
        return np.eye(4, dtype=np.float32)[self.k]

    def reset(self, seed=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        return self._obs(), {}

    def step(self, a):
        r = (np.asarray(a) == (self.k + 1) % 4).astype(np.float64)
        return self._obs(), r, np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool), {}


class Chain:
    """Two-step episodes: step 0 (obs [1,0]) gives 0 reward for either action, but action 1 leads to a
    state (obs [0,1]) where action 0 pays 1; action 0 at step 0 leads to a dead state paying nothing.
    Needs gamma > 0: a myopic agent is indifferent at step 0. Terminates after 2 steps (same-step
    autoreset, the last obs in info["final_obs"])."""

    def __init__(self, n=64):
        self.num_envs = n

    def reset(self, seed=None):
        self.t = np.zeros(self.num_envs, int)
        self.good = np.zeros(self.num_envs, bool)
        return self._obs(), {}

    def _obs(self):
        o = np.zeros((self.num_envs, 3), np.float32)
        o[self.t == 0, 0] = 1
        o[(self.t == 1) & self.good, 1] = 1
        o[(self.t == 1) & ~self.good, 2] = 1
        return o

    def step(self, a):
        a = np.asarray(a)
        r = np.where((self.t == 1) & self.good & (a == 0), 1.0, 0.0)
        self.good = np.where(self.t == 0, a == 1, self.good)
        self.t = self.t + 1
        term = self.t >= 2
        final = self._obs()
        self.t[term] = 0
        obs = self._obs()
        return obs, r, term, np.zeros(self.num_envs, bool), {"final_obs": final, "_final_obs": term}


def _fit(module, steps):
    pl.seed_everything(0)
    module.steps_per_epoch = steps
    pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(module)


def test_dqn_learns_contextual_bandit():
    torch.manual_seed(0)
    env = ContextBandit()
    q = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 4))
    _fit(DQN(env, q, gamma=0.0, lr=1e-2, batch_size=128, eps_decay_frac=0.3, seed=0), 200)
    act = greedy_policy(q)(np.eye(4, dtype=np.float32))
    assert act.tolist() == [1, 2, 3, 0]


def test_dqn_bootstraps_through_final_obs():
    torch.manual_seed(0)
    env = Chain()
    q = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 2))
    m = DQN(env, q, gamma=0.9, lr=1e-2, batch_size=128, eps_decay_frac=0.3, tau=0.05, seed=0)
    _fit(m, 400)
    with torch.no_grad():
        qv = q(torch.eye(3))
    assert qv[0].argmax() == 1 and qv[1].argmax() == 0   # go to the good state, then collect
    assert qv[0, 1].item() == pytest.approx(0.9, abs=0.15)  # gamma * 1
    assert qv[1, 0].item() == pytest.approx(1.0, abs=0.15)
    # episode-ending transitions must store the final obs, not the next episode's start obs [1, 0, 0]
    b = m.buffer
    second = b.obs[: b.size, 0] == 0
    assert (b.next_obs[: b.size][second, 0] == 0).all()


def test_replay_buffer_wraps():
    b = ReplayBuffer(5, 2)
    for i in range(3):
        b.add(np.full((2, 2), i, np.float32), np.array([i, i]), np.ones(2), np.zeros((2, 2)), np.zeros(2))
    assert b.size == 5 and b.pos == 1
    assert sorted(b.act.tolist()) == [0, 1, 1, 2, 2] or sorted(b.act.tolist()) == [1, 1, 2, 2, 2]
    assert b.act[0] == 2  # the 6th transition overwrote slot 0
    s = b.sample(7, np.random.default_rng(0))
    assert s["obs"].shape == (7, 2) and s["act"].dtype == torch.int64


def test_bad_input():
    q = nn.Linear(4, 4)
    with pytest.raises(UserError, match="gymnasium vector API"):
        DQN(object(), q)
    with pytest.raises(ValueError, match="gamma"):
        DQN(ContextBandit(), q, gamma=1.0)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, 3)
