"""RL benchmark: DQN, PPO, SACD, DSACD on CartPole-v1 and on a masked multi-branch bandit, 3 seeds.

    python tools/bench_rl.py [--json] [--algos dqn ppo sacd dsacd] [--tasks cartpole bandit] [--seeds 0 1 2]
                             [--set KEY=VALUE ...] [--no-extra] [--jobs N]

Each (task, algorithm) is the recipe ``recipes/rl_<task>_<algo>.yaml`` (the same job
``python -m compress fit`` runs), trained in this process with its seed set in ``seed_everything``,
``model.init_args.seed`` and, for the bandit, the env's seed. Scores are of the deployed policy (the
actor's / Q-network's argmax over the valid actions), on envs seeded apart from training:

* CartPole-v1: mean return of 20 evaluation episodes after training (and every 10k env steps, for the
  learning curve), the training env steps, and the training wall time;
* bandit (``envs/bandit.py``): reward earned / optimal reward over 8192 fresh contexts (``pct_optimal``,
  in percent); the table also shows a uniformly random valid policy, the env's heuristic expert, and
  PPO + expert JSD (``rl_bandit_ppo_jsd.yaml``, unless ``--no-extra``).

``--jobs N`` trains N runs at a time in worker processes (one thread each); every run is seeded on its own,
so the scores do not depend on N (the wall times do, on a shared machine).

``--json`` prints on its last line exactly:
{"cartpole": {ALGO: {"mean_return", "env_steps", "seconds", "mean_return_std"}},
 "bandit": {ALGO: {"pct_optimal", "pct_optimal_std"}}}   (means and standard deviations over the seeds)

Reference (CleanRL's published CartPole-v1 results, docs.cleanrl.dev, the average episodic return of
500k-env-step training runs): dqn.py 488.69 +- 16.11; ppo.py 490.04 +- 6.12 (488.75 +- 18.40 in an
earlier version of its docs); CleanRL publishes no SAC-discrete CartPole result.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import lightning.pytorch as pl

ROOT = Path(__file__).resolve().parents[1]

ALGOS = ("dqn", "ppo", "sacd", "dsacd")
TASKS = ("cartpole", "bandit")
EVAL_EVERY = 10_000


def build(task: str, algo: str, seed: int, overrides: list[tuple[str, str]]):
    """The recipe's model and trainer settings, seeded."""
    from compress.recipe import apply_override, instantiate, load_recipe, validate_recipe

    path = ROOT / "recipes" / f"rl_{task}_{algo}.yaml"
    cfg = load_recipe(path)
    for k, v in overrides:
        apply_override(cfg, k, v)
    cfg["model"]["init_args"]["seed"] = seed
    env_args = cfg["model"]["init_args"]["env"].setdefault("init_args", {})
    if "seed" in env_args:
        env_args["seed"] = seed
    validate_recipe(cfg, path)
    pl.seed_everything(seed, verbose=False)
    return instantiate(cfg["model"], "model"), cfg.get("trainer") or {}


def cartpole_eval(module, seed: int, episodes: int = 20) -> float:
    from compress.rl import GymVectorEnv, evaluate_policy

    env = GymVectorEnv("CartPole-v1", num_envs=10)
    return evaluate_policy(module.act_greedy, env, episodes=episodes, seed=seed)["mean_return"]


def bandit_eval(module, seed: int, contexts: int = 8192, policy=None) -> float:
    """100 * reward earned / optimal reward over ``contexts`` fresh contexts."""
    import numpy as np

    from envs.bandit import MaskedBandit

    env = MaskedBandit(num_envs=256, seed=seed)
    obs, info = env.reset(seed=seed)
    got = best = 0.0
    for _ in range(math.ceil(contexts / env.num_envs)):
        act = (policy or module.act_greedy)(obs, info["action_mask"])
        best += float(info["optimal_reward"].sum())
        obs, rew, _, _, info = env.step(act)
        got += float(np.sum(rew))
    return 100.0 * got / best


def bandit_baselines(seed: int) -> dict:
    import numpy as np
    import torch

    from compress.rl import Branches, epsilon_greedy

    br = Branches([5] * 4)
    rng = np.random.default_rng(seed)
    rand = lambda obs, mask: epsilon_greedy(torch.zeros(len(obs), br.total), br, mask, 1.0, rng)
    holder: dict = {}

    def expert(obs, mask):  # the env's heuristic: highest rate per block among the valid candidates
        seg = obs.reshape(len(obs), 5, 5)                 # (n, user, [w, u_1..u_4])
        u = seg[:, :, 1:].transpose(0, 2, 1)              # (n, block, user)
        return np.where(mask.reshape(len(obs), 4, 5), u, -np.inf).argmax(-1)

    holder["random"] = bandit_eval(None, seed, policy=rand)
    holder["expert"] = bandit_eval(None, seed, policy=expert)
    return holder


