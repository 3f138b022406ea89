"""Teacher cache keys follow the code a recipe runs, not only the recipe text."""
import re

import yaml

from compress.distill.recipe_teacher import teacher_cache_path
from compress.distill.teacher_cache_key import class_paths, recipe_sources, sources_digest


def _package(tmp_path, monkeypatch):
    name = "srcpkg_" + re.sub(r"\W", "_", tmp_path.name)
    pkg = tmp_path / name
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "models.py").write_text("import torch\nfrom .helpers import scale\n\n"
                                   "class Net(torch.nn.Linear):\n    def late(self):\n"
                                   "        from .sub import lazy\n        return lazy\n")
    (pkg / "helpers.py").write_text("scale = 2.0\n")
    (pkg / "sub" / "lazy.py").write_text("x = 1\n")
    (pkg / "unrelated.py").write_text("y = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = {"model": {"class_path": "compress.distill.DistillationModule",
                        "init_args": {"student": {"class_path": f"{name}.models.Net",
                                                  "init_args": {"in_features": 4, "out_features": 2}}}}}
    return pkg, recipe


def test_sources_follow_project_imports_only(tmp_path, monkeypatch):
    pkg, recipe = _package(tmp_path, monkeypatch)
    assert class_paths(recipe) == ["compress.distill.DistillationModule", f"{pkg.name}.models.Net"]
    files = recipe_sources(recipe)
    local = {f.relative_to(tmp_path).as_posix() for f in files if tmp_path in f.parents}
    assert local == {f"{pkg.name}/__init__.py", f"{pkg.name}/models.py", f"{pkg.name}/helpers.py",
                     f"{pkg.name}/sub/__init__.py", f"{pkg.name}/sub/lazy.py"}
    assert any(f.name == "module.py" and f.parent.name == "distill" for f in files)   # compress.distill.module
    assert not any("site-packages" in f.parts for f in files)                        # torch is not followed


def test_teacher_cache_key_changes_with_imported_code_only(tmp_path, monkeypatch):
    pkg, recipe = _package(tmp_path, monkeypatch)
    path = tmp_path / "teacher.yaml"
    path.write_text(yaml.safe_dump(recipe))
    key = teacher_cache_path(path, tmp_path / "cache")
    assert re.fullmatch(r"teacher-[0-9a-f]{10}\.pt", key.name)
    (pkg / "unrelated.py").write_text("y = 2\n")
    assert teacher_cache_path(path, tmp_path / "cache") == key
    (pkg / "sub" / "lazy.py").write_text("x = 2\n")
    changed = teacher_cache_path(path, tmp_path / "cache")
    assert changed != key
    path.write_text(yaml.safe_dump(recipe) + "# edited\n")
    assert teacher_cache_path(path, tmp_path / "cache") not in (key, changed)
    files = recipe_sources(recipe)
    assert sources_digest(files) == sources_digest(list(files))   # deterministic


def test_a_file_that_does_not_parse_is_hashed_not_followed(tmp_path, monkeypatch):
    pkg, recipe = _package(tmp_path, monkeypatch)
    (pkg / "helpers.py").write_text("scale = (\n")
    files = recipe_sources(recipe)
    assert pkg / "helpers.py" in files
    import sys
    assert f"{pkg.name}.models" not in sys.modules      # found on disk, never executed
