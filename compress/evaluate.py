"""Task quality of everything a run produced, on the same seeds: results tables and a validation metric.

The task contract (``compress.task``) gives every task an *evaluator*: a callable
``evaluator(policy, seeds) -> {group: {metric: value}}`` that scores any policy — a module, an exported
artifact path, a baseline callable — on the same seeds (a group is e.g. a scenario; a flat
``{metric: value}`` is read as one group, ``all``).  Optional methods: ``bind(datamodule)`` (called
first, for evaluators that score on the run's data) and ``summarize(results) -> {name: value}``
(task-specific summaries of the whole table, e.g. the student's share of its teacher's throughput).

* ``EvaluateDeployed`` is an ``after_fit`` hook: it scores the baselines, the teachers, the fp32
  student and every exported artifact, and writes ``results.json``, ``results.csv`` and ``results.md``
  in the run folder (with the artifacts' bytes and latency from the export section's profile).
* ``ClosedLoopMetric`` is a callback: it scores the student being trained every N epochs and logs the
  mean of each metric as ``val/<metric>`` (and ``val/<metric>_over_<baseline>``), so an architecture
  search can maximize a task-level quality.
* ``SplitAccuracy`` is the evaluator of supervised classification: top-1 accuracy on a split of the
  run's data module.
"""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from lightning.pytorch.callbacks import Callback

from .atomic import atomic_write_text
from .errors import UserError
from .export.runner import as_numpy_policy

__all__ = ["EvaluateDeployed", "ClosedLoopMetric", "SplitAccuracy", "as_table", "write_results"]


def as_table(scores: Any) -> dict[str, dict[str, float]]:
    """An evaluator's output as ``{group: {metric: float}}``."""
    if not isinstance(scores, Mapping):
        raise UserError(f"an evaluator must return a mapping of metrics, got {type(scores).__name__}")
    if all(isinstance(v, Mapping) for v in scores.values()):
        return {str(g): {str(k): float(v) for k, v in m.items() if isinstance(v, (int, float))} for g, m in scores.items()}
    return {"all": {str(k): float(v) for k, v in scores.items() if isinstance(v, (int, float))}}


def _profile_rows(exported: Mapping) -> list[tuple[str, str]]:
    prof = (exported or {}).get("profile") or {}
    rows = []
    for name, b in (prof.get("bytes") or {}).items():
        rows.append((f"bytes: {name}", f"{b:,}" if isinstance(b, int) else str(b)))
    for runtime, lat in (prof.get("latency") or {}).items():
        if isinstance(lat, Mapping) and "p50_us" in lat:
            rows.append((f"{runtime} p50 / p99 (us, batch 1, 1 thread)", f"{lat['p50_us']:.3f} / {lat['p99_us']:.3f}"))
    return rows


