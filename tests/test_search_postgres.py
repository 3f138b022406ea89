"""Searches shared through a real PostgreSQL server (issue 17): independent worker processes, each with
its own run folder as on separate machines, one study.  The server is a throwaway one started from the
machine's binaries (tests/postgres.py); without them these tests are skipped with the install hint."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from tests.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests.test_search import tiny_recipe, write_recipe

ROOT = Path(__file__).resolve().parents[1]
STUDY = "shared"
COMPLETE, FAIL, RUNNING = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL,
                           optuna.trial.TrialState.RUNNING)


def _worker(recipe: Path, url: str, index: int, run_dir: Path, n: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "compress", "search", str(recipe), "--storage", url, "--study-name", STUDY,
           "--n-trials", str(n), "--worker-index", str(index), f"--run_dir={run_dir}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COMPRESS_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _trials(url: str) -> list:
    try:
        return optuna.load_study(study_name=STUDY, storage=url).get_trials()
    except KeyError:          # not created yet
        return []


def _wait(procs, timeout=300) -> list[str]:
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        outs.append(out)
        assert p.returncode == 0, out[-3000:]
    return outs


def _recipe(tmp_path: Path, epochs: int) -> Path:
    cfg = tiny_recipe(tmp_path, limits={"max_bytes": 100000})
    cfg["trainer"]["max_epochs"] = epochs
    return write_recipe(tmp_path, cfg)


def _trained_in(run_dirs: list[Path]) -> dict[int, list[Path]]:
    """Trial number -> the run folders holding a trained copy of it (its student.pt)."""
    out: dict[int, list[Path]] = {}
    for d in run_dirs:
        for f in (d / "trials").glob("*/student.pt"):
            out.setdefault(int(f.parent.name), []).append(d)
    return out


def test_postgres_three_independent_workers_no_duplicates(tmp_path, postgres_url):
    recipe, n = _recipe(tmp_path, epochs=2), 5
    dirs = [tmp_path / f"machine{i}" for i in range(3)]
    _wait([_worker(recipe, postgres_url, i, d, n) for i, d in enumerate(dirs)])
    trials = _trials(postgres_url)
    assert [t.number for t in trials] == list(range(n))          # nothing beyond N was even started
    assert all(t.state == COMPLETE for t in trials)
    assert len({t.user_attrs["worker_pid"] for t in trials}) >= 2  # the work was shared
    trained = _trained_in(dirs)
    assert sorted(trained) == list(range(n))                       # every trial trained ...
    assert all(len(v) == 1 for v in trained.values())              # ... exactly once, on one machine
    for t in trials:                                               # and its artifact is in that worker's folder
        assert Path(t.user_attrs["artifact"]).parent.parent.parent == trained[t.number][0]
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == n

    # the Pareto report from the shared study, on a fourth "machine" that ran no trial
    from compress.search.cli import SearchArgs, run_search

    report_dir = tmp_path / "report"
    summary = run_search(SearchArgs(str(recipe), storage=postgres_url, study_name=STUDY, report_only=True,
                                    overrides=[f"--run_dir={report_dir}"]))
    assert summary["trials"] == n and summary["states"] == {"COMPLETE": n}
    rows = list(csv.DictReader(open(report_dir / "trials.csv")))
    assert [int(r["number"]) for r in rows] == list(range(n))
    front = json.loads((report_dir / "pareto.json").read_text())
    assert front and {e["number"] for e in front} == set(summary["pareto"])
    best = {t.number: t for t in trials}
    for e in front:     # the front's entries are the study's trials, values as stored in PostgreSQL
        assert e["values"] == list(best[e["number"]].values)
    assert not (report_dir / "trials").exists()                      # it trained nothing


def test_postgres_sigkill_one_worker_mid_trial_is_retried(tmp_path, postgres_url):
    recipe, n = _recipe(tmp_path, epochs=4), 4
    dirs = [tmp_path / f"machine{i}" for i in range(3)]
    procs = [_worker(recipe, postgres_url, i, d, n) for i, d in enumerate(dirs)]
    victim, deadline = None, time.time() + 240
    while victim is None and time.time() < deadline:
        victim = next((t for t in _trials(postgres_url) if t.state == RUNNING and "worker_pid" in t.user_attrs), None)
        time.sleep(0.2)
    assert victim is not None, "no running trial seen"
    killed = next(p for p in procs if p.pid == victim.user_attrs["worker_pid"])
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    _wait([p for p in procs if p is not killed])
    trials = _trials(postgres_url)
    done = [t for t in trials if t.state == COMPLETE]
    failed = [t for t in trials if t.state == FAIL]
    assert len(done) == n                                      # the others finished the study
    assert [t.number for t in failed] == [victim.number]       # the killed trial, marked failed once
    retry = [t for t in done if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retry) == 1 and retry[0].params == victim.params   # ... and run again with its parameters
    assert retry[0].user_attrs["worker_pid"] != killed.pid


def test_postgres_study_resumed_after_all_workers_killed(tmp_path, postgres_url):
    recipe, n = _recipe(tmp_path, epochs=4), 4
    dirs = [tmp_path / f"machine{i}" for i in range(2)]
    procs = [_worker(recipe, postgres_url, i, d, n) for i, d in enumerate(dirs)]
    deadline = time.time() + 240
    while time.time() < deadline:
        trials = _trials(postgres_url)
        if any(t.state == COMPLETE for t in trials) and any(t.state == RUNNING for t in trials):
            break
        time.sleep(0.2)
    for p in procs:
        p.send_signal(signal.SIGKILL)
    for p in procs:
        p.communicate(timeout=60)
    before = {t.number: t.values for t in _trials(postgres_url) if t.state == COMPLETE}
    left_running = [t.number for t in _trials(postgres_url) if t.state == RUNNING]
    assert 1 <= len(before) < n and left_running
    time.sleep(3.5)                                  # the killed trials' heartbeats go stale (grace 3 s)
    # resume: the plain command (one process, which also writes the reports) on a third machine
    out = subprocess.run([sys.executable, "-m", "compress", "search", str(recipe), "--storage", postgres_url,
                          "--study-name", STUDY, "--n-trials", str(n), f"--run_dir={tmp_path / 'resume'}"],
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "COMPRESS_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "left running by a killed process" in out.stdout
    trials = _trials(postgres_url)
    done = {t.number: t for t in trials if t.state == COMPLETE}
    assert len(done) == n
    assert all(done[k].values == v for k, v in before.items())   # finished trials kept, unchanged
    failed = [t for t in trials if t.state == FAIL]
    assert sorted(t.number for t in failed) == sorted(left_running)
    for f in failed:                                   # each killed trial retried exactly once
        assert sum(t.system_attrs.get("failed_trial") == f.number for t in done.values()) == 1
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["states"] == {"COMPLETE": n, "FAIL": len(failed)}
    assert (tmp_path / "resume" / "pareto.json").is_file()


def test_postgres_storage_opened_by_many_workers_at_once(postgres_url):
    """Workers starting together on an empty database race to create Optuna's tables; each must get a
    working storage (the loser of the race retries) and see the same study."""
    from concurrent.futures import ThreadPoolExecutor

    from compress.search.study import open_storage

    def open_one(_):
        storage = open_storage(postgres_url, 1, 3)
        return optuna.create_study(storage=storage, study_name=STUDY, load_if_exists=True)._study_id

    with ThreadPoolExecutor(6) as pool:
        ids = list(pool.map(open_one, range(6)))
    assert len(set(ids)) == 1
