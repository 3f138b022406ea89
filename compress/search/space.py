"""The ``search:`` section of a recipe: knobs, objectives, limits, sampler, storage.

A knob is a dotted path into the recipe (the same paths as CLI overrides, ``init_args`` written out,
list items by index) mapped to a distribution::

    model.init_args.student.init_args.hidden: {layers: [1, 3], width: [4, 256], log: true}
    model.init_args.student.init_args.activation: {choices: [relu, tanh]}
    model.init_args.distiller.init_args.terms.0.init_args.T: {low: 1.0, high: 8.0}
    trainer.max_epochs: {low: 4, high: 12}          # ints when both ends are ints
    prune_ratio: {choices: [0.0, 0.5]}              # special: fraction of parameters pruned away
    bits: {choices: [8, 32]}                        # special: 8 = QAT + int8 artifact, 32 = fp32

Design decisions:

* ``layers`` knobs sample ``<path>.depth`` and one width per *possible* layer (``<path>.w0`` ...),
  using the first ``depth`` of them.  A fixed-dimension space keeps NSGA-II's crossover working on
  every parameter (a depth-conditional space would fall back to random sampling for the widths).
* Knob paths must exist in the recipe up to their parent; the last key may be new only where the
  recipe's class validation accepts it (an ``init_args`` name of that class).  Everything is checked
  once, before any trial, by applying a sample and validating the recipe: a typo is a one-line error.
* ``prune_ratio`` and ``bits`` are not recipe paths: they add ``PruningCallback`` / ``QATCallback`` to
  the trainer of the trial and pick the deployed artifact (fp32 or int8 ONNX).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from compress.errors import RecipeError

__all__ = ["Knob", "SearchConfig", "parse_search", "set_path", "SPECIAL_KNOBS", "OBJECTIVES"]

SPECIAL_KNOBS = ("prune_ratio", "bits")
OBJECTIVES = ("quality", "bytes", "latency")
_SEARCH_KEYS = {"space", "objectives", "metric", "direction", "limits", "sampler", "population_size", "pruner",
                "n_trials", "storage", "study_name", "seed", "student", "input_shape", "runtime", "qat_epochs",
                "prune_epoch", "timing_seconds", "export_best", "heartbeat_interval", "grace_period"}
_LIMIT_KEYS = {"max_bytes", "max_p99_us"}
_KNOB_KEYS = {"low", "high", "log", "step", "choices", "layers", "width"}


@dataclass
class Knob:
    """One searched value: ``kind`` is "float" | "int" | "choice" | "layers"."""

    path: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: list = field(default_factory=list)
    depth: tuple[int, int] = (1, 1)

    def sample(self, trial) -> Any:
        """Ask ``trial`` (an optuna Trial) for this knob's value (for ``layers``: the width list)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.path, self.choices)
        if self.kind == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        if self.kind == "float":
            return trial.suggest_float(self.path, float(self.low), float(self.high), log=self.log, step=self.step)
        depth = trial.suggest_int(f"{self.path}.depth", self.depth[0], self.depth[1])
        widths = [trial.suggest_int(f"{self.path}.w{i}", int(self.low), int(self.high), log=self.log)
                  for i in range(self.depth[1])]
        return widths[:depth]

    def first_value(self) -> Any:
        """A value inside the space (used to check the knob's path before any trial)."""
        if self.kind == "choice":
            return self.choices[0]
        if self.kind == "layers":
            return [int(self.low)] * self.depth[0]
        return self.low


@dataclass
class SearchConfig:
    """The validated ``search:`` section (defaults filled in)."""

    knobs: list[Knob]
    objectives: list[str]
    directions: list[str]
    metric: str = "val/acc"
    direction: str = "maximize"
    max_bytes: float | None = None
    max_p99_us: float | None = None
    sampler: str = "nsga2"
    population_size: int = 8
    pruner: str = "median"
    n_trials: int = 12
    storage: str | None = None
    study_name: str | None = None
    seed: int = 0
    student: str = "model.init_args.student"
    input_shape: list = field(default_factory=list)
    runtime: str = "onnxruntime"
    qat_epochs: int = 2
    prune_epoch: int = 1
    timing_seconds: float = 0.2
    export_best: bool = True
    heartbeat_interval: int = 5
    grace_period: int = 20

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def knob(self, path: str) -> Knob | None:
        return next((k for k in self.knobs if k.path == path), None)


def _err(msg: str) -> RecipeError:
    return RecipeError(f"search: {msg}")


