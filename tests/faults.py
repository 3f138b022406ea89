"""Helpers for the fault tests (and tools/bench_faults.py): small recipes, kill-and-resume runs, probes.

Lives in the tests package: recipes that name these classes need --allow-any-class."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def digits_recipe(run_dir: Path, epochs: int = 3, self_distill: str | None = None, **model_args) -> dict:
    """A digits KD job with a small random teacher (no teacher training), optionally an EMA self-teacher."""
    distiller = {"class_path": "compress.distill.Distiller", "init_args": {
        "teachers": {"class_path": "compress.models.MLP",
                     "init_args": {"in_features": 64, "out_features": 10, "hidden": [32]}},
        "terms": [{"class_path": "compress.distill.terms.KL", "init_args": {"T": 2.0}}]}}
    if self_distill:
        distiller = {"class_path": "compress.distill.Distiller", "init_args": {
            "terms": [{"class_path": "compress.distill.terms.KL", "init_args": {"T": 2.0}}]}}
    model = {"student": {"class_path": "compress.models.MLP",
                         "init_args": {"in_features": 64, "out_features": 10, "hidden": [16]}},
             "distiller": distiller, "task_loss": {"class_path": "torch.nn.CrossEntropyLoss"},
             "num_classes": 10, "kd_inputs": "mixup", **model_args}
    if self_distill:
        model["self_distill"] = self_distill
    return {"seed_everything": 3, "run_dir": str(run_dir),
            "trainer": {"max_epochs": epochs, "accelerator": "cpu", "enable_model_summary": False,
                        "enable_progress_bar": False, "log_every_n_steps": 5},
            "model": {"class_path": "compress.distill.DistillationModule", "init_args": model},
            "data": {"class_path": "compress.data.DigitsDataModule", "init_args": {"batch_size": 16}}}


def write(path: Path, cfg: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COMPRESS_NUM_THREADS": "1", "WANDB_MODE": "offline"}


def cli(*args, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compress", *map(str, args)], cwd=cwd or ROOT, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def start(*args, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "compress", *map(str, args)], cwd=cwd or ROOT, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, timeout: float = 300) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.is_file():
            return True
        time.sleep(0.02)
    return False


def kill_after_first_checkpoint(proc: subprocess.Popen, run_dir: Path, delay: float, sig=signal.SIGKILL) -> None:
    """Send ``sig`` ``delay`` seconds after ``last.ckpt`` first exists (inside a later epoch)."""
    wait_for(run_dir / "checkpoints" / "last.ckpt")
    time.sleep(delay)
    proc.send_signal(sig)
    proc.wait(timeout=120)


def student_state(run_dir: Path) -> dict:
    return torch.load(run_dir / "student.pt", weights_only=True)["state_dict"]


def same_weights(a: dict, b: dict, atol: float = 0.0) -> bool:
    return set(a) == set(b) and all(torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0) for k in a)


class KeyErrorInTraining(pl.LightningModule):
    """A module with a bug deep inside training (a KeyError), to check that bugs keep their traceback."""

    def __init__(self):
        super().__init__()
        self.student = torch.nn.Linear(64, 10)

    def training_step(self, batch, batch_idx):
        return {}["net.0.weight"]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def slow_teacher_recipe(path: Path, run_dir: Path) -> Path:
    """A teacher recipe that trains for a long time (for the orphan test)."""
    cfg = digits_recipe(run_dir, epochs=10_000)
    cfg["model"]["init_args"].pop("distiller")
    cfg["model"]["init_args"].pop("kd_inputs")
    cfg.pop("run_dir")
    return write(path, cfg)


def processes_with(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (Linux /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                out.append(int(d.name))
    return out
