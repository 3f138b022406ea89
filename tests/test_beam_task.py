"""Beam-tracking task: data module, distillation on t0..t3 outputs (KL over slots, relation on the tapped
temporal block), per-slot metrics in training, exported fp32 / int8 artifacts scored like the module,
and the recipes with their modality switch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compress.distill import DistillationModule, Distiller, FocalLoss, terms
from compress.metrics import SlotTopKCallback
from tasks.beam_tracking import BeamDataModule, BeamStudent, BeamTeacher, evaluate

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(resolution=16, radar_scale=8, n_sequences=6, batch_size=8, eval_batch_size=64)
SIZE = dict(image_size=16, radar_shape=(16, 8))


@pytest.fixture(scope="module")
def dm(tmp_path_factory):
    d = BeamDataModule(modality="image_radar", cache_dir=str(tmp_path_factory.mktemp("beamcache")), **TINY)
    d.setup()
    return d


def test_datamodule_windows_batches_and_cache(dm):
    lengths = [n for _, _, n in dm.frames.sequences()]
    assert len(dm.train_set) == sum(n - 11 for n in lengths[:4])                 # 6 sequences: 4 train, 2 test
    assert len(dm.test_set) == sum(n - 11 for n in lengths[4:])
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (8, 10, 16 * 16 + 2 * 16 * 8) and batch["y"].shape == (8, 4)
    assert batch["y"].min() >= 0 and batch["y"].max() < 64
    again = BeamDataModule(modality="image_radar", cache_dir=dm.cache_dir, **TINY)
    again.setup()                                                     # from the cache file
    assert list(Path(dm.cache_dir).glob("synthetic-*.pt")) and np.array_equal(again.frames.radar, dm.frames.radar)
    with pytest.raises(ValueError, match="unknown scene key.*lightning"):
        BeamDataModule(scene={"lightning": 0.5})
    with pytest.raises(ValueError, match="source must be one of synthetic, deepsense"):
        BeamDataModule(source="carla")
    with pytest.raises(ValueError, match="unknown modality 'rgb'"):
        BeamDataModule(modality="rgb")


def test_radar_floor_normalisation(dm):
    """'floor': each map minus its median, each channel over the training frames' std (hand-checked on the
    raw maps); empty maps become 0 like the zero-padded future steps; test frames never shape the scale."""
    norm = BeamDataModule(modality="image_radar", cache_dir=dm.cache_dir, radar_norm="floor", **TINY)
    norm.setup()
    raw, out = dm.frames.radar, norm.frames.radar
    train_ids = [s for s, _, _ in dm.frames.sequences()][:4]
    floor = raw - np.median(raw.reshape(len(raw), 2, -1), axis=2)[:, :, None, None]
    train = np.isin(dm.frames.seq, train_ids)
    scale = floor[train].std(axis=(0, 2, 3))
    assert np.allclose(out, floor / scale[None, :, None, None], atol=1e-5)
    assert np.allclose(np.median(out.reshape(len(out), 2, -1), axis=2), 0, atol=1e-5)
    assert np.allclose(out[train].std(axis=(0, 2, 3)), 1, atol=1e-4) and np.allclose(norm.radar_scaling, scale)
    assert np.array_equal(norm.frames.masks, dm.frames.masks) and np.array_equal(dm.frames.radar, raw)
    x = norm.train_set[[0]]["x"][0]
    assert torch.equal(x[:, 256:][8:], torch.zeros(2, 2 * 16 * 8))        # padded future steps stay 0
    with pytest.raises(ValueError, match="radar_norm must be one of none, floor"):
        BeamDataModule(radar_norm="zscore")


def test_kl_and_relation_terms_on_slot_outputs(dm):
    torch.manual_seed(0)
    teacher = BeamTeacher("image_radar", **SIZE).eval()
    student = BeamStudent("image_radar", **SIZE)
    kl = terms.KL(T=2.0, weight=0.4)
    rel = terms.PairRelation(4, 10.0, 10.0, last_steps=4, student_tap="temporal", teacher_tap="temporal", weight=0.3)
    distiller = Distiller(teacher, [kl, rel]).attach(student)
    batch = next(iter(dm.train_dataloader()))
    seen = {}
    h1 = student.temporal.register_forward_hook(lambda m, i, o: seen.__setitem__("s", o))
    h2 = teacher.temporal.register_forward_hook(lambda m, i, o: seen.__setitem__("t", o))
    out = student(batch["x"])
    torch.manual_seed(1)
    total, logs = distiller(batch, out)
    h1.remove(), h2.remove()
    with torch.no_grad():
        t_out = teacher(batch["x"])
    # KL over the 4 slot distributions: T^2 * mean over B x 4 rows of sum_c p_t (log p_t - log p_s)
    p_t = F.softmax(t_out / 2.0, -1)
    hand_kl = (p_t * (F.log_softmax(t_out / 2.0, -1) - F.log_softmax(out / 2.0, -1))).sum(-1).mean() * 4.0
    assert torch.allclose(logs["kd_kl"], hand_kl, atol=1e-6)
    torch.manual_seed(1)
    hand_rel = rel(seen["s"][:, -4:], seen["t"][:, -4:])               # the same pairs (same RNG state)
    assert seen["s"].shape == (8, 10, 64) and torch.allclose(logs["kd_pairrelation"], hand_rel, atol=1e-6)
    assert torch.allclose(total, 0.4 * hand_kl + 0.3 * hand_rel, atol=1e-6)
    total.backward()
    assert student.encoder.image.cnn[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_training_logs_slot_metrics_equal_to_evaluate(dm):
    pl.seed_everything(0, verbose=False)
    student = BeamStudent("image_radar", **SIZE)
    module = DistillationModule(student, task_loss=FocalLoss(2.0), lr=3e-3)
    cb = SlotTopKCallback(ks=(1, 2, 5), slots=4)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=4, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[cb], num_sanity_val_steps=0)
    trainer.fit(module, datamodule=dm)
    logged = trainer.callback_metrics
    score = evaluate(student, datamodule=dm)
    for s in range(4):
        assert float(logged[f"val/top2_t{s}"]) * 100 == pytest.approx(score["top2"][s])
    assert float(logged["val/top5"]) * 100 == pytest.approx(np.mean(score["top5"]))


def test_task_contract_evaluator_tabulates_slots(dm, tmp_path):
    """BeamEvaluator is the contract's evaluator: EvaluateDeployed writes one group per slot t0..t3 with
    the same top-k as evaluate(), for the student and for a baseline callable (always beam 0)."""
    from compress.evaluate import EvaluateDeployed
    from tasks.beam_tracking import BeamEvaluator

    pl.seed_everything(0, verbose=False)
    student = BeamStudent("image_radar", **SIZE).eval()
    module = DistillationModule(student, task_loss=FocalLoss(2.0))

    def beam0(x):
        logits = torch.zeros(x.shape[0], 4, 64)
        logits[..., 0] = 1.0
        return logits

    out = EvaluateDeployed(BeamEvaluator(), seeds=[0], baselines={"beam0": beam0}, artifacts=False)(
        module, dm, tmp_path)
    score = evaluate(student, datamodule=dm)
    table = json.loads((tmp_path / "results.json").read_text())["policies"]
    assert out["policies"] == table and set(table["student"]) == {"t0", "t1", "t2", "t3"}
    for s in range(4):
        assert table["student"][f"t{s}"]["top2"] == pytest.approx(score["top2"][s])
        hits = (dm.test_set[list(range(len(dm.test_set)))]["y"][:, s] == 0).float().mean().item() * 100
        assert table["beam0"][f"t{s}"]["top1"] == pytest.approx(hits)   # top-1 of "always beam 0" = share of beam 0
    with pytest.raises(ValueError, match="ks must be positive"):
        BeamEvaluator(ks=[0])


@pytest.mark.slow
def test_exported_artifacts_score_like_the_module(dm, tmp_path):
    import onnx

    from tasks.beam_tracking import deploy_student

    pl.seed_everything(0, verbose=False)
    student = BeamStudent("image_radar", **SIZE).eval()
    res = deploy_student(student, dm, tmp_path, profile=False, calibration_batches=4)
    assert res["onnx"]["top2"] == pytest.approx(res["pytorch"]["top2"])
    ops = {n.op_type for n in onnx.load(str(tmp_path / "student_int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "GRU"} <= ops             # int8 around convs/gemms, GRU fp32
    assert res["int8_fp32_nodes"] == 4 + 3              # the depthwise convs: 4 in the image branch, 3 in the radar one
    x = dm.test_set[list(range(16))]["x"]
    from compress.export import ort_session, run_onnx
    fp32 = run_onnx(ort_session(tmp_path / "student.onnx"), x)
    int8 = run_onnx(ort_session(tmp_path / "student_int8.onnx"), x)
    assert np.abs(int8 - fp32).max() < 0.1 * (np.abs(fp32).max() + 1e-6)


@pytest.mark.parametrize("recipe", sorted(p.name for p in (ROOT / "recipes").glob("beam_*.yaml")))
def test_recipes_validate_and_switch_modality(recipe):
    from compress.recipe import apply_override
    from compress.recipe import load_recipe, validate_recipe
    from compress.recipe import instantiate

    path = ROOT / "recipes" / recipe
    cfg = load_recipe(path)
    validate_recipe(cfg, path)
    for key in ("data.modality", "model.student.modality"):
        apply_override(cfg, key, "image_radar")
    validate_recipe(cfg, path)
    student = instantiate(cfg["model"]["init_args"]["student"])
    data = instantiate(cfg["data"])
    assert student.encoder.radar is not None and data.modality == "image_radar"
    teachers = cfg["model"]["init_args"].get("distiller", {}).get("init_args", {}).get("teachers")
    if teachers:                                                             # the KD recipes' teacher recipe
        assert teachers["init_args"]["recipe"] == "recipes/beam_teacher.yaml"
        assert teachers["init_args"]["overrides"] == {"data.modality": "image", "model.student.modality": "image"}


@pytest.mark.slow
def test_full_resolution_models_train_a_short_run(tmp_path):
    """The paper-size models (224 px masks, 128 x 64 radar maps) build, run and learn for a few steps."""
    data = BeamDataModule(modality="image_radar", resolution=224, radar_scale=1, n_sequences=3, batch_size=4,
                          cache_dir=str(tmp_path))
    for modality in ("image", "image_radar"):
        data.modality = modality
        data.frames = None
        data.setup()
        pl.seed_everything(0, verbose=False)
        teacher = BeamTeacher(modality)
        student = BeamStudent(modality)
        for net, kd in ((teacher, False), (student, True)):     # the Distiller freezes its teacher: build it after
            distiller = Distiller(teacher, [terms.KL(T=4.0, weight=0.3)]) if kd else None
            before = [p.detach().clone() for p in net.parameters()]
            module = DistillationModule(net, distiller, task_loss=FocalLoss(2.0), task_weight=0.7, lr=1e-3)
            pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=0, accelerator="cpu", logger=False,
                       enable_checkpointing=False, enable_progress_bar=False,
                       enable_model_summary=False).fit(module, datamodule=data)
            assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
        assert torch.isfinite(student(data.test_set[[0, 1]]["x"])).all()


@pytest.mark.slow
def test_bench_beam_quick_prints_the_json_contract(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "bench_beam.py"), "--quick", "--json",
                           "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for modality in ("image", "image_radar"):
        for model in ("teacher", "student", "response", "relation", "self"):
            row = report[modality][model]
            assert len(row["top2"]) == 4 and len(row["top5"]) == 4
            assert all(0 <= a <= b <= 100 for a, b in zip(row["top2"], row["top5"]))
    for scale in ("paper_size", "bench_size"):
        for key in ("teacher_image", "student_image", "teacher_image_radar", "student_image_radar"):
            assert isinstance(report[scale][key]["params"], int) and report[scale][key]["mflops"] > 0
    assert report["paper_size"]["teacher_image"]["params"] == 1_787_418


@pytest.mark.slow
def test_kd_recipe_runs_with_its_teacher_recipe(tmp_path):
    """beam_kd_relation.yaml end to end at a tiny size: the teacher is trained from beam_teacher.yaml (with
    the overrides it is given) and cached, the student distilled, exported, scored and timed."""
    tiny = {"data.resolution": 32, "data.radar_scale": 4, "data.n_sequences": 14, "data.cache_dir": str(tmp_path),
            "model.student.image_size": 32, "model.student.radar_shape": [32, 16], "trainer.max_epochs": 1,
            "trainer.limit_train_batches": 2, "trainer.limit_val_batches": 1}
    teacher = dict(tiny, **{"data.modality": "image_radar", "model.student.modality": "image_radar"})
    args = [f"--{k}={json.dumps(v)}" for k, v in tiny.items()]
    args += ["--data.modality=image_radar", "--model.student.modality=image_radar",
             f"--model.distiller.teachers.overrides={json.dumps(teacher)}",
             f"--model.distiller.teachers.cache_dir={tmp_path / 'teachers'}", f"--run_dir={tmp_path / 'run'}"]
    proc = subprocess.run([sys.executable, "-m", "compress", "fit", "recipes/beam_kd_relation.yaml", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((tmp_path / "teachers").glob("beam_teacher-*.pt"))) == 1
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(res) >= {"pytorch", "onnx", "onnx-int8"} and res["onnx"]["top2"] == pytest.approx(res["pytorch"]["top2"])
    assert res["onnx-int8"]["latency_us"]["p50"] > 0 and (tmp_path / "run" / "student.pt").is_file()
