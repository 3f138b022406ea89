"""Link-adaptation benchmark: OLLA vs teachers vs single- and multi-policy students, per scenario.

    python tools/bench_la.py [--json] [--env-speed] [--plot PATH] [--seeds 100 101]

Runs (or resumes; teachers and finished students are reused) recipes/la_single_teacher.yaml and
recipes/la_multi_teacher.yaml through ``tasks.link_adaptation.run.run_job``: int8 export, profile
(batch 1, one thread, own process) and closed-loop evaluation on the same seeds for every policy.
Prints a table; ``--json`` prints one JSON object on the last line:
{"throughput_unit": "Mbit/s", "scenarios": [{"name", "split", "olla", "teacher", "teacher_general",
 "single", "multi"}...], "students": {"single": {"bytes", "p50_us", "p99_us", ...}, "multi": {...}},
 "env_link_ttis_per_s": float}
"single" / "multi" are the deployed int8 ONNX students run by ONNX Runtime; "teacher" is the
scenario group's teacher that taught the multi-policy student, "teacher_general" the generalist.
``--env-speed`` alone only measures the env (link-TTIs per second on one core, in a subprocess).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SPEED_CODE = r"""
import os, time
import numpy as np
from envs.link_adaptation import LinkAdaptationEnv, OFFSET_MIN
from envs.scenarios import TRAIN
env = LinkAdaptationEnv(TRAIN, num_links=4096, seed=0)
env.reset(seed=0)
a = np.full(env.num_links, -OFFSET_MIN)
for _ in range(20):
    env.step(a)
best = 0.0
for _ in range(3):
    t0 = time.perf_counter(); n = 0
    while time.perf_counter() - t0 < 1.0:
        env.step(a); n += 1
    best = max(best, n * env.num_links / (time.perf_counter() - t0))
print(best)
"""


def env_speed() -> float:
    """Link-TTIs per second of the batched env (4096 links, training scenarios) on one thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _SPEED_CODE], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def plot(rows: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = [k for k in ("olla", "teacher", "teacher_general", "single", "multi") if any(k in r for r in rows)]
    x = np.arange(len(rows))
    w = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(11, 4))
    # throughput relative to OLLA: scenarios differ 30x in absolute rate (28 GHz vs 700 MHz)
    for i, k in enumerate(keys):
        ax.bar(x + i * w, [r.get(k, {}).get("throughput", 0.0) / r["olla"]["throughput"] for r in rows], w, label=k)
    ax.set_xticks(x + 0.4 - w / 2)
    ax.set_xticklabels([f"{r['name']}\n{r['split']}\nOLLA {r['olla']['throughput']:.1f} Mbit/s" for r in rows],
                       fontsize=7)
    ax.set_ylim(0.9, None)
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set_ylabel("mean throughput / OLLA's")
    ax.set_title("Link adaptation: closed-loop throughput per scenario, relative to OLLA")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    ap.add_argument("--env-speed", action="store_true", help="only measure the env's link-TTIs per second")
    ap.add_argument("--plot", default="runs/bench_la/throughput.png", help="PNG path for the plot")
    ap.add_argument("--seeds", type=int, nargs="+", default=[100, 101])
    ap.add_argument("--links", type=int, default=512)
    ap.add_argument("--ttis", type=int, default=600)
    ap.add_argument("--reuse", action="store_true", help="score the finished runs in runs/la_* instead of "
                    "retraining the students")
    a = ap.parse_args(argv)
    os.chdir(ROOT)
    speed = env_speed()
    if a.env_speed:
        print(f"env: {speed:,.0f} link-TTIs/s (one thread, 4096 links, training scenarios)")
        if a.json:
            print(json.dumps({"env_link_ttis_per_s": speed}))
        return 0

    import torch
    torch.set_num_threads(1)
    from tasks.link_adaptation.run import run_job

    ev = dict(seeds=tuple(a.seeds), num_links=a.links, n_tti=a.ttis)
    t0 = time.time()
    # students are retrained (--fresh) so the numbers are of the current code; teachers stay cached by
    # recipe hash (delete cache/teachers to retrain them); --reuse scores finished runs as they are
    extra = [] if a.reuse else ["--fresh"]
    res = {k: run_job(f"recipes/la_{k}_teacher.yaml", extra, eval_kwargs=ev) for k in ("single", "multi")}
    rows = []
    for name, m in res["multi"]["scenarios"].items():
        s = res["single"]["scenarios"][name]
        row = {"name": name, "split": m["split"], "olla": m["olla"], "single": s["student_int8"],
               "multi": m["student_int8"], "single_fp32": s["student"], "multi_fp32": m["student"]}
        if "teacher" in m:
            row["teacher"] = m["teacher"]
        if "teacher" in s:
            row["teacher_general"] = s["teacher"]
        rows.append(row)
    students = {k: {kk: res[k]["deployed"][kk] for kk in ("bytes", "int8_param_bytes", "params", "p50_us",
                                                          "p99_us", "c_p50_us", "c_p99_us")}
                for k in ("single", "multi")}
    Path(a.plot).parent.mkdir(parents=True, exist_ok=True)
    plot(rows, Path(a.plot))

    cols = ["olla", "teacher", "teacher_general", "single", "multi"]
    print(f"\n{'scenario':16s} {'split':8s} " + " ".join(f"{c:>16s}" for c in cols) + "   (Mbit/s / BLER)")
    for r in rows:
        cells = [f"{r[c]['throughput']:8.2f}/{r[c]['bler']:.3f}" if c in r else f"{'-':>14s}" for c in cols]
        print(f"{r['name']:16s} {r['split']:8s} " + " ".join(f"{c:>16s}" for c in cells))
    for split in ("train", "heldout"):
        sel = [r for r in rows if r["split"] == split and "teacher" in r]
        if sel:
            def ratio(k, ref):
                return sum(r[k]["throughput"] / r[ref]["throughput"] for r in sel) / len(sel)
            print(f"{split}: multi/teacher {ratio('multi', 'teacher'):.3f}  single/teacher_general "
                  f"{ratio('single', 'teacher_general'):.3f}  multi/single {ratio('multi', 'single'):.3f}  "
                  f"multi/olla {ratio('multi', 'olla'):.3f}  teacher/olla {ratio('teacher', 'olla'):.3f}")
    for k, v in students.items():
        print(f"{k} student: {v['bytes']} B int8 ONNX ({v['int8_param_bytes']} B int8 params), ORT int8 p50 "
              f"{v['p50_us']:.2f} us p99 {v['p99_us']:.2f} us; C int8 p50 {v['c_p50_us']:.3f} us p99 {v['c_p99_us']:.3f} us")
    print(f"env: {speed:,.0f} link-TTIs/s; plot: {a.plot}; {time.time() - t0:.0f} s")
    if a.json:
        print(json.dumps({"throughput_unit": "Mbit/s", "scenarios": rows, "students": students,
                          "env_link_ttis_per_s": speed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
