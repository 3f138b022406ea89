"""Save and load a module's *structure* with its weights, safely, so a pruned model reloads without
the code that built the original (unpruned) architecture.

Why: structured pruning changes layer shapes (``Linear(64, 512)`` becomes ``Linear(64, 128)``), so
the usual ``Model(**hparams).load_state_dict(sd)`` fails with shape mismatches.  Pickling the whole
module (``torch.save(model)``) would work but can only be read back by full unpickling, i.e. arbitrary code
execution on load.  Instead we store a *module spec*:

- a JSON tree: for each module its class (``module:qualname``), its plain attributes (None, bool, int,
  float, str, lists/tuples/dicts of those, torch.dtype), the names of its parameters and buffers,
  and its children in registration order;
- the tensors as an ordinary ``state_dict`` (plus non-persistent buffers, kept apart).

The file is a dict of strings and tensors, so ``torch.load(..., weights_only=True)`` reads it.

Trust model: loading never unpickles Python objects.  It imports the classes named in the spec,
but only from trusted module prefixes (always ``torch.nn`` and ``compress``; pass more, e.g.
``trusted=("tasks", "mypkg")``, when you trust the checkpoint's author), checks that each is an
``nn.Module`` subclass, creates it with ``cls.__new__`` + ``nn.Module.__init__`` (its ``__init__``
is NOT called, so no constructor arguments are needed) and sets the stored plain attributes.
A malicious file can therefore only pick among trusted classes and plain attribute values.

Limits: forward/backward hooks, parametrizations (``weight_norm``) and attributes that are not
plain data (a stored function, a tensor that is not a registered buffer) are not serializable; the
error names the module path and attribute so you can make it a submodule or buffer instead.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from .atomic import atomic_torch_save

from compress.errors import UserError, first_line

__all__ = [
    "FORMAT",
    "SPEC_KEY",
    "load_weights_only",
    "module_spec",
    "build_from_spec",
    "save_module",
    "load_module",
    "module_from_checkpoint",
    "spec_checkpoint_entry",
    "DEFAULT_TRUSTED",
]

FORMAT = "compress.module/1"
SPEC_KEY = "compress_module_spec"
DEFAULT_TRUSTED = ("torch.nn", "compress")

_MODULE_INTERNALS = frozenset(nn.Module().__dict__)
# Attributes rebuilt from the parameters after loading instead of being stored.
_DERIVED_ATTRS = {nn.RNNBase: ("_flat_weights", "_flat_weight_refs")}


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).removeprefix("torch.")}
    if isinstance(value, (tuple, torch.Size)):
        return {"__tuple__": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, where) for k, v in value.items()}}
    raise UserError(f"cannot serialize {where} of type {type(value).__name__}: only plain data "
                     "(None/bool/int/float/str/list/tuple/dict/dtype) can be stored; make it a submodule or buffer")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "__tuple__" in value:
            return tuple(_decode(v) for v in value["__tuple__"])
        if "__dtype__" in value:
            dtype = getattr(torch, value["__dtype__"], None)
            if not isinstance(dtype, torch.dtype):
                raise UserError(f"module spec names an unknown dtype {value['__dtype__']!r}")
            return dtype
        if "__dict__" in value:
            return {k: _decode(v) for k, v in value["__dict__"].items()}
    return value


def _derived(module: nn.Module) -> tuple[str, ...]:
    out: tuple[str, ...] = ()
    for cls, names in _DERIVED_ATTRS.items():
        if isinstance(module, cls):
            out += names
    return out


def module_spec(module: nn.Module, _path: str = "") -> dict:
    """The JSON-able structure of ``module`` (no tensors). Raises ValueError naming a bad attribute."""
    cls = type(module)
    where = _path or "<root>"
    if cls.__module__ == "__main__":
        raise UserError(f"module {where} is of class {cls.__qualname__} defined in __main__; "
                         "define it in an importable module to save its structure")
    attrs = {}
    skip = _MODULE_INTERNALS | set(_derived(module))
    for key, value in module.__dict__.items():
        if key in skip:
            continue
        attrs[key] = _encode(value, f"attribute '{key}' of module {where}")
    attrs["training"] = module.training
    return {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "attrs": attrs,
        "params": {n: (None if p is None else bool(p.requires_grad)) for n, p in module._parameters.items()},
        "buffers": {n: (None if b is None else n not in module._non_persistent_buffers_set)
                    for n, b in module._buffers.items()},
        "children": {n: (None if c is None else module_spec(c, f"{_path}.{n}" if _path else n))
                     for n, c in module._modules.items()},
    }


def _resolve_class(path: str, trusted: tuple[str, ...]) -> type:
    mod_name, _, qualname = path.partition(":")
    trusted = tuple(DEFAULT_TRUSTED) + tuple(t for t in trusted if t not in DEFAULT_TRUSTED)
    if not any(mod_name == t or mod_name.startswith(t + ".") for t in trusted):
        raise UserError(f"module spec names class {path!r} outside the trusted modules {list(trusted)}; "
                         f"pass trusted=(..., {mod_name.split('.')[0]!r}) (CLI: --trust {mod_name.split('.')[0]}) "
                         "only if you trust this checkpoint")
    try:
        obj: Any = importlib.import_module(mod_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"module spec names class {path!r} which cannot be imported: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise UserError(f"module spec names {path!r}, which is not an nn.Module class")
    return obj


def build_from_spec(spec: dict | str, tensors: dict[str, torch.Tensor], *,
                    trusted: Iterable[str] = (), _prefix: str = "") -> nn.Module:
    """Rebuild a module from ``module_spec`` output and a flat name -> tensor dict (state_dict style).

    Shapes come from the tensors, so pruned layers come back pruned.  ``__init__`` is not called.
    """
    if isinstance(spec, str):
        spec = json.loads(spec)
    trusted = tuple(trusted)
    cls = _resolve_class(spec["class"], trusted)
    module = cls.__new__(cls)
    nn.Module.__init__(module)
    for key, value in spec["attrs"].items():
        module.__dict__[key] = _decode(value)
    def tensor(name: str, kind: str) -> torch.Tensor:
        key = _prefix + name
        if key not in tensors:
            raise UserError(f"checkpoint has no tensor {key!r} ({kind} of {spec['class']})")
        return tensors[key].detach().clone()

    for name, requires_grad in spec["params"].items():
        module._parameters[name] = None if requires_grad is None else \
            nn.Parameter(tensor(name, "parameter"), requires_grad=requires_grad)
    for name, persistent in spec["buffers"].items():
        if persistent is None:
            module._buffers[name] = None
            continue
        module._buffers[name] = tensor(name, "buffer")
        if not persistent:
            module._non_persistent_buffers_set.add(name)
    for name, child in spec["children"].items():
        module._modules[name] = (None if child is None else
                                 build_from_spec(child, tensors, trusted=trusted, _prefix=f"{_prefix}{name}."))
    if isinstance(module, nn.RNNBase):
        module._init_flat_weights()
    return module


def _all_tensors(module: nn.Module) -> tuple[dict, dict]:
    """(persistent state_dict, non-persistent buffers) with full dotted names."""
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    extra = {}
    for mname, sub in module.named_modules():
        for bname in sub._non_persistent_buffers_set:
            buf = sub._buffers.get(bname)
            if buf is not None:
                extra[f"{mname}.{bname}" if mname else bname] = buf.detach().cpu()
    return state, extra


def spec_checkpoint_entry(module: nn.Module, module_attr: str = "") -> dict:
    """The entry stored under ``SPEC_KEY`` in a checkpoint (Lightning callbacks add it to .ckpt files)."""
    _, extra = _all_tensors(module)
    return {"format": FORMAT, "module_attr": module_attr, "spec": json.dumps(module_spec(module)),
            "nonpersistent": extra}


def save_module(module: nn.Module, path: str | Path, *, meta: dict | None = None) -> Path:
    """Write structure + weights to ``path`` (loadable with ``torch.load(weights_only=True)``)."""
    path = Path(path)
    state, _ = _all_tensors(module)
    payload = {SPEC_KEY: spec_checkpoint_entry(module), "state_dict": state}
    if meta:
        payload["meta"] = json.dumps(meta)
    return atomic_torch_save(payload, path)


def module_from_checkpoint(ckpt: dict, *, trusted: Iterable[str] = (),
                           source: str = "checkpoint") -> nn.Module:
    """Rebuild the module described by ``ckpt[SPEC_KEY]`` using tensors from ``ckpt['state_dict']``.

    Works for files written by :func:`save_module` and for Lightning ``.ckpt`` files written while a
    ``PruningCallback`` was attached (there the tensors carry a ``"<module_attr>."`` prefix).
    """
    entry = ckpt.get(SPEC_KEY) if isinstance(ckpt, dict) else None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        raise UserError(f"{source} has no module structure ({SPEC_KEY!r}); save it with "
                         "compress.prune.save_module(model, path) or train with a PruningCallback")
    prefix = f"{entry['module_attr']}." if entry.get("module_attr") else ""
    state = ckpt.get("state_dict", {})
    tensors = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    tensors.update(entry.get("nonpersistent", {}))
    module = build_from_spec(entry["spec"], tensors, trusted=trusted)
    return module


def load_weights_only(path: str | Path, what: str = "checkpoint", missing_hint: str = "") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a missing or unreadable file is one line naming it
    (``what`` names the kind of file, ``missing_hint`` says how to make a missing one)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}{missing_hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise UserError(f"{path} is not a loadable {what} (weights_only=True): {first_line(exc)[:200]}") from None


def load_module(path: str | Path, *, trusted: Iterable[str] = ()) -> nn.Module:
    """Load a module saved by :func:`save_module` (or a Lightning .ckpt with a module spec), safely."""
    return module_from_checkpoint(load_weights_only(path), trusted=trusted, source=str(path))
