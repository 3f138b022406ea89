"""One fit run: distill -> prune -> fine-tune -> QAT -> int8 export -> profile, from a recipe."""
import json
from pathlib import Path

import torch

from compress.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_deploy_recipe_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    args = ["fit", "recipes/digits_deploy.yaml", f"--run_dir={run}", "--trainer.max_epochs=4",
            "--trainer.limit_train_batches=4", "--trainer.enable_progress_bar=false",
            "--trainer.callbacks.0.init_args.start_epoch=1", "--trainer.callbacks.1.init_args.start_epoch=2",
            "--trainer.callbacks.1.init_args.freeze_observers_epoch=3",
            "--model.distiller.init_args.teachers.class_path=compress.models.MLP",
            "--model.distiller.init_args.teachers.init_args={in_features: 64, out_features: 10, hidden: [32]}",
            "--export.runtimes=[onnxruntime-int8]"]
    assert main(args) == 0
    export = run / "export"
    manifest = json.loads((export / "manifest.json").read_text())
    assert set(manifest["artifacts"]) >= {"onnx-int8", "c-int8"}
    profile = json.loads((export / "profile.json").read_text())
    # pruned to 25% of the parameters of 64-128-128-10 (26,122): the exported student is that small
    assert profile["params"] <= 0.3 * 26122
    assert profile["latency"]["onnxruntime-int8"]["p50_us"] > 0
    assert (export / "student_int8.onnx").stat().st_size < 16_000
    # the saved student reloads without the original architecture and matches its shapes
    from compress.prune import load_module
    student = load_module(run / "student.pt")
    assert student(torch.randn(2, 64)).shape == (2, 10)


def test_int8_export_without_qat_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = main(["fit", "recipes/digits_kd.yaml", f"--run_dir={tmp_path}", "--trainer.max_epochs=1",
                 "--trainer.limit_train_batches=2", "--trainer.enable_progress_bar=false",
                 "--model.distiller.init_args.teachers.class_path=compress.models.MLP",
                 "--model.distiller.init_args.teachers.init_args={in_features: 64, out_features: 10, hidden: [8]}",
                 "--export.onnx_int8=true"])
    assert code == 2
    assert "needs int8 scales" in capsys.readouterr().err
