"""bench_sched runs end to end and prints the issue's output contract on its last line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_sched_quick_prints_the_contract(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "bench_sched.py"), "--quick", "--json",
                          "--out", str(tmp_path), "--policies", "su_pf,baseline_sds,pf_greedy", "--no-latency"], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(res) == {"fb", "ftp3", "gains_over_baseline_sds", "env", "throughput_unit", "co_scheduling",
                        "std_over_drops", "train_minutes", "ftp3_upt_gains_over_baseline_sds"}
    pols = {"su_pf", "baseline_sds", "pf_greedy"}
    for tr in ("fb", "ftp3"):
        assert set(res[tr]) == pols and set(res["gains_over_baseline_sds"][tr]) == pols
        assert all(set(v) == {"p5", "median", "geomean"} for v in res[tr].values())
    assert res["gains_over_baseline_sds"]["fb"]["baseline_sds"]["median"] == 0.0
    assert res["env"]["tti_ms_train"] > 0 and res["env"]["decisions_per_s"] > 0
    assert res["throughput_unit"] == "Mbit/s"
    assert (tmp_path / "throughput_cdf.png").stat().st_size > 10_000 and (tmp_path / "results.json").exists()


def _bench():
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_sched_under_test", ROOT / "tools" / "bench_sched.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_dir_adds_a_tagged_row_or_names_what_is_wrong(tmp_path, capsys):
    """--run-dir NAME@TAG=DIR scores DIR's artifact as an extra row of NAME's kind; a bad item is one
    clear error naming it."""
    bench = _bench()
    (tmp_path / "export" / "c_int8").mkdir(parents=True)
    (tmp_path / "export" / "c_int8" / "student.c").write_text("/* stand-in */")
    bench.RUN_DIRS["student@s1"] = str(tmp_path)
    try:
        assert bench.run_folder("student@s1") == tmp_path and bench.deep_available("student@s1")
        assert "student@s1" in bench.policies() and bench.policies()["student@s1"].design == "1lds"
        assert bench._Deep("student@s1").actor() == tmp_path / "export" / "c_int8" / "student.c"
    finally:
        bench.RUN_DIRS.clear()
    for item, msg in (("nonsense=x", "expected NAME=DIR"), ("student@s2=" + str(tmp_path / "none"), "no export/c_int8")):
        with pytest.raises(SystemExit):
            bench.main(["--run-dir", item])
        assert msg in capsys.readouterr().err


def test_a_run_trained_on_the_evaluation_drops_is_refused(tmp_path):
    """An RL learner resets its env with its own seed and a DAgger data module rolls out on seed + 1000 x
    epoch: either equal to the bench's --seed on the evaluation set-up means the run saw the test drops."""
    import yaml
    bench = _bench()
    rl = {"model": {"init_args": {"seed": 1, "env": {"class_path": "envs.scheduler.SchedulerEnv",
                                                     "init_args": {"setup": "evaluation", "seed": 0}}}}}
    dagger = {"trainer": {"max_epochs": 3}, "data": {"init_args": {"seed": 0, "env": {"setup": "evaluation"}}}}
    cases = [(rl, 1, "learner seed 1"), (rl, 2, None), (dagger, 2000, "epoch 2"), (dagger, 1, None),
             ({"data": {"init_args": {"seed": 1}}}, 1, None)]          # rollouts on the training set-up
    try:
        for i, (cfg, seed, msg) in enumerate(cases):
            (tmp_path / str(i)).mkdir()
            (tmp_path / str(i) / "recipe.yaml").write_text(yaml.safe_dump(cfg))
            bench.RUN_DIRS[f"student@{i}"] = str(tmp_path / str(i))
            why = bench.eval_drops_in_training(f"student@{i}", seed)
            assert (why is None) if msg is None else (msg in why), (i, why)
    finally:
        bench.RUN_DIRS.clear()


def test_a_student_of_a_teacher_that_saw_the_evaluation_drops_is_refused(tmp_path):
    """The check follows a distilled run's teacher checkpoints to their run folders' recipes."""
    import yaml
    bench = _bench()
    rl = lambda seed: {"model": {"init_args": {"seed": seed, "env": {"init_args": {"setup": "evaluation"}}}}}
    for seed in (1, 2):
        (tmp_path / f"t{seed}").mkdir()
        (tmp_path / f"t{seed}" / "recipe.yaml").write_text(yaml.safe_dump(rl(seed)))
    student = {"model": {"init_args": {"distiller": {"init_args": {"teachers": {
        f"t{s}": {"class_path": "compress.distill.Checkpoint", "init_args": {"path": str(tmp_path / f"t{s}" / "student.pt")}}
        for s in (2, 1)}}}}}}
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "recipe.yaml").write_text(yaml.safe_dump(student, sort_keys=False))
    bench.RUN_DIRS["student@x"] = str(tmp_path / "s")
    try:
        assert bench.teacher_paths(tmp_path / "s") == [tmp_path / "t2" / "student.pt", tmp_path / "t1" / "student.pt"]
        why = bench.eval_drops_in_training("student@x", 1)
        assert why and str(tmp_path / "t1" / "student.pt") in why and "learner seed 1" in why
        assert bench.eval_drops_in_training("student@x", 3) is None
    finally:
        bench.RUN_DIRS.clear()


def test_the_ensemble_row_is_the_mean_of_its_teachers(tmp_path):
    """dsacd_1lds_ensemble scores the mean logits of the teachers its run's recipe names, and is missing
    until every teacher checkpoint exists."""
    import torch
    import yaml
    from compress.serialize import save_module
    from tasks.scheduler import Shared1LDS
    bench = _bench()
    torch.manual_seed(0)
    nets = [Shared1LDS(width=64).eval() for _ in range(2)]
    paths = [tmp_path / f"t{i}.pt" for i in range(2)]
    spec = {"model": {"init_args": {"distiller": {"init_args": {"teachers": {
        f"t{i}": {"init_args": {"path": str(p)}} for i, p in enumerate(paths)}}}}}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(spec))
    bench.RUN_DIRS["dsacd_1lds_ensemble@x"] = str(tmp_path)
    try:
        assert not bench.deep_available("dsacd_1lds_ensemble@x")
        for net, p in zip(nets, paths):
            save_module(net, p)
        assert bench.deep_available("dsacd_1lds_ensemble@x")
        actor = bench._Deep("dsacd_1lds_ensemble@x").actor()
        x = torch.randn(5, 410)
        with torch.no_grad():
            assert torch.allclose(actor(x), (nets[0](x) + nets[1](x)) / 2, atol=1e-6)
        from envs.scheduler.env import SchedulerEnv
        env = SchedulerEnv(setup="evaluation", n_drops=1, seed=7)     # the bench's env policy runs it
        obs, info = env.reset(seed=7)
        act = bench._Deep("dsacd_1lds_ensemble@x")()(obs, info)
        assert act.shape[0] == obs.shape[0]
    finally:
        bench.RUN_DIRS.clear()
