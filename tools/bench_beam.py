"""Beam tracking (issue 15, seed 002): the seed's Table II on synthetic scenario-9-like data.

For each modality (image, image+radar; one process each, so the two run on two cores) the teacher is
trained once (seed 0, as the seed's study has one teacher) and shared by every seed's students: the
undistilled student, response KD, relation KD and self-KD (the seed's form: a fresh teacher-size network
distilled from the teacher) -- all students get the same epochs.  Every run is built from the task's
recipes (``recipes/beam_*.yaml``) with the bench's overrides (resolution, epochs, seed, modality, radar
normalisation and the seed's per-modality KD values), and scored on the same test windows: top-1/2/5
per slot t0..t3.  Also: parameters and FLOPs (thop convention, 8 input steps: the paper's way) of the
paper-size and the bench-size models, and the deployed student (fp32 and static int8 ONNX, GRU fp32)
with its accuracy and latency.

    python tools/bench_beam.py            # the full table (64 px, every training window, 3 seeds)
    python tools/bench_beam.py --json     # ... and the issue's JSON contract on the last line
    python tools/bench_beam.py --quick    # a tiny smoke run (minutes)

Accuracies are percent, means over the seeds (``*_std``: standard deviations over the seeds).  The
workers record their CPU time: one thread each, so on two quiet cores the bench takes about the larger
worker's CPU time (printed as the quiet-machine estimate; a contended wall clock says little).  Each
worker writes ``<out>/<modality>.partial.json`` after every run, so a cut run keeps what it finished.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

MODELS = ("teacher", "student", "response", "relation", "self")
RECIPES = {"teacher": "recipes/beam_teacher.yaml", "student": "recipes/beam_student.yaml",
           "response": "recipes/beam_kd_response.yaml", "relation": "recipes/beam_kd_relation.yaml",
           "self": "recipes/beam_self_kd.yaml"}
# the seed's per-modality KD settings (research note, section 2); the recipes hold the image values
SEED_KD = {
    "image": {},
    "image_radar": {
        "response": {"model.distiller.terms.0.init_args.T": 2.0, "model.distiller.terms.0.init_args.weight": 0.4,
                     "model.task_weight": 0.6},
        "relation": {"model.distiller.terms.0.init_args.weight": 0.3, "model.task_weight": 0.7,
                     "model.distiller.terms.0.init_args.distance_weight": 10.0,
                     "model.distiller.terms.0.init_args.angle_weight": 10.0},
    },
}
PAPER = {"teacher_image": (1_787_418, 157.83), "student_image": (94_778, 92.25),
         "teacher_image_radar": (2_931_100, 179.25), "student_image_radar": (105_940, 42.72)}


def _root() -> Path:
    return Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- one run
def _config(name: str, modality: str, args, seed: int) -> dict:
    from compress.recipe import apply_override
    from compress.recipe import load_recipe

    cfg = load_recipe(_root() / RECIPES[name])
    epochs = {"teacher": args.teacher_epochs, "self": args.self_epochs}.get(name, args.epochs)
    changes = {"seed_everything": seed, "trainer.max_epochs": epochs,
               "data.modality": modality, "data.resolution": args.resolution, "data.radar_scale": args.radar_scale,
               "data.n_sequences": args.sequences, "data.window_stride": args.window_stride,
               "data.radar_norm": args.radar_norm,
               "model.student.modality": modality,
               "model.student.image_size": args.resolution, "model.student.radar_shape": list(args.radar_shape)}
    changes.update(SEED_KD[modality].get(name, {}))
    for key, value in changes.items():
        apply_override(cfg, key, yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip())
    return cfg


def _limit(value: float):
    """Lightning reads a float as a fraction of the epoch and an int as a number of batches."""
    return int(value) if value > 1 else float(value)


def _fit(name: str, modality: str, args, seed: int, dm, teacher=None):
    """Build the recipe's module around ``teacher`` (in memory), train it, score it."""
    import lightning.pytorch as pl

    from compress.distill import Distiller, DistillationModule
    from compress.recipe import instantiate
    from tasks.beam_tracking import evaluate

    cfg = _config(name, modality, args, seed)
    pl.seed_everything(seed, workers=True, verbose=False)
    init = cfg["model"]["init_args"]
    student = instantiate(init["student"], "model.init_args.student")
    distiller = None
    if "distiller" in init:
        d = init["distiller"]["init_args"]
        distiller = Distiller(teacher, instantiate(d["terms"], "terms"), cache=d.get("cache", False))
    kwargs = {k: instantiate(v, f"model.init_args.{k}") for k, v in init.items() if k not in ("student", "distiller")}
    module = DistillationModule(student, distiller, **kwargs)
    tcfg = cfg["trainer"]
    trainer = pl.Trainer(max_epochs=tcfg["max_epochs"], gradient_clip_val=tcfg.get("gradient_clip_val"),
                         accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0, limit_train_batches=_limit(args.limit_train_batches))
    t0, c0 = time.time(), time.process_time()
    trainer.fit(module, datamodule=dm)
    seconds, cpu = time.time() - t0, time.process_time() - c0
    score = evaluate(student, datamodule=dm)
    print(f"[bench_beam] {modality:11s} {name:8s} seed {seed}: top-2 "
          + " / ".join(f"{v:5.1f}" for v in score["top2"]) + f"   ({seconds:.0f} s wall, {cpu:.0f} s CPU)", flush=True)
    return student.eval(), score, cpu


