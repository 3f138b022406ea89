"""RecipeTeacher taps: a term names the teacher's own layer path; the wrapper's ``module.<path>`` still works."""
import pytest
import torch
import yaml

from compress.distill import Distiller, RecipeTeacher, terms
from compress.models import MLP

TEACHER = {"class_path": "compress.models.MLP", "init_args": {"in_features": 6, "out_features": 3, "hidden": [5]}}


@pytest.fixture()
def teacher(tmp_path):
    recipe = tmp_path / "teacher.yaml"
    recipe.write_text(yaml.safe_dump({"model": {"class_path": "compress.distill.DistillationModule",
                                                "init_args": {"student": TEACHER}}}))
    torch.manual_seed(0)
    net = MLP(6, 3, hidden=[5])
    torch.save(net.state_dict(), tmp_path / "t.pt")
    return RecipeTeacher(str(recipe), checkpoint=str(tmp_path / "t.pt")), net


def _tapped(teacher, path):
    """The teacher features a Feature term sees through ``teacher_tap=path``."""
    term = terms.Feature(student_tap="net.0", teacher_tap=path, connector=None)
    d = Distiller(teacher, [term])
    student = MLP(6, 3, hidden=[5])
    d.attach(student)
    x = torch.randn(4, 6)
    captured = {}
    term.loss = lambda s, t, batch=None: captured.setdefault("t", t).sum() * 0
    d(x, student(x))
    return x, captured["t"]


@pytest.mark.parametrize("path", ["net.0", "module.net.0"])
def test_tap_names_the_teachers_own_layer(teacher, path):
    wrapper, net = teacher
    x, feats = _tapped(wrapper, path)
    assert torch.allclose(feats, net.net[0](x))     # the first Linear of the trained network, by either spelling


def test_unknown_tap_names_the_path(teacher):
    with pytest.raises(ValueError, match="tap 'nope.0'"):
        _tapped(teacher[0], "nope.0")
