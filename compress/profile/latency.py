"""Build the deployed artifact for a runtime and time it in a fresh, one-thread process.

Runtimes (names used everywhere, e.g. in tools/bench_latency.py's JSON):
    "torch-eager"       the nn.Module itself (saved with compress.prune.save_module, reloaded in the worker)
    "onnxruntime"       fp32 ONNX (compress.export.export_onnx), ORT with IOBinding, 1 thread
    "onnxruntime-int8"  QDQ int8 ONNX (compress.export.export_onnx_int8), same session settings
    "c-export"          dependency-free C (compress.export.export_c), timed by a generated C harness
    "c-export-int8"     the same with int8 weights

For the int8 runtimes a model that is not QAT-prepared is copied, prepared with
``compress.quant.prepare_qat`` and its observers are fed the example input: the artifact then has the
deployed size and speed, but its accuracy means nothing (profile a QAT-trained model for that).
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from compress.profile.c_timing import compile_timing, object_bytes, read_io_sizes, run_timing, write_harness

from compress.errors import UserError

__all__ = ["RUNTIMES", "build_artifact", "time_onnx", "time_torch_file", "time_c_export", "measure_latency",
           "worker_env", "qat_copy"]

RUNTIMES = ("torch-eager", "onnxruntime", "onnxruntime-int8", "c-export", "c-export-int8")


def worker_env() -> dict:
    """Environment for timing subprocesses: one thread everywhere, the parent's import path."""
    env = os.environ.copy()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    paths = [p or os.getcwd() for p in sys.path if (p == "" or os.path.isdir(p))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _run_worker(args: list[str], timeout: float = 300.0) -> dict:
    proc = subprocess.run([sys.executable, "-m", "compress.profile.worker", *args], capture_output=True, text=True,
                          env=worker_env(), timeout=timeout)
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    if not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"timing worker failed: {err[:300]}")
    out = json.loads(lines[-1])
    if "error" in out:
        raise RuntimeError(f"timing worker ({out.get('runtime')}): {out['error']}")
    return out


def _shape_arg(shape) -> str:
    return ",".join(str(int(d)) for d in shape)


def time_onnx(path: str | Path, input_shape, *, runtime: str = "onnxruntime", seconds: float = 0.4,
              repeats: int = 5, ort_mode: str | None = None) -> dict:
    args = ["--runtime", runtime, "--target", str(path), "--input-shape", _shape_arg(input_shape),
            "--seconds", str(seconds), "--repeats", str(repeats)]
    if ort_mode:
        args += ["--ort-mode", ort_mode]
    return _run_worker(args)


def time_torch_file(path: str | Path, input_shape, *, trusted=("torch.nn", "compress"), seconds: float = 0.4,
                    repeats: int = 5) -> dict:
    return _run_worker(["--runtime", "torch-eager", "--target", str(path), "--input-shape", _shape_arg(input_shape),
                        "--seconds", str(seconds), "--repeats", str(repeats), "--trust", ",".join(trusted)])


def time_c_export(c_file: str | Path, h_file: str | Path, *, name: str | None = None, forwards_per_call: int = 1,
                  samples: int = 1000, repeats: int = 5, extra_sources=(), link_args=()) -> dict:
    """Compile the timing harness with an exported ``<name>.c`` and run it in its own process."""
    c_file, h_file = Path(c_file), Path(h_file)
    name = name or h_file.stem
    n_in, n_out = read_io_sizes(h_file, name)
    harness = write_harness(h_file.parent, h_file, name, n_in, n_out, forwards_per_call)
    sources = ([c_file] if c_file.suffix == ".c" else []) + [harness, *map(Path, extra_sources)]
    binary = h_file.parent / f"{name}_timing_k{forwards_per_call}"
    compile_timing(sources, binary, h_file.parent, libs=tuple(link_args))
    return run_timing(binary, samples=samples, repeats=repeats)


def _trusted_for(model: nn.Module) -> tuple[str, ...]:
    """Module prefixes of the classes inside ``model`` (the parent built it, so it trusts them)."""
    mods = {type(m).__module__.split(".")[0] for m in model.modules()}
    return tuple(sorted(mods | {"torch", "compress"}))


