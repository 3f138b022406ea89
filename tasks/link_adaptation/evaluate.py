"""Closed-loop evaluation of any link-adaptation policy on the same seeds.

A policy may be
* an object with ``act(obs, env)`` (and optionally ``reset(env)``, ``update(info, truncated)``),
  e.g. ``OLLA``;
* a ``torch.nn.Module`` mapping (N, 21) observations to (N, 16) action scores (Q-values or
  logits): the greedy action is taken;
* an exported artifact: an ``.onnx`` file (fp32 or int8; ONNX Runtime, one intra-op thread, batched
  over links when the graph's batch dimension is dynamic, otherwise one link at a time) or a C export
  (compiled and called through ctypes, one link at a time) — ``compress.export.runner``;
* any callable ``obs -> actions``.

Fairness: for one scenario and seed, every policy sees the same channel, CQI and HARQ random
numbers, because the env draws the same amount of randomness per TTI whatever the actions
(the ACK draw is a uniform compared with the BLER). So differences are the policy's alone.
Throughput is reported in Mbit/s (bits delivered per TTI / TTI duration), mean over links, TTIs
and seeds; BLER is the NACK fraction.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from envs.link_adaptation import LinkAdaptationEnv
from envs.scenarios import get_scenario

from compress.errors import UserError
from compress.export.runner import as_numpy_policy

__all__ = ["evaluate", "as_policy", "ClosedLoop"]


class _Callable:
    def __init__(self, fn, scores: bool):
        self.fn, self.scores = fn, scores

    def act(self, obs, env):
        out = np.asarray(self.fn(obs))
        return (out.argmax(-1) if self.scores else out).astype(np.int64).reshape(-1)


def as_policy(policy):
    """Wrap a policy (see module doc) into an object with ``act(obs, env)``: modules and artifacts run
    through ``compress.export.runner.as_numpy_policy`` (the artifact's own runtime) and act greedily."""
    if hasattr(policy, "act"):
        return policy
    if isinstance(policy, (torch.nn.Module, str, os.PathLike)):
        return _Callable(as_numpy_policy(policy), scores=True)
    if callable(policy):
        return _Callable(policy, scores=False)
    raise UserError(f"cannot use {type(policy).__name__} as a policy: need act(), nn.Module, an artifact "
                    "path (.onnx or C export) or a callable")


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


class ClosedLoop:
    """The task's evaluator (``compress.task``): ``ClosedLoop(...)(policy, seeds)`` ->
    ``{scenario: {"throughput": Mbit/s, "bler": ...}}`` on ``scenarios`` (default: every training and
    held-out scenario), for ``compress.evaluate.EvaluateDeployed`` (results tables of OLLA, the teachers,
    the student and each deployed artifact) and ``ClosedLoopMetric`` (a validation metric).

    ``bind(datamodule)`` reads which teacher taught which scenario group (``LARolloutData``'s
    ``teacher_of``); ``summarize(results)`` then gives, per split, each student column's mean throughput
    ratio to the teacher of its scenario's group (held-out scenarios by group) and to OLLA."""

    def __init__(self, scenarios: Sequence[str] | None = None, num_links: int = 512, n_tti: int = 600,
                 warmup_tti: int = 100, episode_len: int = 500):
        from envs.scenarios import HELDOUT, TRAIN

        self.scenarios = [get_scenario(s).name for s in (scenarios or TRAIN + HELDOUT)]
        if n_tti <= warmup_tti:
            raise UserError(f"ClosedLoop: n_tti ({n_tti}) must exceed warmup_tti ({warmup_tti})")
        self.kw = dict(num_links=int(num_links), n_tti=int(n_tti), warmup_tti=int(warmup_tti),
                       episode_len=int(episode_len))
        self.group_route: dict[str, int] | None = None

    def bind(self, datamodule) -> None:
        scenarios, route = getattr(datamodule, "scenarios", None), getattr(datamodule, "route", None)
        self.group_route = None if scenarios is None or route is None else {
            get_scenario(s).group: int(r) for s, r in zip(scenarios, route)}

    def __call__(self, policy, seeds: Sequence[int] = (0,)) -> dict:
        return evaluate(policy, self.scenarios, seeds=tuple(seeds), **self.kw)

    def teacher_column(self, results: dict, scenario: str) -> str | None:
        """The column of the teacher that taught ``scenario``'s group (teachers in the distiller's order)."""
        teachers = [c for c in results if c == "teacher" or c.startswith("teacher:")]
        if len(teachers) == 1:
            return teachers[0]
        if not teachers or self.group_route is None:
            return None
        k = self.group_route.get(get_scenario(scenario).group)
        return teachers[k] if k is not None and k < len(teachers) else None

    def summarize(self, results: dict) -> dict:
        students = [c for c in results if c.startswith("student") or c in ("onnx", "onnx_int8", "c", "c_int8")]
        out = {}
        for split in ("train", "heldout"):
            names = [s for s in self.scenarios if get_scenario(s).split == split]
            taught = [(s, self.teacher_column(results, s)) for s in names]
            taught = [(s, t) for s, t in taught if t is not None and s in results[t]]
            thr = lambda col, s: results[col][s]["throughput"]  # noqa: E731
            for col in students:
                if taught:
                    out[f"{split}_{col}_over_teacher"] = float(np.mean([thr(col, s) / thr(t, s) for s, t in taught]))
                if "olla" in results and names:
                    out[f"{split}_{col}_over_olla"] = float(np.mean([thr(col, s) / thr("olla", s) for s in names]))
            if taught and "olla" in results:
                out[f"{split}_teacher_over_olla"] = float(np.mean([thr(t, s) / thr("olla", s) for s, t in taught]))
        return out
