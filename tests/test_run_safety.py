"""Runs that cannot be hijacked, lose nothing when killed and never replace good results with bad ones.

In-process cases call ``compress.cli.main``; kills use subprocesses (marked slow: CI runs them)."""
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from compress.cli import main
from compress.errors import UserError
from compress.run import RunFolder
from tests import faults

PWNED = "PWNED_BY_RECIPE"


def _line(capsys, argv) -> str:
    code = main(argv)
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("[")]
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _recipe(tmp_path, **kw) -> Path:
    return faults.write(tmp_path / "r.yaml", faults.digits_recipe(tmp_path / "run", **kw))


# ------------------------------------------------------------------------------------- allow list
HOSTILE = [
    ("after_fit", [{"class_path": "torch.distributed.run.main",
                    "init_args": {"args": ["--no-python", "--standalone", "--nproc-per-node=1", "touch", PWNED]}}]),
    ("model.init_args.student", {"class_path": "torch.load", "init_args": {"f": "x.pt", "weights_only": False}}),
    ("model.init_args.student", {"class_path": "torch.hub.load", "init_args": {"repo_or_dir": "x", "model": "y"}}),
    ("model.init_args.student", {"class_path": "builtins.eval", "init_args": {}}),
    ("model.init_args.student", {"class_path": "os.system", "init_args": {}}),
    ("model.init_args.student", {"class_path": "subprocess.Popen", "init_args": {"args": ["touch", PWNED]}}),
    ("data", {"class_path": "compress.run.fit.Path", "init_args": {}}),            # a foreign class re-exported
    ("data", {"class_path": "compress.run.children.subprocess", "init_args": {}}),  # a module, not a class
    ("trainer.callbacks", [{"class_path": "torch.utils.cpp_extension.load", "init_args": {"name": "x"}}]),
]


@pytest.mark.parametrize("key, value", HOSTILE, ids=[v[1]["class_path"] if isinstance(v[1], dict)
                                                      else v[1][0]["class_path"] for v in HOSTILE])
def test_a_recipe_cannot_run_code(tmp_path, capsys, monkeypatch, key, value):
    monkeypatch.chdir(tmp_path)
    cfg = faults.digits_recipe(tmp_path / "run")
    node, parts = cfg, key.split(".")
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value
    path = faults.write(tmp_path / "r.yaml", cfg)
    line = _line(capsys, ["fit", str(path)])
    assert "outside the allow list" in line or "not a class" in line or "only name classes" in line, line
    assert not (tmp_path / PWNED).exists()


def test_allow_any_class_only_from_the_command_line(tmp_path, capsys):
    cfg = faults.digits_recipe(tmp_path / "run")
    cfg["model"]["init_args"]["distiller"]["init_args"]["teachers"] = {
        "class_path": "compress.distill.RecipeTeacher",
        "init_args": {"recipe": "recipes/digits_teacher.yaml", "allow_any_class": True}}
    line = _line(capsys, ["fit", str(faults.write(tmp_path / "r.yaml", cfg))])
    assert "unknown argument 'allow_any_class'" in line


def test_yaml_python_tags_are_refused(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"trainer: !!python/object/apply:os.system ['touch {tmp_path / PWNED}']\n")
    assert "invalid YAML" in _line(capsys, ["fit", str(bad)])
    assert not (tmp_path / PWNED).exists()