def write_results(run_dir: Path, results: dict, summary: dict, exported: Mapping | None = None,
                  extra: dict | None = None) -> dict:
    """``results.json`` (everything), ``results.csv`` (one row per policy, group, metric) and
    ``results.md`` (groups x policies, then the summary and the deployed artifacts' size and speed)."""
    run_dir = Path(run_dir)
    policies = list(results)
    groups = list(dict.fromkeys(g for table in results.values() for g in table))
    metrics = list(dict.fromkeys(m for table in results.values() for row in table.values() for m in row))
    out = {"policies": results, "summary": summary, "deployed": dict(exported or {}), **(extra or {})}
    atomic_write_text(run_dir / "results.json", json.dumps(out, indent=1, default=str))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["policy", "group", "metric", "value"])
    for p in policies:
        for g, row in results[p].items():
            for m, v in row.items():
                w.writerow([p, g, m, f"{v:.6g}"])
    atomic_write_text(run_dir / "results.csv", buf.getvalue())
    lines = [f"cells: {' / '.join(metrics)}", "",
             "| group | " + " | ".join(policies) + " |", "|---|" + "---|" * len(policies)]
    for g in groups:
        cells = []
        for p in policies:
            row = results[p].get(g)
            cells.append(" / ".join(f"{row[m]:.4g}" for m in metrics if m in row) if row else "-")
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    if summary:
        lines += ["", "| summary | value |", "|---|---|"] + [f"| {k} | {v:.4f} |" if isinstance(v, float)
                                                           else f"| {k} | {v} |" for k, v in summary.items()]
    prof = _profile_rows(exported or {})
    if prof:
        lines += ["", "| deployed artifact | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in prof]
    atomic_write_text(run_dir / "results.md", "\n".join(lines) + "\n")
    return out


def _artifact_name(fmt: str) -> str:
    return {"onnx": "onnx", "onnx-int8": "onnx_int8", "c": "c", "c-int8": "c_int8"}.get(fmt, fmt)


class EvaluateDeployed:
    """``after_fit`` hook: score baselines, teachers, the student and the exported artifacts; write tables.

    Args:
        evaluator: the task's evaluator (see the module doc).
        seeds: the evaluation seeds, the same for every policy.
        baselines: ``{name: policy}`` (e.g. a heuristic the task ships).
        teachers: score the distiller's teachers (columns ``teacher:<name>``).
        student: score the trained student as PyTorch runs it (column ``student``; a QAT-trained student
            gives ``student_fp32``, its weights without int8 rounding, and ``student_qat``, fake-quantized).
        artifacts: score every exported artifact by its own runtime (columns ``onnx``, ``onnx_int8``,
            ``c``, ``c_int8``): the deployed quality.
    """

    def __init__(self, evaluator: Callable, seeds: Sequence[int] = (0,), baselines: Mapping[str, Any] | None = None,
                 teachers: bool = True, student: bool = True, artifacts: bool = True):
        if not callable(evaluator):
            raise UserError(f"EvaluateDeployed: evaluator must be callable(policy, seeds), got {type(evaluator).__name__}")
        if not seeds:
            raise UserError("EvaluateDeployed: seeds must be a non-empty list")
        self.evaluator, self.seeds = evaluator, [int(s) for s in seeds]
        self.baselines = dict(baselines or {})
        self.teachers, self.student, self.artifacts = teachers, student, artifacts

    def policies(self, module, exported: Mapping | None) -> dict[str, Any]:
        out = dict(self.baselines)
        distiller = getattr(module, "distiller", None)
        if self.teachers and distiller is not None:
            from .distill.teachers import EMATeacher, SnapshotTeacher

            for name in distiller.teacher_names:
                teacher = distiller.teacher(name)
                if not isinstance(teacher, (EMATeacher, SnapshotTeacher)):
                    out["teacher" if name == "teacher" else f"teacher:{name}"] = teacher
        student = getattr(module, "student", None)
        if self.student and student is not None:
            from .quant import float_copy, is_qat_prepared

            if is_qat_prepared(student):  # the fake-quant model, and the same weights without int8 rounding
                out["student_fp32"] = float_copy(student)
                out["student_qat"] = student
            else:
                out["student"] = student
        if self.artifacts:
            for fmt, path in ((exported or {}).get("artifacts") or {}).items():
                if ":" not in fmt:  # skip C headers and harnesses
                    out[_artifact_name(fmt)] = path
        return out

    def __call__(self, module, datamodule, run_dir, exported=None) -> dict:
        t0 = time.time()
        if hasattr(self.evaluator, "bind"):
            self.evaluator.bind(datamodule)
        results = {}
        for name, policy in self.policies(module, exported).items():
            print(f"[compress] evaluating {name} on seeds {self.seeds}", flush=True)
            results[name] = as_table(self.evaluator(policy, self.seeds))
        summary = dict(self.evaluator.summarize(results)) if hasattr(self.evaluator, "summarize") else {}
        out = write_results(Path(run_dir), results, summary, exported,
                            {"seeds": self.seeds, "eval_seconds": round(time.time() - t0, 2)})
        print((Path(run_dir) / "results.md").read_text(), flush=True)
        return out


class ClosedLoopMetric(Callback):
    """Every ``every_n_epochs`` epochs (and at the last), score the student with ``evaluator`` and log the
    mean over groups of each metric as ``val/<metric>``; with ``baseline``, also the mean per-group
    ratio ``val/<metric>_over_<baseline_name>`` (the baseline is scored once, on the same seeds)."""

    def __init__(self, evaluator: Callable, seeds: Sequence[int] = (0,), every_n_epochs: int = 1,
                 baseline: Any = None, baseline_name: str = "baseline", module_attr: str = "student"):
        if every_n_epochs < 1:
            raise UserError(f"ClosedLoopMetric: every_n_epochs must be >= 1, got {every_n_epochs}")
        self.evaluator, self.seeds, self.every = evaluator, [int(s) for s in seeds], every_n_epochs
        self.baseline, self.baseline_name, self.module_attr = baseline, baseline_name, module_attr
        self._base = None

    def on_fit_start(self, trainer, pl_module) -> None:
        if hasattr(self.evaluator, "bind"):
            self.evaluator.bind(trainer.datamodule)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
        if epoch % self.every and not last:
            return
        scores = as_table(self.evaluator(getattr(pl_module, self.module_attr), self.seeds))
        metrics = list(dict.fromkeys(m for row in scores.values() for m in row))
        for m in metrics:
            pl_module.log(f"val/{m}", float(np.mean([row[m] for row in scores.values() if m in row])), prog_bar=True)
        if self.baseline is not None:
            if self._base is None:
                self._base = as_table(self.evaluator(self.baseline, self.seeds))
            for m in metrics:
                ratios = [row[m] / self._base[g][m] for g, row in scores.items()
                          if m in row and self._base.get(g, {}).get(m)]
                if ratios:
                    pl_module.log(f"val/{m}_over_{self.baseline_name}", float(np.mean(ratios)), prog_bar=True)


class SplitAccuracy:
    """Top-1 accuracy on a split (``test`` or ``val``) of the run's data module (``bind``), for any policy
    that maps the batch input to class scores: a module, an ONNX or C artifact, a callable."""

    def __init__(self, split: str = "test", input_key: str = "x", target_key: str = "y"):
        if split not in ("test", "val"):
            raise UserError(f"SplitAccuracy: split must be 'test' or 'val', got {split!r}")
        self.split, self.input_key, self.target_key = split, input_key, target_key
        self._x = self._y = None

    def bind(self, datamodule) -> None:
        if datamodule is None:
            raise UserError("SplitAccuracy needs the run's data module (the recipe's data section)")
        datamodule.setup("test" if self.split == "test" else "validate")
        loader = datamodule.test_dataloader() if self.split == "test" else datamodule.val_dataloader()
        xs, ys = [], []
        for batch in loader:
            xs.append(np.asarray(batch[self.input_key] if isinstance(batch, Mapping) else batch[0], np.float32))
            ys.append(np.asarray(batch[self.target_key] if isinstance(batch, Mapping) else batch[1]))
        self._x, self._y = np.concatenate(xs), np.concatenate(ys)

    def __call__(self, policy, seeds=(0,)) -> dict:
        if self._x is None:
            raise UserError("SplitAccuracy: call bind(datamodule) first")
        fn = as_numpy_policy(policy)
        scores = np.concatenate([np.asarray(fn(self._x[i:i + 512])) for i in range(0, len(self._x), 512)])
        return {"acc": float((scores.reshape(len(self._y), -1).argmax(-1) == self._y).mean())}
