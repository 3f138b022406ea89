"""compress.search: constraint logic, Pareto extraction, bad search spaces, storage errors, a tiny
end-to-end study; resume after SIGKILL and two workers are marked slow (subprocesses)."""
from __future__ import annotations

import csv
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
import yaml

from compress.models import MLP
from compress.search.constraints import constraint_values, precheck, violation_reason
from compress.search.report import dominates, pareto_front
from compress.search.space import parse_search
from compress.errors import RecipeError

ROOT = Path(__file__).resolve().parents[1]


def tiny_recipe(tmp_path: Path, **search_overrides) -> dict:
    """A digits MLP job with no teacher (task loss only), 2 epochs on 30% of the training split."""
    search = {
        "input_shape": [1, 64], "metric": "val/acc", "objectives": ["quality", "bytes"],
        "limits": {"max_bytes": 3000}, "sampler": "random", "n_trials": 4, "seed": 0,
        "timing_seconds": 0.05, "heartbeat_interval": 1, "grace_period": 3,
        "space": {"model.init_args.student.init_args.hidden": {"layers": [1, 1], "width": [2, 32], "log": True},
                  "model.init_args.lr": {"low": 0.002, "high": 0.02, "log": True}},
    }
    search.update(search_overrides)
    return {
        "seed_everything": 0,
        "run_dir": str(tmp_path / "run"),
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "logger": False,
                    "enable_progress_bar": False, "enable_model_summary": False},
        "model": {"class_path": "compress.distill.DistillationModule", "init_args": {
            "student": {"class_path": "compress.models.MLP",
                        "init_args": {"in_features": 64, "out_features": 10, "hidden": [8]}},
            "task_loss": {"class_path": "torch.nn.CrossEntropyLoss"}, "num_classes": 10, "lr": 0.01}},
        "data": {"class_path": "compress.data.DigitsDataModule",
                 "init_args": {"batch_size": 64, "seed": 0, "train_fraction": 0.3}},
        "search": search,
    }


def write_recipe(tmp_path: Path, cfg: dict) -> Path:
    path = tmp_path / "tiny_search.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def fp32_mlp_bytes(widths: list[int], n_in: int = 64, n_out: int = 10) -> int:
    sizes = [n_in, *widths, n_out]
    return 4 * sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


# ----------------------------------------------------------------------------- constraint logic
def test_constraint_values_follow_optuna_sign_convention():
    assert constraint_values(5000, 12.5, 6000, 10.0) == [-1000.0, 2.5]
    assert constraint_values(5000, None, 6000, None) == [-1000.0]           # only limits that are set
    assert constraint_values(None, None, 6000, 10.0) == [math.inf, math.inf]  # unmeasured = violated
    assert constraint_values(10, 1, None, None) == []
    assert violation_reason(7000, None, 6000, 10.0) == "bytes 7,000 > max_bytes 6,000"
    assert violation_reason(5000, 12.5, 6000, 10.0) == "p99 12.50 us > max_p99_us 10"
    assert violation_reason(6000, 10.0, 6000, 10.0) == ""                 # limits are inclusive


def test_precheck_counts_exact_bytes_and_rejects_without_timing():
    torch.manual_seed(0)
    fp32 = precheck(MLP(64, 10, [16]), [1, 64], bits=32, max_bytes=1000)
    assert fp32["bytes"] == fp32_mlp_bytes([16]) == 4840
    assert fp32["reason"] == "bytes 4,840 > max_bytes 1,000"
    assert fp32["p99_us"] is None               # rejected on bytes: never timed
    assert fp32["seconds"] < 1.0
    # int8 QDQ: per layer input scale+zp (4+1), int8 weights, per-channel fp32 scale + int8 zp, int32 bias
    # + fp32 bias scale; output scale+zp (4+1) at the end
    layer = lambda i, o: 5 + i * o + 4 * o + o + 4 * o + 4 * o  # noqa: E731
    int8 = precheck(MLP(64, 10, [16]), [1, 64], bits=8, max_bytes=2000)
    assert int8["bytes"] == layer(64, 16) + layer(16, 10) + 5 == 1537
    assert int8["reason"] == ""
    timed = precheck(MLP(64, 10, [16]), [1, 64], bits=32, max_p99_us=1e6, timing_seconds=0.05)
    assert timed["p99_us"] is not None and 0 < timed["p99_us"] < 1e6 and timed["reason"] == ""


