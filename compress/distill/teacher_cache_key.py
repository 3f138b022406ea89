"""Which project source files a recipe's classes depend on, and a digest of them.

A cached artifact (a teacher trained by its own recipe) is stale when its recipe changes *or* when
the code that recipe runs changes (a simulator in ``envs/``, a task's data module).  ``recipe_sources``
collects every ``class_path`` in a recipe, finds the modules they live in, and follows their
imports (read from the source with ``ast``, never executed, including imports inside functions)
through the files of the same project.  Installed third-party packages (site-packages) and the
standard library are not followed: their versions are not part of the key.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import sysconfig
from pathlib import Path
from typing import Any, Iterable

from ..recipe import iter_specs

__all__ = ["class_paths", "recipe_sources", "sources_digest"]

_NOT_PROJECT = tuple(str(Path(p).resolve()) for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
                                                      sysconfig.get_paths()["platlib"]})


def class_paths(recipe: Any) -> list[str]:
    """Every ``class_path`` string in a parsed recipe, parents first."""
    return [spec["class_path"] for _, spec in iter_specs(recipe) if isinstance(spec["class_path"], str)]


def _with_parents(names: Iterable[str]) -> set[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c`` (importing a module runs its parent packages too)."""
    out = set()
    for n in names:
        parts = n.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def _origin(name: str) -> Path | None:
    """The project source file of module ``name``, found on disk without importing (executing) anything;
    None for third-party or standard-library modules and for names that are not modules."""
    top, *rest = name.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    path = Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    dirs = list(spec.submodule_search_locations or [])
    for part in rest:
        for d in dirs:
            if (Path(d) / part / "__init__.py").is_file():
                path, dirs = Path(d) / part / "__init__.py", [str(Path(d) / part)]
                break
            if (Path(d) / f"{part}.py").is_file():
                path, dirs = Path(d) / f"{part}.py", []
                break
        else:
            return None   # not a module (a class or function in one)
    if path is None:
        return None
    path = path.resolve()
    if str(path).startswith(_NOT_PROJECT) or "site-packages" in path.parts or "dist-packages" in path.parts:
        return None
    return path


def _imports(path: Path, module: str) -> set[str]:
    """Module names imported anywhere in ``path`` (the file of ``module``), with their parent packages."""
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    names: set[str] = set()
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError):   # still hashed; importing it later reports the error properly
        return names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:   # relative: level 1 is this package, each further level one package up
                parts = package.split(".") if package else []
                base = ".".join(p for p in (*parts[:len(parts) - node.level + 1], base) if p)
            if base:
                names.add(base)
                names.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return _with_parents(names)


def recipe_sources(recipe: Any) -> list[Path]:
    """Project source files (sorted) that the classes named in ``recipe`` import, directly or not."""
    todo = _with_parents(cp.rpartition(".")[0] for cp in class_paths(recipe))
    seen: dict[str, Path | None] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = path = _origin(name)
        if path is not None:
            todo.update(n for n in _imports(path, name) if n not in seen)
    return sorted({p for p in seen.values() if p is not None})


def sources_digest(files: Iterable[Path], extra: bytes = b"") -> str:
    """sha1 over ``extra`` and each file's project-relative name and bytes."""
    h = hashlib.sha1(extra)
    for f in files:
        h.update(_relative(f).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _relative(f: Path) -> str:
    """The file's dotted-path-like name from its top-level package, so the key is the same in any clone."""
    parts = [f.name]
    d = f.parent
    while (d / "__init__.py").is_file():
        parts.append(d.name)
        d = d.parent
    return "/".join(reversed(parts))
