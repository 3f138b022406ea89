"""The three KD topologies of seed 002 (section III-B, Fig. 3, Table I) as compositions of recipe runs.

A ``Plan`` names a server data module, N edge ``Node``s (each with its own local data module spec) and
one recipe ``Step`` per job.  Every step is an ordinary ``python -m compress fit RECIPE`` run (called here
through ``compress.cli.run_recipe``) whose inputs are artifact files written by an earlier step, handed in
as recipe overrides (``Step.inputs``: artifact name -> the dotted recipe key(s) of its path), so each can run as its own job
on its own machine.

Server (once): ``teacher`` (trained on the server's data -> ``server/teacher/student.pt``), ``student``
(distilled from that teacher on the server's data -> ``server/student/student.pt``, and the replay set
``server/student/replay.pt`` written by its ``WriteReplay`` hook).

Per topology and node (what the server ships, ``Ledger.ship``; then the node's own step):

* ``centralized``: the student; the node only runs it (no training at the edge);
* ``decentralized``: the teacher; the node distills a fresh student from it on its local data (the
  teacher runs at the edge);
* ``semi_centralized``: the student; the node fine-tunes it on its local labelled data;
* ``semi_centralized_rehearsal``: the student and the replay set; fine-tuning on local data mixed with
  replay samples, plus a distillation term towards the shipped student's outputs (no teacher at the edge).

Nothing moves from a node to the server in these flows, so no raw local data leaves a node.  Table I's
remedy for centralized distillation's stale data, a data update, is the extra flow ``centralized_update``:
the node uploads its local training samples as the network reads them (``raw_data=True`` in the ledger;
overlapping windows repeat frames, so this bounds the raw frames' size from above), the server runs its
``server_update`` step (the student re-distilled on its own data mixed with the upload) and ships the
updated student back; its compute is the server's, not the edge's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import UserError
from .ledger import Ledger

__all__ = ["Step", "Node", "Plan", "TOPOLOGIES", "FLOWS", "run_step", "run_server", "run_topology", "export_samples"]

#: what the server ships to each node, per topology
TOPOLOGIES = {
    "centralized": ("student",),
    "decentralized": ("teacher",),
    "semi_centralized": ("student",),
    "semi_centralized_rehearsal": ("student", "replay"),
}
#: the topologies and the extra flow with a data update (see the module doc)
FLOWS = (*TOPOLOGIES, "centralized_update")


@dataclass
class Step:
    recipe: str
    inputs: dict[str, str | list[str]] = field(default_factory=dict)   # artifact name -> dotted recipe key(s)
    data_key: str = "data"                                 # where the step's data module spec goes
    node_key: str | None = None                            # where the node's name goes (EdgeCompute's node)
    args: list[str] = field(default_factory=list)          # more overrides ("--trainer.max_epochs=2")

    def __post_init__(self):
        if not Path(self.recipe).is_file():
            raise UserError(f"step recipe not found: {self.recipe}")


@dataclass
class Node:
    name: str
    data: dict

    def __post_init__(self):
        if not self.name or "/" in self.name:
            raise UserError(f"node name must be a non-empty name without '/', got {self.name!r}")
        if not isinstance(self.data, dict) or "class_path" not in self.data:
            raise UserError(f"node '{self.name}' has no data: give its local data module spec "
                            "({class_path: ..., init_args: ...})")


@dataclass
class Plan:
    out: str
    server_data: dict
    teacher: Step
    student: Step
    node_steps: dict[str, Step]
    nodes: list[Node]
    args: list[str] = field(default_factory=list)   # overrides for every step (e.g. the seed)
    server_update: Step | None = None               # centralized_update: the server's re-training step

    def __post_init__(self):
        if not self.nodes:
            raise UserError("a plan needs at least one edge node")
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names) or "server" in names:
            raise UserError(f"node names must be unique and not 'server', got {names}")
        unknown = sorted(set(self.node_steps) - set(TOPOLOGIES))
        if unknown:
            raise UserError(f"node_steps: unknown topology {', '.join(unknown)} (topologies: {', '.join(TOPOLOGIES)})")

    @property
    def server_dir(self) -> Path:
        return Path(self.out) / "server"

    def artifacts(self) -> dict[str, Path]:
        return {"teacher": self.server_dir / "teacher" / "student.pt",
                "student": self.server_dir / "student" / "student.pt",
                "replay": self.server_dir / "student" / "replay.pt"}


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10 ** 6).strip().removesuffix("...").strip()


def step_args(step: Step, run_dir: Path, data: dict, inputs: dict[str, Path], common: list[str],
              node: str | None = None) -> list[str]:
    """The command-line overrides of one step (also what a separate job would be given)."""
    missing = sorted(set(step.inputs) - set(inputs))
    if missing:
        raise UserError(f"{step.recipe}: needs the artifact(s) {', '.join(missing)}, which this flow does not provide")
    args = [f"--{step.data_key}={_flow(data)}"]
    for name, keys in step.inputs.items():
        args += [f"--{key}={_flow(str(inputs[name]))}" for key in ([keys] if isinstance(keys, str) else keys)]
    if step.node_key and node:
        args.append(f"--{step.node_key}={_flow(node)}")
    return args + list(common) + list(step.args) + [f"--run_dir={run_dir}", "--fresh"]


def run_step(step: Step, run_dir: Path, data: dict, inputs: dict[str, Path], common: list[str],
             node: str | None = None):
    from ..cli import run_recipe

    for name in step.inputs:
        if name in inputs and not Path(inputs[name]).is_file():
            raise UserError(f"{step.recipe}: artifact '{name}' not found: {inputs[name]}")
    return run_recipe("fit", step.recipe, step_args(step, run_dir, data, inputs, common, node))


def run_server(plan: Plan) -> dict[str, Path]:
    """Train the server's teacher, then its student (which also writes the replay set)."""
    arts = plan.artifacts()
    run_step(plan.teacher, arts["teacher"].parent, plan.server_data, {}, plan.args)
    run_step(plan.student, arts["student"].parent, plan.server_data, {"teacher": arts["teacher"]}, plan.args)
    for name, path in arts.items():
        if not path.is_file():
            raise UserError(f"the server step did not write its {name} artifact {path}")
    return arts


