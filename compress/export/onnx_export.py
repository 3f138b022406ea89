"""fp32 ONNX export, loading with clear errors, and ONNX Runtime sessions configured as deployed.

Exporter choice in torch 2.13 (measured, see tests/test_export_onnx.py):

* ``torch.onnx.export(..., dynamo=True)`` (the default; needs onnxscript) is the maintained path. The
  TorchScript exporter (``dynamo=False``) still works but warns that it will be removed.
* dynamo pitfalls handled here: (1) it writes weights to an external ``.onnx.data`` file unless
  ``external_data=False``; (2) ``torch.export`` specialises dimensions whose example size is 0 or 1,
  so a batch-1 example can silently give a model fixed to batch 1 (seen with GRU students) even when a
  dynamic batch was requested: the example is repeated to batch 2 for tracing; (3) opset < 18 is
  produced by down-conversion from 18, so 18 is the default.
* cost: a dynamo export takes ~0.6-4 s on this machine (GRU the slowest; the first one also imports
  onnxscript) against ~0.02 s for TorchScript; both gave the same Gemm/Relu (Conv) graphs for MLPs and
  CNNs, and both GRU graphs matched PyTorch to 1e-7 once the batch-1 pitfall was avoided.
* robustness: the dynamo export is verified with ONNX Runtime (batch 1 and batch 3 when the batch is
  dynamic); if it raises or does not match PyTorch, the TorchScript exporter is tried and verified the
  same way. The exporter used is stored in the model's metadata (``compress.exporter``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn

from compress.errors import UserError

MIN_OPSET, MAX_OPSET = 17, 21


def load_onnx(path) -> onnx.ModelProto:
    """Load and check an ONNX file; FileNotFoundError if missing, ValueError if it is not an ONNX model."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"ONNX file not found: {p}")
    try:
        model = onnx.load(str(p), load_external_data=True)
    except Exception as e:
        raise UserError(f"{p} is not an ONNX model ({type(e).__name__})") from None
    if model.ir_version <= 0 or len(model.graph.node) == 0 or not model.opset_import:
        raise UserError(f"{p} is not an ONNX model (no graph / IR version)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{p} is not a valid ONNX model: {first}") from None
    return model


def ort_session(path, threads: int = 1, *, optimization: str = "all", optimized_model_filepath=None):
    """An ONNX Runtime CPU session as deployed: ``threads`` intra-op threads, 1 inter-op, sequential.

    ``optimization``: "disable" | "basic" | "extended" | "all". ``optimized_model_filepath``: where ORT
    writes the graph after its optimizations (use it to see which kernels run, e.g. QGemm for int8).
    """
    import onnxruntime as ort

    if not isinstance(threads, int) or threads < 1:
        raise UserError(f"ort_session: threads must be an int >= 1, got {threads!r}")
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    if optimization not in levels:
        raise UserError(f"ort_session: optimization must be one of {sorted(levels)}, got {optimization!r}")
    load_onnx(path)  # clear errors for missing / non-ONNX files
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = levels[optimization]
    so.log_severity_level = 3
    if optimized_model_filepath is not None:
        so.optimized_model_filepath = str(optimized_model_filepath)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _session(session_or_path):
    return ort_session(session_or_path) if isinstance(session_or_path, (str, os.PathLike)) else session_or_path


def check_input(session_or_path, x) -> np.ndarray:
    """``x`` as a float32 array that fits the session's first input; ValueError naming expected vs got."""
    sess = _session(session_or_path)
    meta = sess.get_inputs()[0]
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    expected = tuple(d if isinstance(d, int) else None for d in meta.shape)
    got = tuple(arr.shape)
    ok = len(expected) == len(got) and all(e is None or e == g for e, g in zip(expected, got))
    if not ok:
        exp = "(" + ", ".join("batch" if e is None else str(e) for e in expected) + ")"
        raise UserError(f"input {meta.name!r} has shape {got}, expected {exp}")
    if meta.type == "tensor(float)" and arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr)


def run_onnx(session_or_path, x) -> np.ndarray:
    """Run the first output of an ONNX model on one input (checked with ``check_input``)."""
    sess = _session(session_or_path)
    arr = check_input(sess, x)
    return sess.run(None, {sess.get_inputs()[0].name: arr})[0]


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress prints, deprecation warnings and registry log lines."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.onnx._internal.exporter._registration",
                                               "torch.onnx._internal.exporter._compat", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _verify(path: Path, model: nn.Module, examples: list[torch.Tensor], rtol: float, atol: float) -> str | None:
    """None if ONNX Runtime reproduces the model on every example, else a one-line reason."""
    try:
        sess = ort_session(path, optimization="disable")
        for x in examples:
            with torch.no_grad():
                ref = model(x).detach().cpu().numpy()
            got = run_onnx(sess, x)
            if got.shape != ref.shape:
                return f"output shape {got.shape} != PyTorch {ref.shape} at batch {x.shape[0]}"
            err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
            if not np.allclose(got, ref, rtol=rtol, atol=atol):
                return f"max abs error {err:.3g} vs PyTorch at batch {x.shape[0]}"
    except Exception as e:
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return None


