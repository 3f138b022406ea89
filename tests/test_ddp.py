"""DistillationModule under Lightning DDP (issue 17): ``python -m compress fit RECIPE
--trainer.strategy=ddp --trainer.devices=2 --trainer.accelerator=cpu`` (2 CPU processes, gloo).

Equivalence: EpochShuffle's order is sharded by Lightning's DistributedSamplerWrapper (rank r takes
positions r, r+2, ...), so 2 ranks x batch B/2 see, at every step, exactly the samples of 1 rank x
batch B; DDP averages the two ranks' mean-loss gradients, which is the gradient of the full batch's
mean loss.  So the logged (rank-averaged) training losses and the final weights must agree to float
rounding: stated tolerance 1e-4 absolute on every step's loss and on every weight.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-4
B = 32
N_TRAIN = 640          # digits train split 1,078 x 0.594 -> 640 samples: 20 full batches of 32, no padding


def _recipe(tmp_path: Path, distiller: dict, name: str) -> Path:
    cfg = {
        "seed_everything": 0,
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "log_every_n_steps": 1,
                    "enable_progress_bar": False, "enable_model_summary": False},
        "model": {"class_path": "compress.distill.DistillationModule", "init_args": {
            "student": {"class_path": "compress.models.MLP",
                        "init_args": {"in_features": 64, "out_features": 10, "hidden": [12]}},
            "distiller": {"class_path": "compress.distill.Distiller", "init_args": distiller},
            "task_loss": {"class_path": "torch.nn.CrossEntropyLoss"}, "task_weight": 0.5,
            "num_classes": 10, "lr": 0.01}},
        "data": {"class_path": "compress.data.DigitsDataModule",
                 "init_args": {"batch_size": B, "seed": 0, "train_fraction": 0.594}},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _fit(recipe: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COMPRESS_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    cmd = [sys.executable, "-m", "compress", "fit", str(recipe), f"--run_dir={run_dir}", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


DDP = ("--trainer.strategy=ddp", "--trainer.devices=2", f"--data.init_args.batch_size={B // 2}")


def _done(proc: subprocess.Popen, timeout: int = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


def _losses(run_dir: Path) -> list[float]:
    files = sorted((run_dir / "logs").glob("version_*/metrics.csv"))
    assert len(files) == 1, files                     # one logger, written by rank 0 only
    rows = list(csv.DictReader(open(files[0])))
    return [float(r["train/loss"]) for r in rows if r.get("train/loss")]


def _weights(run_dir: Path) -> dict:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return ckpt["state_dict"]


def test_ddp_two_ranks_half_batch_match_one_rank_full_batch(tmp_path):
    """A network teacher and a checkpoint teacher (KL on their mean) + a feature term on the network
    teacher whose linear connector is trained (and synchronised)."""
    from compress.models import MLP

    torch.manual_seed(1)
    torch.save(MLP(64, 10, [20]).state_dict(), tmp_path / "teacher.pt")
    net = {"class_path": "compress.models.MLP", "init_args": {"in_features": 64, "out_features": 10, "hidden": [24]}}
    ckpt = {"class_path": "compress.distill.Checkpoint", "init_args": {
        "module": {"class_path": "compress.models.MLP",
                   "init_args": {"in_features": 64, "out_features": 10, "hidden": [20]}},
        "path": str(tmp_path / "teacher.pt")}}
    distiller = {"teachers": {"net": net, "ckpt": ckpt}, "combine": "mean",
                 "terms": [{"class_path": "compress.distill.terms.Feature",
                            "init_args": {"student_tap": "net.1", "teacher_tap": "net.1", "teacher": "net",
                                          "weight": 0.5}},
                           {"class_path": "compress.distill.terms.KL", "init_args": {"T": 2.0}}]}
    recipe = _recipe(tmp_path, distiller, "ddp_feature")
    one, two = tmp_path / "one", tmp_path / "two"
    procs = [_fit(recipe, one), _fit(recipe, two, *DDP)]
    _done(procs[0])
    out = _done(procs[1])
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in out                 # two processes really trained
    a, b = _losses(one), _losses(two)
    assert len(a) == len(b) == 2 * N_TRAIN // B       # every step logged: 40 optimizer steps in both runs
    assert max(abs(x - y) for x, y in zip(a, b)) < TOL
    assert a[0] != a[-1]                              # it trained
    wa, wb = _weights(one), _weights(two)
    assert set(wa) == set(wb) and any(k.startswith("distiller.terms.0.connector") for k in wa)
    assert not any("teacher" in k for k in wa)        # teachers are never in the module (never wrapped)
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=TOL), k
    # one run folder, written by rank 0 only: one checkpoint, the recorded recipe, the student
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["last.ckpt"]
    assert (two / "recipe.yaml").is_file() and (two / "student.pt").is_file()


def test_ddp_samplers_shard_themselves_by_rank(monkeypatch):
    """What the equivalence rests on, without processes: under W ranks EpochShuffle gives rank r the
    positions r, r+W, ... of the one-process order (padded like DistributedSampler), EpochBatches deals
    whole batches; Lightning keeps them (they are DistributedSamplers) instead of reshuffling."""
    import compress.data.sampling as sampling
    from torch.utils.data import DistributedSampler

    one = sampling.EpochShuffle(10, seed=3)
    one.set_epoch(2)
    order = list(one)
    assert sorted(order) == list(range(10)) and isinstance(one, DistributedSampler)
    shards = []
    for rank in range(3):
        monkeypatch.setattr(sampling, "_rank_world", lambda r=rank: (r, 3))
        s = sampling.EpochShuffle(10, seed=3)
        s.set_epoch(2)
        shards.append(list(s))
        assert len(s) == 4
    padded = order + order[:2]
    assert shards == [padded[0::3], padded[1::3], padded[2::3]]
    monkeypatch.setattr(sampling, "_rank_world", lambda: (1, 2))
    b = sampling.EpochBatches(10, 3, seed=0, shuffle=False)
    assert list(b) == [[3, 4, 5], [9]] and len(b) == 2


def test_ddp_recipe_teacher_trained_once_and_cache_written_by_rank_zero(tmp_path):
    """A RecipeTeacher needed by three processes at once (one single-process run, two DDP ranks) is
    trained once (the lock beside its cache file); KL through the teacher-output cache gives the same
    losses on 1 and 2 ranks; the cache file is written by rank 0 only, holding its own shard."""
    teacher = {"seed_everything": 0,
               "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "logger": False,
                           "enable_progress_bar": False, "enable_model_summary": False},
               "model": {"class_path": "compress.distill.DistillationModule", "init_args": {
                   "student": {"class_path": "compress.models.MLP",
                               "init_args": {"in_features": 64, "out_features": 10, "hidden": [32]}},
                   "task_loss": {"class_path": "torch.nn.CrossEntropyLoss"}, "num_classes": 10, "lr": 0.01}},
               "data": {"class_path": "compress.data.DigitsDataModule",
                        "init_args": {"batch_size": 64, "seed": 0, "train_fraction": 0.3}}}
    (tmp_path / "teacher.yaml").write_text(yaml.safe_dump(teacher, sort_keys=False))
    distiller = {"teachers": {"class_path": "compress.distill.RecipeTeacher",
                              "init_args": {"recipe": str(tmp_path / "teacher.yaml"),
                                            "cache_dir": str(tmp_path / "teachers")}},
                 "terms": [{"class_path": "compress.distill.terms.KL", "init_args": {"T": 2.0}}]}
    recipe = _recipe(tmp_path, distiller, "ddp_cache")
    one, two = tmp_path / "one", tmp_path / "two"
    cache = "--model.init_args.distiller.init_args.cache={}"
    procs = [_fit(recipe, one, "--trainer.max_epochs=1", cache.format(one / "cache.pt")),
             _fit(recipe, two, "--trainer.max_epochs=1", cache.format(two / "cache.pt"), *DDP)]
    outs = [_done(p) for p in procs]
    assert sum(o.count("missing: training them") for o in outs) == 1      # trained once for all three
    a, b = _losses(one), _losses(two)
    assert len(a) == len(b) == N_TRAIN // B and max(abs(x - y) for x, y in zip(a, b)) < TOL
    full = torch.load(one / "cache.pt", weights_only=True)
    shard = torch.load(two / "cache.pt", weights_only=True)
    assert int(full["filled"].sum()) == N_TRAIN
    from compress.data.sampling import EpochShuffle
    rank0 = sorted(list(EpochShuffle(N_TRAIN, 0))[0::2])                   # epoch 0, rank 0's positions
    assert shard["filled"].nonzero().flatten().tolist() == rank0
    assert torch.equal(shard["outputs"][rank0], full["outputs"][rank0])     # same teacher, same outputs


@pytest.mark.parametrize("callback", [
    {"class_path": "compress.prune.PruningCallback", "init_args": {"target_ratio": 0.5, "example_input": [1, 64]}},
    {"class_path": "compress.quant.QATCallback", "init_args": {"start_epoch": 0}},
])
def test_ddp_refuses_pruning_and_qat_before_starting_ranks(tmp_path, callback):
    from compress.errors import RecipeError
    from compress.recipe import prepare
    from compress.run import run

    recipe = _recipe(tmp_path, {"terms": []}, "ddp_refuse")
    prepared = prepare(str(recipe), ["--trainer.strategy=ddp", "--trainer.devices=2",
                                     f"--run_dir={tmp_path / 'run'}"])
    prepared.cfg["trainer"]["callbacks"] = [callback]
    with pytest.raises(RecipeError, match=r"cannot run under a distributed strategy \(2 processes\)"):
        run("fit", prepared)
    assert not (tmp_path / "run" / "checkpoints").exists()                 # nothing trained


def test_ddp_launched_rank_from_launcher_env(monkeypatch):
    from compress.run.ranks import launched_rank

    for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(k, raising=False)
    assert launched_rank() == 0
    monkeypatch.setenv("LOCAL_RANK", "1")                      # Lightning's launcher, rank 1 on node 0
    assert launched_rank() == 1
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "1")                       # rank 0 of the second node
    assert launched_rank() != 0
    monkeypatch.setenv("RANK", "0")                            # torchrun's global rank wins
    assert launched_rank() == 0
    for k in ("RANK", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(k)
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "1")                    # a one-task SLURM job is not distributed
    assert launched_rank() == 0
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert launched_rank() == 3


def test_ddp_rank_one_trains_without_taking_the_run_folder(tmp_path, monkeypatch):
    """Rank 1 re-runs the command while rank 0 holds the run folder's lock: it must train, not be
    refused, and leave the folder's files (recipe.yaml, student.pt) to rank 0."""
    from compress.recipe import prepare
    from compress.run import run
    from compress.run.folder import RunFolder

    recipe = _recipe(tmp_path, {"terms": []}, "rank1")
    run_dir = tmp_path / "run"
    prepared = prepare(str(recipe), ["--trainer.max_epochs=1", "--trainer.logger=false", f"--run_dir={run_dir}",
                                     "--trainer.enable_checkpointing=false"])
    held = RunFolder(run_dir).lock()                           # "rank 0"
    try:
        monkeypatch.setenv("LOCAL_RANK", "1")
        result = run("fit", prepared)
        assert result.trainer.global_step == N_TRAIN // B
        assert not (run_dir / "recipe.yaml").exists() and not (run_dir / "student.pt").exists()
        monkeypatch.delenv("LOCAL_RANK")
        with pytest.raises(ValueError, match="is in use by another run"):   # rank 0 (or a second run) is refused
            run("fit", prepared)
    finally:
        held.unlock()
