"""Deep MU-MIMO schedulers (seed 004, Kela et al.) on the task contract (``compress.task``).

* env: ``envs.scheduler.SchedulerEnv`` (training set-up for the RL algorithms of ``compress.rl``), optionally
  wrapped by ``PermutedCandidates`` (the seed's candidate-shuffling augmentation, Algorithm 2 line 10);
* networks: ``Actor1LDS`` / ``Critic1LDS`` / ``Actor2LDS`` / ``Critic2LDS`` (``models``, the seed's flat MLPs)
  and ``Shared1LDS`` (``shared``: one small MLP over every (candidate, RBG) pair, the DSACD teacher);
* evaluator: ``ClosedLoop`` (the evaluation set-up, FB and FTP3, Table 1 KPIs) and ``ActorPolicy`` (any
  actor - a module, an ONNX or C artifact - as the env's batched ``policy(obs, info)``);
* recipes: ``recipes/sched_*.yaml``; bench: ``tools/bench_sched.py``.

Submodules are imported lazily (``tasks.scheduler.models`` does not pull in the env)."""
from __future__ import annotations

import importlib

_LAZY = {
    "Actor1LDS": "models", "Shared1LDS": "shared", "Critic1LDS": "models", "Actor2LDS": "models", "Critic2LDS": "models",
    "ActorPolicy": "evaluate", "ClosedLoop": "evaluate", "evaluate": "evaluate",
    "PermutedCandidates": "augment", "WithExpert": "expert", "SchedRolloutData": "data", "permute_1lds": "augment", "permute_2lds": "augment",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
