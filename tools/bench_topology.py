"""KD topologies across edge nodes (issue 16, seed 002 Table I), measured on beam tracking.

A server trains the beam teacher and a distilled student on its own synthetic data set (default scene:
daytime, the two scenario-9 lanes); three edge nodes have local data of their own (``NODES``: another
draw of the server's conditions, a dark scene with more pedestrians, a far lane driven faster with
oncoming traffic), the last two absent from the server's data.  For every seed the flows of
``compress.topology`` run from the ``recipes/topo_*.yaml`` recipes: centralized (the server's student
deployed as is), decentralized (the teacher shipped, a student distilled at the node), semi-centralized
(the student shipped and fine-tuned at the node) without and with rehearsal, and, beside Table I's
four, centralized with a data update (the node uploads its local windows, the server re-distills the
student on its data mixed with them and ships it back: raw data leaves the node).  Each node's deployed
student is scored on the node's test windows (local top-2, t0..t3) and on the server's test windows
(forgetting); the ledger gives the bytes shipped (sizes of the files written at the node), the edge
training FLOPs (thop convention; backward = 2x forward) and whether raw local data left the node.

    python tools/bench_topology.py                # 3 seeds, the table and runs/bench_topology/topology.png
    python tools/bench_topology.py --json         # ... and the issue's JSON contract on the last line
    python tools/bench_topology.py --quick        # a tiny smoke run (1 seed, 1 node, tiny data)

JSON (last line): {"topologies": [{"name", "local_top2", "server_top2", "bytes_moved", "edge_mflops",
"raw_data_left_node"}, ...]}: accuracies in percent, the mean over the slots t0..t3, the nodes and the
seeds; bytes_moved and edge_mflops per node and deployment (mean over nodes and seeds); the four topologies
of Table I only (centralized_update is in the printed table and results.json).  ``--flows`` runs a subset
(``--reuse-server`` keeps the server artifacts already in ``--out``; results then go to
``results_<flows>.json`` and ``topology_<flows>.png``).  Timings printed are wall and CPU time.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from compress.topology import FLOWS, TOPOLOGIES

NODES = {
    "day": {},
    "night": {"lighting": 0.25, "distractors": 4.0},
    "far_fast": {"lanes": [[20.0, 1.0, 24]], "speed": 1.5, "opposite_traffic": 1.0},
}
RECIPES = {"teacher": "recipes/topo_teacher.yaml", "student": "recipes/topo_student.yaml",
           "decentralized": "recipes/topo_node_kd.yaml", "semi_centralized": "recipes/topo_node_finetune.yaml",
           "semi_centralized_rehearsal": "recipes/topo_node_rehearsal.yaml",
           "centralized_update": "recipes/topo_server_update.yaml"}
TEACHER_KEY = "model.init_args.distiller.init_args.teachers.init_args.path"
LWF_KEY = "model.init_args.distiller.init_args.teachers.server_student.init_args.path"
NODE_KEY = "trainer.callbacks.{}.init_args.node"


def _root() -> Path:
    return Path(__file__).resolve().parents[1]


def _data(args, seed: int, n_sequences: int, scene: dict) -> dict:
    return {"class_path": "tasks.beam_tracking.BeamDataModule",
            "init_args": {"modality": "image", "resolution": args.resolution, "seed": seed, "n_sequences": n_sequences,
                          "window_stride": args.window_stride, "batch_size": 32, "scene": dict(scene)}}


def plan_for(args, seed: int):
    from compress.topology import Node, Plan, Step

    root = _root()
    size = [f"--model.init_args.student.init_args.image_size={args.resolution}"]
    steps = {
        "teacher": Step(str(root / RECIPES["teacher"]), args=size + [f"--trainer.max_epochs={args.teacher_epochs}"]),
        "student": Step(str(root / RECIPES["student"]), inputs={"teacher": TEACHER_KEY},
                        args=size + [f"--trainer.max_epochs={args.student_epochs}"]),
        "decentralized": Step(str(root / RECIPES["decentralized"]), inputs={"teacher": TEACHER_KEY},
                              node_key=NODE_KEY.format(0), args=size + [f"--trainer.max_epochs={args.student_epochs}"]),
        "semi_centralized": Step(str(root / RECIPES["semi_centralized"]),
                                 inputs={"student": "trainer.callbacks.0.init_args.path"}, node_key=NODE_KEY.format(1),
                                 args=size + [f"--trainer.max_epochs={args.node_epochs}"]),
        "semi_centralized_rehearsal": Step(str(root / RECIPES["semi_centralized_rehearsal"]),
                                           inputs={"student": ["trainer.callbacks.0.init_args.path", LWF_KEY],
                                                   "replay": "data.init_args.replay"},
                                           data_key="data.init_args.local", node_key=NODE_KEY.format(1),
                                           args=size + [f"--trainer.max_epochs={args.node_epochs}"]),
        "centralized_update": Step(str(root / RECIPES["centralized_update"]),
                                   inputs={"student": "trainer.callbacks.0.init_args.path", "teacher": TEACHER_KEY,
                                           "upload": "data.init_args.replay"},
                                   data_key="data.init_args.local", args=size + [f"--trainer.max_epochs={args.node_epochs}"]),
    }
    nodes = [Node(name, _data(args, 2000 + 10 * seed + i, args.node_sequences, NODES[name]))
             for i, name in enumerate(args.nodes)]
    return Plan(str(Path(args.out) / f"seed{seed}"), _data(args, 1000 + seed, args.server_sequences, {}),
                steps["teacher"], steps["student"],
                {k: steps[k] for k in RECIPES if k not in ("teacher", "student", "centralized_update")},
                nodes, args=[f"--seed_everything={seed}"], server_update=steps["centralized_update"])


def _score(student_file: Path, dm) -> list[float]:
    from compress.topology import ArtifactTeacher
    from tasks.beam_tracking import evaluate

    net = ArtifactTeacher(str(student_file)).module
    return [float(v) for v in evaluate(net, datamodule=dm, ks=(2,))["top2"]]


def _by_net(records: list[dict]) -> dict:
    """Edge MFLOPs per network (student, teacher) over a node's training runs."""
    out: dict = {}
    for rec in records:
        for name, net in rec["networks"].items():
            out[name] = out.get(name, 0.0) + net["flops"] / 1e6
    return out