def _write(path: Path, obj) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def worker(modality: str, args) -> dict:
    import torch

    from compress.recipe import instantiate
    from tasks.beam_tracking import deploy_student

    torch.set_num_threads(1)
    cfg = _config("student", modality, args, 0)
    t0 = time.time()
    dm = instantiate(cfg["data"], "data")
    dm.setup("fit")
    out = {"data_seconds": time.time() - t0, "train_windows": len(dm.train_set), "test_windows": len(dm.test_set),
           "runs": {m: [] for m in MODELS}, "seconds": {m: 0.0 for m in MODELS}}   # seconds: CPU seconds
    teacher, score, sec = _fit("teacher", modality, args, 0, dm)
    out["runs"]["teacher"].append(score)
    out["seconds"]["teacher"] += sec
    keep = None
    for i, seed in enumerate(args.seeds):
        for name in MODELS[1:]:
            if name == "self" and i >= args.self_seeds:
                continue
            model, score, sec = _fit(name, modality, args, seed, dm, None if name == "student" else teacher)
            out["runs"][name].append(score)
            out["seconds"][name] += sec
            _write(Path(args.out) / f"{modality}.partial.json", out)   # what is done so far, if the run is cut
            if name == "response" and keep is None:
                keep = model
    if args.deploy:
        t0 = time.time()
        out["deploy"] = deploy_student(keep, dm, Path(args.out) / f"deploy_{modality}", seconds=0.3)
        out["deploy"]["seconds"] = time.time() - t0
    out["cpu_seconds"] = time.process_time()     # the whole worker (one thread): its time on a quiet core
    return out


# ---------------------------------------------------------------------------------------------- counts
def counts(resolution: int, radar_shape) -> dict:
    import torch

    from compress.profile import count_totals
    from tasks.beam_tracking import BeamStudent, BeamTeacher

    res = {}
    for modality in ("image", "image_radar"):
        for role, cls in (("teacher", BeamTeacher), ("student", BeamStudent)):
            m = cls(modality, image_size=resolution, radar_shape=radar_shape)
            p, ops = count_totals(m, torch.zeros(1, 8, m.width), convention="thop")
            _, ops10 = count_totals(m, torch.zeros(1, 10, m.width), convention="thop")
            res[f"{role}_{modality}"] = {"params": int(p), "mflops": round(ops / 1e6, 3),
                                         "params_torch": sum(q.numel() for q in m.parameters()),
                                         "mflops_10_steps": round(ops10 / 1e6, 3)}
    return res


