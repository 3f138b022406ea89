"""A toy task built exactly as the README's "Add a task" says: an env, a data module, a student
factory, an evaluator, one recipe (``recipe.yaml``) — and no subclass of any framework module.

The env is a contextual bandit: each step every instance observes ``x`` in [-1, 1]^4 and picks one of
8 actions; the reward is ``exp(-(a - a*(x))^2)`` around the best action ``a*(x)``, which depends on the
scenario (``a`` or ``b``).  The teacher is the exact algorithm (it computes every action's reward), the
student a small MLP distilled from it by ``terms.Policy``.
"""
from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from compress.data import EpochBatches
from compress.export.runner import as_numpy_policy
from compress.models import MLP

N_OBS, N_ACTIONS = 4, 8
_W = {"a": np.array([1.0, -0.5, 0.25, 0.0]), "b": np.array([-0.5, 0.0, 1.0, 0.75])}


def best_action(x: np.ndarray, scenario: str) -> np.ndarray:
    return np.clip(np.round(3.5 + 3.5 * np.tanh(2.0 * x @ _W[scenario])), 0, N_ACTIONS - 1)


class ToyEnv:
    """A vector env (Gymnasium's reset/step shapes) of ``n`` independent bandit instances."""

    def __init__(self, n: int = 64, scenario: str = "a"):
        if scenario not in _W:
            raise ValueError(f"ToyEnv: scenario must be one of {sorted(_W)}, got {scenario!r}")
        self.num_envs, self.scenario, self.rng = n, scenario, np.random.default_rng(0)

    def _obs(self):
        self.x = self.rng.uniform(-1, 1, (self.num_envs, N_OBS)).astype(np.float32)
        return self.x

    def reset(self, seed=None):
        self.rng = np.random.default_rng(seed)
        return self._obs(), {}

    def step(self, actions):
        reward = np.exp(-(np.asarray(actions) - best_action(self.x, self.scenario)) ** 2)
        done = np.zeros(self.num_envs, bool)
        return self._obs(), reward, done, done, {}


class Oracle(nn.Module):
    """The algorithmic teacher: the reward of every action (scenario ``a``), as action scores."""

    def __init__(self, scenario: str = "a"):
        super().__init__()
        self.scenario = scenario

    def forward(self, x):
        best = torch.as_tensor(best_action(x.detach().numpy(), self.scenario), dtype=torch.float32)
        actions = torch.arange(N_ACTIONS, dtype=torch.float32)
        return torch.exp(-(actions[None, :] - best[:, None]) ** 2)


class ToyStudent(MLP):
    """The student factory (a class, so a recipe can name it): its architecture knob is ``hidden``."""

    def __init__(self, hidden=(32,)):
        super().__init__(N_OBS, N_ACTIONS, hidden=list(hidden))


class _States(Dataset):
    def __init__(self, x):
        self.x = torch.as_tensor(x)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        idx = torch.as_tensor(idx)
        return {"x": self.x[idx], "index": idx}


class ToyStates(pl.LightningDataModule):
    """States for distillation: observations the env produces (labels come from the teacher)."""

    def __init__(self, n: int = 4096, batch_size: int = 128, seed: int = 0):
        super().__init__()
        self.n, self.batch_size, self.seed = n, batch_size, seed

    def train_dataloader(self):
        env = ToyEnv(self.n)
        x, _ = env.reset(seed=self.seed)
        ds = _States(x)
        return DataLoader(ds, sampler=EpochBatches(len(ds), self.batch_size, self.seed), batch_size=None)


class RandomPolicy:
    """A baseline: uniform random action scores."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def __call__(self, x):
        return self.rng.random((len(x), N_ACTIONS))


class ToyEvaluator:
    """``evaluator(policy, seeds) -> {scenario: {"reward", "optimal"}}``: mean reward and share of optimal
    actions of the greedy action, over ``steps`` steps of ``n`` instances per seed."""

    def __init__(self, scenarios=("a",), n: int = 256, steps: int = 10):
        self.scenarios, self.n, self.steps = list(scenarios), n, steps

    def __call__(self, policy, seeds=(0,)):
        fn = as_numpy_policy(policy)
        out = {}
        for sc in self.scenarios:
            rewards, optimal = [], []
            for seed in seeds:
                env = ToyEnv(self.n, sc)
                obs, _ = env.reset(seed=int(seed))
                for _ in range(self.steps):
                    a = np.asarray(fn(obs)).argmax(-1)
                    optimal.append(a == best_action(obs, sc))
                    obs, r, *_ = env.step(a)
                    rewards.append(r)
            out[sc] = {"reward": float(np.mean(rewards)), "optimal": float(np.mean(optimal))}
        return out

    def summarize(self, results):
        if "teacher" in results and "student" in results:
            t, s = results["teacher"]["a"]["reward"], results["student"]["a"]["reward"]
            return {"student_over_teacher": s / t}
        return {}