def run_seed(args, seed: int) -> dict:
    """All topologies for one seed: {topology: {node: row}} and the seed's timings."""
    from compress.recipe import instantiate
    from compress.topology import run_server, run_topology

    plan = plan_for(args, seed)
    clock = {}
    t0, c0 = time.time(), time.process_time()
    arts = plan.artifacts()
    if not (args.reuse_server and all(p.is_file() for p in arts.values())):
        arts = run_server(plan)
    clock["server"] = (time.time() - t0, time.process_time() - c0)
    server_dm = instantiate(plan.server_data, "server_data")
    node_dms = {n.name: instantiate(n.data, f"node {n.name}") for n in plan.nodes}
    rows = {}
    for topo in args.flows:
        t0, c0 = time.time(), time.process_time()
        ledger, deployed = run_topology(plan, topo, arts)
        clock[topo] = (time.time() - t0, time.process_time() - c0)
        rows[topo] = {}
        for node in plan.nodes:
            local = _score(deployed[node.name], node_dms[node.name])
            server = _score(deployed[node.name], server_dm)
            rows[topo][node.name] = {
                "local_top2": local, "server_top2": server,
                "bytes_moved": ledger.bytes_moved(node.name),
                "shipped": {t.artifact: t.bytes for t in ledger.transfers if t.receiver == node.name},
                "edge_mflops": ledger.edge_flops(node.name) / 1e6,
                "edge_mflops_by_net": _by_net(ledger.compute.get(node.name, [])),
                "raw_data_left_node": ledger.raw_data_left_node(node.name)}
            print(f"[bench_topology] seed {seed} {topo:27s} {node.name:9s} local top-2 "
                  + "/".join(f"{v:5.1f}" for v in local) + "  server " + "/".join(f"{v:5.1f}" for v in server)
                  + f"  {rows[topo][node.name]['bytes_moved']:>10,} B  {rows[topo][node.name]['edge_mflops']:>12,.0f} MFLOPs",
                  flush=True)
    windows = {"server_train": len(server_dm.train_set), "server_test": len(server_dm.test_set),
               **{f"{k}_train": len(v.train_set) for k, v in node_dms.items()},
               **{f"{k}_test": len(v.test_set) for k, v in node_dms.items()}}
    return {"rows": rows, "clock": clock, "windows": windows}


def summarize(seeds: list[dict]) -> list[dict]:
    out = []
    for topo in seeds[0]["rows"]:
        cells = [r for s in seeds for r in s["rows"][topo].values()]
        out.append({"name": topo,
                    "local_top2": round(float(np.mean([np.mean(c["local_top2"]) for c in cells])), 2),
                    "server_top2": round(float(np.mean([np.mean(c["server_top2"]) for c in cells])), 2),
                    "bytes_moved": int(round(np.mean([c["bytes_moved"] for c in cells]))),
                    "edge_mflops": round(float(np.mean([c["edge_mflops"] for c in cells])), 1),
                    "raw_data_left_node": any(c["raw_data_left_node"] for c in cells)})
    return out


