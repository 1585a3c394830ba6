"""Writing files whole or not at all (`registry.core.files`): the one way the registry writes its
own outputs."""

from __future__ import annotations

import os

import pytest

from registry.core.files import atomic_path, write_atomic


def test_write_atomic_replaces_the_file_with_the_usual_permissions(tmp_path):
    path = tmp_path / "out" / "report.json"
    write_atomic(path, "{}")
    write_atomic(path, b'{"a": 1}')
    assert path.read_bytes() == b'{"a": 1}'
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert os.listdir(path.parent) == ["report.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "chart.png"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="writer crashed"), atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png"  # savefig reads the format
        tmp.write_bytes(b"half")
        raise RuntimeError("writer crashed")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["chart.png"]
