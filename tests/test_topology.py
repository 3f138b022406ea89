"""KD topologies (compress.topology): the ledger's bytes are the files written at the receiver, the edge
compute is samples x FLOPs per sample (backward = 2x forward, cached teacher outputs not re-run), the
replay mix and its file, artifacts from another architecture or missing, a node without data, and one
node's step run in a separate process from the server's artifacts."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml

from compress.data.splits import ArraySplits
from compress.distill import DistillationModule, Distiller, terms
from compress.errors import UserError
from compress.models import MLP
from compress.run import save_student
from compress.topology import (ArtifactTeacher, EdgeCompute, InitFromArtifact, Ledger, Node, Plan, ReplayMix, Step,
                               WriteReplay, export_samples, read_artifact, read_replay, run_server, run_topology,
                               step_args)

ROOT = Path(__file__).resolve().parents[1]
MLP_SPEC = {"class_path": "compress.models.MLP", "init_args": {"in_features": 4, "out_features": 3, "hidden": [5]}}
MLP_FLOPS = 4 * 5 + 5 * 3        # thop: Linear = in_features * outputs, ReLU 0


class Toy(ArraySplits):
    def __init__(self, n: int = 24, batch_size: int = 8, seed: int = 0, binary: bool = False):
        super().__init__()
        self.n, self.batch_size, self.seed, self.binary = n, batch_size, seed, binary
        self.splits = None

    def setup(self, stage=None):
        if self.splits is None:
            g = torch.Generator().manual_seed(self.seed)
            x = torch.randn(self.n, 4, generator=g)
            x = (x > 0).float() if self.binary else x
            y = torch.randint(0, 3, (self.n,), generator=g)
            self.splits = {"train": (x, y), "val": (x[:8], y[:8]), "test": (x[:8], y[:8])}


def _trainer(tmp_path, callbacks, epochs=2):
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                      num_sanity_val_steps=0, callbacks=callbacks, default_root_dir=str(tmp_path))


def _artifact(tmp_path, name="student.pt", spec=MLP_SPEC, seed=0) -> Path:
    torch.manual_seed(seed)
    from compress.recipe import instantiate

    path = tmp_path / name
    save_student(instantiate(spec), spec, path)
    return path


def test_ledger_counts_the_bytes_written_at_the_receiver(tmp_path):
    src = tmp_path / "teacher.pt"
    src.write_bytes(b"x" * 1234)
    data = tmp_path / "local.pt"
    data.write_bytes(b"y" * 77)
    ledger = Ledger()
    dst = ledger.ship(src, tmp_path / "node_a" / "inbox", "teacher", "server", "a")
    assert dst.read_bytes() == src.read_bytes() and ledger.bytes_moved("a") == 1234
    assert not ledger.raw_data_left_node("a")
    ledger.ship(data, tmp_path / "server_inbox", "local data", "a", "server", raw_data=True)
    assert ledger.bytes_moved("a") == 1234 + 77 and ledger.bytes_moved() == 1311
    assert ledger.raw_data_left_node("a") and not ledger.raw_data_left_node("b")
    with pytest.raises(UserError, match="nothing.pt does not exist"):
        ledger.ship(tmp_path / "nothing.pt", tmp_path, "student", "server", "a")


def test_edge_compute_counts_samples_times_flops_and_skips_cached_teacher_passes(tmp_path):
    torch.manual_seed(0)
    teacher = ArtifactTeacher(str(_artifact(tmp_path, "teacher.pt", {**MLP_SPEC, "init_args": {**MLP_SPEC["init_args"], "hidden": [7]}})))
    module = DistillationModule(MLP(4, 3, [5]), Distiller(teacher, [terms.KL(T=2.0)], cache=True),
                                task_loss=torch.nn.CrossEntropyLoss())
    _trainer(tmp_path, [EdgeCompute(node="a")], epochs=3).fit(module, datamodule=Toy(n=24, batch_size=8))
    rec = json.loads((tmp_path / "edge_compute.json").read_text())
    s, t = rec["networks"]["student"], rec["networks"]["teacher"]
    # 3 epochs x 24 samples with grad; the set-up dry run is one batch of 8 under no_grad
    assert (s["samples_with_grad"], s["samples_no_grad"], s["flops_per_sample"]) == (72, 8, MLP_FLOPS)
    assert s["flops"] == MLP_FLOPS * (3 * 72 + 8)
    # the teacher (4-7-3: 49 FLOPs) runs once per sample: later epochs read the cache
    assert (t["samples_with_grad"], t["samples_no_grad"], t["flops_per_sample"]) == (0, 24, 4 * 7 + 7 * 3)
    assert rec["flops"] == s["flops"] + 24 * 49 and rec["backward"] == "2x forward"


def test_a_node_without_data_is_one_clear_error(tmp_path):
    module = DistillationModule(MLP(4, 3, [5]), task_loss=torch.nn.CrossEntropyLoss())
    with pytest.raises(UserError, match="node 'b'.*no training batches"):
        _trainer(tmp_path, [EdgeCompute(node="b")]).fit(module, datamodule=Toy(n=0))
    with pytest.raises(UserError, match="node 'c' has no data"):
        Node("c", None)


def test_artifacts_missing_or_from_another_architecture(tmp_path):
    path = _artifact(tmp_path)
    teacher = ArtifactTeacher(str(path), expect="compress.models.MLP")
    state, spec = read_artifact(path)
    assert spec == MLP_SPEC and torch.equal(teacher.module.net[0].weight, state["net.0.weight"])
    with pytest.raises(UserError, match=r"student.pt: artifact from another architecture: it holds compress.models.MLP"):
        ArtifactTeacher(str(path), expect="tasks.beam_tracking.BeamTeacher")
    with pytest.raises(UserError, match="artifact not found: .*missing.pt"):
        ArtifactTeacher(str(tmp_path / "missing.pt"))
    with pytest.raises(UserError, match="artifact not found: .*missing.pt"):
        InitFromArtifact(str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="junk.pt is not a loadable artifact"):
        read_artifact(tmp_path / "junk.pt")
    # fine-tuning starts from the file's weights, and refuses a file of another shape, naming file and key
    init = InitFromArtifact(str(path))
    student = MLP(4, 3, [5])
    init.setup(None, type("M", (), {"student": student})(), "fit")
    assert torch.equal(student.net[0].weight, state["net.0.weight"])
    with pytest.raises(UserError, match=r"student.pt: artifact from another architecture .*key 'net.0.weight' has shape \[5, 4\]"):
        init.setup(None, type("M", (), {"student": MLP(4, 3, [6])})(), "fit")


def test_write_replay_and_replay_mix(tmp_path):
    dm = Toy(n=24, batch_size=8, binary=True)
    path = WriteReplay(n=5, seed=1)(datamodule=dm, run_dir=tmp_path)
    x, y = read_replay(path)
    train_x, train_y = dm.splits["train"]
    assert x.dtype == torch.uint8 and x.shape == (5, 4)        # binary inputs stored exactly in one byte
    pairs = {(tuple(r.tolist()), int(c)) for r, c in zip(train_x, train_y)}
    assert all((tuple(r.float().tolist()), int(c)) in pairs for r, c in zip(x, y))   # drawn from the training set
    fx, _ = read_replay(WriteReplay(n=5, filename="f.pt")(datamodule=Toy(n=24), run_dir=tmp_path))
    assert fx.dtype == torch.float32                               # real-valued inputs are kept as they are
    mix = ReplayMix(Toy(n=24, batch_size=8, binary=True), str(path), per_batch=3)
    mix.setup("fit")
    batches = list(mix.train_dataloader())
    assert len(batches) == 3 and all(b["x"].shape == (11, 4) and b["x"].dtype == torch.float32 for b in batches)
    assert all((b["index"][8:] >= 24).all() and (b["index"][:8] < 24).all() for b in batches)
    for b in batches:   # a replay sample keeps its label and its index names it
        for xi, yi, ii in zip(b["x"][8:], b["y"][8:], b["index"][8:]):
            assert torch.equal(xi, x[ii - 24].float()) and yi == y[ii - 24]
    torch.save({"x": torch.zeros(5, 6), "y": torch.zeros(5, dtype=torch.long)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match=r"replay samples have shape \[6\].*\[4\]"):
        next(iter(ReplayMix(Toy(), str(tmp_path / "other.pt")).train_dataloader()))
    with pytest.raises(UserError, match="replay set not found: .*nope.pt"):
        ReplayMix(Toy(), str(tmp_path / "nope.pt"))


# ------------------------------------------------------------------ the beam flow, tiny
TINY = {"modality": "image", "resolution": 16, "n_sequences": 6, "batch_size": 8}
SMALL = ["--model.init_args.student.init_args.image_size=16", "--trainer.max_epochs=1",
         "--trainer.limit_train_batches=3"]
TKEY = "model.init_args.distiller.init_args.teachers.init_args.path"


def _beam(seed, cache, **scene):
    return {"class_path": "tasks.beam_tracking.BeamDataModule",
            "init_args": {**TINY, "seed": seed, "cache_dir": str(cache), "scene": scene}}


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    out = tmp_path_factory.mktemp("topo")
    r = lambda name: str(ROOT / "recipes" / f"topo_{name}.yaml")  # noqa: E731
    plan = Plan(str(out), _beam(1, out / "cache"),
                Step(r("teacher"), args=SMALL), Step(r("student"), inputs={"teacher": TKEY}, args=SMALL),
                {"decentralized": Step(r("node_kd"), inputs={"teacher": TKEY}, node_key="trainer.callbacks.0.init_args.node", args=SMALL),
                 "semi_centralized_rehearsal": Step(r("node_rehearsal"),
                                                    inputs={"student": ["trainer.callbacks.0.init_args.path",
                                                                        TKEY.replace("teachers.", "teachers.server_student.")],
                                                            "replay": "data.init_args.replay"},
                                                    data_key="data.init_args.local", args=SMALL)},
                [Node("night", _beam(2, out / "cache", lighting=0.3))],
                server_update=Step(r("server_update"), inputs={"student": "trainer.callbacks.0.init_args.path",
                                                               "teacher": TKEY, "upload": "data.init_args.replay"},
                                   data_key="data.init_args.local", args=SMALL))
    run_server(plan)
    return plan


def test_one_node_step_runs_in_its_own_process_from_the_server_artifacts(plan, tmp_path, capsys):
    arts = plan.artifacts()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "student.pt").write_bytes(arts["student"].read_bytes())   # what the server shipped
    step = Step(str(ROOT / "recipes/topo_node_finetune.yaml"), inputs={"student": "trainer.callbacks.0.init_args.path"},
                node_key="trainer.callbacks.1.init_args.node", args=SMALL)
    node = plan.nodes[0]
    args = step_args(step, tmp_path / "run", node.data, {"student": inbox / "student.pt"}, [], node.name)
    cmd = [sys.executable, "-m", "compress", "fit", step.recipe, *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    before, spec = read_artifact(inbox / "student.pt")
    after, spec_after = read_artifact(tmp_path / "run" / "student.pt")
    assert spec_after == spec
    changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert changed, "fine-tuning at the node changed no weight"
    rec = json.loads((tmp_path / "run" / "edge_compute.json").read_text())
    s = rec["networks"]["student"]
    assert rec["node"] == "night" and set(rec["networks"]) == {"student"}      # no teacher at the edge
    assert s["samples_with_grad"] == 3 * 8 and s["flops"] == s["flops_per_sample"] * (3 * 24 + s["samples_no_grad"])
    # a missing artifact, and the teacher's file where the student's is expected: one line, exit code 2
    from compress.cli import main

    for path, message in ((inbox / "gone.pt", "artifact not found: .*gone.pt"),
                          (arts["teacher"], r"teacher/student.pt: artifact from another architecture")):
        bad = [a if not a.startswith("--trainer.callbacks.0.init_args.path=") else
               f"--trainer.callbacks.0.init_args.path={path}" for a in args]
        capsys.readouterr()
        assert main(["fit", step.recipe, *bad]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and re.search(message, lines[0]), lines


def test_flows_ship_what_the_topology_says_and_count_edge_compute(plan):
    arts = plan.artifacts()
    size = {k: p.stat().st_size for k, p in arts.items()}
    ledger, deployed = run_topology(plan, "centralized", arts)
    assert ledger.bytes_moved("night") == size["student"] and ledger.edge_flops("night") == 0
    assert deployed["night"].read_bytes() == arts["student"].read_bytes()
    ledger, _ = run_topology(plan, "decentralized", arts)
    assert [t.artifact for t in ledger.transfers] == ["teacher"] and ledger.bytes_moved("night") == size["teacher"]
    dec = ledger.compute["night"][0]["networks"]
    assert dec["teacher"]["flops"] > 0 and dec["teacher"]["flops_per_sample"] > dec["student"]["flops_per_sample"]
    ledger, deployed = run_topology(plan, "semi_centralized_rehearsal", arts)
    assert ledger.bytes_moved("night") == size["student"] + size["replay"]
    assert not ledger.raw_data_left_node("night") and deployed["night"].is_file()
    reh = ledger.compute["night"][0]["networks"]
    # the distillation target is the shipped student's frozen copy: no server teacher runs at the edge
    assert set(reh) == {"student", "server_student"}
    assert reh["server_student"]["flops_per_sample"] == reh["student"]["flops_per_sample"]
    assert reh["student"]["samples_with_grad"] == 3 * (8 + 8)       # 8 local + 8 replay windows per batch
    # the data update: the node's training windows go up (raw data left the node), the re-trained student down
    ledger, deployed = run_topology(plan, "centralized_update", arts)
    up, down = ledger.transfers
    assert (up.artifact, up.sender, up.raw_data, down.artifact, down.receiver) == ("local data", "night", True, "student", "night")
    x, _ = read_replay(up.path)
    assert x.dtype == torch.uint8 and len(x) >= 8 and up.bytes == Path(up.path).stat().st_size
    assert ledger.raw_data_left_node("night") and ledger.bytes_moved("night") == up.bytes + down.bytes
    assert ledger.edge_flops("night") == 0 and deployed["night"].read_bytes() != arts["student"].read_bytes()
    torch.manual_seed(123)   # the upload does not depend on where the global generator stands
    again, _ = read_replay(export_samples(plan.nodes[0].data, Path(up.path).with_name("again.pt")))
    assert torch.equal(again, x)
    with pytest.raises(UserError, match="no node step for topology 'semi_centralized'"):
        run_topology(plan, "semi_centralized", arts)


@pytest.mark.slow
def test_bench_quick_prints_the_output_contract(tmp_path):
    done = subprocess.run([sys.executable, "tools/bench_topology.py", "--quick", "--json", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["name"] for r in out["topologies"]] == ["centralized", "decentralized", "semi_centralized",
                                                      "semi_centralized_rehearsal"]
    keys = {"name", "local_top2", "server_top2", "bytes_moved", "edge_mflops", "raw_data_left_node"}
    assert all(set(r) == keys for r in out["topologies"])
    rows = {r["name"]: r for r in out["topologies"]}
    assert rows["centralized"]["edge_mflops"] == 0 and rows["decentralized"]["edge_mflops"] > 0
    assert rows["semi_centralized"]["bytes_moved"] < rows["decentralized"]["bytes_moved"]
    assert (tmp_path / "topology.png").stat().st_size > 0