def per_node(seeds: list[dict], topo: str, node: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over the seeds of a node's per-slot accuracies."""
    vals = np.array([s["rows"][topo][node][key] for s in seeds])
    return vals.mean(0), vals.std(0)


def print_table(seeds: list[dict], nodes: list[str], summary: list[dict]) -> None:
    print(f"\nper node, mean +- std over {len(seeds)} seed(s); top-2 % t0/t1/t2/t3")
    for node in nodes:
        print(f"  node {node}")
        for topo in seeds[0]["rows"]:
            lm, ls = per_node(seeds, topo, node, "local_top2")
            sm, ss = per_node(seeds, topo, node, "server_top2")
            cell = seeds[0]["rows"][topo][node]
            print(f"    {topo:27s} local " + "/".join(f"{m:4.1f}" for m in lm) + f" (mean {lm.mean():4.1f} +- {ls.mean():3.1f})"
                  + "  server " + "/".join(f"{m:4.1f}" for m in sm) + f" (mean {sm.mean():4.1f})"
                  + f"  shipped {cell['shipped']}  edge {cell['edge_mflops']:,.0f} MFLOPs "
                  + str({k: round(v) for k, v in cell.get("edge_mflops_by_net", {}).items()}))
    print("\nTable I with numbers (means over nodes and seeds; bytes and MFLOPs per node)")
    print(f"  {'topology':27s} {'local top-2':>11s} {'server top-2':>12s} {'bytes moved':>12s} {'edge MFLOPs':>13s}  raw data left node")
    for r in summary:
        print(f"  {r['name']:27s} {r['local_top2']:11.2f} {r['server_top2']:12.2f} {r['bytes_moved']:12,d} "
              f"{r['edge_mflops']:13,.1f}  {r['raw_data_left_node']}")


def plot(summary: list[dict], seeds: list[dict], nodes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in summary]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    width = 0.8 / len(nodes)
    for k, key in enumerate(("local_top2", "server_top2")):
        ax = axes[k]
        for j, node in enumerate(nodes):
            means = [per_node(seeds, t, node, key)[0].mean() for t in names]
            ax.bar(np.arange(len(names)) + (j - (len(nodes) - 1) / 2) * width, means, width, label=node)
        ax.set_title({"local_top2": "local top-2 % (mean t0..t3)", "server_top2": "server-data top-2 % (forgetting)"}[key])
        ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=7)
        ax.legend(fontsize=7, loc="lower left")
    for ax, key, title, scale in ((axes[2], "bytes_moved", "MB moved server <-> node", 1e-6),
                                  (axes[3], "edge_mflops", "edge training GFLOPs per node (bwd = 2x fwd)", 1e-3)):
        vals = [r[key] * scale for r in summary]
        bars = ax.bar(range(len(names)), vals, color="gray")
        ax.bar_label(bars, labels=[f"{v:.2f}" if v < 10 else f"{v:.0f}" for v in vals], fontsize=8)
        ax.set_title(title)
        ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--nodes", nargs="+", default=list(NODES), choices=list(NODES))
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--server-sequences", type=int, default=60)
    p.add_argument("--node-sequences", type=int, default=30)
    p.add_argument("--window-stride", type=int, default=1)
    p.add_argument("--teacher-epochs", type=int, default=8)
    p.add_argument("--student-epochs", type=int, default=6)
    p.add_argument("--node-epochs", type=int, default=4)
    p.add_argument("--out", default="runs/bench_topology")
    p.add_argument("--flows", nargs="+", default=list(FLOWS), choices=list(FLOWS),
                   help="the topologies to run (default: all four and centralized_update)")
    p.add_argument("--reuse-server", action="store_true", help="keep the server artifacts already in --out")
    p.add_argument("--quick", action="store_true", help="1 seed, 1 node, 16 px, few sequences, 1 epoch")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    tag = "" if set(args.flows) == set(FLOWS) else "_" + "-".join(args.flows)
    if args.quick:
        args.seeds, args.nodes, args.resolution = args.seeds[:1], args.nodes[1:2], 16
        args.server_sequences, args.node_sequences = 8, 8
        args.teacher_epochs = args.student_epochs = args.node_epochs = 1
    import torch

    torch.set_num_threads(1)
    t0, c0 = time.time(), time.process_time()
    seeds = [run_seed(args, s) for s in args.seeds]
    summary = summarize(seeds)
    print(f"\nwindows (seed {args.seeds[0]}): {seeds[0]['windows']}")
    print_table(seeds, args.nodes, summary)
    plot(summary, seeds, args.nodes, Path(args.out) / f"topology{tag}.png")
    wall, cpu = time.time() - t0, time.process_time() - c0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    clock = {k: [round(sum(s["clock"][k][i] for s in seeds), 1) for i in (0, 1)] for k in seeds[0]["clock"]}
    print(f"\nwall {wall / 60:.1f} min, CPU {cpu / 60:.1f} min (+ children {(ru.ru_utime + ru.ru_stime) / 60:.1f} min); "
          f"per part [wall s, CPU s] summed over seeds: {clock}")
    print(f"bar chart: {Path(args.out) / f'topology{tag}.png'}")
    result = {"topologies": [r for r in summary if r["name"] in TOPOLOGIES]}
    full = {"args": vars(args), "summary": summary, "seeds": seeds, "wall_s": wall, "cpu_s": cpu}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"results{tag}.json").write_text(json.dumps(full, indent=1, default=str))
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
