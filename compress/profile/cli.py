"""``profile TARGET [--input-shape 1,16] [--runtimes ...] [--json]`` (``python -m compress profile``,
``tools/profile_artifact.py``).

TARGET is one of
- an exported artifact: ``.onnx``, a C export directory (or its ``.c``/``.h``), a ``.so`` with its header;
- a checkpoint (``.pt``/``.pth``/``.ckpt``) holding a module structure (written by
  ``compress.prune.save_module`` or by a fit with a ``PruningCallback``): loaded with
  ``torch.load(weights_only=True)`` and rebuilt from trusted classes only (``--trust PREFIX`` adds
  module prefixes you trust; see compress.serialize for the trust model);
- a recipe (``.yaml``/``.yml``): its student is built by the function registered with
  ``set_recipe_builder(fn)`` (``fn(path) -> nn.Module`` or ``(nn.Module, example_input)``); the
  framework CLI registers it.

Bad input (a file that is not a model, an input shape that does not fit) is a one-line error on
stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from compress.errors import UserError

__all__ = ["main", "set_recipe_builder", "build_parser", "load_checkpoint_module"]

_RECIPE_BUILDER: Callable | None = None
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
RECIPE_SUFFIXES = (".yaml", ".yml")


def set_recipe_builder(fn: Callable | None) -> None:
    """Register ``build_student_from_recipe(path) -> nn.Module | (nn.Module, example_input)``."""
    global _RECIPE_BUILDER
    _RECIPE_BUILDER = fn


def build_parser() -> argparse.ArgumentParser:
    from compress.profile.latency import RUNTIMES

    ap = argparse.ArgumentParser(prog="compress profile", description="Params, MACs, bytes and latency "
                                 "(batch 1, one thread, fresh process) of a model or an exported artifact.")
    ap.add_argument("target", help=".onnx | C export dir/.c/.h | .so | checkpoint (.pt/.ckpt) | recipe (.yaml)")
    ap.add_argument("--input-shape", default=None, help="e.g. 1,16 (default: from the artifact or first layer)")
    ap.add_argument("--runtimes", nargs="+", default=None, choices=RUNTIMES, metavar="RUNTIME",
                    help=f"any of {', '.join(RUNTIMES)} (default: all that apply)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--trust", action="append", default=[], metavar="PREFIX",
                    help="also trust classes from this module prefix when rebuilding a checkpoint")
    ap.add_argument("--workdir", default=None, help="keep the built artifacts here")
    ap.add_argument("--seconds", type=float, default=0.4, help="timing budget per runtime (s)")
    ap.add_argument("--repeats", type=int, default=5)
    return ap


def _parse_shape(text: str | None):
    if text is None:
        return None
    try:
        shape = [int(d) for d in text.replace("x", ",").split(",") if d.strip()]
    except ValueError:
        raise UserError(f"--input-shape must be comma-separated ints such as 1,16, got {text!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise UserError(f"--input-shape must be positive ints such as 1,16, got {text!r}")
    return shape


def load_checkpoint_module(path: Path, trusted=()):
    """(module, stored input shape or None) from a checkpoint with a module structure."""
    import json

    import torch

    from compress.serialize import SPEC_KEY, module_from_checkpoint

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise UserError(f"{path} holds pickled Python objects and is not loaded (weights_only=True); "
                             "save the model with compress.prune.save_module") from None
        raise UserError(f"{path} is not a model checkpoint: {first[:160]}") from None
    if not isinstance(ckpt, dict):
        raise UserError(f"{path} is not a model checkpoint (it holds a {type(ckpt).__name__})")
    if SPEC_KEY not in ckpt:
        raise UserError(f"{path} holds weights but no module structure; save it with "
                         "compress.prune.save_module(model, path, meta={'input_shape': [1, n]}) or profile its recipe")
    module = module_from_checkpoint(ckpt, trusted=tuple(trusted), source=str(path))
    meta = json.loads(ckpt["meta"]) if isinstance(ckpt.get("meta"), str) else {}
    return module, meta.get("input_shape")


def _default_shape(module) -> list[int]:
    from torch import nn

    first = next((m for m in module.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd, nn.RNNBase))),
                 None)
    if isinstance(first, nn.Linear):
        return [1, first.in_features]
    raise UserError("cannot infer the input shape of this model (first layer is not Linear); pass --input-shape")


def run(args) -> "object":
    from compress.profile.profile import DEFAULT_RUNTIMES, profile_artifact, profile_model

    target = Path(args.target)
    shape = _parse_shape(args.input_shape)
    suffix = target.suffix.lower()
    if suffix in RECIPE_SUFFIXES:
        if not target.is_file():
            raise UserError(f"recipe {target} does not exist")
        if _RECIPE_BUILDER is None:
            raise UserError("profiling a recipe needs the framework CLI (python -m compress profile RECIPE), "
                             "which registers the student builder")
        built = _RECIPE_BUILDER(target)
        module, example = built if isinstance(built, tuple) else (built, None)
        if example is None:
            example = shape or _default_shape(module)
        return profile_model(module, example, runtimes=args.runtimes or DEFAULT_RUNTIMES, workdir=args.workdir,
                             seconds=args.seconds, repeats=args.repeats, name=str(target))
    if suffix in CHECKPOINT_SUFFIXES:
        if not target.is_file():
            raise UserError(f"checkpoint {target} does not exist")
        module, stored = load_checkpoint_module(target, args.trust)
        example = shape or stored or _default_shape(module)
        return profile_model(module, example, runtimes=args.runtimes or DEFAULT_RUNTIMES, workdir=args.workdir,
                             seconds=args.seconds, repeats=args.repeats, name=str(target))
    return profile_artifact(target, shape, runtimes=args.runtimes, seconds=args.seconds, repeats=args.repeats)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        prof = run(args)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(prof.to_json() if args.json else prof.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
