"""loopc compile's writer: atomic replacement, modes, unchanged files left alone, no temporary files left."""

from __future__ import annotations

import json
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


def test_a_first_compile_appears_whole_and_leaves_nothing_beside_it(tmp_path):
    result = write_files(tmp_path / "out", {"p/run.sh": "#!/bin/sh\n", "p/steps/a.json": "{}\n"}, "local")
    assert result.changed == result.files == ("p/run.sh", "p/steps/a.json") and result.removed == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert json.loads((tmp_path / "out" / MANIFEST).read_text())["files"] == ["p/run.sh", "p/steps/a.json"]


def test_a_failed_first_compile_leaves_no_folder(tmp_path):
    with pytest.raises(OSError):
        write_files(tmp_path / "out", {"a": "file\n", "a/b.json": "{}\n"}, "local")  # 'a' cannot be both
    assert list(tmp_path.iterdir()) == []


def test_a_folder_made_meanwhile_by_another_compile_is_written_over(tmp_path, monkeypatch):
    import loopc.compiler.cli.compile as compile_module

    out, create = tmp_path / "out", compile_module._create_file

    def another_compile_first(path, data, mode, folders):
        if path.endswith(MANIFEST) and not out.exists():
            out.mkdir()
            write_files(out, {"old.json": "1\n"}, "local")
        create(path, data, mode, folders)

    monkeypatch.setattr(compile_module, "_create_file", another_compile_first)
    result = write_files(out, {"new.json": "2\n"}, "local")
    assert result.removed == ("old.json",) and result.changed == ("new.json",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "new.json"]