def test_latency_violation_must_be_reproducible(monkeypatch):
    import compress.search.constraints as c

    timings = iter([{"p99_us": 20.0}, {"p99_us": 8.0}])
    monkeypatch.setattr(c, "_time_in_process", lambda *a, **k: next(timings))
    out = precheck(MLP(64, 10, [4]), [1, 64], max_p99_us=10.0)
    assert out["p99_us"] == 8.0 and out["reason"] == ""        # a one-off spike does not reject
    timings = iter([{"p99_us": 20.0}, {"p99_us": 15.0}])
    out = precheck(MLP(64, 10, [4]), [1, 64], max_p99_us=10.0)
    assert out["p99_us"] == 15.0 and out["reason"] == "p99 15.00 us > max_p99_us 10"
    timings = iter([{"p99_us": 5.0}])                              # within the limit: timed once
    assert precheck(MLP(64, 10, [4]), [1, 64], max_p99_us=10.0)["p99_us"] == 5.0


def test_precheck_prunes_before_counting():
    pruned = precheck(MLP(64, 10, [64]), [1, 64], bits=32, prune_ratio=0.5)
    full = fp32_mlp_bytes([64])
    # structured pruning of the hidden layer: bytes fall to about half, never above the budget's channel count
    assert pruned["bytes"] < 0.6 * full
    widths = [(pruned["bytes"] // 4 - 10) // (64 + 1 + 10)]
    assert pruned["bytes"] == fp32_mlp_bytes(widths)


# ----------------------------------------------------------------------------- Pareto extraction
def _trial(number, values, constraints, state=optuna.trial.TrialState.COMPLETE):
    t = optuna.trial.create_trial(state=state, values=values if state == optuna.trial.TrialState.COMPLETE else None,
                                  params={"x": float(number)},
                                  distributions={"x": optuna.distributions.FloatDistribution(0, 100)},
                                  user_attrs={"constraints": constraints},
                                  system_attrs={"constraints": tuple(constraints)})
    t.number = number
    return t


def test_pareto_front_is_feasible_and_non_dominated():
    dirs = ["maximize", "minimize"]                  # (accuracy, bytes)
    trials = [
        _trial(0, [0.90, 4000], [-100]),   # front
        _trial(1, [0.80, 3000], [-200]),   # front
        _trial(2, [0.85, 4500], [-50]),    # dominated by 0
        _trial(3, [0.95, 9000], [+100]),   # best accuracy but over the byte limit
        _trial(4, [0.70, 1000], [-300]),   # front
        _trial(5, [0.80, 3000], [-200]),   # equal to 1: not dominated, stays
        _trial(6, [-math.inf, 2000], [-1]),  # non-finite (rejected sentinel): excluded
        _trial(7, None, [-1], state=optuna.trial.TrialState.PRUNED),
    ]
    assert [t.number for t in pareto_front(trials, dirs)] == [0, 1, 4, 5]
    assert dominates([0.9, 4000], [0.85, 4500], dirs) and not dominates([0.8, 3000], [0.8, 3000], dirs)
    # Optuna's own constrained front agrees
    study = optuna.create_study(directions=dirs)
    for t in trials:
        if t.number != 6:
            study.add_trial(t)
    assert sorted(t.params["x"] for t in study.best_trials) == [0.0, 1.0, 4.0, 5.0]


# ----------------------------------------------------------------------------- bad search spaces
@pytest.mark.parametrize("space, message", [
    ({"model.init_args.lr": {"low": 0.1, "high": 0.01}}, "empty range [0.1, 0.01]"),
    ({"model.init_args.student.init_args.activation": {"choices": []}}, "choices: empty range"),
    ({"model.init_args.student.init_args.hidden": {"layers": [3, 1], "width": [4, 8]}}, "layers: empty range"),
    ({"model.init_args.studnet.init_args.hidden": {"low": 1, "high": 2}},
     "unknown knob 'model.init_args.studnet.init_args.hidden': the recipe has no 'model.init_args.studnet'"),
    ({"model.init_args.student.init_args.depth": {"low": 1, "high": 3}},
     "unknown knob 'model.init_args.student.init_args.depth'"),
    ({"trainer.max_epochs": {"low": 1, "hihg": 3}}, "unknown key 'hihg'"),
    ({"bits": {"choices": [4, 8]}}, "bit widths must be 8 or 32"),
    ({"model": {"init_args": {"lr": {"low": 0.1, "high": 0.01}}}}, "space.model.init_args.lr: empty range"),
    ({"model.init_args.lr": {"low": 0.0, "high": 0.1, "log": True}}, "log scale needs low > 0"),
])
def test_bad_search_space_is_a_one_line_error(tmp_path, space, message):
    cfg = tiny_recipe(tmp_path, space=space)
    with pytest.raises(RecipeError) as info:
        parse_search(cfg, "tiny.yaml")
    text = str(info.value)
    assert message in text and "\n" not in text


def test_unknown_init_arg_knob_names_accepted_arguments(tmp_path):
    cfg = tiny_recipe(tmp_path, space={"model.init_args.student.init_args.widths": {"low": 1, "high": 3}})
    with pytest.raises(RecipeError, match="unknown argument 'widths' for compress.models.MLP"):
        parse_search(cfg, "tiny.yaml")


def test_unreachable_storage_is_a_clear_error(tmp_path, capsys):
    from compress.cli import main
    from compress.search.study import open_storage

    with pytest.raises(ValueError, match=r"cannot open storage .*directory /nonexistent_dir_e/sub does not exist"):
        open_storage("sqlite:////nonexistent_dir_e/sub/study.db")
    with pytest.raises(ValueError) as info:
        open_storage("postgresql://user:secret@127.0.0.1:1/optuna")
    assert str(info.value).startswith("cannot open storage 'postgresql://user:***@127.0.0.1:1/optuna'")
    assert "secret" not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="is not a database URL"):
        open_storage("study.db")
    recipe = write_recipe(tmp_path, tiny_recipe(tmp_path))
    assert main(["search", str(recipe), "--storage", "sqlite:////nonexistent_dir_e/x/s.db"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot open storage")


# ----------------------------------------------------------------------------- trial recipe + pruning
def test_trial_recipe_adds_pruning_qat_and_optuna_callbacks(tmp_path):
    from compress.search.objective import trial_recipe

    cfg = tiny_recipe(tmp_path, objectives=["quality"], space={"bits": {"choices": [8, 32]},
                                                               "prune_ratio": {"choices": [0.0, 0.5]}})
    cfg["trainer"]["max_epochs"] = 6
    scfg = parse_search(cfg, "tiny.yaml")
    out = trial_recipe(cfg, scfg, {"bits": 8, "prune_ratio": 0.5,
                                   "model.init_args.student.init_args.hidden": [5, 7]}, tmp_path / "t0")
    cbs = {c["class_path"]: c["init_args"] for c in out["trainer"]["callbacks"]}
    assert cbs["compress.prune.PruningCallback"]["target_ratio"] == 0.5
    assert cbs["compress.prune.PruningCallback"]["start_epoch"] == scfg.prune_epoch == 1
    assert cbs["compress.quant.QATCallback"]["start_epoch"] == 6 - scfg.qat_epochs == 4
    assert cbs["compress.search.callbacks.OptunaPruning"]["monitor"] == "val/acc"
    assert out["model"]["init_args"]["student"]["init_args"]["hidden"] == [5, 7]
    assert "search" not in out and out["run_dir"] == str(tmp_path / "t0")
    assert cfg["model"]["init_args"]["student"]["init_args"]["hidden"] == [8]   # base recipe untouched


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def test_optuna_pruning_callback_stops_the_fit(tmp_path):
    from compress.recipe import CommandLine, Prepared
    from compress.run import run
    from compress.search.callbacks import active_trial

    cfg = tiny_recipe(tmp_path)
    cfg.pop("search")
    cfg["trainer"]["max_epochs"] = 5
    cfg["trainer"]["callbacks"] = [{"class_path": "compress.search.callbacks.OptunaPruning",
                                    "init_args": {"monitor": "val/acc"}}]
    study = optuna.create_study(direction="maximize", pruner=_AlwaysPrune())
    trial = study.ask()
    with active_trial(trial) as state:
        cli = run("fit", Prepared(tmp_path / "tiny.yaml", cfg, CommandLine(flags={"--fresh"})))
    assert state["pruned_at"] == 0
    assert cli.trainer.current_epoch == 1            # stopped after the first epoch, not 5
    assert list(study.trials[0].intermediate_values) == [0]


# ----------------------------------------------------------------------------- end to end (tiny)
def test_tiny_study_end_to_end(tmp_path):
    from compress.search.cli import SearchArgs, run_search

    cfg = tiny_recipe(tmp_path)
    recipe = write_recipe(tmp_path, cfg)
    run = tmp_path / "run"
    run.mkdir()
    # three proposals fixed up front (the 4th is the sampler's): feasible, over the byte limit, a repeat
    study = optuna.create_study(storage=f"sqlite:///{run / 'study.db'}", study_name="tiny_search",
                                directions=["maximize", "minimize"])
    knob = "model.init_args.student.init_args.hidden"
    for width in (8, 12, 8):
        study.enqueue_trial({f"{knob}.depth": 1, f"{knob}.w0": width, "model.init_args.lr": 0.01})
    summary = run_search(SearchArgs(str(recipe), n_trials=4))
    rows = list(csv.DictReader(open(run / "trials.csv")))
    assert len(rows) == 4 and all(r["state"] == "COMPLETE" for r in rows)
    assert rows[1]["trained"] == "False" and rows[1]["rejected_reason"] == \
        "before training: bytes 3,640 > max_bytes 3,000"                  # 4 * (64*12 + 12 + 12*10 + 10)
    assert rows[2]["duplicate_of"] == "0" and rows[2]["value_quality"] == rows[0]["value_quality"]
    rejected = 0
    for r in rows:
        width = int(r["param:model.init_args.student.init_args.hidden.w0"])
        expected = fp32_mlp_bytes([width])
        assert int(r["precheck_bytes"]) == expected
        if expected > 3000:        # over the limit -> never trained, reason logged
            rejected += 1
            assert r["trained"] == "False" and r["rejected_reason"].startswith("before training: bytes")
            assert float(r["precheck_seconds"]) < 1.0
        else:
            assert r["trained"] == "True" and int(r["bytes"]) == expected   # re-checked on the exported ONNX
    assert summary["rejected_before_training"] == rejected >= 1
    front = json.loads((run / "pareto.json").read_text())
    assert front, "at least one feasible trial"
    for e in front:
        assert {"number", "params", "values", "bytes", "latency_p99_us", "feasible"} <= set(e)
        assert e["feasible"] is True and e["bytes"] <= 3000 and e["latency_p99_us"] > 0
        assert e["values"][1] == e["bytes"] and e["number"] != 2           # the repeat is not listed twice
    assert (run / "pareto.png").stat().st_size > 1000
    best = json.loads((run / "best" / "profile.json").read_text())
    assert best["bytes"]["fp32_params"] <= 3000 and best["latency"]
    # rerunning the same command with the same N adds nothing (study complete)
    again = run_search(SearchArgs(str(recipe), n_trials=4))
    assert again["trials"] == 4


# ----------------------------------------------------------------------------- resume / workers (slow)
def _states(db: Path) -> list[tuple]:
    if not db.is_file():
        return []
    con = sqlite3.connect(str(db), timeout=30)
    try:
        return con.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def _cmd(recipe: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "compress", "search", str(recipe), *extra]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "COMPRESS_NUM_THREADS": "1"}


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path):
    cfg = tiny_recipe(tmp_path, limits={"max_bytes": 100000}, n_trials=5)
    cfg["trainer"]["max_epochs"] = 4
    recipe = write_recipe(tmp_path, cfg)
    db = tmp_path / "run" / "study.db"
    proc = subprocess.Popen(_cmd(recipe), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        states = _states(db)
        if sum(s == "COMPLETE" for _, s in states) >= 2 and any(s == "RUNNING" for _, s in states):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {t.number: t.values for t in optuna.load_study(study_name="tiny_search", storage=f"sqlite:///{db}")
              .get_trials(states=(optuna.trial.TrialState.COMPLETE,))}
    assert 2 <= len(before) < 5
    time.sleep(3.5)                                      # let the killed trial's heartbeat go stale
    out = subprocess.run(_cmd(recipe), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    study = optuna.load_study(study_name="tiny_search", storage=f"sqlite:///{db}")
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 5
    after = {t.number: t.values for t in done}
    assert all(after[n] == v for n, v in before.items())     # earlier trials kept, unchanged
    failed = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert len(failed) == 1                                  # the killed trial, marked stale and retried
    retry = [t for t in done if t.system_attrs.get("failed_trial") == failed[0].number]
    assert len(retry) == 1                                   # ... with the parameters it had drawn
    assert all(retry[0].params[k] == v for k, v in failed[0].params.items())
    rows = list(csv.DictReader(open(tmp_path / "run" / "trials.csv")))
    assert len(rows) == 6 and sum(r["state"] == "FAIL" for r in rows) == 1


@pytest.mark.slow
def test_two_workers_share_one_storage(tmp_path):
    cfg = tiny_recipe(tmp_path, limits={"max_bytes": 100000}, sampler="tpe")
    recipe = write_recipe(tmp_path, cfg)
    out = subprocess.run(_cmd(recipe, "--n-trials", "4", "--workers", "2"), cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    study = optuna.load_study(study_name="tiny_search", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    pids = [t.user_attrs["worker_pid"] for t in trials]
    assert len(set(pids)) == 2                                    # both workers ran trials
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 4   # no duplicated proposal


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_retried_by_the_other(tmp_path):
    """Two workers; one is SIGKILLed inside a trial: the live one notices the stale trial, runs its
    re-queued copy and the study still ends with exactly N finished trials, in the same invocation."""
    cfg = tiny_recipe(tmp_path, limits={"max_bytes": 100000}, n_trials=4)
    cfg["trainer"]["max_epochs"] = 6
    recipe = write_recipe(tmp_path, cfg)
    db = tmp_path / "run" / "study.db"
    proc = subprocess.Popen(_cmd(recipe, "--workers", "2"), cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    victim, deadline = None, time.time() + 240
    while victim is None and time.time() < deadline:
        try:
            study = optuna.load_study(study_name="tiny_search", storage=f"sqlite:///{db}")
            running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            victim = next((t for t in running if "worker_pid" in t.user_attrs), None)
        except Exception:  # noqa: BLE001 - the study is not created yet
            pass
        time.sleep(0.2)
    assert victim is not None, "no running trial seen"
    os.kill(victim.user_attrs["worker_pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    study = optuna.load_study(study_name="tiny_search", storage=f"sqlite:///{db}")
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    failed = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert len(done) == 4
    assert [t.number for t in failed] == [victim.number]
    retry = [t for t in done if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retry) == 1 and all(retry[0].params[k] == v for k, v in victim.params.items())  # it ran again
    assert len({json.dumps(t.params, sort_keys=True) for t in done}) == 4
