"""Fault matrix: bad input, kills, NaN, a full disk and concurrent runs, in a scratch folder.

    python tools/bench_faults.py [--json] [--kills 5] [--search-kills 3] [--seed 0]

Every case runs the real CLI (``python -m compress ...``) or the Python API in a process of its own,
inside a temporary copy of nothing but the recipes it writes (the repository is only imported), and
is classified:

* bad input (recipes, overrides, CLI arguments, Python API calls): ``clear_error`` when it exits with
  code 2 and exactly one ``error: ...`` line, ``traceback`` when a traceback is printed instead,
  ``silent_failure`` when it exits 0; recipes that try to run code also check that their marker file
  was not created (``code_executed``);
* kills: a fit with an EMA self-teacher SIGKILLed at random moments, then rerun: ``resumed_equal`` when
  the rerun resumed and ended with the uninterrupted run's weights (same seed), ``data_lost`` when it
  did not resume or ended elsewhere; a search worker SIGKILLed at random moments, then rerun: every
  trial completed before the kill must be kept (same values) and the study must reach N trials;
* NaN (``--model.lr=1e30`` from scratch, and ``task_weight=.inf`` resumed onto a good run): a clear error
  and the good ``last.ckpt`` / ``student.pt`` unchanged; a full disk (``OSError(ENOSPC)`` from the
  checkpoint writer): a clear error and the previous checkpoint kept; two fits on one run folder: the
  second refused, the first finishing.

``--json`` prints one JSON object on the last line: {"cases", "clear_errors", "tracebacks",
"silent_failures", "data_lost", "code_executed", "kills", "resumed_equal", "seconds"} plus "failures"
(the case names that were not clean).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
MARK = "PWNED"


# ----------------------------------------------------------------------------------------- helpers
def digits(run_dir: Path, epochs: int = 3, ema: bool = False) -> dict:
    terms = [{"class_path": "compress.distill.terms.KL", "init_args": {"T": 2.0}}]
    distiller = {"class_path": "compress.distill.Distiller", "init_args": {"terms": terms}}
    if not ema:
        distiller["init_args"]["teachers"] = {"class_path": "compress.models.MLP",
                                              "init_args": {"in_features": 64, "out_features": 10, "hidden": [32]}}
    model = {"student": {"class_path": "compress.models.MLP",
                         "init_args": {"in_features": 64, "out_features": 10, "hidden": [16]}},
             "distiller": distiller, "task_loss": {"class_path": "torch.nn.CrossEntropyLoss"}, "num_classes": 10,
             "kd_inputs": "mixup"}
    if ema:
        model["self_distill"] = "ema"
    return {"seed_everything": 3, "run_dir": str(run_dir),
            "trainer": {"max_epochs": epochs, "accelerator": "cpu", "enable_model_summary": False,
                        "enable_progress_bar": False, "log_every_n_steps": 5},
            "model": {"class_path": "compress.distill.DistillationModule", "init_args": model},
            "data": {"class_path": "compress.data.DigitsDataModule", "init_args": {"batch_size": 16}}}


def search_recipe(run_dir: Path, n_trials: int) -> dict:
    cfg = digits(run_dir, epochs=4)
    cfg["model"]["init_args"].pop("distiller")
    cfg["model"]["init_args"].pop("kd_inputs")
    cfg["trainer"]["logger"] = False
    cfg["search"] = {"input_shape": [1, 64], "metric": "val/acc", "objectives": ["quality", "bytes"],
                     "limits": {"max_bytes": 100000}, "sampler": "random", "n_trials": n_trials, "seed": 0,
                     "timing_seconds": 0.05, "heartbeat_interval": 1, "grace_period": 3,
                     "space": {"model.init_args.student.init_args.hidden": {"layers": [1, 1], "width": [4, 32]},
                               "model.init_args.lr": {"low": 0.002, "high": 0.02, "log": True}}}
    return cfg


def write(path: Path, cfg: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def env() -> dict:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "COMPRESS_NUM_THREADS": "1", "WANDB_MODE": "offline"}


def run(args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)


def cli(cwd: Path, *args, timeout: float = 900) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "compress", *map(str, args)], cwd, timeout)


def start(cwd: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "compress", *map(str, args)], cwd=cwd, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def weights(run_dir: Path) -> dict | None:
    f = run_dir / "student.pt"
    return torch.load(f, weights_only=True)["state_dict"] if f.is_file() else None


def equal(a: dict | None, b: dict | None) -> bool:
    return a is not None and b is not None and set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def wait_for(path: Path, timeout: float = 300) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline and not path.is_file():
        time.sleep(0.02)
    return path.is_file()


class Tally:
    KEYS = ("clear_errors", "tracebacks", "silent_failures", "data_lost", "code_executed", "kills", "resumed_equal")

    def __init__(self):
        self.counts = {k: 0 for k in self.KEYS}
        self.cases, self.failures = 0, []

    def bad_input(self, name: str, r: subprocess.CompletedProcess, marker: Path | None = None) -> None:
        self.cases += 1
        lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
        clean = True
        if marker is not None and marker.exists():
            self.counts["code_executed"] += 1
            clean = False
        if "Traceback" in r.stderr:
            self.counts["tracebacks"] += 1
            clean = False
        elif r.returncode == 0:
            self.counts["silent_failures"] += 1
            clean = False
        elif r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "):
            self.counts["clear_errors"] += 1
        else:
            clean = False
            self.counts["silent_failures"] += 1  # an unclear exit: neither one line nor a traceback
        if not clean:
            self.failures.append(name)
        print(f"  {'ok ' if clean else 'BAD'} {name}: exit {r.returncode}: {(lines or ['-'])[-1][:150]}", flush=True)

    def outcome(self, name: str, ok: bool, key_if_bad: str, detail: str = "") -> None:
        self.cases += 1
        if not ok:
            self.counts[key_if_bad] += 1
            self.failures.append(name)
        print(f"  {'ok ' if ok else 'BAD'} {name}{': ' + detail if detail else ''}", flush=True)


# ----------------------------------------------------------------------------------------- cases
def bad_inputs(work: Path, t: Tally) -> None:
    print("[faults] bad input", flush=True)
    base = write(work / "good.yaml", digits(work / "runs" / "good", epochs=1))
    marker = work / MARK

    def variant(name: str, edit) -> Path:
        cfg = digits(work / "runs" / name, epochs=1)
        edit(cfg)
        return write(work / f"{name}.yaml", cfg)

    def set_(path, value):
        def edit(cfg):
            node, parts = cfg, path.split(".")
            for p in parts[:-1]:
                node = node[p]
            node[parts[-1]] = value
        return edit

    hostile = {
        "after_fit torch.distributed.run.main": set_("after_fit", [{"class_path": "torch.distributed.run.main",
                                                                    "init_args": {"args": ["--no-python", "--standalone",
                                                                                           "--nproc-per-node=1", "touch",
                                                                                           str(marker)]}}]),
        "student torch.load(weights_only=False)": set_("model.init_args.student", {
            "class_path": "torch.load", "init_args": {"f": str(marker), "weights_only": False}}),
        "student torch.hub.load": set_("model.init_args.student", {"class_path": "torch.hub.load",
                                                                   "init_args": {"repo_or_dir": "x", "model": "y"}}),
        "data builtins.eval": set_("data", {"class_path": "builtins.eval", "init_args": {}}),
        "data os.system": set_("data", {"class_path": "os.system", "init_args": {}}),
        "callback subprocess.Popen": set_("trainer.callbacks", [{"class_path": "subprocess.Popen",
                                                                  "init_args": {"args": ["touch", str(marker)]}}]),
        "re-exported foreign class": set_("data", {"class_path": "compress.run.fit.Path", "init_args": {}}),
        "a module named as a class": set_("data", {"class_path": "compress.run.children.subprocess"}),
        "allow_any_class inside a recipe": set_("model.init_args.distiller.init_args.teachers", {
            "class_path": "compress.distill.RecipeTeacher",
            "init_args": {"recipe": "recipes/digits_teacher.yaml", "allow_any_class": True}}),
    }
    for name, edit in hostile.items():
        t.bad_input(name, cli(work, "fit", variant(name.replace(" ", "_").replace("(", "").replace(")", "")
                                                   .replace("=", "").replace(".", "_"), edit)), marker)
    tag = work / "tag.yaml"
    tag.write_text(f"trainer: !!python/object/apply:os.system ['touch {marker}']\n")
    t.bad_input("YAML python tag", cli(work, "fit", tag), marker)
    dup = work / "dup.yaml"
    dup.write_text("seed_everything: 1\nseed_everything: 2\n")
    t.bad_input("duplicate key", cli(work, "fit", dup))
    broken = work / "broken.yaml"
    broken.write_text("trainer: [1, 2\nmodel: {")
    t.bad_input("invalid YAML", cli(work, "fit", broken))
    teacher = write(work / "bad_teacher.yaml", {**digits(work / "runs" / "t"), "model": {
        "class_path": "compress.distill.DistillationModule", "init_args": {
            "student": {"class_path": "compress.models.MLP", "init_args": {"in_features": 64, "out_features": 10,
                                                                          "hidden": [8], "activation": "swish!"}},
            "task_loss": {"class_path": "torch.nn.CrossEntropyLoss"}}}})
    t.bad_input("error inside a teacher recipe", cli(work, "fit", variant("with_bad_teacher", set_(
        "model.init_args.distiller.init_args.teachers",
        {"class_path": "compress.distill.RecipeTeacher", "init_args": {"recipe": str(teacher)}}))))
    overrides = [
        ["--trainer.max_epochs=-5"], ["--trainer.max_epochs=ten"], ["--model.lr=fast"], ["--model.lr=-1e-3"],
        ["--model.init_args.student.init_args.hiden=[4]"], ["--model.student.init_args.hidden=4"],
        ["--data.init_args.batch_size=0"], ["--model.distiller.init_args.terms.0.init_args.T=-1"],
        ["--logger=tensorboard"], ["--export.onnx=yes"], ["--export.zip=true"], ["--trainer.nonsense=1"],
        ["--bogus=1"], ["--ckpt_path=nowhere.ckpt"], ["--model.optimizer=lbfgs"],
        ["--model.student.init_args.out_features=12"],
        ["--model.self_distill=ema", "--model.distiller.init_args.cache=true"], ["--seed_everything=-1"],
        ["--trainer.accumulate_grad_batches=0"], ["--model.student.class_path=compress.models.Nope"],
        ["--trainer.gradient_clip_val=.nan"],
    ]
    for extra in overrides:
        t.bad_input(f"override {' '.join(extra)}", cli(work, "fit", base, *extra, "--run_dir=runs/overrides"))
    t.bad_input("unparsable argument", cli(work, "fit", base, "-x"))
    t.bad_input("missing recipe", cli(work, "fit", work / "nope.yaml"))
    t.bad_input("no recipe given", cli(work, "fit"))
    t.bad_input("unknown command", cli(work, "train", base))
    t.bad_input("validate an untrained run", cli(work, "validate", base, "--run_dir=runs/never"))
    t.bad_input("test an untrained run", cli(work, "test", base, "--run_dir=runs/never"))
    t.bad_input("export an untrained run", cli(work, "export", base, "--run_dir=runs/never"))
    t.bad_input("search without a search section", cli(work, "search", base))
    t.bad_input("search --n-trials 0", cli(work, "search", base, "--n-trials", "0"))
    t.bad_input("profile a missing file", cli(work, "profile", work / "missing.onnx"))
    t.bad_input("profile --input-shape 1,x", cli(work, "profile", base, "--input-shape", "1,x"))
    api = {
        "API: Distiller(combine='max')": "from compress.distill import Distiller; Distiller(combine='max')",
        "API: KL(T=0)": "from compress.distill import terms; terms.KL(T=0)",
        "API: prune a QAT model": ("import torch; from compress.quant import prepare_qat; from compress.prune import "
                                   "prune_model; m = prepare_qat(torch.nn.Sequential(torch.nn.Linear(4, 8), "
                                   "torch.nn.ReLU(), torch.nn.Linear(8, 2))); prune_model(m, torch.randn(1, 4), "
                                   "target_ratio=0.5)"),
        "API: scenario with NaN speed": ("import dataclasses; from envs.scenarios import get_scenario; "
                                         "dataclasses.replace(get_scenario('macro_ped'), speed_kmh=float('nan'))"),
        "API: scenario with infinite carrier": ("import dataclasses; from envs.scenarios import get_scenario; "
                                                "dataclasses.replace(get_scenario('macro_ped'), carrier_ghz=float('inf'))"),
        "API: SINRModule pmax mismatch": ("from tasks.sinr import SINRModule, PowerMLP; "
                                          "SINRModule(PowerMLP(K=4), mode='ad', pmax=2.0)"),
        "API: profile_model unknown runtime": ("import torch; from compress.profile import profile_model; "
                                               "profile_model(torch.nn.Linear(4, 2), (1, 4), runtimes=('tpu',))"),
    }
    wrapper = ("import sys\nfrom compress.errors import is_user_error, first_line\ntry:\n    exec(sys.argv[1])\n"
               "except Exception as e:\n    if not is_user_error(e): raise\n"
               "    print('error: ' + first_line(e), file=sys.stderr); sys.exit(2)\n")
    for name, code in api.items():
        t.bad_input(name, run([sys.executable, "-c", wrapper, code], work))


def nan_and_disk(work: Path, t: Tally) -> None:
    print("[faults] NaN, full disk, concurrent fits", flush=True)
    path = write(work / "nan.yaml", digits(work / "runs" / "nan", epochs=2))
    t.bad_input("NaN: lr=1e30 from scratch", cli(work, "fit", path, "--model.lr=1.0e+30"))
    t.outcome("NaN: no student written", not (work / "runs" / "nan" / "student.pt").exists(), "data_lost")
    good = write(work / "good_run.yaml", digits(work / "runs" / "good_run", epochs=1))
    r = cli(work, "fit", good)
    run_dir = work / "runs" / "good_run"
    ckpt, student = (run_dir / "checkpoints" / "last.ckpt").read_bytes(), (run_dir / "student.pt").read_bytes()
    t.bad_input("NaN: task_weight=inf resumed onto a good run", cli(
        work, "fit", good, "--trainer.max_epochs=2", "--model.task_weight=.inf", "--accept-changes"))
    kept = (run_dir / "checkpoints" / "last.ckpt").read_bytes() == ckpt and (run_dir / "student.pt").read_bytes() == student
    t.outcome("NaN: the good checkpoint and student are unchanged", r.returncode == 0 and kept, "data_lost")
    code = ("import errno, sys\nimport compress.run.checkpoints as c\n"
            "def full(obj, path): raise OSError(errno.ENOSPC, 'No space left on device')\n"
            "c.atomic_torch_save = full\nfrom compress.cli import main\n"
            f"sys.exit(main(['fit', {str(good)!r}, '--trainer.max_epochs=3', '--accept-changes']))\n")
    t.bad_input("full disk (ENOSPC from the checkpoint writer)", run([sys.executable, "-c", code], work))
    t.outcome("full disk: the previous checkpoint is kept",
              (run_dir / "checkpoints" / "last.ckpt").read_bytes() == ckpt, "data_lost")
    long = write(work / "long.yaml", digits(work / "runs" / "shared", epochs=30))
    first = start(work, "fit", long)
    wait_for(work / "runs" / "shared" / ".lock")
    time.sleep(1.0)
    t.bad_input("a second fit on the same run folder", cli(work, "fit", long))
    first.wait(timeout=900)
    t.outcome("the first fit finishes", first.returncode == 0 and (work / "runs" / "shared" / "student.pt").is_file(),
              "data_lost", f"exit {first.returncode}")


def fit_kills(work: Path, t: Tally, n: int, rng: random.Random) -> None:
    print(f"[faults] SIGKILL of a fit with an EMA self-teacher at {n} random moments", flush=True)
    epochs = 8
    ref_dir = work / "runs" / "kill_ref"
    r = cli(work, "fit", write(work / "kill_ref.yaml", digits(ref_dir, epochs=epochs, ema=True)))
    if r.returncode != 0:
        raise RuntimeError(f"the reference fit failed: {r.stderr[-500:]}")
    ref = weights(ref_dir)
    # how long the training part of such a run takes (from its lock, taken after start-up, to its end)
    timing = start(work, "fit", write(work / "kill_time.yaml", digits(work / "runs" / "kill_time", epochs=epochs,
                                                                       ema=True)))
    wait_for(work / "runs" / "kill_time" / ".lock")
    t_lock = time.time()
    timing.wait(timeout=900)
    span = max(0.5, time.time() - t_lock)
    for i in range(n):
        run_dir = work / "runs" / f"kill_{i}"
        path = write(work / f"kill_{i}.yaml", digits(run_dir, epochs=epochs, ema=True))
        delay = rng.uniform(0.02, 0.98) * span
        proc = start(work, "fit", path)
        wait_for(run_dir / ".lock")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        t.counts["kills"] += 1
        had = (run_dir / "checkpoints" / "last.ckpt").is_file()
        epoch = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] if had else None
        r = cli(work, "fit", path)
        resumed = "resuming from" in r.stdout
        same = r.returncode == 0 and equal(weights(run_dir), ref)
        if same:
            t.counts["resumed_equal"] += 1
        t.outcome(f"kill {i} {delay:.1f}s into training (checkpoint epoch {epoch})", same and (resumed or not had), "data_lost",
                  f"rerun exit {r.returncode}, {'resumed' if resumed else 'fresh'}, weights "
                  f"{'equal' if same else 'DIFFER'}" + ("" if r.returncode == 0 else f"\n{r.stderr[-1500:]}"))


def search_kills(work: Path, t: Tally, n: int, rng: random.Random) -> None:
    print(f"[faults] SIGKILL of a search worker at {n} random moments", flush=True)
    import optuna

    n_trials = 3 + n
    run_dir = work / "runs" / "search"
    path = write(work / "search_kill.yaml", search_recipe(run_dir, n_trials))
    db = run_dir / "study.db"
    for i in range(n):
        proc = start(work, "search", path)
        time.sleep(rng.uniform(4.0, 12.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        t.counts["kills"] += 1
        before = {}
        if db.is_file():
            study = optuna.load_study(study_name="search_kill", storage=f"sqlite:///{db}")
            before = {x.number: x.values for x in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}
        time.sleep(3.5)  # the killed trial's heartbeat goes stale
        target = min(n_trials, len(before) + 1) if i < n - 1 else n_trials
        r = cli(work, "search", path, "--n-trials", target)
        study = optuna.load_study(study_name="search_kill", storage=f"sqlite:///{db}")
        done = {x.number: x.values for x in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}
        kept = all(done.get(k) == v for k, v in before.items())
        ok = r.returncode == 0 and kept and len(done) >= target
        if ok:
            t.counts["resumed_equal"] += 1
        t.outcome(f"search kill {i}: {len(before)} trials done before, {len(done)} after (target {target})", ok,
                  "data_lost", f"rerun exit {r.returncode}{'' if kept else ', COMPLETED TRIALS CHANGED'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--search-kills", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="(the JSON line is always printed last)")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    t, t0 = Tally(), time.time()
    with tempfile.TemporaryDirectory(prefix="compress-faults-") as tmp:
        work = Path(tmp)
        (work / "recipes").mkdir()
        (work / "recipes" / "digits_teacher.yaml").write_text((ROOT / "recipes" / "digits_teacher.yaml").read_text())
        bad_inputs(work, t)
        nan_and_disk(work, t)
        fit_kills(work, t, args.kills, rng)
        search_kills(work, t, args.search_kills, rng)
    out = {"cases": t.cases, **t.counts, "seconds": round(time.time() - t0, 1), "failures": t.failures}
    print(f"[faults] {t.cases} cases: {t.counts}; not clean: {t.failures or 'none'}", flush=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
