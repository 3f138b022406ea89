"""Link-adaptation task adapter (issue 5): OLLA baseline, policy-distillation data and module, closed-loop
evaluation, and the main job (``python -m tasks.link_adaptation.run RECIPE``). The DQN teachers need no
adapter: ``recipes/la_teacher_*.yaml`` run the generic ``compress.rl.DQN`` on an
``envs.link_adaptation.LinkAdaptationEnv`` given as an env spec.

Submodules are imported lazily so that ``import tasks.link_adaptation.olla`` does not pull in
Lightning."""
from __future__ import annotations

import importlib

_LAZY = {
    "OLLA": "olla", "evaluate": "evaluate", "as_policy": "evaluate", "LARolloutData": "data",
    "rollout_states": "data", "LADistillModule": "module", "student_factory": "module",
    "run_job": "run",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
