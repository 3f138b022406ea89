"""One trial: sample knobs -> check the untrained architecture -> train -> export -> re-check.

A trial rejected before training is *completed* (not pruned) with its constraint values recorded:
NSGA-II's and TPE's constraint handling then rank it below every feasible trial and learn to avoid
that region, while a pruned trial would teach the sampler nothing.  Its quality is the worst possible
value (-inf when maximizing) and its bytes/latency objectives are the measured ones (latency +inf when
it was not timed); it can never enter the feasible Pareto set.
"""
from __future__ import annotations

import copy
import math
import os
import time
from pathlib import Path

import optuna

from compress.recipe import CommandLine, Prepared, get_path, instantiate, validate_recipe
from compress.run import run

from .callbacks import active_trial
from .constraints import constraint_values, export_deployed, final_check, precheck
from .space import SPECIAL_KNOBS, SearchConfig, set_path
from .study import check_not_surplus

from compress.errors import UserError

__all__ = ["Objective", "trial_recipe"]


def _log(msg: str) -> None:
    print(f"[search] {msg}", flush=True)


def trial_recipe(base: dict, cfg: SearchConfig, params: dict, run_dir: Path) -> dict:
    """The recipe one trial trains: knob values applied, special knobs turned into callbacks."""
    out = copy.deepcopy(base)
    out.pop("search", None)
    out.pop("export", None)           # the search exports and profiles the trained student itself
    out["run_dir"] = str(run_dir)
    for path, value in params.items():
        if path not in SPECIAL_KNOBS:
            set_path(out, path, value)
    trainer = out.setdefault("trainer", {})
    trainer.setdefault("enable_progress_bar", False)
    trainer.setdefault("enable_model_summary", False)
    callbacks = list(trainer.get("callbacks") or [])
    max_epochs = int(trainer.get("max_epochs") or 1)
    ratio = float(params.get("prune_ratio", 0.0) or 0.0)
    if ratio > 0:
        callbacks.append({"class_path": "compress.prune.PruningCallback",
                          "init_args": {"target_ratio": 1.0 - ratio, "start_epoch": min(cfg.prune_epoch, max_epochs - 1),
                                        "example_input": list(cfg.input_shape)}})
    if int(params.get("bits", 32)) == 8:
        start = max(0, max_epochs - cfg.qat_epochs)
        if ratio > 0 and start <= cfg.prune_epoch:
            start = min(cfg.prune_epoch + 1, max_epochs - 1)
        callbacks.append({"class_path": "compress.quant.QATCallback", "init_args": {"start_epoch": start}})
    if not cfg.multi and cfg.pruner != "none":
        callbacks.append({"class_path": "compress.search.callbacks.OptunaPruning",
                          "init_args": {"monitor": cfg.metric}})
    trainer["callbacks"] = callbacks
    return out


def _worst(direction: str) -> float:
    return -math.inf if direction == "maximize" else math.inf


