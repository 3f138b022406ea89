"""Atomic writes: the content lands whole, with the permissions open() would give, and nothing is left over."""
import os

from compress.atomic import atomic_write_text


def test_atomic_write_has_normal_permissions_and_no_leftovers(tmp_path):
    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "sub" / "results.json", "{}\n")
    finally:
        os.umask(mask)
    assert path.read_text() == "{}\n"
    assert path.stat().st_mode & 0o777 == 0o644        # not mkstemp's 0600
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]