def _number(v, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise _err(f"{where} must be a number, got {v!r}")
    return v


def _parse_range(pair, where: str) -> tuple:
    if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
        raise _err(f"{where} must be [low, high], got {pair!r}")
    lo, hi = (_number(v, where) for v in pair)
    if lo > hi:
        raise _err(f"{where}: empty range [{lo}, {hi}] (low > high)")
    return lo, hi


def _parse_knob(path: str, spec: Any) -> Knob:
    where = f"space.{path}"
    if not isinstance(spec, dict):
        raise _err(f"{where} must be a mapping such as {{low: 1, high: 8}} or {{choices: [a, b]}}, got {spec!r}")
    extra = set(spec) - _KNOB_KEYS
    if extra:
        raise _err(f"{where}: unknown key '{sorted(extra)[0]}' (allowed: {', '.join(sorted(_KNOB_KEYS))})")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise _err(f"{where}.choices: empty range (give a non-empty list)")
        if set(spec) - {"choices"}:
            raise _err(f"{where}: 'choices' cannot be combined with {sorted(set(spec) - {'choices'})}")
        if path == "bits" and any(c not in (8, 32) for c in choices):
            raise _err(f"{where}.choices: bit widths must be 8 or 32, got {choices}")
        if path == "prune_ratio" and any(not isinstance(c, (int, float)) or not 0 <= c < 1 for c in choices):
            raise _err(f"{where}.choices: prune ratios must be in [0, 1), got {choices}")
        return Knob(path, "choice", choices=list(choices))
    log = bool(spec.get("log", False))
    if "layers" in spec:
        dlo, dhi = _parse_range(spec["layers"], f"{where}.layers")
        wlo, whi = _parse_range(spec.get("width"), f"{where}.width")
        if not all(isinstance(v, int) for v in (dlo, dhi, wlo, whi)) or dlo < 1 or wlo < 1:
            raise _err(f"{where}: layers and width must be integers >= 1")
        return Knob(path, "layers", low=wlo, high=whi, log=log, depth=(dlo, dhi))
    if "low" not in spec or "high" not in spec:
        raise _err(f"{where} needs low and high (or choices, or layers + width)")
    lo, hi = _parse_range([spec["low"], spec["high"]], where)
    if log and lo <= 0:
        raise _err(f"{where}: log scale needs low > 0, got {lo}")
    if path == "prune_ratio" and not (0 <= lo and hi < 1):
        raise _err(f"{where}: prune ratios must be in [0, 1), got [{lo}, {hi}]")
    if path == "bits":
        raise _err(f"{where}: bits takes choices: [8, 32]")
    kind = "int" if isinstance(lo, int) and isinstance(hi, int) and not isinstance(spec.get("step"), float) else "float"
    return Knob(path, kind, low=lo, high=hi, log=log, step=spec.get("step"))


def set_path(cfg: dict, dotted: str, value: Any) -> None:
    """Set ``dotted`` in ``cfg``; every parent must already exist (list items by index)."""
    parts = dotted.split(".")
    node: Any = cfg
    for i, part in enumerate(parts[:-1]):
        here = ".".join(parts[:i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise _err(f"unknown knob '{dotted}': '{part}' is not an index of the list at "
                           f"{'.'.join(parts[:i]) or 'recipe'} (length {len(node)})")
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise _err(f"unknown knob '{dotted}': the recipe has no '{here}'")
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise _err(f"unknown knob '{dotted}': '{last}' is not an index of its list")
        node[int(last)] = value
    elif isinstance(node, dict):
        if last not in node and not parts[-2:-1] == ["init_args"]:
            raise _err(f"unknown knob '{dotted}': the recipe has no '{dotted}' (new keys are allowed only "
                       "under a class's init_args)")
        node[last] = value
    else:
        raise _err(f"unknown knob '{dotted}': its parent is not a mapping")


def parse_search(cfg: dict, recipe: str = "recipe") -> SearchConfig:
    """Validate ``cfg["search"]`` (and each knob against the recipe); returns a ``SearchConfig``."""
    from compress.recipe import validate_recipe

    sec = cfg.get("search")
    if not isinstance(sec, dict):
        raise RecipeError(f"{recipe}: no 'search:' section (see recipes/search_digits.yaml)")
    extra = set(sec) - _SEARCH_KEYS
    if extra:
        raise _err(f"unknown key '{sorted(extra)[0]}' (allowed: {', '.join(sorted(_SEARCH_KEYS))})")
    space = sec.get("space")
    if not isinstance(space, dict) or not space:
        raise _err("space must be a non-empty mapping of knob path -> distribution")
    knobs = [_parse_knob(p, s) for p, s in _flatten(space)]
    objectives = sec.get("objectives", ["quality", "bytes"])
    if isinstance(objectives, str):
        objectives = [objectives]
    if not objectives or any(o not in OBJECTIVES for o in objectives) or len(set(objectives)) != len(objectives):
        raise _err(f"objectives must be distinct names from {list(OBJECTIVES)}, got {objectives!r}")
    direction = sec.get("direction", "maximize")
    if direction not in ("maximize", "minimize"):
        raise _err(f"direction (of the quality metric) must be maximize or minimize, got {direction!r}")
    directions = [direction if o == "quality" else "minimize" for o in objectives]
    limits = sec.get("limits") or {}
    if not isinstance(limits, dict) or set(limits) - _LIMIT_KEYS:
        raise _err(f"limits takes {sorted(_LIMIT_KEYS)}, got {limits!r}")
    for k, v in limits.items():
        if v is not None and (_number(v, f"limits.{k}") <= 0):
            raise _err(f"limits.{k} must be > 0, got {v}")
    sampler = sec.get("sampler", "nsga2" if len(objectives) > 1 else "tpe")
    if sampler not in ("nsga2", "tpe", "random"):
        raise _err(f"sampler must be nsga2, tpe or random, got {sampler!r}")
    pruner = sec.get("pruner", "median")
    if pruner not in ("median", "none", None):
        raise _err(f"pruner must be median or none, got {pruner!r}")
    input_shape = sec.get("input_shape")
    if not (isinstance(input_shape, list) and input_shape and all(isinstance(d, int) and d > 0 for d in input_shape)
            and input_shape[0] == 1):
        raise _err(f"input_shape must be the student's batch-1 input shape such as [1, 64], got {input_shape!r}")
    runtime = sec.get("runtime", "onnxruntime")
    if runtime != "onnxruntime":
        raise _err(f"runtime {runtime!r} is not supported by the search yet (onnxruntime; bits: 8 selects its "
                   "int8 kernels)")
    out = SearchConfig(knobs=knobs, objectives=list(objectives), directions=directions,
                       metric=str(sec.get("metric", "val/acc")), direction=direction,
                       max_bytes=limits.get("max_bytes"), max_p99_us=limits.get("max_p99_us"), sampler=sampler,
                       pruner=pruner or "none", input_shape=input_shape, runtime=runtime)
    for key, typ, lo in (("population_size", int, 2), ("n_trials", int, 1), ("seed", int, 0), ("qat_epochs", int, 1),
                         ("prune_epoch", int, 0), ("timing_seconds", (int, float), 0.01),
                         ("heartbeat_interval", int, 1), ("grace_period", int, 2)):
        if key in sec:
            v = sec[key]
            if isinstance(v, bool) or not isinstance(v, typ) or v < lo:
                raise _err(f"{key} must be {'an int' if typ is int else 'a number'} >= {lo}, got {v!r}")
            setattr(out, key, v)
    for key in ("storage", "study_name", "student"):
        if sec.get(key) is not None:
            if not isinstance(sec[key], str) or not sec[key]:
                raise _err(f"{key} must be a string, got {sec[key]!r}")
            setattr(out, key, sec[key])
    out.export_best = bool(sec.get("export_best", True))
    if sec.get("heartbeat_interval") is not None and out.grace_period <= out.heartbeat_interval:
        raise _err("grace_period must be longer than heartbeat_interval")
    # every knob path must be reachable, and the recipe must still validate with the knob's value in it
    _get(cfg, out.student, "student")
    probe = {k: v for k, v in copy.deepcopy(cfg).items() if k != "search"}
    for knob in knobs:
        if knob.path in SPECIAL_KNOBS:
            continue
        set_path(probe, knob.path, knob.first_value())
        try:
            validate_recipe(probe, recipe)
        except RecipeError as exc:
            raise _err(f"unknown knob '{knob.path}': {exc}") from None
    return out


def _flatten(space: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """Knob paths may be written dotted (``a.b.c: {...}``) or nested (``a: {b: {c: {...}}}``, which is
    what a CLI override such as ``--search.space.model.init_args.lr='{low: 1e-3, high: 1e-2}'``
    produces); a mapping with any distribution key (low/high/choices/layers...) is a knob."""
    out = []
    for key, spec in space.items():
        path = f"{prefix}{key}"
        if isinstance(spec, dict) and spec and not (set(spec) & _KNOB_KEYS) and \
                all(isinstance(v, dict) for v in spec.values()):
            out += _flatten(spec, f"{path}.")
        else:
            out.append((path, spec))
    return out


def _get(cfg: dict, dotted: str, what: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise _err(f"{what} path '{dotted}' is not in the recipe")
    return node