def test_a_teacher_recipe_is_validated_once_before_anything_trains(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    teacher = faults.write(tmp_path / "teacher.yaml", {
        **faults.digits_recipe(tmp_path / "t"),
        "model": {"class_path": "compress.distill.DistillationModule", "init_args": {
            "student": {"class_path": "torch.load", "init_args": {"f": "x", "weights_only": False}},
            "task_loss": {"class_path": "torch.nn.CrossEntropyLoss"}}}})
    cfg = faults.digits_recipe(tmp_path / "run")
    cfg["model"]["init_args"]["distiller"]["init_args"]["teachers"] = {
        "class_path": "compress.distill.RecipeTeacher", "init_args": {"recipe": str(teacher)}}
    line = _line(capsys, ["fit", str(faults.write(tmp_path / "r.yaml", cfg))])
    assert str(teacher) in line and "model.init_args.student" in line and "torch.load" in line
    assert not (tmp_path / "cache").exists()      # nothing was trained


# ------------------------------------------------------------------------------------- one error path
def test_a_bug_keeps_its_traceback(tmp_path):
    cfg = faults.digits_recipe(tmp_path / "run")
    cfg["model"] = {"class_path": "tests.faults.KeyErrorInTraining"}
    path = faults.write(tmp_path / "r.yaml", cfg)
    with pytest.raises(KeyError, match="net.0.weight"):
        main(["fit", str(path), "--allow-any-class"])
    r = faults.cli("fit", path, "--allow-any-class")
    assert r.returncode == 1 and "Traceback" in r.stderr and "KeyError: 'net.0.weight'" in r.stderr


@pytest.mark.parametrize("args, expected", [
    (["--trainer.max_epochs=-5"], "trainer.max_epochs must be >= 0"),
    (["--model.lr=-1e-3"], "model: lr must be > 0, got -0.001"),
    (["--model.lr=fast"], "model.init_args.lr: expected float, got 'fast'"),
    (["--data.init_args.batch_size=0"], "data: batch_size must be >= 1, got 0"),
    (["--trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches must be >= 1"),
    (["--model.self_distill=ema", "--model.distiller.init_args.cache=true"], "self_distill cannot be used with"),
    (["--seed_everything=-1"], "seed_everything must be an integer in [0, 2**32)"),
])
def test_bad_values_are_one_line(tmp_path, capsys, args, expected):
    assert expected in _line(capsys, ["fit", str(_recipe(tmp_path)), *args])


def test_yaml_12_numbers(tmp_path):
    path = _recipe(tmp_path, epochs=1)
    cfg = yaml.safe_load(path.read_text())
    assert main(["fit", str(path), "--model.lr=1e-3", "--print_config"]) == 0
    from compress.recipe import prepare
    assert prepare(path, ["--model.lr=1e-3"]).cfg["model"]["init_args"]["lr"] == 0.001
    text = path.read_text().replace("num_classes: 10", "num_classes: 10\n    lr: 5e-3")
    path.write_text(text)
    assert prepare(path).cfg["model"]["init_args"]["lr"] == 0.005
    assert cfg["seed_everything"] == 3


def test_duplicate_keys_are_refused(tmp_path, capsys):
    p = tmp_path / "dup.yaml"
    p.write_text("seed_everything: 1\nseed_everything: 2\n")
    assert "duplicate key 'seed_everything'" in _line(capsys, ["fit", str(p)])


# ------------------------------------------------------------------------------------- non-finite
def test_a_nan_loss_stops_the_run_naming_the_step_and_term(tmp_path, capsys):
    line = _line(capsys, ["fit", str(_recipe(tmp_path)), "--model.lr=1.0e+30"])
    assert "non-finite loss" in line and "step" in line and "task=" in line, line
    assert not (tmp_path / "run" / "student.pt").exists()


def test_a_good_run_is_never_replaced_by_a_non_finite_one(tmp_path, capsys):
    path = _recipe(tmp_path, epochs=1)
    assert main(["fit", str(path)]) == 0
    run = tmp_path / "run"
    ckpt, student = (run / "checkpoints" / "last.ckpt").read_bytes(), (run / "student.pt").read_bytes()
    line = _line(capsys, ["fit", str(path), "--trainer.max_epochs=2", "--model.task_weight=.inf"])
    assert "trained with other settings" in line          # first: the change is refused
    line = _line(capsys, ["fit", str(path), "--trainer.max_epochs=2", "--model.task_weight=.inf", "--accept-changes"])
    assert "non-finite loss" in line
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == ckpt and (run / "student.pt").read_bytes() == student


# ------------------------------------------------------------------------------------- run folder
def test_a_second_fit_on_the_same_folder_is_refused(tmp_path, capsys):
    path = _recipe(tmp_path, epochs=1)
    with RunFolder(tmp_path / "run"):
        line = _line(capsys, ["fit", str(path)])
    assert "is in use by another run" in line and f"pid {os.getpid()}" in line


def test_a_corrupt_checkpoint_is_one_line_naming_the_file(tmp_path, capsys):
    path = _recipe(tmp_path, epochs=1)
    assert main(["fit", str(path)]) == 0
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:500])       # truncated, as by a full disk
    line = _line(capsys, ["fit", str(path)])
    assert str(last) in line and "--fresh" in line and "--ckpt_path" in line
    assert main(["fit", str(path), "--fresh"]) == 0  # the way out works