def paper_latency(out_dir: Path) -> dict:
    """Deployed latency of the paper-size students (random weights; speed does not depend on them)."""
    import torch

    from compress.export import export_onnx
    from compress.profile import profile_artifact
    from compress.export import quantize_onnx_static
    from tasks.beam_tracking import BeamStudent
    from tasks.beam_tracking.deploy import _grouped_convs

    res = {}
    g = torch.Generator().manual_seed(0)
    for modality in ("image", "image_radar"):
        m = BeamStudent(modality).eval()
        x = (torch.rand(1, 10, m.width, generator=g) < 0.05).float()
        fp32 = export_onnx(m, x, out_dir / f"paper_student_{modality}.onnx")
        calib = [(torch.rand(1, 10, m.width, generator=g) < 0.05).float() for _ in range(4)]
        entry = {}
        for tag, path in (("onnx", fp32),
                          ("onnx-int8", quantize_onnx_static(fp32, out_dir / f"paper_student_{modality}_int8.onnx",
                                                             calib, nodes_to_exclude=_grouped_convs(fp32)))):
            prof = profile_artifact(path, list(x.shape), seconds=0.3, repeats=3)
            lat = next(iter(prof.latency.values()), None)
            entry[tag] = {"bytes": path.stat().st_size,
                          "p50_us": round(lat["p50_us"], 1) if lat else None,
                          "p99_us": round(lat["p99_us"], 1) if lat else None}
        res[f"student_{modality}"] = entry
    return res


# ---------------------------------------------------------------------------------------------- report
def summarize(results: dict) -> dict:
    table = {}
    for modality, out in results.items():
        rows = {}
        for name in MODELS:
            runs = out["runs"][name]
            row = {}
            for k in ("top1", "top2", "top5"):
                a = np.array([r[k] for r in runs])
                row[k] = np.round(a.mean(0), 2).tolist()
                row[f"{k}_std"] = np.round(a.std(0), 2).tolist()
            row["seeds"] = len(runs)
            rows[name] = row
        for name in ("response", "relation", "self", "teacher"):
            rows[name]["top2_gain"] = np.round(np.array(rows[name]["top2"]) - np.array(rows["student"]["top2"]),
                                               2).tolist()
        table[modality] = rows
    return table


