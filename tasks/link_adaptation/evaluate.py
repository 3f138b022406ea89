"""Closed-loop evaluation of any link-adaptation policy on the same seeds.

A policy may be
* an object with ``act(obs, env)`` (and optionally ``reset(env)``, ``update(info, truncated)``),
  e.g. ``OLLA``;
* a ``torch.nn.Module`` mapping (N, 21) observations to (N, 16) action scores (Q-values or
  logits): the greedy action is taken;
* a path to an ``.onnx`` file (fp32 or int8): run with ONNX Runtime, one intra-op thread, batched
  over links when the graph's batch dimension is dynamic, otherwise one link at a time;
* any callable ``obs -> actions``.

Fairness: for one scenario and seed, every policy sees the same channel, CQI and HARQ random
numbers, because the env draws the same amount of randomness per TTI whatever the actions
(the ACK draw is a uniform compared with the BLER). So differences are the policy's alone.
Throughput is reported in Mbit/s (bits delivered per TTI / TTI duration), mean over links, TTIs
and seeds; BLER is the NACK fraction.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from envs.link_adaptation import LinkAdaptationEnv
from envs.scenarios import get_scenario

from compress.errors import UserError

__all__ = ["evaluate", "as_policy"]


class _Callable:
    def __init__(self, fn):
        self.fn = fn

    def act(self, obs, env):
        return np.asarray(self.fn(obs)).astype(np.int64).reshape(-1)


def _torch_policy(module: torch.nn.Module):
    module.eval()

    def fn(obs):
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32))).argmax(-1).numpy()
    return fn


def _onnx_policy(path: str):
    from compress.export import ort_session

    if not os.path.isfile(path):
        raise UserError(f"ONNX policy file not found: {path}")
    sess = ort_session(path, threads=1)
    inp = sess.get_inputs()[0]
    name, batch_dim = inp.name, inp.shape[0]

    def fn(obs):
        x = np.ascontiguousarray(obs, dtype=np.float32)
        if not isinstance(batch_dim, int) or batch_dim == len(x):
            return sess.run(None, {name: x})[0].argmax(-1)
        return np.array([sess.run(None, {name: x[i:i + 1]})[0].argmax(-1)[0] for i in range(len(x))])
    return fn


def as_policy(policy):
    """Wrap a policy (see module doc) into an object with ``act(obs, env)``."""
    if hasattr(policy, "act"):
        return policy
    if isinstance(policy, torch.nn.Module):
        return _Callable(_torch_policy(policy))
    if isinstance(policy, (str, os.PathLike)):
        p = str(policy)
        if not p.endswith(".onnx"):
            raise UserError(f"policy path must be an .onnx file, got {p}")
        return _Callable(_onnx_policy(p))
    if callable(policy):
        return _Callable(policy)
    raise UserError(f"cannot use {type(policy).__name__} as a policy: need act(), nn.Module, .onnx path or callable")


def evaluate(policy, scenarios, seeds=(0,), num_links: int = 512, n_tti: int = 600,
             warmup_tti: int = 100, episode_len: int = 500, mcs_table_id: int = 1) -> dict:
    """Score ``policy`` per scenario: {name: {"throughput": Mbit/s, "bler": float, "bits_per_tti": float}}."""
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    if not len(seeds):
        raise UserError("seeds must be a non-empty list")
    if n_tti <= warmup_tti:
        raise UserError(f"n_tti ({n_tti}) must exceed warmup_tti ({warmup_tti})")
    pol = as_policy(policy)
    out = {}
    for name in scenarios:
        sc = get_scenario(name)
        bits = nacks = count = 0.0
        for seed in seeds:
            env = LinkAdaptationEnv([sc], num_links=num_links, episode_len=episode_len,
                                    mcs_table_id=mcs_table_id, seed=int(seed))
            obs, _ = env.reset(seed=int(seed))
            if hasattr(pol, "reset"):
                pol.reset(env)
            for t in range(n_tti):
                obs, r, term, trunc, info = env.step(pol.act(obs, env))
                if hasattr(pol, "update"):
                    pol.update(info, trunc)
                if t >= warmup_tti:
                    bits += float(r.sum())
                    nacks += float((~info["ack"]).sum())
                    count += num_links
        out[sc.name] = {"throughput": bits / count / sc.tti_s / 1e6, "bler": nacks / count,
                        "bits_per_tti": bits / count}
    return out
