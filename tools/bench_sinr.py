"""SINR power control and D2D scheduling by algorithm distillation: how close do students get to the teacher?

Gaussian interference channel (Sun et al. 2018), K = 10, 20, 30: sum-rate as % of WMMSE on held-out channels
for max power, random power, and Sun et al.'s MLP (K^2 -> 200 -> 80 -> 80 -> K) trained through
``tasks.sinr.SINRModule`` in each mode -- supervised / unsupervised / AD (beta fixed, decreasing, increasing) /
policy gradient + AD -- and an interference GNN trained by AD at K = 10 (also scored at K = 20 and 30).

The MLP schedule of every mode is the one of ``recipes/sinr_mlp_k{K}.yaml`` (read from the recipe: channels,
epochs, batch, lr, loss, student arguments); unsupervised / AD / PG run on the same budget (AD's lr and beta
from ``recipes/sinr_mlp_ad.yaml``). ``mlp_supervised_paper_input`` is the same supervised run with Sun et
al.'s input order (``sort_users=False``), and ``sun2018_dnn`` the published fraction of their released DNNs
(``SUN2018_DNN``), printed beside the measured ones. Every MLP is scored with its deployed on/off decision
(``PowerMLP(decision="binary")``). Unsupervised vs AD at K = 10 is repeated over ``--seeds`` (mean and std) and
its convergence (val % of WMMSE per epoch) is saved as a PNG. D2D (Cui et al. layouts, 50 links): FPLinQ vs
greedy / all-active / random and an AD-trained sparse GNN, as % of FPLinQ.

Caches (``cache/sinr/``; ``--quick`` uses a temporary folder): the teacher outputs of each training set (the
Distiller's cache file, shared with the recipes) and the trained weights of every run, keyed by the run's
settings and the source of the code that trains it (``tasks/sinr``, ``envs/interference.py``,
``compress/distill``); ``--retrain`` ignores the weights. The JSON object (last line) follows issue 6's output
contract, with ``pct_of_wmmse["sun2018_dnn"]`` added (issue 18).

    python tools/bench_sinr.py [--quick] [--json] [--retrain] [--ks 10 20 30] [--png runs/sinr_convergence.png]
    python tools/bench_sinr.py --only mlp_supervised mlp_ad --ks 20    # a subset of the runs (same caches)

``--only`` trains and scores only the named runs (``RUNS``); runs left out are missing from ``pct_of_wmmse``,
``gnn_trained_at_10`` is empty without ``gnn_ad`` and ``d2d`` is null without ``d2d``. Separate processes
(e.g. one per K) share the caches, so a later run over every K with the same ``--only`` reads them back.

Cost of a first run (nothing cached): ~1 CPU-hour on one thread (WMMSE over 500k channels per K, then 10-20
runs of 5M sample-steps); cached, ~2 min. ``--quick`` ~20 s.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path


import lightning.pytorch as pl
import torch
import yaml

from envs import d2d
from envs.interference import sum_rate
from tasks.sinr import (ChannelSet, PowerGNN, PowerMLP, SINRDataModule, SINRModule, all_active,
                        evaluate, fplinq, greedy, make_channels, random_schedule, wmmse)

RAYLEIGH_MEAN, RAYLEIGH_STD = 0.8862, 0.4633
ROOT = Path(__file__).resolve().parents[1]
# Sun et al. 2018, Table I (Gaussian IC): sum-rate of their released DNNs as % of WMMSE
SUN2018_DNN = {10: 98.2, 20: 92.1, 30: 86.1}
_TRAIN_SOURCES = ("tasks/sinr", "envs/interference.py", "compress/distill")
RUNS = ("mlp_supervised", "mlp_supervised_paper_input", "mlp_unsupervised", "mlp_ad", "mlp_ad_decreasing",
        "mlp_ad_increasing", "mlp_pg_ad", "gnn_ad", "gnn_unsupervised", "d2d")


def recipe_schedule(K: int) -> dict:
    """The MLP schedule of ``recipes/sinr_mlp_k{K}.yaml`` (and AD's lr / beta from sinr_mlp_ad.yaml)."""
    path = ROOT / "recipes" / f"sinr_mlp_k{K}.yaml"
    if not path.is_file():
        raise SystemExit(f"bench_sinr: no recipe {path.relative_to(ROOT)} for K = {K}")
    r = yaml.safe_load(path.read_text())
    ad = yaml.safe_load((ROOT / "recipes" / "sinr_mlp_ad.yaml").read_text())["model"]["init_args"]
    model, data = r["model"]["init_args"], r["data"]["init_args"]
    student = {k: v for k, v in model["student"]["init_args"].items() if k != "K"}
    return {"n_train": data["n_train"], "epochs": r["trainer"]["max_epochs"], "batch_size": data["batch_size"],
            "lr": model["lr"], "supervised_loss": model.get("supervised_loss", "mse"), "student": student,
            "ad_lr": ad["lr"], "ad_beta": ad["beta"]}


def _source_hash() -> str:
    h = hashlib.sha256()
    for rel in _TRAIN_SOURCES:
        p = ROOT / rel
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


class Setup:
    """Channels and teacher references for one problem size, shared by every run at that size."""

    def __init__(self, problem, K, n_train, n_val, n_test, seed, cache_dir):
        self.problem, self.K, self.cache_dir = problem, K, Path(cache_dir)
        teacher = wmmse if problem == "gaussian" else fplinq
        self.train = ChannelSet(make_channels(problem, K, n_train, seed))
        xv = make_channels(problem, K, n_val, seed + 1)
        self.val = ChannelSet(xv, teacher(xv))
        self.x_test = make_channels(problem, K, n_test, seed + 2)
        self.ref_test = teacher(self.x_test)
        # the file name of the recipes' cache (same channels: make_channels(seed) of the data module)
        self.cache = str(Path(cache_dir) / (f"k{K}_teacher.pt" if problem == "gaussian" else f"{problem}_K{K}_s{seed}.pt"))

    def datamodule(self, batch_size, n_train=None):
        train = self.train if n_train is None else ChannelSet(self.train.x[:n_train])  # same ids: cache hits
        dm = SINRDataModule(self.problem, self.K, n_train=len(train), n_val=len(self.val),
                            batch_size=batch_size, eval_batch_size=1000)  # GNN: (B, K, K, d) per layer
        dm.train_set, dm.val_set = train, self.val
        return dm


def train(setup, student, mode, epochs, seed, batch_size=100, n_train=None, retrain=False, **kw):
    """Train (or load the cached weights of) one run; returns the module with ``history`` and ``fit_seconds``."""
    pl.seed_everything(seed, verbose=False)
    module = SINRModule(student, mode=mode, problem=setup.problem, cache=setup.cache, **kw)
    spec = {"problem": setup.problem, "K": setup.K, "mode": mode, "epochs": epochs, "seed": seed,
            "batch_size": batch_size, "n_train": n_train or len(setup.train), "kw": kw, "student": repr(student),
            "student_attrs": {k: v for k, v in vars(student).items()
                              if k != "training" and not k.startswith("_") and isinstance(v, (bool, int, float, str))},
            "init": float(sum(p.double().sum() for p in student.parameters())), "code": _source_hash()}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    wpath = setup.cache_dir / "weights" / f"{setup.problem}_K{setup.K}_{mode}_{key}.pt"
    if wpath.is_file() and not retrain:
        state = torch.load(wpath, map_location="cpu", weights_only=True)
        student.load_state_dict(state["student"])
        module.history = [tuple(h) for h in state["history"]]
        module.fit_seconds, module.cached = float(state["fit_seconds"]), True
        return module
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0)
    t0 = time.time()
    trainer.fit(module, setup.datamodule(batch_size, n_train))
    module.fit_seconds, module.cached = time.time() - t0, False
    wpath.parent.mkdir(parents=True, exist_ok=True)
    tmp = wpath.with_suffix(".tmp")
    torch.save({"student": student.state_dict(), "history": [list(h) for h in module.history],
                "fit_seconds": module.fit_seconds, "spec": json.dumps(spec, default=str)}, tmp)
    tmp.replace(wpath)
    return module