def print_table(table: dict, sizes: dict, results: dict) -> None:
    print("\nTop-2 accuracy (%) per slot t0..t3 (mean +- std over seeds), gain over the undistilled student")
    for modality, rows in table.items():
        print(f"\n  {modality}  (train {results[modality]['train_windows']} / test "
              f"{results[modality]['test_windows']} windows)")
        print(f"  {'model':9s} {'top-2 t0 / t1 / t2 / t3':44s} {'gain vs student':28s} top-5")
        for name, row in rows.items():
            cells = " / ".join(f"{m:4.1f}+-{s:3.1f}" for m, s in zip(row["top2"], row["top2_std"]))
            gain = " ".join(f"{g:+5.1f}" for g in row.get("top2_gain", [])) if name != "student" else ""
            print(f"  {name:9s} {cells:44s} {gain:28s} " + " / ".join(f"{v:4.1f}" for v in row["top5"]))
    for scale, entry in sizes.items():
        print(f"\n  {scale}: params / MFLOPs (thop, 8 steps)")
        for modality in ("image", "image_radar"):
            t, s = entry[f"teacher_{modality}"], entry[f"student_{modality}"]
            print(f"    {modality:11s} teacher {t['params']:>9,} / {t['mflops']:7.2f}   student {s['params']:>9,} / "
                  f"{s['mflops']:6.2f}   -> {t['params'] / s['params']:.1f}x fewer params, "
                  f"{100 * (1 - s['mflops'] / t['mflops']):.1f}% fewer FLOPs")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--teacher-epochs", type=int, default=8)
    ap.add_argument("--self-epochs", type=int, default=None, help="self-KD epochs (default: the students')")
    ap.add_argument("--self-seeds", type=int, default=1, help="seeds of the teacher-size self-KD run")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--radar-scale", type=int, default=2)
    ap.add_argument("--sequences", type=int, default=136)
    ap.add_argument("--window-stride", type=int, default=1, help="keep every k-th training window")
    ap.add_argument("--radar-norm", default="floor", choices=["none", "floor"],
                    help="radar map normalisation (BeamDataModule.radar_norm; the seed: none)")
    ap.add_argument("--limit-train-batches", type=float, default=1.0)
    ap.add_argument("--modalities", nargs="+", default=["image", "image_radar"])
    ap.add_argument("--no-deploy", dest="deploy", action="store_false")
    ap.add_argument("--no-paper-latency", dest="paper_latency", action="store_false")
    ap.add_argument("--out", default="runs/bench_beam")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.teacher_epochs, args.resolution = [0], 1, 1, 32
        args.radar_scale, args.sequences, args.limit_train_batches, args.paper_latency = 4, 14, 3, False
    args.radar_shape = (128 // args.radar_scale, 64 // args.radar_scale)
    args.self_epochs = args.epochs if args.self_epochs is None else args.self_epochs
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.worker:
        res = worker(args.worker, args)
        tmp = out_dir / f"{args.worker}.json.tmp{os.getpid()}"
        tmp.write_text(json.dumps(res))
        os.replace(tmp, out_dir / f"{args.worker}.json")
        return 0

    t0 = time.time()
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--json"]
    procs = {m: subprocess.Popen([sys.executable, __file__, "--worker", m, *passthrough], env=os.environ.copy())
             for m in args.modalities}
    sizes = {"paper_size": counts(224, (128, 64)), "bench_size": counts(args.resolution, args.radar_shape)}
    for name, (params, mflops) in PAPER.items():
        sizes["paper_size"][name]["paper"] = {"params": params, "mflops": mflops}
    failed = [m for m, p in procs.items() if p.wait() != 0]
    if failed:
        print(f"error: the worker for {', '.join(failed)} failed (see its traceback above)", file=sys.stderr)
        return 1
    results = {m: json.loads((out_dir / f"{m}.json").read_text()) for m in args.modalities}
    latency = paper_latency(out_dir) if args.paper_latency else {}
    table = summarize(results)
    print_table(table, sizes, results)
    for modality, out in results.items():
        dep = out.get("deploy")
        if dep:
            print(f"\n  deployed {modality} response student (bench size): " + ", ".join(
                f"{k} top-2 t0 {dep[k]['top2'][0]:.1f}" + (f", p50 {dep[k]['latency_us']['p50']:.0f} us"
                                                          if dep[k].get("latency_us") else "")
                for k in ("pytorch", "onnx", "onnx-int8") if k in dep))
    for name, entry in latency.items():
        print(f"  paper-size {name}: " + ", ".join(f"{k} {v['bytes']:,} B p50 {v['p50_us']} us p99 {v['p99_us']} us"
                                                  for k, v in entry.items()))
    total = time.time() - t0
    # the workers run side by side, one thread each: on two quiet cores the run takes about the larger
    # worker's CPU time plus this process's own (counts, paper-size latency) -- a contended machine's wall
    # time says little
    quiet = max(out["cpu_seconds"] for out in results.values()) + time.process_time()
    print(f"\n  total {total / 60:.1f} min wall; CPU " + ", ".join(
        f"{m} worker {out['cpu_seconds'] / 60:.1f} min" for m, out in results.items())
        + f", main {time.process_time() / 60:.1f} min -> about {quiet / 60:.1f} min on two quiet cores")
    print("  per model (CPU s): " + "; ".join(
        f"{m}: " + ", ".join(f"{k} {v:.0f}" for k, v in out["seconds"].items()) for m, out in results.items()))
    report = {m: {name: {k: row[k] for k in ("top2", "top5", "top2_std", "top5_std", "top1", "top2_gain") if k in row}
                  for name, row in rows.items()} for m, rows in table.items()}
    report["paper_size"] = sizes["paper_size"]
    report["bench_size"] = sizes["bench_size"]
    report["deploy"] = {m: results[m].get("deploy") for m in results}
    report["paper_latency"] = latency
    report["settings"] = {"seeds": args.seeds, "epochs": args.epochs, "teacher_epochs": args.teacher_epochs,
                          "self_epochs": args.self_epochs, "self_seeds": args.self_seeds,
                          "resolution": args.resolution, "radar_shape": list(args.radar_shape),
                          "window_stride": args.window_stride, "sequences": args.sequences,
                          "radar_norm": args.radar_norm, "minutes": round(total / 60, 2),
                          "cpu_minutes": {m: round(out["cpu_seconds"] / 60, 2) for m, out in results.items()},
                          "quiet_minutes_estimate": round(quiet / 60, 2)}
    tmp = out_dir / f"results.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, out_dir / "results.json")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