class Curve(pl.Callback):
    """Greedy CartPole evaluation (10 episodes) every EVAL_EVERY env steps: the learning curve."""

    def __init__(self, seed: int):
        self.seed, self.next, self.points = seed, EVAL_EVERY, []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        steps = module.collector.env_steps
        if steps >= self.next:
            self.points.append((steps, cartpole_eval(module, 20_000 + self.seed, episodes=10)))
            self.next += EVAL_EVERY


def run_one(task: str, algo: str, seed: int, overrides) -> dict:
    module, tcfg = build(task, algo, seed, overrides)
    curve = Curve(seed) if task == "cartpole" else None
    trainer = pl.Trainer(max_epochs=tcfg.get("max_epochs", 1), logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                         callbacks=[curve] if curve else [])
    t0 = time.perf_counter()
    trainer.fit(module)
    seconds = time.perf_counter() - t0            # includes the curve's evaluations (< 5% of it)
    out = {"env_steps": module.collector.env_steps, "seconds": seconds,
           "train_return": module.collector.mean_return}
    if task == "cartpole":
        out["mean_return"] = cartpole_eval(module, 10_000 + seed)
        out["curve"] = curve.points
    else:
        out["pct_optimal"] = bandit_eval(module, 10_000 + seed)
    return out


def _quiet() -> None:
    """One thread per run, no Lightning chatter (in the main process and in each worker)."""
    import logging
    import warnings

    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


def mean_std(xs):
    import numpy as np

    return float(np.mean(xs)), float(np.std(xs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    ap.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="recipe overrides for every run, e.g. model.init_args.lr=0.001")
    ap.add_argument("--no-extra", action="store_true", help="skip PPO + expert JSD and the bandit baselines")
    ap.add_argument("--curves", action="store_true", help="print every seed's CartPole evaluation curve")
    ap.add_argument("--jobs", type=int, default=1, help="runs trained at a time, in worker processes")
    a = ap.parse_args(argv)
    os.chdir(ROOT)
    _quiet()
    overrides = [tuple(s.split("=", 1)) for s in a.set]

    result: dict = {t: {} for t in a.tasks}
    rows = []
    jobs = [(t, al) for t in a.tasks for al in a.algos]
    if "bandit" in a.tasks and not a.no_extra:
        jobs.append(("bandit", "ppo_jsd"))
    t_all = time.perf_counter()
    pool = None
    if a.jobs > 1:
        from compress.run.children import process_pool

        pool = process_pool(a.jobs, initializer=_quiet)     # workers end with this process
        futures = {(t, al, s): pool.submit(run_one, t, al, s, overrides) for t, al in jobs for s in a.seeds}
    for task, algo in jobs:
        runs = ([futures[task, algo, s].result() for s in a.seeds] if pool else
                [run_one(task, algo, s, overrides) for s in a.seeds])
        key = "mean_return" if task == "cartpole" else "pct_optimal"
        m, sd = mean_std([r[key] for r in runs])
        entry = {key: m}
        if task == "cartpole":
            entry.update(env_steps=int(round(mean_std([r["env_steps"] for r in runs])[0])),
                         seconds=mean_std([r["seconds"] for r in runs])[0])
        entry[f"{key}_std"] = sd
        if algo in ALGOS:
            result[task][algo] = entry
        curve = ""
        if task == "cartpole":
            pts = {}
            for r in runs:
                for steps, ret in r["curve"]:
                    pts.setdefault(round(steps, -4), []).append(ret)
            curve = " ".join(f"{k // 1000}k:{sum(v) / len(v):.0f}" for k, v in sorted(pts.items()) if k % 50_000 == 0)
            first = [next((s for s, ret in r["curve"] if ret >= 475), None) for r in runs]
            curve += "  first eval>=475 at: " + ",".join("-" if f is None else f"{f // 1000}k" for f in first)
        rows.append(f"{task:9s} {algo:8s} {key}={m:8.2f} +- {sd:6.2f}  per seed: "
                    + ", ".join(f"{r[key]:.1f}" for r in runs)
                    + f"  env_steps={runs[0]['env_steps']}  s/run={mean_std([r['seconds'] for r in runs])[0]:.1f}"
                    + f"  train-episode return={mean_std([r['train_return'] for r in runs])[0]:.2f}"
                    + (f"\n{'':19s}greedy eval curve (mean of seeds): {curve}" if curve else ""))
        print(rows[-1], flush=True)
        if a.curves and task == "cartpole":
            for seed, r in zip(a.seeds, runs):
                print(f"{'':19s}seed {seed}: " + " ".join(f"{st // 1000}k:{ret:.0f}" for st, ret in r["curve"]), flush=True)
    if pool:
        pool.shutdown()
    if "bandit" in a.tasks and not a.no_extra:
        base = [bandit_baselines(10_000 + s) for s in a.seeds]
        for k in ("random", "expert"):
            m, sd = mean_std([b[k] for b in base])
            print(f"bandit    {k:8s} pct_optimal={m:8.2f} +- {sd:6.2f}", flush=True)
    print(f"total wall time {time.perf_counter() - t_all:.0f} s (seeds {a.seeds})", flush=True)
    if a.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
