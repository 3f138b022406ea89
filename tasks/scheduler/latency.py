"""Per-TTI time of the schedulers on the evaluation set-up (seed 004, Appendix F, Table 3).

* Deep schedulers, as deployed: a 1LDS actor runs abs(L) = 8 sequential forward passes per TTI (one per
  user layer, all 18 RBGs at once), a 2LDS actor N_RBG x abs(L) = 144; batch 1, one thread, in a process
  of its own (``compress.profile``). C export (fp32 / int8): the C harness times the K = 8 or 144 passes
  as ONE call (K different inputs back to back, each depending on the last), so p50/p99 are per TTI;
  ONNX Runtime: one pass is timed (batch 1) and the TTI is K x that (ORT has no K-pass call). Like the
  seed's Table 3 this excludes filling the state vector (pre-computed from CSI reports).
* Heuristics (baseline SDS, PF greedy): this project's numpy implementation, evaluation set-up, one drop
  (21 cells batched): the time per TTI spent in what the heuristic needs beyond a deep scheduler - the
  MU-MIMO rate estimate of every candidate on every RBG and layer (``RBGSets.evaluate``: RZF update and
  throughput estimate) and the decision itself - measured in a process of its own on one thread, and
  divided by the 21 cells (a batched, vectorised number: a per-cell implementation pays numpy's call
  overhead 21 times over, so a single cell would be slower than this).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

__all__ = ["actor_tti_latency", "heuristic_tti_time"]


def actor_tti_latency(model: nn.Module | None, passes: int, runtimes=("c-export", "c-export-int8", "onnxruntime"),
                      workdir: str | Path | None = None, artifacts: dict | None = None, repeats: int = 5) -> dict:
    """``{runtime: {tti_p50_us, tti_p99_us, pass_p50_us, bytes}}`` for ``passes`` forward passes per TTI.
    ``artifacts`` may give already exported files per runtime (``{"c-export-int8": {"path": .c, "h": .h}}``,
    ``{"onnxruntime": {"path": .onnx}}``): the deployed artifact itself is timed then."""
    from compress.profile.latency import build_artifact, time_c_export, time_onnx

    artifacts = dict(artifacts or {})
    out = {}
    with tempfile.TemporaryDirectory(prefix="sched-lat-") as tmp:
        base = Path(workdir or tmp)
        for rt in runtimes:
            art = artifacts.get(rt)
            if art is None:
                n_in = model.in_features if hasattr(model, "in_features") else None
                art = build_artifact(model, torch.zeros(1, n_in), rt, base / rt)
            if rt.startswith("c-export"):
                st = time_c_export(art["path"], art["h"], forwards_per_call=int(passes), repeats=repeats)
                out[rt] = {"tti_p50_us": st["p50_us"], "tti_p99_us": st["p99_us"],
                           "pass_p50_us": st["p50_us"] / passes}
            else:
                n_in = _onnx_inputs(art["path"])
                st = time_onnx(art["path"], [1, n_in], runtime=rt, repeats=repeats)
                out[rt] = {"tti_p50_us": st["p50_us"] * passes, "tti_p99_us": st["p99_us"] * passes,
                           "pass_p50_us": st["p50_us"], "note": f"{passes} x one timed pass"}
            out[rt]["passes"] = int(passes)
            out[rt]["bytes"] = art.get("bytes")
    return out


def _onnx_inputs(path) -> int:
    import onnx
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    return int(dims[-1].dim_value)


_HEURISTIC_CODE = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
from envs.scheduler import POLICIES, SchedulerEnv
from envs.scheduler import mumimo
name, n_tti, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spent = [0.0]
orig = mumimo.RBGSets.evaluate
def timed(self, *a, **k):
    t0 = time.process_time()
    try:
        return orig(self, *a, **k)
    finally:
        spent[0] += time.process_time() - t0
mumimo.RBGSets.evaluate = timed
env = SchedulerEnv(setup="evaluation", n_drops=1, seed=1, build_obs=False)
pol = POLICIES[name]()
obs, info = env.reset(seed=1)
per_tti = []
for t in range(warm + n_tti):
    spent[0] = 0.0
    for _ in range(env.n_stages):
        t0 = time.process_time()
        a = pol(obs, info)
        spent[0] += time.process_time() - t0
        obs, _, _, _, info = env.step(a)
    if t >= warm:
        per_tti.append(spent[0] * 1e6 / env.E)
print(json.dumps({"tti_p50_us": float(np.median(per_tti)), "tti_p99_us": float(np.percentile(per_tti, 99)),
                  "cells": env.E, "ttis": n_tti}))
"""


def heuristic_tti_time(name: str, n_tti: int = 40, warmup: int = 10) -> dict:
    """CPU time per TTI and cell of a heuristic scheduler (module doc), in a one-thread subprocess."""
    from compress.profile.latency import worker_env

    root = Path(__file__).resolve().parents[2]
    env = worker_env()
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", _HEURISTIC_CODE, name, str(n_tti), str(warmup)], env=env,
                          cwd=root, capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        raise RuntimeError(f"heuristic timing ({name}) failed: {(proc.stderr.strip().splitlines() or [''])[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
