"""Deploy a trained beam predictor: fp32 ONNX, static int8 ONNX, both scored on the test windows and timed.

The int8 artifact is ONNX Runtime static QDQ (``compress.export.quantize_onnx_static``), calibrated on
training windows: Conv / Gemm / MatMul in int8, the GRU, LayerNorm and the attention arithmetic in fp32
(ORT has no int8 GRU kernel).  ``exclude_grouped_conv`` keeps the depthwise convolutions in fp32 as well,
where ORT's int8 depthwise kernel is slower than fp32 (measured: see the README).  Latency is the
deployed artifact's (``compress.profile.profile_artifact``: batch 1, one thread, a fresh process, warm-up,
p50 and p99).

``BeamDeploy`` is the ``after_fit`` hook of the beam recipes: it writes ``<run_dir>/deploy/`` (the two
ONNX files) and ``<run_dir>/results.json`` (per-slot top-1/2/5 of the PyTorch student and of both
artifacts, their bytes and latency).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .evaluate import evaluate

__all__ = ["deploy_student", "BeamDeploy"]


def _grouped_convs(path: Path) -> list[str]:
    import onnx

    names = []
    for node in onnx.load(str(path)).graph.node:
        if node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute):
            names.append(node.name)
    return names


def deploy_student(student: torch.nn.Module, datamodule, out_dir, *, onnx: bool = True, int8: bool = True,
                   exclude_grouped_conv: bool = True, calibration_batches: int = 16, profile: bool = True,
                   seconds: float = 0.3) -> dict:
    """Scores (and with ``onnx`` the exported artifacts' scores, bytes and latency) of a trained student."""
    from compress.export import export_onnx
    from compress.profile import profile_artifact
    from compress.export import quantize_onnx_static

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    datamodule.setup("fit")
    student = student.eval()
    example = datamodule.train_set[[0]]["x"]
    results = {"pytorch": evaluate(student, datamodule=datamodule)}
    if not onnx:
        return results
    paths = {"onnx": export_onnx(student, example, out / "student.onnx")}
    if int8:
        g = torch.Generator().manual_seed(0)
        ids = torch.randperm(len(datamodule.train_set), generator=g)[:calibration_batches].tolist()
        calib = [datamodule.train_set[[i]]["x"] for i in ids]
        exclude = _grouped_convs(paths["onnx"]) if exclude_grouped_conv else []
        paths["onnx-int8"] = quantize_onnx_static(paths["onnx"], out / "student_int8.onnx", calib,
                                                  nodes_to_exclude=exclude)
        results["int8_fp32_nodes"] = len(exclude)
    for name, path in paths.items():
        entry = evaluate(str(path), datamodule=datamodule)
        entry["bytes"] = path.stat().st_size
        if profile:
            prof = profile_artifact(path, list(example.shape), seconds=seconds, repeats=3)
            lat = next(iter(prof.latency.values()), None)
            entry["latency_us"] = {"p50": lat["p50_us"], "p99": lat["p99_us"]} if lat else None
            entry["latency_error"] = next(iter(prof.errors.values()), None)
        results[name] = entry
    return results


class BeamDeploy:
    """``after_fit`` hook: ``deploy_student`` on the run's student, results into ``run_dir``."""

    def __init__(self, onnx: bool = True, int8: bool = True, exclude_grouped_conv: bool = True, profile: bool = True):
        self.onnx, self.int8, self.exclude_grouped_conv, self.profile = onnx, int8, exclude_grouped_conv, profile

    def __call__(self, module, datamodule, run_dir, exported=None):
        run_dir = Path(run_dir)
        res = deploy_student(module.student, datamodule, run_dir / "deploy", onnx=self.onnx, int8=self.int8,
                             exclude_grouped_conv=self.exclude_grouped_conv, profile=self.profile)
        tmp = run_dir / f"results.json.tmp{os.getpid()}"
        tmp.write_text(json.dumps(res, indent=2))
        os.replace(tmp, run_dir / "results.json")
        for name in ("pytorch", "onnx", "onnx-int8"):
            if name in res:
                r = res[name]
                lat = r.get("latency_us") or {}
                print(f"[beam] {name:9s} top-2 t0..t3 " + " / ".join(f"{v:.1f}" for v in r["top2"])
                      + (f"   p50 {lat['p50']:.0f} us, p99 {lat['p99']:.0f} us, {r['bytes']:,} B" if lat else ""),
                      flush=True)
        return res
