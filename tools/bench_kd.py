"""Does distillation pay on digits?  Teacher, student from scratch, student with KD, over seeds.

For each seed: train the 2x256 teacher, then the same 1x8 student twice for the same epochs —
once on labels only, once with the recipe's knowledge (KL T=4 + RKD distance, task weight 0.5, as in
recipes/digits_kd.yaml) — and score all three on the held-out test split.  The KD configuration was
chosen on the validation split (KL+RKD distance beat KL alone, KL+RKD angle and mixup inputs there);
the test split is only used for the numbers printed here.  Prints a table and, last, one JSON line
``{"teacher_acc", "scratch_acc", "kd_acc", "seeds"}`` with means and stds.

    python tools/bench_kd.py [--seeds 0 1 2] [--epochs 60] [--hidden 8] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import warnings


import lightning.pytorch as pl
import torch
from torch import nn

from compress.data import DigitsDataModule
from compress.distill import DistillationModule, Distiller, terms
from compress.models import MLP


def _fit(module, dm, epochs, seed):
    pl.seed_everything(seed, verbose=False)
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, dm)
    return trainer.test(module, dm, verbose=False)[0]["test/acc"]


def run(seeds, epochs, hidden):
    rows = []
    for seed in seeds:
        dm = DigitsDataModule(batch_size=32, seed=seed)
        pl.seed_everything(seed, verbose=False)
        teacher = MLP(64, 10, [256, 256])
        t_acc = _fit(DistillationModule(teacher, task_loss=nn.CrossEntropyLoss(), num_classes=10, lr=0.002),
                     dm, 30, seed)
        pl.seed_everything(seed, verbose=False)
        scratch = DistillationModule(MLP(64, 10, hidden), task_loss=nn.CrossEntropyLoss(), num_classes=10, lr=0.005)
        s_acc = _fit(scratch, dm, epochs, seed)
        pl.seed_everything(seed, verbose=False)
        distiller = Distiller(teacher, [terms.KL(T=4.0), terms.RKDDistance()], cache=True)
        kd = DistillationModule(MLP(64, 10, hidden), distiller, nn.CrossEntropyLoss(), task_weight=0.5,
                                num_classes=10, lr=0.005)
        k_acc = _fit(kd, dm, epochs, seed)
        rows.append((seed, t_acc, s_acc, k_acc))
        print(f"seed {seed}: teacher {t_acc:.4f}  scratch {s_acc:.4f}  kd {k_acc:.4f}", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--hidden", type=int, nargs="+", default=[8])
    ap.add_argument("--json", action="store_true", help="(the JSON line is always printed last)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    rows = run(args.seeds, args.epochs, args.hidden)

    def stat(i):
        vals = [r[i] for r in rows]
        return {"mean": statistics.fmean(vals), "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0}

    result = {"teacher_acc": stat(1), "scratch_acc": stat(2), "kd_acc": stat(3), "seeds": list(args.seeds),
              "student_hidden": args.hidden, "epochs": args.epochs}
    print(f"{'':10s}{'mean':>8s}{'std':>8s}")
    for k in ("teacher_acc", "scratch_acc", "kd_acc"):
        print(f"{k:10s}{result[k]['mean']:8.4f}{result[k]['std']:8.4f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
