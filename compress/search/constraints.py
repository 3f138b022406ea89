"""Hard limits (bytes, p99 latency) checked before training and re-checked on the exported artifact.

Definitions (one meaning everywhere in the search):

* **bytes** = the weight bytes of the deployed artifact: the sum of the ONNX initializers' sizes
  (fp32 weights, or int8 weights + their scales, zero-points and int32 biases for ``bits: 8``).  This
  is what a device stores for the model; the file's graph overhead (names, node protos, ~1 kB) is
  recorded separately as ``artifact_file_bytes``.
* **latency** = p99 in microseconds of the ONNX Runtime session as deployed (batch 1, one thread).

Before training (``precheck``) the *untrained* architecture is pruned to its ratio (if any), exported
in the deployed format with the fast exporters (TorchScript for fp32 ~0.03 s, the QDQ writer for int8
~0.02 s) and its bytes are counted exactly.  Only if the bytes pass, and a latency limit or objective
needs it, the artifact is timed *in-process* for ``timing_seconds`` (~0.2 s): a rejected trial costs
well under a second.  After training (``final_check``) the trained student is exported with the
framework's exporter and timed in a fresh process (compress.profile), and the limits are checked
again; that measurement is the one that counts.

p99 on a shared machine is noisy (another worker training on the same cores can double it), so a
latency violation must be reproducible: when the first timing exceeds the limit the artifact is timed
once more and the smaller p99 is kept.  Byte counts are exact and checked once.  With ``--workers K``
keep K below the number of idle cores, or the latency limits reject architectures for the load they
were measured under (the final re-check still guarantees every feasible trial met the limit once).

Constraint values follow Optuna's convention (feasible when every value <= 0): ``bytes - max_bytes``
and ``p99 - max_p99_us``; they are stored with ``Trial.set_constraint`` (what Optuna 5's samplers and
``best_trials`` read) and as the user attribute ``constraints`` (returned by :func:`constraints_func`,
for Optuna versions whose samplers take a ``constraints_func``).
"""
from __future__ import annotations

import contextlib
import copy
import io
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn

__all__ = ["constraint_values", "violation_reason", "constraints_func", "onnx_weight_bytes", "precheck",
           "export_deployed", "final_check"]


def constraint_values(bytes_: float | None, p99_us: float | None, max_bytes: float | None,
                      max_p99_us: float | None) -> list[float]:
    """Optuna constraint vector: one entry per limit that is set, <= 0 when satisfied.

    An unmeasured quantity under a set limit counts as violated (+inf): a trial is never feasible by
    omission."""
    out = []
    if max_bytes is not None:
        out.append(float("inf") if bytes_ is None else float(bytes_) - float(max_bytes))
    if max_p99_us is not None:
        out.append(float("inf") if p99_us is None else float(p99_us) - float(max_p99_us))
    return out


def violation_reason(bytes_: float | None, p99_us: float | None, max_bytes: float | None,
                     max_p99_us: float | None) -> str:
    """'' when within limits, else a short human-readable reason (bytes checked first)."""
    if max_bytes is not None and (bytes_ is None or bytes_ > max_bytes):
        return f"bytes {bytes_:,.0f} > max_bytes {max_bytes:,.0f}" if bytes_ is not None else "bytes not measured"
    if max_p99_us is not None and (p99_us is None or p99_us > max_p99_us):
        return (f"p99 {p99_us:.2f} us > max_p99_us {max_p99_us:g}" if p99_us is not None
                else "latency not measured")
    return ""


def constraints_func(trial) -> list[float]:
    """For ``NSGAIISampler``/``TPESampler(constraints_func=...)``: the values the objective recorded."""
    return [float(v) for v in trial.user_attrs.get("constraints", [])]