def qat_copy(model: nn.Module, example_input: torch.Tensor) -> tuple[nn.Module, bool]:
    """(a QAT-prepared model, whether it was prepared here with observers fed only the example)."""
    from compress.quant import is_qat_prepared, prepare_qat

    if is_qat_prepared(model):
        return model, False
    clone = prepare_qat(copy.deepcopy(model))
    clone.train()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for _ in range(4):
            clone(example_input + 0.5 * torch.randn(example_input.shape, generator=gen))
    clone.eval()
    return clone, True


def build_artifact(model: nn.Module, example_input: torch.Tensor, runtime: str, workdir: str | Path) -> dict:
    """Write the artifact ``runtime`` executes; returns {"path", "bytes", ...} (bytes: deployed size)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    if runtime == "torch-eager":
        from compress.serialize import save_module
        path = workdir / "model.pt"
        try:
            save_module(model, path)
            return {"path": path, "bytes": None, "trusted": _trusted_for(model)}
        except ValueError:  # classes not importable in a fresh process: fall back to torch.export
            path = workdir / "model.pt2"
            torch.export.save(torch.export.export(model, (example_input,)), str(path))
            return {"path": path, "bytes": None, "trusted": (),
                    "note": "torch-eager timed via a torch.export module (model classes not importable in a "
                            "fresh process); it can differ from eager"}
    if runtime == "onnxruntime":
        from compress.export import export_onnx
        path = export_onnx(model, example_input, workdir / "model.onnx")
        return {"path": Path(path), "bytes": Path(path).stat().st_size}
    if runtime == "onnxruntime-int8":
        from compress.export import export_onnx_int8
        qmodel, synthetic = qat_copy(model, example_input)
        path = export_onnx_int8(qmodel, example_input, workdir / "model_int8.onnx")
        out = {"path": Path(path), "bytes": Path(path).stat().st_size}
        if synthetic:
            out["note"] = "int8 artifacts built from an uncalibrated QAT copy: size/speed exact, accuracy not"
        return out
    if runtime in ("c-export", "c-export-int8"):
        from compress.export import export_c
        int8 = runtime.endswith("int8")
        qmodel, synthetic = qat_copy(model, example_input) if int8 else (model, False)
        paths = export_c(qmodel, workdir / ("c_int8" if int8 else "c"), name="student", int8=int8)
        c_path, h_path = Path(paths["c"]), Path(paths["h"])
        out = {"path": c_path, "h": h_path, "bytes": object_bytes(c_path, c_path.parent),
               "source_bytes": c_path.stat().st_size}
        if synthetic:
            out["note"] = "int8 artifacts built from an uncalibrated QAT copy: size/speed exact, accuracy not"
        return out
    raise UserError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")


def time_artifact(artifact: dict, runtime: str, input_shape, *, seconds: float = 0.4, repeats: int = 5) -> dict:
    if runtime == "torch-eager":
        return time_torch_file(artifact["path"], input_shape, trusted=artifact.get("trusted", ()),
                               seconds=seconds, repeats=repeats)
    if runtime.startswith("onnxruntime"):
        return time_onnx(artifact["path"], input_shape, runtime=runtime, seconds=seconds, repeats=repeats)
    if runtime.startswith("c-export"):
        return time_c_export(artifact["path"], artifact["h"], repeats=repeats)
    raise UserError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")


def measure_latency(model: nn.Module, example_input: torch.Tensor, *, runtime: str = "onnxruntime",
                    workdir: str | Path | None = None, seconds: float = 0.3, repeats: int = 3) -> dict:
    """Deployed latency of ``model`` on ``runtime`` (batch 1, one thread, fresh process): stats dict."""
    if runtime not in RUNTIMES:
        raise UserError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    with tempfile.TemporaryDirectory(prefix="compress-lat-") as tmp:
        art = build_artifact(model, example_input, runtime, workdir or tmp)
        out = time_artifact(art, runtime, list(example_input.shape), seconds=seconds, repeats=repeats)
    out["bytes"] = art.get("bytes")
    return out


def so_forward_name(path: Path) -> str:
    """The ``<name>`` of the ``<name>_forward`` symbol a shared library exports."""
    out = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True, text=True)
    names = re.findall(r"\bT\s+(\w+)_forward\b", out.stdout)
    if out.returncode != 0 or not names:
        raise UserError(f"{path} exports no '<name>_forward' function; is it a compress C export?")
    return names[0]
