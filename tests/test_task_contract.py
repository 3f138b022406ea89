"""The task contract and the core's shape: a toy task built as the README says runs end to end; the
framework has no import cycle and imports no task; every recipe answers --help and --print_config."""
import ast
import json
from pathlib import Path

import pytest
import yaml

from compress.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_toy_task_runs_fit_export_evaluate_results(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    recipe = yaml.safe_load((ROOT / "tests/toy_task/recipe.yaml").read_text())
    assert recipe["model"]["class_path"] == "compress.distill.DistillationModule"  # no task subclass
    assert main(["fit", "tests/toy_task/recipe.yaml", "--allow-any-class", f"--run_dir={tmp_path}"]) == 0
    out = json.loads((tmp_path / "results.json").read_text())
    pol = out["policies"]
    assert set(pol) == {"random", "teacher", "student", "onnx", "c"}
    for art in ("onnx", "c"):  # the deployed artifacts, run by their own runtimes, act as the student does
        for sc in ("a", "b"):
            assert abs(pol[art][sc]["reward"] - pol["student"][sc]["reward"]) < 1e-3
    assert pol["teacher"]["a"]["optimal"] == 1.0
    assert pol["student"]["a"]["reward"] > pol["random"]["a"]["reward"] + 0.5
    assert out["summary"]["student_over_teacher"] == pytest.approx(pol["student"]["a"]["reward"])
    assert out["deployed"]["profile"]["latency"]["c-export"]["p50_us"] > 0
    md = (tmp_path / "results.md").read_text()
    assert "| group | random | teacher | student | onnx | c |" in md and "student_over_teacher" in md
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert rows[0] == "policy,group,metric,value" and len(rows) == 1 + 5 * 2 * 2


# ------------------------------------------------------------------------------ the core's import graph
def _module_graph():
    mods = {}
    for p in (ROOT / "compress").rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        mods[name[:-9] if name.endswith(".__init__") else name] = p
    graph, foreign = {m: set() for m in mods}, []
    for m, p in mods.items():
        is_pkg = p.name == "__init__.py"
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = m.split(".")[: len(m.split(".")) - node.level + (1 if is_pkg else 0)] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else []))
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                if t.split(".")[0] in ("tasks", "envs"):
                    foreign.append((m, t))
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and not m.startswith(t + "."):
                    graph[m].add(t)
    return graph, foreign


def _cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_compress_has_no_import_cycle_and_imports_no_task():
    graph, foreign = _module_graph()
    assert not foreign, f"compress/ imports tasks/ or envs/: {foreign}"
    assert not _cycles(graph), f"import cycles between modules: {_cycles(graph)}"
    # and none between the framework's subpackages (compress.export <-> compress.quant would be one)
    pkg = lambda m: ".".join(m.split(".")[:2])  # noqa: E731
    packages = {}
    for m, targets in graph.items():
        packages.setdefault(pkg(m), set()).update(pkg(t) for t in targets if pkg(t) != pkg(m))
    assert not _cycles(packages), f"import cycles between subpackages: {_cycles(packages)}"


def test_the_cycle_check_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]


# ------------------------------------------------------------------------------ CLI conventions
RECIPES = sorted(p.name for p in (ROOT / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_answers_help_and_print_config(name, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["fit", f"recipes/{name}", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--trainer.max_epochs" in text and "--model.init_args." in text
    assert main(["fit", "-c", f"recipes/{name}", "--print_config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"] == yaml.safe_load((ROOT / "recipes" / name).read_text())["model"]
