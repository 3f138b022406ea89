"""The scheduler env as compress.rl sees it: the env check, flat branch masks, a Collector stepping both
decision loops (masked sampling over the 1LDS's 18 RBG branches), and same-step autoreset with
``final_obs`` / ``final_info["action_mask"]``."""
import numpy as np
import torch

from compress.rl.collector import Collector
from compress.rl.envs import branch_sizes, check_vector_env
from compress.rl.policies import Branches, MaskedCategorical
from envs.scheduler.env import SchedulerEnv

UE_PER_CELL = 12      # the drop of tests/test_sched_env.py (seed 5)


def _sampler(branches: Branches, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)

    def policy(obs, mask):
        logits = torch.zeros(obs.shape[0], branches.total)
        return MaskedCategorical(logits, branches, torch.as_tensor(mask)).sample(gen).numpy(), {}
    return policy


def test_collector_steps_1lds_with_masks_and_per_rbg_rewards():
    env = SchedulerEnv(setup="training", n_ue_per_cell=UE_PER_CELL, seed=5, episode_ttis=2)
    check_vector_env(env)
    sizes = branch_sizes(env)
    assert sizes == [11] * 18                                    # one branch per RBG: |U| + 1 choices
    br = Branches(sizes)
    col = Collector(env, n_actions=br.total, seed=5)
    policy = _sampler(br)
    ended_at = []
    for k in range(2 * env.n_stages + 1):                        # two TTIs: the episode ends at the 8th step
        out = col.step(policy)
        assert out["obs"].shape == (21, 410) and out["act"].shape == (21, 18) and out["rew"].shape == (21, 18)
        assert out["mask"].shape == out["next_mask"].shape == (21, 198)
        m = out["mask"].reshape(21, 18, 11)
        assert np.take_along_axis(m, out["act"][..., None], -1).all()        # only valid choices sampled
        assert (out["rew"] >= -1.0).all() and (out["rew"] <= 1.0).all()       # Eq. (21) is normalised
        none = out["act"] == 10                                               # "no allocation": 0, or +1 when
        assert np.isin(out["rew"][none], (0.0, 1.0)).all()                    # no UE would raise the PF sum
        if out["ended"].any():
            ended_at.append(k)
            assert out["ended"].all() and not out["done"].any()               # truncated, not terminated
            nm = out["next_mask"].reshape(21, 18, 11)
            assert nm[..., 10].all()                                          # the final obs's mask: "none" valid
    assert ended_at == [2 * env.n_stages - 1]
    assert col.episodes == 21 and np.isfinite(col.mean_return)


def test_collector_steps_2lds_one_rbg_per_decision():
    env = SchedulerEnv(setup="training", n_ue_per_cell=UE_PER_CELL, seed=5, design="2lds")
    assert branch_sizes(env) == [11]
    br = Branches([11])
    col = Collector(env, n_actions=11, seed=5)
    policy = _sampler(br, 1)
    for _ in range(20):
        out = col.step(policy)
        assert out["obs"].shape == (21, 81) and out["rew"].shape == (21,) and out["mask"].shape == (21, 11)
        assert out["mask"][np.arange(21), out["act"][:, 0]].all()
    assert col.env_steps == 20 * 21 and col.info["layer"] == 1 and col.info["rbg"] == 2
