"""Run any policy the framework produces on numpy batches: a module, an exported artifact, a callable.

``as_numpy_policy(policy)`` returns ``fn(x: np.ndarray (B, ...)) -> np.ndarray (B, ...)``:

* an ``nn.Module``: eval mode, ``no_grad``, float32 in and out;
* an ``.onnx`` file (fp32 or int8): ONNX Runtime with one thread, the whole batch at once when the
  graph's batch dimension is dynamic, else row by row;
* a C export (``<name>.c`` with ``<name>.h`` beside it, or the folder holding them): compiled once into a
  shared library (``compress.export.compile_c``) and called through ``ctypes`` row by row — exactly the
  code a base station would link, not a Python re-implementation;
* any other callable: called as is.

Tasks use it so that their ``evaluate(policy, seeds)`` scores the deployed artifact itself.
"""
from __future__ import annotations

import ctypes
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from compress.errors import UserError

__all__ = ["as_numpy_policy", "load_artifact"]


def _module_fn(module: torch.nn.Module) -> Callable:
    def fn(x):
        was = module.training
        module.eval()
        try:
            with torch.no_grad():
                out = module(torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)))
        finally:
            module.train(was)
        return out.detach().numpy()
    return fn


def _onnx_fn(path: Path) -> Callable:
    from compress.export.onnx_export import ort_session

    sess = ort_session(path, threads=1)
    inp = sess.get_inputs()[0]
    name, batch_dim = inp.name, inp.shape[0]

    def fn(x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not isinstance(batch_dim, int) or batch_dim == len(x):
            return sess.run(None, {name: x})[0]
        return np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])
    return fn


def _c_files(path: Path) -> tuple[Path, Path, str]:
    c = path
    if path.is_dir():
        cs = [f for f in sorted(path.glob("*.c")) if not f.stem.endswith("_harness")]
        c = cs[0] if cs else None
    if c is None or not c.is_file():
        raise UserError(f"{path}: no C export (<name>.c with <name>.h) found")
    h = c.with_suffix(".h")
    if not h.is_file():
        raise UserError(f"{c} needs its header {h.name} beside it (input/output sizes)")
    return c, h, c.stem


def _c_fn(path: Path) -> Callable:
    from compress.export.c_export import compile_c, read_io_sizes

    c, h, name = _c_files(path)
    n_in, n_out = read_io_sizes(h, name)
    lib_dir = Path(tempfile.mkdtemp(prefix="compress-c-"))
    lib = ctypes.CDLL(str(compile_c([c], lib_dir / f"lib{name}.so", shared=True)))
    forward = getattr(lib, f"{name}_forward")
    forward.restype = None
    forward.argtypes = [ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]

    def fn(x):
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
        if x.shape[1] != n_in:
            raise UserError(f"{c}: expects rows of {n_in} values, got shape {tuple(x.shape)}")
        out = np.empty((len(x), n_out), dtype=np.float32)
        fptr = ctypes.POINTER(ctypes.c_float)
        for i in range(len(x)):
            forward(x[i].ctypes.data_as(fptr), out[i].ctypes.data_as(fptr))
        return out
    return fn


def load_artifact(path: str | os.PathLike) -> Callable:
    """A numpy callable running an exported artifact (``.onnx``, a C export file or folder)."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"artifact not found: {p}")
    if p.suffix == ".onnx":
        return _onnx_fn(p)
    if p.suffix in (".c", ".h") or p.is_dir():
        return _c_fn(p.with_suffix(".c") if p.suffix == ".h" else p)
    raise UserError(f"{p}: not a deployable artifact (an .onnx file, or a C export's .c or folder)")


def as_numpy_policy(policy) -> Callable:
    """See the module doc."""
    if isinstance(policy, torch.nn.Module):
        return _module_fn(policy)
    if isinstance(policy, (str, os.PathLike)):
        return load_artifact(policy)
    if callable(policy):
        return policy
    raise UserError(f"cannot use {type(policy).__name__} as a policy: give an nn.Module, an artifact path "
                    "(.onnx or C export) or a callable")
