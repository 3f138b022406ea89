"""A DSACD fit killed with SIGKILL mid-training and resumed by rerunning the command ends exactly where an
uninterrupted run ends (networks, targets, temperature, optimizers, replay buffer with priorities, collector,
env and generator states all come back from the checkpoint)."""
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
UPDATES = 2 * 24          # 2 epochs x 24 updates; DSACD takes 3 optimizer steps per update (global_step)


def _recipe(tmp_path: Path, name: str, kill_at: int | None) -> Path:
    run_dir = tmp_path / name
    # the runner's LastCheckpoint, also every 30 global steps (10 updates), in the run folder's checkpoints/
    callbacks = [{"class_path": "compress.run.checkpoints.LastCheckpoint", "init_args": {"every_n_train_steps": 30}}]
    if kill_at is not None:
        callbacks.append({"class_path": "tests.helpers.KillAt", "init_args": {"step": kill_at}})
    cfg = {
        "seed_everything": 0, "run_dir": str(run_dir),
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
                    "enable_model_summary": False, "log_every_n_steps": 5, "callbacks": callbacks},
        "model": {"class_path": "compress.rl.DSACD", "init_args": {
            "env": {"class_path": "envs.bandit.MaskedBandit",
                    "init_args": {"num_envs": 8, "n_branches": 2, "n_users": 3, "per_branch_reward": True, "seed": 0}},
            "student": {"class_path": "compress.models.MLP", "init_args": {"in_features": 9, "out_features": 6, "hidden": [16]}},
            "critic": {"class_path": "compress.models.MLP", "init_args": {"in_features": 9, "out_features": 24, "hidden": [16]}},
            "n_quantiles": 4, "gamma": 0.5, "batch_size": 16, "warmup_env_steps": 3, "steps_per_epoch": UPDATES // 2,
            "seed": 0}},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _fit(recipe: Path, *extra: str):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    return subprocess.run([sys.executable, "-m", "compress", "fit", str(recipe), "--allow-any-class", *extra], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


def _final_state(run_dir: Path) -> dict:
    """The run's last.ckpt at the end of training (the runner's LastCheckpoint saves at every epoch end)."""
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)   # the RL state is plain data
    assert ckpt["global_step"] == 3 * UPDATES
    return ckpt


def test_sigkill_and_resume_reproduce_the_uninterrupted_run(tmp_path):
    ref = _fit(_recipe(tmp_path, "ref", None))
    assert ref.returncode == 0, ref.stderr[-2000:]

    killed_recipe = _recipe(tmp_path, "killed", kill_at=3 * 33)    # last checkpoint before it: global step 90
    first = _fit(killed_recipe)
    assert first.returncode == -9, first.stderr[-2000:]           # SIGKILL, mid-epoch 1, not a clean exit
    assert not (tmp_path / "killed" / "student.pt").exists()
    mid = torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert mid["global_step"] == 90 and mid["rl"]["updates"] == 30
    killed_cfg = yaml.safe_load(killed_recipe.read_text())
    killed_cfg["trainer"]["callbacks"] = killed_cfg["trainer"]["callbacks"][:1]   # rerun the command, no crash
    killed_recipe.write_text(yaml.safe_dump(killed_cfg))
    second = _fit(killed_recipe, "--accept-changes")   # the crash callback is gone: a changed recipe
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from" in second.stdout

    a, b = _final_state(tmp_path / "ref"), _final_state(tmp_path / "killed")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    for oa, ob in zip(a["optimizer_states"], b["optimizer_states"]):
        for pa, pb in zip(oa["state"].values(), ob["state"].values()):
            assert all(torch.equal(pa[k], pb[k]) for k in pa)
    ra, rb = a["rl"], b["rl"]
    for k in ra["buffer"]["data"]:
        assert torch.equal(ra["buffer"]["data"][k], rb["buffer"]["data"][k]), k
    assert torch.equal(ra["buffer"]["priorities"], rb["buffer"]["priorities"])
    assert ra["rng"] == rb["rng"] and torch.equal(ra["gen"], rb["gen"])
    assert ra["collector"]["env_steps"] == rb["collector"]["env_steps"] == 8 * (3 + UPDATES)
    assert ra["collector"]["env"]["rng"] == rb["collector"]["env"]["rng"]
    # and the trained actor the run saved
    from compress.prune import load_module
    sa = load_module(tmp_path / "ref" / "student.pt").state_dict()
    sb = load_module(tmp_path / "killed" / "student.pt").state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
