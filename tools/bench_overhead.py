"""What does Lightning cost?  The same KD training, timed under Lightning and in a plain loop.

Both sides train the same 1x8 MLP student from the same 2x256 teacher on digits with the same
terms (KL T=4 + RKD distance), optimizer, batch size, seed and number of optimizer steps;
the plain side is a hand-written PyTorch loop calling the same ``Distiller``.  Each side runs
``--repeats`` times, alternating, in this one process, on one thread.  Time is this process's CPU
time (``time.process_time``), which other processes on a shared machine do not inflate; on one
thread it equals wall time on a quiet machine.  The headline ratio compares the fastest repeat of
each side (as ``timeit`` does); the ratio of medians is printed beside it.
Lightning runs as a user would run it in production training (no progress bar, CSV logging of the
step metrics every 50 steps, no checkpointing).  A third side, a bare LightningModule with the same
step, separates Lightning's own per-step cost from what DistillationModule adds.  A fourth pair, a
DistillationModule with the cheapest step there is (a 64->10 linear layer, cross-entropy, no knowledge
terms) against the same plain loop, measures the fixed cost per step of running under the Trainer: the
ratio can only be <= 1.10 when that fixed cost is <= 10% of the plain KD step
(``break_even_plain_step_ms``).

    python tools/bench_overhead.py [--steps 600] [--repeats 3] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings


import lightning.pytorch as pl
import torch
from torch import nn

from compress.data import DigitsDataModule
from compress.distill import DistillationModule, Distiller, batch_input, terms
from compress.models import MLP


def _terms():
    return [terms.KL(T=4.0), terms.RKDDistance()]


def _fit(module, dm, steps, logger=False):
    """Train ``module`` for ``steps`` optimizer steps; returns (CPU seconds, steps done)."""
    trainer = pl.Trainer(max_steps=steps, max_epochs=-1, logger=logger, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0, accelerator="cpu")
    t0 = time.process_time()
    trainer.fit(module, train_dataloaders=dm.train_dataloader())
    return time.process_time() - t0, trainer.global_step


def lightning_run(teacher, dm, steps, seed, tmp):
    from lightning.pytorch.loggers import CSVLogger
    pl.seed_everything(seed, verbose=False)
    module = DistillationModule(MLP(64, 10, [8]), Distiller(teacher, _terms()), nn.CrossEntropyLoss(),
                                task_weight=0.5, lr=0.005)
    return _fit(module, dm, steps, CSVLogger(tmp))


class BareModule(pl.LightningModule):
    """The least a Lightning user could write for the same step: separates Lightning's own per-step
    cost from what DistillationModule adds on top of it."""

    def __init__(self, teacher):
        super().__init__()
        self.student = MLP(64, 10, [8])
        self.distiller = Distiller(teacher, _terms()).attach(self.student)
        self.ce = nn.CrossEntropyLoss()

    def training_step(self, batch, batch_idx):
        out = self.student(batch["x"])
        kd, _ = self.distiller(batch, out, progress=self.global_step / self.trainer.max_steps)
        return 0.5 * self.ce(out, batch["y"]) + kd

    def configure_optimizers(self):
        return torch.optim.Adam(list(self.student.parameters()) + list(self.distiller.parameters()), lr=0.005)


def bare_run(teacher, dm, steps, seed):
    pl.seed_everything(seed, verbose=False)
    return _fit(BareModule(teacher), dm, steps)


def minimal_lightning_run(dm, steps, seed):
    """DistillationModule with the cheapest possible step: what remains is the Trainer's fixed cost."""
    pl.seed_everything(seed, verbose=False)
    return _fit(DistillationModule(nn.Linear(64, 10), None, nn.CrossEntropyLoss(), lr=0.005), dm, steps)


def _plain_loop(loss_fn, params, dm, steps):
    """The hand-written loop: ``loss_fn(batch, step)``, zero_grad, backward, Adam step."""
    opt = torch.optim.Adam(params, lr=0.005)
    loader = dm.train_dataloader()
    t0 = time.process_time()
    step = 0
    while step < steps:
        for batch in loader:
            loss = loss_fn(batch, step)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step >= steps:
                break
    return time.process_time() - t0, step