def mlp(K, seed, **student):
    """Sun et al.'s MLP with the recipe's student arguments (deployed on/off decision, sorted users)."""
    torch.manual_seed(seed)
    args = {"in_mean": RAYLEIGH_MEAN, "in_std": RAYLEIGH_STD, "decision": "binary", **student}
    return PowerMLP(K, **args)


def gnn(seed):
    torch.manual_seed(seed)
    return PowerGNN(hidden=32, layers=3)


def pct(setup, policy, x=None, ref=None):
    x = setup.x_test if x is None else x
    ref_rate = float(sum_rate(x, setup.ref_test if ref is None else ref).mean())
    return 100.0 * evaluate(policy, x, setup.problem) / ref_rate


def msd(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def gaussian_block(K, cfg, seeds, cache_dir, log, curves):
    sch = cfg["schedule"][K]
    s = Setup("gaussian", K, sch["n_train"], cfg["n_val"], cfg["n_test"], 1, cache_dir)
    ref = float(sum_rate(s.x_test, s.ref_test).mean())
    g = torch.Generator().manual_seed(0)
    rand_p = torch.rand(s.x_test.shape[:2], generator=g)
    out = {"wmmse_sum_rate": ref, "pct_of_wmmse": {
        "max_power": pct(s, lambda x: torch.ones(x.shape[:2])),
        "random": 100.0 * float(sum_rate(s.x_test, rand_p).mean()) / ref,
        "wmmse": 100.0}}
    p = out["pct_of_wmmse"]
    if K in SUN2018_DNN:
        p["sun2018_dnn"] = SUN2018_DNN[K]
    log(f"K={K}: WMMSE {ref:.3f} bit/s/Hz; max power {p['max_power']:.1f}%, random {p['random']:.1f}%")
    # every MLP mode on the recipe's budget (n_train channels x epochs, batch); the supervised run with the
    # recipe's settings and once more with Sun et al.'s input order (sort_users=False)
    base = dict(epochs=sch["epochs"], n_train=sch["n_train"], batch_size=sch["batch_size"])
    ad = dict(lr=sch["ad_lr"], beta=sch["ad_beta"])
    runs = {"mlp_supervised": dict(mode="supervised", supervised_loss=sch["supervised_loss"], lr=sch["lr"]),
            "mlp_supervised_paper_input": dict(mode="supervised", supervised_loss=sch["supervised_loss"],
                                               lr=sch["lr"], student={"sort_users": False}),
            "mlp_unsupervised": dict(mode="unsupervised", lr=sch["ad_lr"]),
            "mlp_ad": dict(mode="ad", **ad)}
    if K == 10:
        runs.update({"mlp_ad_decreasing": dict(mode="ad", beta_schedule="decreasing", **ad),
                     "mlp_ad_increasing": dict(mode="ad", beta_schedule="increasing", **ad),
                     "mlp_pg_ad": dict(mode="pg", **ad)})
    runs = {k: v for k, v in runs.items() if k in cfg["only"]}
    for name, kw in runs.items():
        multi = K == 10 and name in ("mlp_unsupervised", "mlp_ad")
        vals, soft, hist = [], [], []
        kw = {**base, **kw}
        student_args = {**sch["student"], **kw.pop("student", {})}
        for seed in (seeds if multi else seeds[:1]):
            m = train(s, mlp(K, seed, **student_args), seed=seed, retrain=cfg["retrain"], **kw)
            vals.append(pct(s, m.student))
            m.student.decision = "soft"                 # the same network with continuous powers, for the record
            soft.append(pct(s, m.student))
            hist.append([v for _, v in m.history])
            log(f"  {name:<27s} seed {seed}: {vals[-1]:6.2f}%  (soft powers {soft[-1]:.2f}%; {m.fit_seconds:.0f} s"
                f"{', cached' if m.cached else ''})")
        p[name], sd = msd(vals)
        if name in ("mlp_supervised", "mlp_ad"):
            p[name + "_soft"] = statistics.mean(soft)
        if multi:
            p[name + "_std"] = sd
            curves[name] = hist
    if "sun2018_dnn" in p:
        log(f"  K={K}: " + ", ".join(f"{n} {p[n]:.2f}%" for n in ("mlp_supervised", "mlp_supervised_paper_input",
                                                                   "mlp_ad") if n in p)
            + f"; Sun et al.'s released DNN {p['sun2018_dnn']:.1f}%")
    # GNN: fewer, costlier steps (K^2 edges); its cost per channel grows with K^2, so fewer channels at large K
    n_gnn = cfg["gnn_n_train"].get(K, cfg["gnn_n_train"][30])
    ep_gnn = cfg["gnn_epochs"].get(K, cfg["gnn_epochs"][30])
    gnn_runs = {"gnn_ad": dict(mode="ad", beta=cfg["gnn_beta"])}
    if K == 10:
        gnn_runs["gnn_unsupervised"] = dict(mode="unsupervised")
    gnn_runs = {k: v for k, v in gnn_runs.items() if k in cfg["only"]}
    kept = None
    for name, kw in gnn_runs.items():
        m = train(s, gnn(0), epochs=ep_gnn, seed=0, n_train=n_gnn, lr=2e-3, retrain=cfg["retrain"], **kw)
        p[name] = pct(s, m.student)
        log(f"  {name:<27s} seed 0: {p[name]:6.2f}%  ({m.fit_seconds:.0f} s; {n_gnn} channels x {ep_gnn} epochs"
            f"{', cached' if m.cached else ''})")
        kept = kept or m.student
    return out, kept, s


def d2d_block(cfg, cache_dir, log):
    s = Setup("d2d", 50, cfg["d2d_train"], cfg["d2d_val"], cfg["d2d_test"], 1, cache_dir)
    G, ref = s.x_test, s.ref_test
    fp = float(d2d.sum_rate(G, ref).mean())
    res = {"fplinq": fp,
           "greedy_pct": 100 * float(d2d.sum_rate(G, greedy(G)).mean()) / fp,
           "all_active_pct": 100 * float(d2d.sum_rate(G, all_active(G)).mean()) / fp,
           "random_pct": 100 * float(d2d.sum_rate(G, random_schedule(G, seed=0)).mean()) / fp}
    torch.manual_seed(0)
    student = PowerGNN(hidden=16, layers=3, log_gains=True, gain_offset=4.0, gain_scale=3.0, neighbors=10)
    m = train(s, student, "ad", epochs=cfg["d2d_epochs"], seed=0, batch_size=20, beta=1.0, lr=3e-3,
              retrain=cfg["retrain"])
    res["student_ad_pct"] = 100 * evaluate(m.student, G, "d2d") / fp
    log(f"D2D: FPLinQ {fp:.1f} bit/s/Hz per layout; greedy {res['greedy_pct']:.1f}%, all active "
        f"{res['all_active_pct']:.1f}%, random {res['random_pct']:.1f}%, GNN AD {res['student_ad_pct']:.1f}% "
        f"({m.fit_seconds:.0f} s)")
    return res


def plot(curves, path, log):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        log("matplotlib missing: no convergence plot")
        return None
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, label in (("mlp_unsupervised", "unsupervised"), ("mlp_ad", "AD (unsupervised + beta MSE)")):
        if name not in curves:
            continue
        h = torch.tensor(curves[name])
        x = torch.arange(1, h.shape[1] + 1)
        mean, std = h.mean(0), (h.std(0) if h.shape[0] > 1 else torch.zeros(h.shape[1]))
        ax.plot(x, mean, label=label)
        ax.fill_between(x, mean - std, mean + std, alpha=0.25)
    ax.set_xlabel("epoch")
    ax.set_ylabel("sum-rate, % of WMMSE (val)")
    ax.set_title("MLP at K = 10, mean +- std over seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sets, 1 seed, 2 epochs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="MLP epochs (default: the recipe's; quick 2)")
    ap.add_argument("--n-train", type=int, default=None, help="MLP training channels per K (default: the recipe's)")
    ap.add_argument("--gnn-beta", type=float, default=0.1, help="AD weight for the GNN (default 0.1)")
    ap.add_argument("--retrain", action="store_true", help="train every run even if its weights are cached")
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 20, 30])
    ap.add_argument("--only", nargs="+", choices=RUNS, default=list(RUNS), metavar="RUN",
                    help=f"train and score only these runs (default: all of {', '.join(RUNS)})")
    ap.add_argument("--png", default="runs/sinr_convergence.png")
    ap.add_argument("--json", action="store_true", help="(the JSON line is always printed last)")
    args = ap.parse_args(argv)
    if 10 not in args.ks and "gnn_ad" in args.only:
        ap.error("--ks must include 10 (the GNN is trained at K = 10), or leave gnn_ad out of --only")
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import logging
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    schedule = {K: recipe_schedule(K) for K in args.ks}
    if args.quick:
        cfg = dict(n_val=500, n_test=1000, gnn_n_train={10: 1000, 20: 300, 30: 200},
                   gnn_epochs={10: 2, 20: 1, 30: 1}, d2d_train=100, d2d_val=20, d2d_test=50, d2d_epochs=1)
        for sch in schedule.values():
            sch.update(n_train=2000, epochs=2, batch_size=100)
        seeds = args.seeds[:1]
    else:
        cfg = dict(n_val=2000, n_test=5000, gnn_n_train={10: 30000, 20: 5000, 30: 3000},
                   gnn_epochs={10: 6, 20: 4, 30: 4}, d2d_train=1000, d2d_val=100, d2d_test=200, d2d_epochs=5)
        seeds = args.seeds
    for sch in schedule.values():
        sch.update({k: v for k, v in (("epochs", args.epochs), ("n_train", args.n_train)) if v})
    cfg.update(schedule=schedule, gnn_beta=args.gnn_beta, retrain=args.retrain, only=list(args.only))
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:6.0f} s] {msg}", flush=True)

    result, curves = {"gaussian": {}}, {}
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = tmp if args.quick else str(ROOT / "cache" / "sinr")
        gnn10, setups = None, {}
        for K in args.ks:
            result["gaussian"][str(K)], g, setups[K] = gaussian_block(K, cfg, seeds, cache_dir, log, curves)
            setups[K].train = None      # only the test sets are used later (500k x K^2 floats: 1.8 GB at K = 30)
            if K == 10:
                gnn10 = g
        result["gnn_trained_at_10"] = {}
        for K in args.ks:
            if K == 10 or gnn10 is None:
                continue
            result["gnn_trained_at_10"][str(K)] = pct(setups[K], gnn10)     # same held-out channels as above
            log(f"GNN trained at K=10, tested at K={K}: {result['gnn_trained_at_10'][str(K)]:.2f}% of WMMSE")
        result["d2d"] = d2d_block(cfg, cache_dir, log) if "d2d" in args.only else None
    result["convergence_png"] = plot(curves, args.png, log)
    result["convergence"] = {k: [statistics.mean(c) for c in zip(*v)] for k, v in curves.items()}
    result["config"] = {**{k: ({str(a): b for a, b in v.items()} if isinstance(v, dict) else v) for k, v in cfg.items()},
                        "seeds": seeds, "seconds": round(time.time() - t0, 1)}

    print("\nsum-rate as % of WMMSE (Gaussian IC, held-out channels)")
    names = sorted({n for r in result["gaussian"].values() for n in r["pct_of_wmmse"] if not n.endswith("_std")},
                   key=lambda n: list(result["gaussian"][str(args.ks[0])]["pct_of_wmmse"]).index(n)
                   if n in result["gaussian"][str(args.ks[0])]["pct_of_wmmse"] else 99)
    print(f"{'policy':<28s}" + "".join(f"{'K=' + str(K):>16s}" for K in args.ks))
    for n in names:
        row = ""
        for K in args.ks:
            pk = result["gaussian"][str(K)]["pct_of_wmmse"]
            cell = f"{pk[n]:.2f}" + (f" +- {pk[n + '_std']:.2f}" if n + "_std" in pk else "") if n in pk else "-"
            row += f"{cell:>16s}"
        print(f"{n:<28s}{row}")
    print(f"{'WMMSE bit/s/Hz':<28s}" + "".join(f"{result['gaussian'][str(K)]['wmmse_sum_rate']:16.3f}"
                                              for K in args.ks))
    for K in args.ks:
        pk = result["gaussian"][str(K)]["pct_of_wmmse"]
        if "sun2018_dnn" in pk and "mlp_supervised" in pk:
            paper = pk.get("mlp_supervised_paper_input")
            print(f"K={K}: supervised MLP {pk['mlp_supervised']:.2f}% of WMMSE vs Sun et al.'s released DNN "
                  f"{pk['sun2018_dnn']:.1f}%" + ("" if paper is None else f" (with their input order: {paper:.2f}%)"))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