def test_a_full_disk_stops_the_run_and_keeps_the_previous_checkpoint(tmp_path, capsys, monkeypatch):
    path = _recipe(tmp_path, epochs=1)
    assert main(["fit", str(path)]) == 0
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    import compress.atomic as atomic
    import compress.run.checkpoints as checkpoints

    def full_disk_writer(obj, path):  # the real writer, with the disk full once the bytes are written
        return atomic.atomic_write(path, lambda f: (f.write(b"partial"), _enospc()))

    def _enospc():
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpoints, "atomic_torch_save", full_disk_writer)
    line = _line(capsys, ["fit", str(path), "--trainer.max_epochs=2", "--accept-changes"])
    assert "cannot write checkpoint" in line and str(last) in line and "No space left" in line
    assert last.read_bytes() == before
    assert not [f for f in last.parent.iterdir() if f.name.endswith(".tmp")]   # no half-written leftovers
    # a full disk while recording the recipe: one line too, nothing changed
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: _enospc())
    line = _line(capsys, ["fit", str(path), "--trainer.max_epochs=3", "--accept-changes"])
    assert "cannot write" in line and "recipe.yaml" in line and "No space left" in line


def test_a_failed_rerun_does_not_rewrite_the_recorded_recipe(tmp_path, capsys):
    path = _recipe(tmp_path, epochs=1)
    assert main(["fit", str(path)]) == 0
    recorded = (tmp_path / "run" / "recipe.yaml").read_text()
    _line(capsys, ["fit", str(path), "--fresh", "--data.init_args.batch_size=0"])   # fails while building
    assert (tmp_path / "run" / "recipe.yaml").read_text() == recorded
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()              # --fresh did not wipe it


@pytest.mark.parametrize("command", ["validate", "test"])
def test_scoring_an_untrained_run_is_refused(tmp_path, capsys, command):
    line = _line(capsys, [command, str(_recipe(tmp_path))])
    assert "has no trained checkpoint" in line and "compress fit" in line


def test_resume_is_exact_across_epochs_with_an_ema_self_teacher(tmp_path):
    """Stopping at an epoch boundary and resuming gives the uninterrupted run's weights exactly (the EMA
    teacher, the optimizer, the data order and the per-epoch randomness are all restored)."""
    full = faults.write(tmp_path / "a.yaml", faults.digits_recipe(tmp_path / "a", epochs=3, self_distill="ema"))
    assert main(["fit", str(full)]) == 0
    part = faults.write(tmp_path / "b.yaml", faults.digits_recipe(tmp_path / "b", epochs=3, self_distill="ema"))
    assert main(["fit", str(part), "--trainer.max_epochs=1"]) == 0
    assert main(["fit", str(part), "--accept-changes"]) == 0
    ckpt = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)
    assert "self_ema" in ckpt["compress_self_teachers"]
    assert faults.same_weights(faults.student_state(tmp_path / "a"), faults.student_state(tmp_path / "b"))


