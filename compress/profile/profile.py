"""``Profile``: the single source of truth for a student's size and speed, as deployed.

``profile_model(model, example_input)`` counts parameters and MACs per layer (forward hooks), builds
every requested artifact (ONNX fp32/int8, C fp32/int8), records its exact file size and the parameter
bytes at fp32 and int8, and times each runtime at batch 1 on one thread in a fresh process.
``profile_artifact(path)`` does the same for an artifact that already exists (.onnx, a C export
directory or .c file, or a shared library with its header).

A runtime that cannot be built for a model (e.g. C export of a GRU) does not abort the profile: its
one-line error is kept in ``Profile.errors`` and shown in the table.
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from compress.profile.counting import LayerStat, check_input_fits, count_layers
from compress.profile.latency import RUNTIMES, build_artifact, so_forward_name, time_artifact, time_c_export, \
    time_onnx
from compress.errors import UserError

__all__ = ["Profile", "profile_model", "profile_artifact", "DEFAULT_RUNTIMES"]

DEFAULT_RUNTIMES = RUNTIMES
_ELF = b"\x7fELF"


@dataclass
class Profile:
    """Size and speed of one model or artifact.  Latency entries are in microseconds."""

    target: str
    input_shape: list
    params: int
    macs: int
    layers: list = field(default_factory=list)          # LayerStat
    bytes: dict = field(default_factory=dict)           # name -> int (exact)
    latency: dict = field(default_factory=dict)         # runtime -> {p50_us, p99_us, spread_us, ...}
    errors: dict = field(default_factory=dict)          # runtime -> one-line error
    notes: list = field(default_factory=list)
    artifacts: dict = field(default_factory=dict)       # runtime -> path (when a workdir was given)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [asdict(x) if not isinstance(x, dict) else x for x in self.layers]
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    @classmethod
    def from_dict(cls, d: dict) -> "Profile":
        d = dict(d)
        d["layers"] = [LayerStat(**x) for x in d.get("layers", [])]
        return cls(**d)

    def table(self) -> str:
        lines = [f"Profile of {self.target}  (input {self.input_shape}, batch 1, 1 thread)"]
        w = max([len(x.name) for x in self.layers] + [5])
        lines.append(f"  {'layer':<{w}}  {'type':<18} {'params':>10} {'MACs':>12}  out")
        for x in self.layers:
            lines.append(f"  {x.name:<{w}}  {x.type:<18} {x.params:>10,} {x.macs:>12,}  {x.out_shape}")
        lines.append(f"  {'total':<{w}}  {'':<18} {self.params:>10,} {self.macs:>12,}")
        if self.bytes:
            lines.append("  bytes: " + ", ".join(f"{k}={v:,}" for k, v in self.bytes.items() if v is not None))
        if self.latency or self.errors:
            lines.append(f"  {'runtime':<17} {'p50 us':>9} {'p99 us':>9} {'spread of p50 (repeats)':>26}")
            for rt, st in self.latency.items():
                lo, hi = st.get("spread_us", [math.nan, math.nan])
                lines.append(f"  {rt:<17} {st['p50_us']:>9.3f} {st['p99_us']:>9.3f} {lo:>12.3f} .. {hi:<10.3f}")
            for rt, err in self.errors.items():
                lines.append(f"  {rt:<17} n/a: {err}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


def _one_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:240] if text else ''}"


def _int8_bytes(model: nn.Module, example_input) -> int | None:
    try:
        from compress.quant import int8_param_bytes
        from compress.profile.latency import qat_copy
        qmodel, _ = qat_copy(model, example_input)
        return int(int8_param_bytes(qmodel))
    except Exception:  # noqa: BLE001 - optional; absent for layers int8 does not cover
        return None


def _fp32_bytes(model: nn.Module) -> int:
    return sum(p.numel() * 4 for p in model.parameters() if p.is_floating_point())


def profile_model(model: nn.Module, example_input, *, runtimes=DEFAULT_RUNTIMES, workdir=None,
                  seconds: float = 0.4, repeats: int = 5, name: str | None = None) -> Profile:
    """Profile ``model`` for a batch-1 ``example_input`` (a tensor, or a shape such as (1, 16))."""
    if not isinstance(model, nn.Module):
        raise UserError(f"profile_model: expected an nn.Module, got {type(model).__name__}")
    if isinstance(example_input, (tuple, list, torch.Size)) and all(isinstance(d, int) for d in example_input):
        example_input = torch.randn(*example_input, generator=torch.Generator().manual_seed(0))
    if not isinstance(example_input, torch.Tensor):
        raise UserError("profile_model: example_input must be a tensor or a shape like (1, 16)")
    bad = [r for r in runtimes if r not in RUNTIMES]
    if bad:
        raise UserError(f"unknown runtime(s) {bad}; choose from {', '.join(RUNTIMES)}")
    model = model.eval()
    check_input_fits(model, example_input)
    layers = count_layers(model, example_input)
    prof = Profile(target=name or type(model).__name__, input_shape=list(example_input.shape),
                   params=sum(p.numel() for p in model.parameters()), macs=sum(x.macs for x in layers),
                   layers=layers)
    prof.bytes["fp32_params"] = _fp32_bytes(model)
    int8 = _int8_bytes(model, example_input)
    if int8 is not None:
        prof.bytes["int8_params"] = int8
    keep = workdir is not None
    with tempfile.TemporaryDirectory(prefix="compress-profile-") as tmp:
        root = Path(workdir) if keep else Path(tmp)
        for rt in runtimes:
            try:
                art = build_artifact(model, example_input, rt, root)
            except Exception as exc:  # noqa: BLE001 - keep profiling the other runtimes
                prof.errors[rt] = _one_line(exc)
                continue
            if art.get("bytes") is not None:
                key = {"onnxruntime": "onnx", "onnxruntime-int8": "onnx-int8"}.get(rt, rt)
                prof.bytes[key] = int(art["bytes"])
            if art.get("note") and art["note"] not in prof.notes:
                prof.notes.append(art["note"])
            if keep:
                prof.artifacts[rt] = str(art["path"])
            try:
                prof.latency[rt] = time_artifact(art, rt, list(example_input.shape), seconds=seconds, repeats=repeats)
            except Exception as exc:  # noqa: BLE001
                prof.errors[rt] = _one_line(exc)
    return prof


def _c_sources(path: Path) -> tuple[Path, Path, str]:
    """(.c, .h, name) of a C export given its directory or its .c/.h file."""
    if path.is_dir():
        headers = [h for h in sorted(path.glob("*.h")) if (path / f"{h.stem}.c").is_file()]
        if not headers:
            raise UserError(f"{path} holds no C export (<name>.c with <name>.h)")
        h = headers[0]
        return path / f"{h.stem}.c", h, h.stem
    h = path.with_suffix(".h")
    if not h.is_file():
        raise UserError(f"{path} has no header {h.name} beside it (needed for the input/output sizes)")
    return path.with_suffix(".c"), h, h.stem


def _c_params(c_file: Path) -> tuple[int, bool]:
    """(elements of the weight/bias arrays, whether weights are int8) of a C export.

    compress.export.export_c names them ``L<i>_W`` / ``L<i>_B`` (``L<i>_M``: int8 requantization
    multipliers, not parameters); for other sources every static const array except scale-like ones
    is counted.
    """
    import re
    text = c_file.read_text()
    arrays = re.findall(r"static\s+const\s+(\w+)\s+(\w+)((?:\s*\[\s*\d+\s*\])+)", text)
    if any(re.fullmatch(r"L\d+_[WB]", a) for _, a, _ in arrays):
        arrays = [x for x in arrays if re.fullmatch(r"L\d+_[WB]", x[1])]
    else:
        arrays = [x for x in arrays if not re.search(r"scale|zp|zero|shift|mult", x[1], re.I)]
    total = sum(math.prod(int(d) for d in re.findall(r"\d+", dims)) for _, _, dims in arrays)
    int8 = any(ctype in ("int8_t", "signed char") for ctype, _, _ in arrays)
    return total, int8


def profile_artifact(path, input_shape=None, *, runtimes=None, seconds: float = 0.4, repeats: int = 5) -> Profile:
    """Profile an existing artifact: ``.onnx``, a C export (directory, .c or .h), or a ``.so`` + header."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if path.suffix == ".onnx":
        from compress.profile.onnx_stats import check_onnx_input, load_onnx_checked, onnx_is_int8, onnx_layers
        model = load_onnx_checked(path)
        shape = check_onnx_input(model, input_shape, str(path))
        layers = onnx_layers(model, shape)
        int8 = onnx_is_int8(model)
        rt = "onnxruntime-int8" if int8 else "onnxruntime"
        prof = Profile(str(path), shape, sum(x.params for x in layers), sum(x.macs for x in layers), layers)
        prof.bytes["onnx-int8" if int8 else "onnx"] = path.stat().st_size
        init_bytes = sum(len(t.raw_data) if t.raw_data else 0 for t in model.graph.initializer)
        if init_bytes:
            prof.bytes["int8_params" if int8 else "fp32_params"] = init_bytes
        for r in runtimes or (rt,):
            if not r.startswith("onnxruntime"):
                prof.errors[r] = f"an ONNX file runs on onnxruntime, not {r}"
                continue
            try:
                prof.latency[rt] = time_onnx(path, shape, runtime=rt, seconds=seconds, repeats=repeats)
            except Exception as exc:  # noqa: BLE001
                prof.errors[rt] = _one_line(exc)
        return prof
    if path.suffix in (".c", ".h") or path.is_dir():
        c_file, h_file, name = _c_sources(path)
        from compress.profile.c_timing import object_bytes, read_io_sizes
        n_in, n_out = read_io_sizes(h_file, name)
        _check_flat_shape(input_shape, n_in, path)
        params, int8 = _c_params(c_file)
        rt = "c-export-int8" if int8 else "c-export"
        prof = Profile(str(path), [1, n_in], params, 0, [])
        prof.notes.append("MACs are not recovered from C source")
        prof.bytes[rt] = object_bytes(c_file, c_file.parent)
        prof.bytes[f"{rt}.c"] = c_file.stat().st_size
        try:
            prof.latency[rt] = time_c_export(c_file, h_file, name=name, repeats=repeats)
        except Exception as exc:  # noqa: BLE001
            prof.errors[rt] = _one_line(exc)
        return prof
    head = path.read_bytes()[:64] if path.is_file() else b""
    if head.startswith(_ELF):
        if path.suffix != ".so" and ".so." not in path.name:
            raise UserError(f"{path} is an executable; profile the C export directory or a shared library (.so)")
        name = so_forward_name(path)
        h_file = path.with_name(f"{name}.h")
        if not h_file.is_file():
            raise UserError(f"{path} needs its header {h_file.name} beside it (input/output sizes)")
        from compress.profile.c_timing import read_io_sizes
        n_in, _ = read_io_sizes(h_file, name)
        _check_flat_shape(input_shape, n_in, path)
        prof = Profile(str(path), [1, n_in], 0, 0, [])
        prof.bytes["so"] = path.stat().st_size
        prof.notes.append("params/MACs are not recovered from a compiled library")
        try:
            prof.latency["c-export"] = time_c_export(
                path, h_file, name=name, repeats=repeats,
                link_args=(str(path.resolve()), f"-Wl,-rpath,{path.resolve().parent}"))
        except Exception as exc:  # noqa: BLE001
            prof.errors["c-export"] = _one_line(exc)
        return prof
    raise UserError(f"{path} is not a model: expected .onnx, a C export (dir/.c/.h), a .so, "
                     "or a checkpoint (.pt/.ckpt, via the CLI)")


def _check_flat_shape(input_shape, n_in: int, path: Path) -> None:
    if input_shape is None:
        return
    shape = [int(d) for d in input_shape]
    if math.prod(shape) != n_in or (len(shape) > 1 and shape[0] != 1):
        raise UserError(f"input shape {shape} does not fit {path}: expected [1, {n_in}]")
