"""Closed-loop evaluation of deep schedulers on the seed's evaluation set-up (Table 1).

``ActorPolicy(actor)`` turns an actor - an ``nn.Module``, an exported artifact path (``.onnx``, a C
export; ``compress.export.runner.as_numpy_policy`` runs it in its own runtime) or a numpy callable
``(B, n_in) -> (B, n_out)`` logits - into the env's batched ``policy(obs, info) -> actions``: one call per
decision stage on all cells at once, masked greedy decoding (argmax per RBG branch over the valid
choices, ``info["action_mask"]``; the seed deploys the actor without its softmax). The same actor runs on
either set-up: 18 RBGs in both, only the number of stages (user layers) changes, the seed's
generalisation claim (trained on 18 PRBs / abs(L) = 4 / mixed traffic, evaluated on 273 PRBs / abs(L) = 8).

``ClosedLoop(...)(policy, seeds)`` runs a policy (an actor as above, or a heuristic such as
``envs.scheduler.BaselineSDS``) on the evaluation set-up, full buffer and FTP3 separately, ``n_drops``
drops batched in one env, the same drops and random numbers for every policy (seeded), and returns
``{traffic: {p5, median, geomean (Mbit/s), ues_per_used_rbg, layers_per_used_rbg, bler[, upt_median]}}``;
``kpis=True`` keeps the per-UE arrays as well (CDFs).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from compress.errors import UserError
from compress.export.runner import as_numpy_policy

__all__ = ["ActorPolicy", "masked_greedy", "ClosedLoop", "evaluate"]


def masked_greedy(logits: np.ndarray, mask: np.ndarray, width: int) -> np.ndarray:
    """Argmax per branch over the valid choices: logits and flat mask ``(E, n * width)`` -> ``(E, n)``."""
    z = np.asarray(logits, dtype=np.float32).reshape(len(logits), -1, width)
    m = np.asarray(mask, dtype=bool).reshape(z.shape)
    return np.where(m, z, -np.inf).argmax(-1)


class ActorPolicy:
    """A deep scheduler actor as the env's policy (see the module doc)."""

    uses_obs = True

    def __init__(self, actor, name: str = "actor"):
        if not isinstance(actor, (torch.nn.Module, str, os.PathLike)) and not callable(actor):
            raise UserError(f"ActorPolicy: actor must be an nn.Module, an artifact path or a callable, got "
                            f"{type(actor).__name__}")
        self.fn = as_numpy_policy(actor)
        self.name = name

    def __call__(self, obs, info) -> np.ndarray:
        mask = info["action_mask"]
        width = mask.shape[1] if mask.ndim == 2 and "rbg" in info else None
        E = len(obs)
        if width is None:                                        # 1LDS: (E, M * (U+1)) -> (E, M)
            n_rbg = info["scores"]["dpf"].shape[1]
            return masked_greedy(self.fn(obs), mask, mask.shape[1] // n_rbg)
        return masked_greedy(self.fn(obs), mask, width)[:, 0]   # 2LDS: one RBG per stage -> (E,)


def _as_env_policy(policy):
    if callable(policy) and hasattr(policy, "uses_obs") and not isinstance(policy, torch.nn.Module):
        return policy                                             # a heuristic or an ActorPolicy
    return ActorPolicy(policy)


def evaluate(policy, seeds: Sequence[int] = (1,), traffics: Sequence[str] = ("fb", "ftp3"), n_drops: int = 10,
             n_tti: int = 400, warmup: int = 150, design: str = "1lds", kpis: bool = False, **env_kw) -> dict:
    """``{traffic: summary}`` of ``policy`` (see the module doc); several seeds are averaged."""
    from envs.scheduler import SchedulerEnv

    if not len(seeds):
        raise UserError("seeds must be a non-empty list")
    pol = _as_env_policy(policy)
    out = {}
    for tr in traffics:
        rows, raw = [], []
        for seed in seeds:
            env = SchedulerEnv(setup="evaluation", traffic=tr, n_drops=n_drops, design=design, seed=int(seed), **env_kw)
            k = env.run(pol, n_tti=n_tti, warmup=warmup, seed=int(seed))
            s = {key: k[tr][key] for key in ("p5", "median", "geomean")}     # Mbit/s (kpi.summary)
            s.update(ues_per_used_rbg=k["ues_per_used_rbg"], layers_per_used_rbg=k["layers_per_used_rbg"],
                     bler=k["bler"])
            if tr == "ftp3":
                s["upt_median"] = k["upt"]["median"]
            rows.append(s)
            raw.append(k)
        out[tr] = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
        if kpis:
            out[tr]["kpis"] = raw
    return out


class ClosedLoop:
    """The task's evaluator (``compress.task``): ``ClosedLoop(n_drops=10)(policy, seeds)``."""

    def __init__(self, traffics: Sequence[str] = ("fb", "ftp3"), n_drops: int = 10, n_tti: int = 400,
                 warmup: int = 150, design: str = "1lds"):
        bad = sorted(set(traffics) - {"fb", "ftp3"})
        if bad:
            raise UserError(f"ClosedLoop: traffics {bad} unknown; valid: fb, ftp3")
        if int(n_tti) < 1 or int(warmup) < 0 or int(n_drops) < 1:
            raise UserError(f"ClosedLoop: n_tti >= 1, warmup >= 0, n_drops >= 1 needed, got {n_tti}, {warmup}, {n_drops}")
        self.kw = dict(traffics=tuple(traffics), n_drops=int(n_drops), n_tti=int(n_tti), warmup=int(warmup),
                       design=design)

    def __call__(self, policy, seeds: Sequence[int] = (1,)) -> dict:
        return evaluate(policy, seeds=tuple(seeds), **self.kw)