# ------------------------------------------------------------------------------------- kills (slow)
def test_sigkill_at_random_moments_then_rerun_ends_equal(tmp_path):
    ref = faults.write(tmp_path / "ref.yaml", faults.digits_recipe(tmp_path / "ref", epochs=6, self_distill="ema"))
    assert faults.cli("fit", ref).returncode == 0
    for i, delay in enumerate((0.05, 0.6)):
        run = tmp_path / f"k{i}"
        path = faults.write(tmp_path / f"k{i}.yaml", faults.digits_recipe(run, epochs=6, self_distill="ema"))
        proc = faults.start("fit", path)
        faults.kill_after_first_checkpoint(proc, run, delay)
        assert proc.returncode == -signal.SIGKILL
        r = faults.cli("fit", path)
        assert r.returncode == 0, r.stderr[-2000:]
        assert faults.same_weights(faults.student_state(run), faults.student_state(tmp_path / "ref"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_save_and_say_so(tmp_path, sig):
    run = tmp_path / "run"
    path = faults.write(tmp_path / "r.yaml", faults.digits_recipe(run, epochs=40))
    proc = faults.start("fit", path)
    faults.kill_after_first_checkpoint(proc, run, 0.3, sig)
    err = proc.stderr.read()
    assert proc.returncode == 128 + sig, err[-2000:]
    assert "interrupted: training stopped at epoch" in err and "saved" in err and "Traceback" not in err
    step = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert step > 0
    r = faults.cli("fit", path, "--trainer.max_epochs=2", "--accept-changes")
    assert r.returncode == 0 and "resuming from" in r.stdout


def test_teacher_training_ends_with_its_parent(tmp_path):
    teacher = faults.slow_teacher_recipe(tmp_path / "slow_teacher.yaml", tmp_path / "t")
    cfg = faults.digits_recipe(tmp_path / "run")
    cfg["model"]["init_args"]["distiller"]["init_args"]["teachers"] = {
        "class_path": "compress.distill.RecipeTeacher", "init_args": {"recipe": str(teacher)}}
    path = faults.write(tmp_path / "r.yaml", cfg)
    proc = faults.start("fit", path, cwd=tmp_path)
    deadline = time.time() + 120
    child = []
    while not child and time.time() < deadline:
        child = [p for p in faults.processes_with(str(teacher)) if p != proc.pid]
        time.sleep(0.2)
    assert child, "the teacher's training did not start"
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() and
                                         "zombie" not in Path(f"/proc/{p}/status").read_text().lower()
                                         for p in child):
        time.sleep(0.2)
    assert not [p for p in child if Path(f"/proc/{p}").exists()
                and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()], "orphan teacher training left"


def test_a_recipes_own_last_checkpoint_replaces_the_default_and_saves_in_the_run_folder(tmp_path, monkeypatch):
    from compress.run.checkpoints import LastCheckpoint

    saves = []
    real = LastCheckpoint.save
    monkeypatch.setattr(LastCheckpoint, "save", lambda self, trainer: saves.append(
        (trainer.global_step, self.path)) or real(self, trainer))
    cfg = faults.digits_recipe(tmp_path / "run", epochs=1)
    cfg["trainer"]["callbacks"] = [{"class_path": "compress.run.checkpoints.LastCheckpoint",
                                    "init_args": {"every_n_train_steps": 20}}]
    assert main(["fit", str(faults.write(tmp_path / "r.yaml", cfg))]) == 0
    steps = [s for s, _ in saves]
    assert {p for _, p in saves} == {tmp_path / "run" / "checkpoints" / "last.ckpt"}
    assert steps[:3] == [20, 40, 60] and len(steps) == len(set(steps))   # one saver, no doubled saves
    assert steps[-1] == torch.load(saves[-1][1], weights_only=True)["global_step"]


_POOL_PARENT = r"""
import sys, time
from compress.run.children import process_pool
pool = process_pool(1)
fut = pool.submit(time.sleep, 300)
time.sleep(0.5)
print(" ".join(str(p) for p in pool._processes), flush=True)
time.sleep(300)
"""


def test_process_pool_workers_end_with_their_parent(tmp_path):
    """The benchmarks' --jobs workers (compress.run.children.process_pool) do not outlive a killed bench."""
    proc = subprocess.Popen([sys.executable, "-c", _POOL_PARENT], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert workers and all(Path(f"/proc/{p}").exists() for p in workers)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def alive(p):
        st = Path(f"/proc/{p}/status")
        try:
            return "zombie" not in st.read_text().lower()
        except OSError:
            return False
    deadline = time.time() + 30
    while time.time() < deadline and any(alive(p) for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if alive(p)], "orphan pool worker left"
