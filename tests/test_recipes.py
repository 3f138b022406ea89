"""Recipes: bad input gives one clear line naming the key; good recipes run, resume and log."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compress.cli import main

ROOT = Path(__file__).resolve().parents[1]

TEACHER = {"class_path": "compress.models.MLP", "init_args": {"in_features": 64, "out_features": 10, "hidden": [32]}}


def _recipe(tmp_path, **changes):
    cfg = {
        "seed_everything": 0,
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "enable_model_summary": False,
                    "enable_progress_bar": False, "limit_train_batches": 3, "limit_val_batches": 2,
                    "log_every_n_steps": 1},
        "model": {"class_path": "compress.distill.DistillationModule", "init_args": {
            "student": {"class_path": "compress.models.MLP",
                        "init_args": {"in_features": 64, "out_features": 10, "hidden": [8]}},
            "distiller": {"class_path": "compress.distill.Distiller", "init_args": {
                "teachers": TEACHER,
                "terms": [{"class_path": "compress.distill.terms.KL", "init_args": {"T": 4.0}}]}},
            "task_loss": {"class_path": "torch.nn.CrossEntropyLoss"},
            "num_classes": 10}},
        "data": {"class_path": "compress.data.DigitsDataModule", "init_args": {"batch_size": 32}},
        "run_dir": str(tmp_path / "run"),
    }
    for dotted, value in changes.items():
        node = cfg
        parts = dotted.split("__")
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[parts[-1]] = value
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _error_line(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


KD = "model__init_args__distiller__init_args__"


@pytest.mark.parametrize("changes, args, expected", [
    ({"bogus": 1}, [], "unknown top-level key 'bogus'"),
    ({"trainer__max_epochs": "ten"}, [], "trainer.max_epochs: expected int or None"),
    ({"model__init_args__lr": "fast"}, [], "model.init_args.lr: expected float"),
    ({"model__init_args__student__init_args__hiden": [4]}, [], "unknown argument 'hiden'"),
    ({"model__init_args__student__class_path": "os.system"}, [], "outside the allow list"),
    ({"model__init_args__student__class_path": "compress.models.Nope"}, [], "has no class 'Nope'"),
    ({KD + "teachers": {"class_path": "compress.distill.RecipeTeacher", "init_args": {"recipe": "missing.yaml"}}},
     [], "teachers.init_args.recipe: file not found: missing.yaml"),
    ({"model__init_args__student__init_args__out_features": 12}, [],
     "student output shape (32, 12) does not match teacher output shape (32, 10)"),
    ({"ckpt_path": "nowhere.ckpt"}, [], "ckpt_path: file not found"),
    ({"logger": "tensorboard"}, [], "logger must be 'csv' or 'wandb'"),
    ({"export": {"onnx": "yes"}}, [], "export.onnx must be bool"),
    ({"export": {"zip": True}}, [], "unknown key 'export.zip'"),
    ({"data__init_args__batch_size": 0}, [], "batch_size must be >= 1, got 0"),
    ({KD + "terms__0__init_args__T": -1.0}, [], "temperature T must be > 0"),
    ({"trainer__nonsense": 1}, [], "trainer: unknown argument 'nonsense'"),
    ({}, ["--model.student.init_args.hidden=4"], "hidden: expected Sequence"),
])
def test_bad_recipes_give_one_clear_line(tmp_path, capsys, changes, args, expected):
    path = _recipe(tmp_path, **changes)
    line = _error_line(capsys, ["fit", str(path), *args])
    assert expected in line


def test_missing_recipe_and_bad_yaml(tmp_path, capsys):
    assert "recipe not found" in _error_line(capsys, ["fit", str(tmp_path / "none.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: [1, 2\nmodel: {")
    assert "invalid YAML at line" in _error_line(capsys, ["fit", str(bad)])
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("trainer: !!python/object/apply:os.system ['echo hacked']\n")
    assert "invalid YAML" in _error_line(capsys, ["fit", str(unsafe)])


def test_allow_flag_permits_outside_classes(tmp_path, capsys):
    path = _recipe(tmp_path, model__init_args__student__class_path="collections.OrderedDict")
    assert "outside the allow list" in _error_line(capsys, ["fit", str(path)])
    # with the flag the class is accepted by the allow list (and then fails as a non-module, clearly)
    code = main(["fit", str(path), "--allow-any-class"])
    err = capsys.readouterr().err
    assert "allow list" not in err


def test_fit_writes_student_and_resumes(tmp_path, capsys):
    path = _recipe(tmp_path)
    assert main(["fit", str(path)]) == 0
    run = tmp_path / "run"
    assert (run / "student.pt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    metrics = (run / "logs" / "version_0" / "metrics.csv").read_text()
    assert "val/acc" in metrics and "train/kd_kl" in metrics
    # rerun with more epochs: refused (the recorded recipe differs) unless the change is accepted
    line = _error_line(capsys, ["fit", str(path), "--trainer.max_epochs=2"])
    assert "trained with other settings (trainer.max_epochs: 1 -> 2)" in line and "--accept-changes" in line
    assert main(["fit", str(path), "--trainer.max_epochs=2", "--accept-changes"]) == 0
    out = capsys.readouterr().out
    assert "resuming from" in out
    import yaml as _yaml
    assert _yaml.safe_load((run / "recipe.yaml").read_text())["trainer"]["max_epochs"] == 2  # recorded
    # the resumed run trained only the missing epoch: its log starts at epoch 1, step 3
    rows = (run / "logs" / "version_1" / "metrics.csv").read_text().strip().splitlines()[1:]
    assert rows and all(r.split(",")[0] == "1" for r in rows)
    import torch
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6


def test_same_recipe_and_seed_give_same_numbers(tmp_path):
    import torch
    outs = []
    for i in range(2):
        path = _recipe(tmp_path, run_dir=str(tmp_path / f"run{i}"))
        assert main(["fit", str(path)]) == 0
        outs.append(torch.load(tmp_path / f"run{i}" / "student.pt", weights_only=True)["state_dict"])
    assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])


def test_wandb_logger_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    path = _recipe(tmp_path, logger="wandb")
    assert main(["fit", str(path)]) == 0
    assert list((tmp_path / "run").rglob("*.wandb")), "wandb offline run files expected"


def test_recipe_teacher_trains_once_then_reuses_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    teacher_recipe = tmp_path / "teacher.yaml"
    teacher_cfg = yaml.safe_load(_recipe(tmp_path).read_text())
    teacher_cfg["model"]["init_args"].pop("distiller")
    teacher_cfg["model"]["init_args"]["student"] = TEACHER
    teacher_cfg.pop("run_dir")
    teacher_recipe.write_text(yaml.safe_dump(teacher_cfg))
    from compress.distill import RecipeTeacher
    from compress.distill.recipe_teacher import teacher_cache_path
    t = RecipeTeacher(str(teacher_recipe), cache_dir=str(tmp_path / "cache"))
    ckpt = teacher_cache_path(teacher_recipe, tmp_path / "cache")
    assert ckpt.is_file()
    mtime = ckpt.stat().st_mtime
    t2 = RecipeTeacher(str(teacher_recipe), cache_dir=str(tmp_path / "cache"))
    assert ckpt.stat().st_mtime == mtime
    import torch
    x = torch.randn(3, 64)
    assert torch.allclose(t(x), t2(x))


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "compress", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "fit|validate|test RECIPE" in r.stdout


class RecordingHook:
    """An after_fit hook used by the test below (lives in the tests package, so allowed explicitly)."""
    calls = []

    def __init__(self, tag: str = "x"):
        self.tag = tag

    def __call__(self, module, datamodule, run_dir, exported):
        RecordingHook.calls.append((self.tag, type(module).__name__, Path(run_dir).name))


def test_after_fit_hooks_run_in_order(tmp_path, capsys):
    path = _recipe(tmp_path, after_fit=[{"class_path": "tests.test_recipes.RecordingHook", "init_args": {"tag": "a"}},
                                        {"class_path": "tests.test_recipes.RecordingHook", "init_args": {"tag": "b"}}])
    assert "outside the allow list" in _error_line(capsys, ["fit", str(path)])
    RecordingHook.calls.clear()
    assert main(["fit", str(path), "--allow-any-class"]) == 0
    assert RecordingHook.calls == [("a", "DistillationModule", "run"), ("b", "DistillationModule", "run")]
    capsys.readouterr()
    bad = _recipe(tmp_path, after_fit={"class_path": "x"})
    assert "after_fit must be a list" in _error_line(capsys, ["fit", str(bad)])