def _export_once(model, x_trace, tmp: Path, opset: int, dynamic_batch: bool, dynamo: bool) -> None:
    kw: dict = dict(input_names=["input"], output_names=["output"], opset_version=opset)
    if dynamo:
        kw.update(dynamo=True, external_data=False, verbose=False, optimize=True)
        if dynamic_batch:
            kw["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1)},)
    else:
        kw.update(dynamo=False, do_constant_folding=True)
        if dynamic_batch:
            kw["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    with _quiet():
        torch.onnx.export(model, (x_trace,), str(tmp), **kw)


def export_onnx(model: nn.Module, example_input: torch.Tensor, path, *, opset: int = 18,
                dynamic_batch: bool = True, rtol: float = 1e-4, atol: float = 1e-5) -> Path:
    """Export ``model`` (in eval mode) to one self-contained fp32 ONNX file at ``path`` and verify it.

    Input is named ``input`` (batch dimension ``batch`` when ``dynamic_batch``), output ``output``.
    The file is checked with ``onnx.checker`` (full check) and its outputs compared with PyTorch in ONNX
    Runtime (``rtol``/``atol``); a mismatch with both exporters raises RuntimeError. The model's
    training flag is restored afterwards. QAT-prepared models go through ``export_onnx_int8``.
    """
    from compress.quant.fake_quant import is_qat_prepared

    if not isinstance(model, nn.Module):
        raise UserError(f"export_onnx: model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(example_input, torch.Tensor):
        raise UserError(f"export_onnx: example_input must be a torch.Tensor, got {type(example_input).__name__}")
    if example_input.dim() < 1 or example_input.shape[0] < 1:
        raise UserError(f"export_onnx: example_input must have a batch dimension, got shape "
                         f"{tuple(example_input.shape)}")
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserError(f"export_onnx: opset must be an int in [{MIN_OPSET}, {MAX_OPSET}], got {opset!r}")
    if is_qat_prepared(model):
        raise UserError("export_onnx: model is QAT-prepared; export it with compress.export.export_onnx_int8")
    path = Path(path)
    if path.suffix != ".onnx":
        raise UserError(f"export_onnx: path must end in .onnx, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    x = example_input.detach()
    try:
        with torch.no_grad():
            model(x)
    except Exception as e:
        model.train(was_training)
        raise UserError(f"export_onnx: the model rejects example_input of shape {tuple(x.shape)}: "
                         f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None
    # trace at batch >= 2 so torch.export cannot specialise the batch dimension to 1
    x_trace = torch.cat([x, x]) if (dynamic_batch and x.shape[0] == 1) else x
    checks = [x[:1]] + ([torch.randn((3,) + tuple(x.shape[1:]), generator=torch.Generator().manual_seed(0)).to(x)]
                        if dynamic_batch else [])
    if not dynamic_batch:
        checks = [x]
    reasons = []
    try:
        with tempfile.TemporaryDirectory(dir=path.parent) as td:
            for dynamo in (True, False):
                tmp = Path(td) / "model.onnx"
                name = "dynamo" if dynamo else "torchscript"
                try:
                    _export_once(model, x_trace, tmp, opset, dynamic_batch, dynamo)
                except Exception as e:
                    reasons.append(f"{name}: {type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}")
                    continue
                extra = [f for f in os.listdir(td) if f != "model.onnx"]
                proto = onnx.load(str(tmp), load_external_data=True)
                onnx.checker.check_model(proto, full_check=True)
                del proto.metadata_props[:]
                proto.metadata_props.add(key="compress.exporter", value=name)
                proto.metadata_props.add(key="compress.format", value="fp32")
                onnx.save(proto, str(tmp))  # one file: initializers inline even if the exporter split them
                for f in extra:
                    os.remove(os.path.join(td, f))
                reason = _verify(tmp, model, checks, rtol, atol)
                if reason is None:
                    os.replace(tmp, path)
                    return path
                reasons.append(f"{name}: {reason}")
    finally:
        model.train(was_training)
    raise RuntimeError("export_onnx: no exporter produced a model that matches PyTorch: " + "; ".join(reasons))
