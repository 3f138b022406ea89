"""Link-adaptation task on the task contract (``compress.task``): the env is
``envs.link_adaptation.LinkAdaptationEnv``; ``LARolloutData`` rolls it out with the teachers and the
student (DAgger); ``student_factory`` builds the MLP student; ``ClosedLoop`` is the evaluator (OLLA,
teachers, student and deployed artifacts on the same seeds); ``OLLA`` is the baseline.  The DQN teachers
are ``compress.rl.DQN`` on the env (``recipes/la_teacher_*.yaml``); the student is distilled by the
framework's ``DistillationModule`` (``recipes/la_multi_teacher.yaml``, the main job).

Submodules are imported lazily so that ``import tasks.link_adaptation.olla`` does not pull in
Lightning."""
from __future__ import annotations

import importlib

_LAZY = {
    "OLLA": "olla", "evaluate": "evaluate", "as_policy": "evaluate", "ClosedLoop": "evaluate",
    "LARolloutData": "data", "rollout_states": "data", "student_factory": "students",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
