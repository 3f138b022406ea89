"""Search throughput with 1, 2 and 3 independent workers, SQLite vs PostgreSQL (issue 17).

For every (storage, K) a fresh study of ``--trials`` tiny trials (the digits MLP of tests/test_search.py,
``--epochs`` epochs on 30% of the training split, random sampler) is run by K worker processes started
independently, each with its own run folder, exactly as on K machines:
``python -m compress search RECIPE --storage URL --worker-index I --run_dir=DIR_I``.  PostgreSQL is a
throwaway server started from the machine's binaries (tests/postgres.py), or ``--postgres URL``.

Trials per minute = finished trials / (last trial's completion - first trial's start), from the
study's own timestamps: the steady-state rate, without the workers' interpreter start-up (printed
separately as wall time).  On a machine with C cores no more than C trainings run at once: with 2
cores, 3 workers cannot beat 2.

    python tools/bench_search_scale.py [--trials 6] [--epochs 2] [--workers 1 2 3] [--json]

``--json`` prints ``{"sqlite": {"1": tpm, ...}, "postgresql": {"1": tpm, "2": tpm, "3": tpm}}`` last.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import yaml

from compress.run.children import start_child

from tests.postgres import PostgresServer, find_bin_dir, INSTALL
from tests.test_search import tiny_recipe

ROOT = Path(__file__).resolve().parents[1]


def run_study(recipe: Path, url: str, k: int, n: int, work: Path, name: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COMPRESS_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    procs = [start_child([sys.executable, "-m", "compress", "search", str(recipe), "--storage", url,
                               "--study-name", name, "--n-trials", str(n), "--worker-index", str(i),
                               f"--run_dir={work / f'worker{i}'}"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(k)]
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"worker failed ({url.split(':')[0]}, {k} workers):\n{out[-3000:]}")
    wall = time.perf_counter() - t0
    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) != n or len(trials) != n:
        raise SystemExit(f"expected {n} complete trials, the study holds {len(trials)} ({len(done)} complete)")
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    return {"trials_per_min": round(60.0 * n / span, 2), "span_s": round(span, 1), "wall_s": round(wall, 1),
            "workers_used": len({t.user_attrs["worker_pid"] for t in done})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--postgres", default=None, help="an existing server's URL (default: start a throwaway one)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # stop the PostgreSQL server on kill too

    server = None
    if args.postgres is None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise SystemExit(INSTALL)
        server = PostgresServer(bin_dir).start()
    results: dict = {"sqlite": {}, "postgresql": {}}
    details: dict = {"sqlite": {}, "postgresql": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
            tmp = Path(tmp)
            cfg = tiny_recipe(tmp, limits={"max_bytes": 100000})
            cfg["trainer"]["max_epochs"] = args.epochs
            cfg.pop("run_dir")
            recipe = tmp / "bench_search.yaml"
            recipe.write_text(yaml.safe_dump(cfg, sort_keys=False))
            for k in args.workers:               # backends interleaved: a change in the machine's load
                for backend in ("sqlite", "postgresql"):   # hits both alike
                    work = tmp / f"{backend}-{k}"
                    work.mkdir()
                    if backend == "sqlite":
                        url = f"sqlite:///{work / 'study.db'}"
                    else:
                        url = server.create_database() if server else args.postgres
                    r = run_study(recipe, url, k, args.trials, work, f"bench-{backend}-{k}")
                    results[backend][str(k)] = r["trials_per_min"]
                    details[backend][str(k)] = r
                    print(f"{backend:10s} {k} worker(s): {r['trials_per_min']:6.2f} trials/min "
                          f"({args.trials} trials in {r['span_s']} s of trials, {r['wall_s']} s wall, "
                          f"{r['workers_used']} workers ran trials)", flush=True)
    finally:
        if server is not None:
            server.stop()
    print(f"\ntrials per minute ({args.trials} trials of {args.epochs} epochs each; machine: "
          f"{os.cpu_count()} cores, shared with other jobs: compare ratios within one run)")
    print(f"{'workers':>8s} {'sqlite':>10s} {'postgresql':>11s}")
    for k in args.workers:
        print(f"{k:>8d} {results['sqlite'][str(k)]:>10.2f} {results['postgresql'][str(k)]:>11.2f}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