def minimal_plain_run(dm, steps, seed):
    pl.seed_everything(seed, verbose=False)
    model, ce = nn.Linear(64, 10), nn.CrossEntropyLoss()
    return _plain_loop(lambda batch, step: ce(model(batch_input(batch)), batch["y"]), list(model.parameters()),
                       dm, steps)


def plain_run(teacher, dm, steps, seed):
    pl.seed_everything(seed, verbose=False)
    student = MLP(64, 10, [8])
    distiller = Distiller(teacher, _terms()).attach(student)
    ce = nn.CrossEntropyLoss()

    def kd_loss(batch, step):
        out = student(batch_input(batch))
        kd, _ = distiller(batch, out, progress=step / steps)
        return 0.5 * ce(out, batch["y"]) + kd

    return _plain_loop(kd_loss, list(student.parameters()) + list(distiller.parameters()), dm, steps)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32, help="32 is recipes/digits_kd.yaml's batch size")
    ap.add_argument("--json", action="store_true", help="(the JSON line is always printed last)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import logging
    import tempfile
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    dm = DigitsDataModule(batch_size=args.batch_size, seed=0)
    dm.setup()
    pl.seed_everything(0, verbose=False)
    teacher = MLP(64, 10, [256, 256])
    plain_run(teacher, dm, 50, 0)  # warm-up of both paths (allocator, lazy imports)
    with tempfile.TemporaryDirectory() as tmp:
        lightning_run(teacher, dm, 50, 0, tmp)
        bare_run(teacher, dm, 50, 0)
        minimal_lightning_run(dm, 50, 0)
        minimal_plain_run(dm, 50, 0)
        lt, pt, bt, mlt, mpt = [], [], [], [], []
        for r in range(args.repeats):
            t, n = lightning_run(teacher, dm, args.steps, r, tmp)
            assert n == args.steps, n
            lt.append(t)
            t, n = plain_run(teacher, dm, args.steps, r)
            pt.append(t)
            bt.append(bare_run(teacher, dm, args.steps, r)[0])
            mlt.append(minimal_lightning_run(dm, args.steps, r)[0])
            mpt.append(minimal_plain_run(dm, args.steps, r)[0])
            print(f"repeat {r}: DistillationModule {lt[-1]:.3f} s  bare LightningModule {bt[-1]:.3f} s  "
                  f"plain loop {pt[-1]:.3f} s  |  minimal step: Lightning {mlt[-1]:.3f} s  plain {mpt[-1]:.3f} s",
                  flush=True)
    result = {"lightning_over_plain": min(lt) / min(pt),
              "lightning_over_plain_median": statistics.median(lt) / statistics.median(pt),
              "bare_lightning_over_plain": min(bt) / min(pt),
              "distillation_module_over_bare_lightning": min(lt) / min(bt),
              "lightning_per_step_overhead_ms": 1e3 * (min(lt) - min(pt)) / args.steps,
              "lightning_fixed_cost_ms_per_step": 1e3 * (min(mlt) - min(mpt)) / args.steps,
              "break_even_plain_step_ms": 1e4 * (min(mlt) - min(mpt)) / args.steps,
              "lightning_s": min(lt), "plain_s": min(pt), "steps": args.steps, "repeats": args.repeats, "batch_size": args.batch_size,
              "ms_per_step_plain": 1e3 * min(pt) / args.steps}
    print(f"DistillationModule under Lightning / plain loop = {result['lightning_over_plain']:.3f} "
          f"({result['ms_per_step_plain']:.2f} ms per plain step, +{result['lightning_per_step_overhead_ms']:.2f} ms "
          f"per step under Lightning)")
    print(f"fixed cost of a Trainer step (minimal DistillationModule step vs the same plain step): "
          f"{result['lightning_fixed_cost_ms_per_step']:.2f} ms; <= 1.10 needs a plain step >= "
          f"{result['break_even_plain_step_ms']:.2f} ms")
    print(f"bare LightningModule / plain loop = {result['bare_lightning_over_plain']:.3f};  DistillationModule / "
          f"bare LightningModule = {result['distillation_module_over_bare_lightning']:.3f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
