"""Timing worker: ``python -m compress.profile.worker --runtime R --target FILE --input-shape 1,16``.

Runs in a fresh process (the parent spawns it) so that timings are not disturbed by the parent's
threads, allocations or JIT state; prints ONE JSON line with p50/p99/spread (see stats.py) or
``{"error": "..."}``.  Batch 1 and one thread are enforced here (ORT intra/inter-op threads = 1,
``torch.set_num_threads(1)``), with OMP/MKL thread variables set by the parent as well.

ONNX Runtime is called in one of two ways: ``iobinding`` (inputs and outputs bound once to
pre-allocated OrtValues, then ``run_with_iobinding``) or ``run`` (``sess.run`` with a
pre-allocated numpy input).  Measured on this machine for a 16-64-64-28 MLP, IOBinding is faster
(see ``ORT_DEFAULT_MODE``), so it is the default; ``--ort-mode run`` keeps the other for comparison.
The torch runtime is not imported for ONNX timings, so the worker starts in ~0.2 s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from compress.profile.stats import SAMPLE_TARGET_US, summarize

ORT_DEFAULT_MODE = "iobinding"


def _calibrate(call, target_us: float = SAMPLE_TARGET_US) -> int:
    """Calls per sample so that one sample lasts ~target_us (best of 5 trials: the VM is noisy)."""
    n = 1
    while True:
        best = min(_time_n(call, n) for _ in range(5))
        if best >= 200 or n >= 1 << 20:
            return max(1, int(round(n * target_us / max(best, 1e-3))))
        n *= 4


def _time_n(call, n: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        call()
    return (time.perf_counter_ns() - t0) / 1e3


def time_callable(call, *, seconds: float = 0.4, repeats: int = 5, warmup_s: float = 0.05) -> dict:
    """Warm up, then take samples of N calls each in ``repeats`` blocks for about ``seconds``."""
    t_end = time.perf_counter() + warmup_s
    while time.perf_counter() < t_end:
        call()
    n = _calibrate(call)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        call()
    per_sample_s = max((time.perf_counter_ns() - t0) / 1e9, 1e-7)
    per_repeat = max(20, int(seconds / repeats / per_sample_s))
    samples = []
    clock = time.perf_counter_ns
    for _ in range(repeats):
        for _ in range(per_repeat):
            t0 = clock()
            for _ in range(n):
                call()
            samples.append((clock() - t0) / 1e3 / n)
    return summarize(samples, repeats, n)


def _ort_call(path: str, shape: list[int], mode: str):
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    outs = sess.run(None, {inp.name: x})
    if mode == "run":
        feed = {inp.name: x}
        run = sess.run
        return lambda: run(None, feed)
    binding = sess.io_binding()
    binding.bind_ortvalue_input(inp.name, ort.OrtValue.ortvalue_from_numpy(x))
    keep = []
    for meta, value in zip(sess.get_outputs(), outs):
        buf = ort.OrtValue.ortvalue_from_numpy(np.empty_like(value))
        keep.append(buf)
        binding.bind_ortvalue_output(meta.name, buf)
    run_b = sess.run_with_iobinding
    return lambda: (run_b(binding), keep)


def _torch_call(path: str, shape: list[int], trusted: list[str]):
    import torch

    torch.set_num_threads(1)
    if path.endswith(".pt2"):
        model = torch.export.load(path).module()  # written by the parent process itself (trusted); eval already
    else:
        from compress.serialize import load_module
        model = load_module(path, trusted=tuple(trusted)).eval()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    ctx = torch.inference_mode()
    ctx.__enter__()
    return lambda: model(x)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compress.profile.worker")
    ap.add_argument("--runtime", required=True, choices=["torch-eager", "onnxruntime", "onnxruntime-int8"])
    ap.add_argument("--target", required=True)
    ap.add_argument("--input-shape", required=True)
    ap.add_argument("--seconds", type=float, default=0.4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ort-mode", choices=["iobinding", "run"], default=ORT_DEFAULT_MODE)
    ap.add_argument("--trust", default="torch.nn,compress")
    args = ap.parse_args(argv)
    try:
        shape = [int(d) for d in args.input_shape.split(",")]
        if args.runtime == "torch-eager":
            call = _torch_call(args.target, shape, args.trust.split(","))
        else:
            call = _ort_call(args.target, shape, args.ort_mode)
        result = time_callable(call, seconds=args.seconds, repeats=args.repeats)
        result.update(runtime=args.runtime, mode=args.ort_mode if args.runtime != "torch-eager" else "eager",
                      pid=os.getpid())
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        result = {"error": f"{type(exc).__name__}: {msg[:300]}", "runtime": args.runtime}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
