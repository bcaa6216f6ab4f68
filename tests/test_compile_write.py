"""loopc compile's writer: atomic replacement, modes, unchanged files left alone, no temporary files left."""

from __future__ import annotations

import os

import pytest

from loopc.compiler.cli.compile import MANIFEST, write_files


def test_files_get_their_modes_whatever_the_umask_and_no_temporary_file_stays(tmp_path):
    old = os.umask(0o077)
    try:
        result = write_files(tmp_path / "out", {"a/run.sh": "#!/bin/sh\n", "a/b/step.json": "{}\n"}, "local")
    finally:
        os.umask(old)
    assert result.changed == ("a/b/step.json", "a/run.sh")
    assert (tmp_path / "out/a/run.sh").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out/a/b/step.json").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == [MANIFEST, "run.sh", "step.json"]


def test_a_rewrite_replaces_only_what_changed(tmp_path):
    write_files(tmp_path, {"x.json": "1\n", "y.json": "2\n"}, "local")
    inode = (tmp_path / "x.json").stat().st_ino
    result = write_files(tmp_path, {"x.json": "1\n", "y.json": "3\n"}, "local")
    assert result.changed == ("y.json",) and (tmp_path / "x.json").stat().st_ino == inode
    assert (tmp_path / "y.json").read_text() == "3\n"


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    write_files(tmp_path, {"x.json": "old\n"}, "local")

    def refuse(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        write_files(tmp_path, {"x.json": "new\n"}, "local")
    assert (tmp_path / "x.json").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "x.json"]