def onnx_weight_bytes(path: str | Path) -> int:
    """Sum of the initializer sizes (bytes) of an ONNX file."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer))


def _quick_export(model: nn.Module, x: torch.Tensor, bits: int, path: Path) -> Path:
    """Deployed-format ONNX of an untrained model, fast (for counting and screening only)."""
    if bits == 8:
        from compress.profile.latency import qat_copy
        from compress.export import export_onnx_int8
        qmodel, _ = qat_copy(model, x)
        return export_onnx_int8(qmodel, x, path, verify=False)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=False, input_names=["input"],
                          output_names=["output"], opset_version=18, do_constant_folding=True)
    return path


def _time_in_process(path: Path, shape: list[int], seconds: float) -> dict:
    """Short in-process ORT timing (1 thread, IOBinding) for screening; the final check uses a fresh process."""
    from compress.profile.worker import _ort_call, time_callable

    return time_callable(_ort_call(str(path), list(shape), "iobinding"), seconds=seconds, repeats=2,
                         warmup_s=0.02)


def precheck(student: nn.Module, input_shape: list[int], *, bits: int = 32, prune_ratio: float = 0.0,
             max_bytes: float | None = None, max_p99_us: float | None = None, need_latency: bool = False,
             timing_seconds: float = 0.2) -> dict:
    """Measure the untrained architecture as it would be deployed; returns
    ``{"bytes", "p99_us" (None if not timed), "reason" ('' if within limits), "seconds"}``."""
    t0 = time.perf_counter()
    model = copy.deepcopy(student).eval()
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
    if prune_ratio and prune_ratio > 0:
        from compress.prune import prune_model
        with contextlib.redirect_stdout(io.StringIO()):
            prune_model(model, x, target_ratio=1.0 - float(prune_ratio))
    with tempfile.TemporaryDirectory(prefix="compress-search-") as tmp:
        path = _quick_export(model, x, bits, Path(tmp) / "model.onnx")
        nbytes = onnx_weight_bytes(path)
        p99 = None
        reason = violation_reason(nbytes, None, max_bytes, None)
        if not reason and (max_p99_us is not None or need_latency):
            p99 = float(_time_in_process(path, input_shape, timing_seconds)["p99_us"])
            if max_p99_us is not None and p99 > max_p99_us:   # a violation must be reproducible
                p99 = min(p99, float(_time_in_process(path, input_shape, timing_seconds)["p99_us"]))
            reason = violation_reason(nbytes, p99, max_bytes, max_p99_us)
    return {"bytes": nbytes, "p99_us": p99, "reason": reason, "seconds": time.perf_counter() - t0}


def export_deployed(student: nn.Module, input_shape: list[int], out_dir: str | Path) -> Path:
    """Export the trained student as deployed: int8 QDQ ONNX if it is QAT-prepared, else fp32 ONNX."""
    from compress.export import export_onnx
    from compress.export import export_onnx_int8
    from compress.quant import is_qat_prepared

    out_dir = Path(out_dir)
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
    student = student.eval()
    if is_qat_prepared(student):
        return Path(export_onnx_int8(student, x, out_dir / "student_int8.onnx"))
    return Path(export_onnx(student, x, out_dir / "student.onnx"))


def final_check(artifact: str | Path, input_shape: list[int], *, max_bytes: float | None = None,
                max_p99_us: float | None = None, timing_seconds: float = 0.2, repeats: int = 3) -> dict:
    """Bytes and fresh-process p99 of an exported artifact, and the limit check on them."""
    from compress.profile.latency import time_onnx

    artifact = Path(artifact)
    runtime = "onnxruntime-int8" if artifact.stem.endswith("int8") else "onnxruntime"
    nbytes = onnx_weight_bytes(artifact)
    lat = time_onnx(artifact, input_shape, runtime=runtime, seconds=timing_seconds, repeats=repeats)
    if max_p99_us is not None and lat["p99_us"] > max_p99_us:   # a violation must be reproducible
        again = time_onnx(artifact, input_shape, runtime=runtime, seconds=timing_seconds, repeats=repeats)
        lat = min(lat, again, key=lambda d: d["p99_us"])
    p99 = float(lat["p99_us"])
    return {"bytes": nbytes, "p99_us": p99, "p50_us": float(lat["p50_us"]), "runtime": runtime,
            "file_bytes": artifact.stat().st_size, "reason": violation_reason(nbytes, p99, max_bytes, max_p99_us)}