def export_samples(data: dict, path: Path, seed: int = 0) -> Path:
    """All training samples of a data module spec, written as a replay-format file (a node's data upload).
    The loader's shuffle (and so which samples an incomplete last batch drops) is drawn from ``seed``, not
    from wherever the global generator stands, so the upload is the same in every run."""
    import torch

    from ..recipe import instantiate
    from .replay import WriteReplay

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dm = instantiate(data, "data")
        dm.setup("fit")
        return WriteReplay(n=None, seed=seed, filename=Path(path).name)(datamodule=dm, run_dir=Path(path).parent)


def _update(plan: Plan, ledger: Ledger, node: Node, base: Path, artifacts: dict[str, Path]) -> Path:
    upload = export_samples(node.data, base / "outbox" / "local_data.pt")              # at the node
    received = ledger.ship(upload, base / "server_inbox", "local data", node.name, "server", raw_data=True)
    run_dir = base / "server_run"                                                       # at the server
    run_step(plan.server_update, run_dir, plan.server_data, {**artifacts, "upload": received}, plan.args)
    return ledger.ship(run_dir / "student.pt", base / "inbox", "student", "server", node.name)


def run_topology(plan: Plan, name: str, artifacts: dict[str, Path] | None = None) -> tuple[Ledger, dict[str, Path]]:
    """Ship what ``name`` ships to every node and run the node's step; returns the ledger and, per node,
    the deployed student file."""
    if name not in FLOWS:
        raise UserError(f"unknown topology '{name}' (topologies: {', '.join(FLOWS)})")
    if name == "centralized_update" and plan.server_update is None:
        raise UserError("topology 'centralized_update' needs the plan's server_update step")
    if name not in ("centralized", "centralized_update") and name not in plan.node_steps:
        raise UserError(f"plan has no node step for topology '{name}'")
    artifacts = artifacts or plan.artifacts()
    ledger, deployed = Ledger(), {}
    for node in plan.nodes:
        base = Path(plan.out) / name / node.name
        if name == "centralized_update":
            deployed[node.name] = _update(plan, ledger, node, base, artifacts)
            ledger.compute[node.name] = []
            continue
        shipped = {a: ledger.ship(artifacts[a], base / "inbox", a, "server", node.name, name=f"{a}.pt")
                   for a in TOPOLOGIES[name]}
        if name == "centralized":
            deployed[node.name] = shipped["student"]
            ledger.compute[node.name] = []
            continue
        run_dir = base / "run"
        run_step(plan.node_steps[name], run_dir, node.data, shipped, plan.args, node.name)
        ledger.add_compute(node.name, run_dir, name)
        deployed[node.name] = run_dir / "student.pt"
    return ledger, deployed
