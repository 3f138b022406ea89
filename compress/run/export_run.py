"""``python -m compress export RECIPE``: re-run the ``export`` section on a finished run's ``student.pt``."""
from __future__ import annotations

from ..errors import UserError
from ..recipe import instantiate, prepare

__all__ = ["export_run"]


def export_run(args: list[str]) -> dict:
    prepared = prepare(None, args, command="export")
    student_file = prepared.run_dir / "student.pt"
    if not student_file.is_file():
        raise UserError(f"{student_file} not found: run 'python -m compress fit {prepared.path}' first")
    from .export_section import export_student
    from ..prune import load_module

    with prepared.allowing():
        student = load_module(student_file, trusted=("tasks", "envs"))
        cfg = prepared.cfg
        dm = instantiate(cfg["data"], "data") if "data" in cfg else None
        if dm is not None and hasattr(dm, "set_policies"):   # a rollout data module (DAgger): the recipe's
            from ..task import policies_of                 # teachers and the trained student roll out

            teachers, _ = policies_of(instantiate(cfg["model"], "model"))
            dm.set_policies(teachers, student)
        return export_student(student, dm, cfg.get("export") or {"onnx": True, "profile": True}, prepared.run_dir)
