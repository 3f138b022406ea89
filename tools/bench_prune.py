#!/usr/bin/env python
"""Pruning acceptance on sklearn digits: a 2x512 MLP pruned to a 25% parameter budget.

    python tools/bench_prune.py [--json] [--importance magnitude|taylor] [--epochs 20]

1. Train the teacher, a 64-512-512-10 MLP (Adam, cross-entropy), on 80% of load_digits (seed 0).
2. Copy it into a ``DistillationModule`` with a ``PruningCallback(target_ratio=0.25, start_epoch=0)``:
   the first batch prunes the copy to 25% of the parameters (channels physically removed), then the
   pruned student is fine-tuned with knowledge distillation from the unpruned teacher
   (``terms.KL(T=4)`` + cross-entropy).  The same is repeated without KD (cross-entropy only) to show
   what distillation adds.
3. Export teacher and student to ONNX (compress.export) and time them with the profiler (batch 1,
   one thread, fresh process) on ONNX Runtime and on the C export.

Acceptance (issue 3): ONNX file >= 3x smaller, measurably faster, accuracy drop < 2 points.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path


import lightning.pytorch as pl
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from compress.distill import DistillationModule, Distiller, terms
from compress.profile.latency import build_artifact, time_artifact
from compress.prune import PruningCallback, count_params


def data(seed: int = 0):
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x / 16.0, y, test_size=0.2, random_state=seed, stratify=y)
    t = lambda a, dt: torch.tensor(a, dtype=dt)  # noqa: E731
    return (t(xtr, torch.float32), t(ytr, torch.long)), (t(xte, torch.float32), t(yte, torch.long))


def accuracy(model: nn.Module, xy) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(xy[0]).argmax(-1) == xy[1]).float().mean()) * 100


def train_teacher(train, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(*train), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()


def prune_and_finetune(teacher, train, epochs: int, kd: bool, importance: str, seed: int):
    pl.seed_everything(seed, verbose=False)
    student = copy.deepcopy(teacher)
    frozen = copy.deepcopy(teacher)
    distiller = Distiller(frozen, [terms.KL(T=4.0)]) if kd else None
    module = DistillationModule(student, distiller=distiller, task_loss=nn.CrossEntropyLoss(), lr=1e-3,
                                num_classes=10)
    prune = PruningCallback(target_ratio=0.25, importance=importance, start_epoch=0, module_attr="student",
                            example_input=[1, 64], taylor_batches=8)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[prune], logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, accelerator="cpu")
    loader = DataLoader(TensorDataset(*train), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    trainer.fit(module, loader)
    return module.student.eval(), prune.history


def deployed(model: nn.Module, workdir: Path, seconds: float, repeats: int) -> dict:
    x = torch.randn(1, 64)
    out = {}
    for rt in ("onnxruntime", "c-export"):
        art = build_artifact(model, x, rt, workdir)
        st = time_artifact(art, rt, [1, 64], seconds=seconds, repeats=repeats)
        out[rt] = {"bytes": art["bytes"], "p50_us": round(st["p50_us"], 4), "p99_us": round(st["p99_us"], 4),
                   "spread_us": [round(v, 4) for v in st["spread_us"]]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--importance", default="magnitude", choices=["magnitude", "taylor"])
    ap.add_argument("--teacher-epochs", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs after pruning")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=0.4)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    train, test = data(args.seed)
    teacher = train_teacher(train, args.teacher_epochs, args.seed)
    acc_t = accuracy(teacher, test)
    student_kd, history = prune_and_finetune(teacher, train, args.epochs, True, args.importance, args.seed)
    student_ce, _ = prune_and_finetune(teacher, train, args.epochs, False, args.importance, args.seed)
    acc_kd, acc_ce = accuracy(student_kd, test), accuracy(student_ce, test)
    with tempfile.TemporaryDirectory(prefix="bench-prune-") as tmp:
        dep_t = deployed(teacher, Path(tmp) / "teacher", args.seconds, args.repeats)
        dep_s = deployed(student_kd, Path(tmp) / "student", args.seconds, args.repeats)
    p_t, p_s = count_params(teacher), count_params(student_kd)
    result = {
        "teacher": {"params": p_t, "hidden": [teacher[0].out_features, teacher[2].out_features], "acc": round(acc_t, 2),
                    **dep_t},
        "student": {"params": p_s, "hidden": [student_kd[0].out_features, student_kd[2].out_features],
                    "acc_kd": round(acc_kd, 2), "acc_ce": round(acc_ce, 2), **dep_s},
        "param_ratio": round(p_s / p_t, 4),
        "onnx_size_ratio": round(dep_t["onnxruntime"]["bytes"] / dep_s["onnxruntime"]["bytes"], 3),
        "onnx_speedup": round(dep_t["onnxruntime"]["p50_us"] / dep_s["onnxruntime"]["p50_us"], 3),
        "c_speedup": round(dep_t["c-export"]["p50_us"] / dep_s["c-export"]["p50_us"], 3),
        "acc_drop_kd": round(acc_t - acc_kd, 2),
        "acc_drop_ce": round(acc_t - acc_ce, 2),
        "importance": args.importance,
        "prune_history": history,
    }
    t, s = result["teacher"], result["student"]
    print(f"teacher  64-{t['hidden'][0]}-{t['hidden'][1]}-10  params {p_t:>7,}  acc {acc_t:.2f}%")
    print(f"student  64-{s['hidden'][0]}-{s['hidden'][1]}-10  params {p_s:>7,} ({p_s / p_t:.1%})  "
          f"acc {acc_kd:.2f}% with KD, {acc_ce:.2f}% without")
    for rt in ("onnxruntime", "c-export"):
        print(f"{rt:<12} bytes {t[rt]['bytes']:>9,} -> {s[rt]['bytes']:>9,}   p50 {t[rt]['p50_us']:.3f} -> "
              f"{s[rt]['p50_us']:.3f} us (spread {t[rt]['spread_us']} -> {s[rt]['spread_us']})")
    checks = [
        ("ONNX file >= 3x smaller", result["onnx_size_ratio"], result["onnx_size_ratio"] >= 3),
        ("ONNX Runtime faster (p50 ratio; spreads disjoint)", result["onnx_speedup"],
         s["onnxruntime"]["spread_us"][1] < t["onnxruntime"]["spread_us"][0]),
        ("C export faster (p50 ratio; spreads disjoint)", result["c_speedup"],
         s["c-export"]["spread_us"][1] < t["c-export"]["spread_us"][0]),
        ("accuracy drop with KD < 2 points", result["acc_drop_kd"], result["acc_drop_kd"] < 2),
    ]
    for name, value, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {value}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