class Objective:
    """Callable for ``study.optimize``; ``base`` is the loaded recipe dict."""

    def __init__(self, base: dict, cfg: SearchConfig, recipe: Path, run_dir: Path, n_total: int | None = None):
        self.base, self.cfg, self.recipe, self.run_dir = base, cfg, Path(recipe), Path(run_dir)
        self.n_total = n_total

    def _values(self, quality: float, nbytes: float | None, p99: float | None) -> list[float]:
        table = {"quality": quality, "bytes": math.inf if nbytes is None else float(nbytes),
                 "latency": math.inf if p99 is None else float(p99)}
        return [table[o] for o in self.cfg.objectives]

    def _constrain(self, trial: optuna.Trial, nbytes, p99) -> None:
        """Record the constraint values (user attr ``constraints`` + ``Trial.set_constraint``, which
        the samplers' constraint handling and ``study.best_trials`` read)."""
        values = constraint_values(nbytes, p99, self.cfg.max_bytes, self.cfg.max_p99_us)
        trial.set_user_attr("constraints", values)
        names = [n for n, lim in (("bytes", self.cfg.max_bytes), ("p99_us", self.cfg.max_p99_us)) if lim is not None]
        for name, v in zip(names, values):
            trial.set_constraint(name, v)

    @staticmethod
    def _twin(trial: optuna.Trial):
        """An earlier complete trial with exactly these parameters (NSGA-II's crossover on a small
        population proposes repeats).  Training is seeded and deterministic on CPU, so its result is
        reused rather than paid for twice."""
        done = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        return next((t for t in done if t.params == trial.params and "duplicate_of" not in t.user_attrs), None)

    def _reuse(self, trial: optuna.Trial, twin) -> list[float]:
        for key, value in twin.user_attrs.items():
            if key not in ("worker_pid", "constraints"):
                trial.set_user_attr(key, value)
        trial.set_user_attr("duplicate_of", twin.number)
        nbytes = twin.user_attrs.get("bytes", twin.user_attrs.get("precheck_bytes"))
        p99 = twin.user_attrs.get("latency_p99_us", twin.user_attrs.get("precheck_p99_us"))
        self._constrain(trial, nbytes, p99)
        _log(f"trial {trial.number} repeats trial {twin.number}'s parameters: its result is reused, no training")
        return list(twin.values)

    def __call__(self, trial: optuna.Trial):
        cfg = self.cfg
        if self.n_total is not None:
            check_not_surplus(trial, self.n_total)
        params = {k.path: k.sample(trial) for k in cfg.knobs}
        trial.set_user_attr("arch", {k: v for k, v in params.items()})
        trial.set_user_attr("worker_pid", os.getpid())
        twin = self._twin(trial)
        if twin is not None:
            return self._reuse(trial, twin)
        trial_dir = self.run_dir / "trials" / f"{trial.number:04d}"
        rcfg = trial_recipe(self.base, cfg, params, trial_dir)
        validate_recipe(rcfg, self.recipe)
        student = instantiate(get_path(rcfg, cfg.student), cfg.student)
        bits = int(params.get("bits", 32))
        ratio = float(params.get("prune_ratio", 0.0) or 0.0)

        pre = precheck(student, cfg.input_shape, bits=bits, prune_ratio=ratio, max_bytes=cfg.max_bytes,
                       max_p99_us=cfg.max_p99_us, need_latency="latency" in cfg.objectives,
                       timing_seconds=cfg.timing_seconds)
        trial.set_user_attr("precheck_bytes", pre["bytes"])
        trial.set_user_attr("precheck_p99_us", pre["p99_us"])
        trial.set_user_attr("precheck_seconds", round(pre["seconds"], 4))
        if pre["reason"]:
            trial.set_user_attr("rejected_reason", f"before training: {pre['reason']}")
            trial.set_user_attr("trained", False)
            self._constrain(trial, pre["bytes"], pre["p99_us"])
            _log(f"trial {trial.number} rejected without training in {pre['seconds']:.2f} s: {pre['reason']} "
                 f"({_short(params)})")
            return self._values(_worst(cfg.direction), pre["bytes"], pre["p99_us"])

        t0 = time.perf_counter()
        with active_trial(trial) as state:
            cli = run("fit", Prepared(self.recipe, rcfg, CommandLine(str(self.recipe), flags={"--fresh"})))
        trial.set_user_attr("trained", True)
        trial.set_user_attr("train_seconds", round(time.perf_counter() - t0, 2))
        metrics = cli.trainer.callback_metrics
        if cfg.metric not in metrics:
            raise UserError(f"search.metric '{cfg.metric}' was not logged by the model (logged: "
                             f"{', '.join(sorted(metrics)) or 'none'})")
        quality = float(metrics[cfg.metric])
        trial.set_user_attr("quality", quality)
        if state["pruned_at"] is not None:
            trial.set_user_attr("rejected_reason", f"pruned by Optuna at epoch {state['pruned_at']}")
            self._constrain(trial, pre["bytes"], pre["p99_us"])
            _log(f"trial {trial.number} pruned at epoch {state['pruned_at']} ({cfg.metric}={quality:.4f})")
            raise optuna.TrialPruned()

        artifact = export_deployed(cli.model.student, cfg.input_shape, trial_dir)
        fin = final_check(artifact, cfg.input_shape, max_bytes=cfg.max_bytes, max_p99_us=cfg.max_p99_us,
                          timing_seconds=cfg.timing_seconds)
        trial.set_user_attr("artifact", str(artifact))
        trial.set_user_attr("bytes", fin["bytes"])
        trial.set_user_attr("latency_p99_us", fin["p99_us"])
        trial.set_user_attr("latency_p50_us", fin["p50_us"])
        trial.set_user_attr("artifact_file_bytes", fin["file_bytes"])
        self._constrain(trial, fin["bytes"], fin["p99_us"])
        if fin["reason"]:
            trial.set_user_attr("rejected_reason", f"final artifact: {fin['reason']}")
        _log(f"trial {trial.number} {cfg.metric}={quality:.4f} bytes={fin['bytes']:,} p99={fin['p99_us']:.2f}us"
             f"{' INFEASIBLE: ' + fin['reason'] if fin['reason'] else ''} ({_short(params)})")
        return self._values(quality, fin["bytes"], fin["p99_us"])


def _short(params: dict) -> str:
    return ", ".join(f"{k.split('.')[-1] if k not in SPECIAL_KNOBS else k}="
                     f"{round(v, 4) if isinstance(v, float) else v}" for k, v in params.items())
