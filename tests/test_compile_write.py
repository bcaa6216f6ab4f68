"""loopc compile's writer: atomic replacement, modes, unchanged files left alone, no temporary files left."""

from __future__ import annotations

import json
import os
from pathlib import PurePosixPath

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from loopc.compiler.cli.compile import _PLAIN_RELATIVE, MANIFEST, write_files
from loopc.compiler.errors import LoopcError


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

    def another_compile_first(path, data, mode, folders, chmod):
        if path.endswith(MANIFEST) and not out.exists():
            out.mkdir()
            write_files(out, {"old.json": "1\n"}, "local")
        create(path, data, mode, folders, chmod)

    monkeypatch.setattr(compile_module, "_create_file", another_compile_first)
    result = write_files(out, {"new.json": "2\n"}, "local")
    assert result.removed == ("old.json",) and result.changed == ("new.json",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "new.json"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077, 0o027])
@pytest.mark.parametrize("first", [True, False], ids=["first-compile", "over-a-folder"])
def test_modes_are_set_again_only_where_the_umask_narrows_them(tmp_path, monkeypatch, umask, first):
    out = tmp_path / "out"
    if not first:
        write_files(out, {"old.json": "1\n"}, "local")
    fixed: list[int] = []
    fchmod = os.fchmod
    monkeypatch.setattr(os, "fchmod", lambda fd, mode: fixed.append(mode) or fchmod(fd, mode))
    old = os.umask(umask)
    try:
        write_files(out, {"a/run.sh": "#!/bin/sh\n", "a/step.json": "{}\n"}, "local")
    finally:
        os.umask(old)
    assert (out / "a/run.sh").stat().st_mode & 0o777 == 0o755
    assert (out / "a/step.json").stat().st_mode & 0o777 == 0o644
    assert sorted(set(fixed)) == sorted(m for m in (0o644, 0o755) if m & ~umask != m)


def test_the_umask_is_read_without_changing_it(monkeypatch):
    from loopc.compiler.cli.compile import _umask

    old = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda mask: pytest.fail("the umask was set"))
        assert _umask() == 0o027
    finally:
        monkeypatch.undo()
        os.umask(old)


@pytest.mark.parametrize(("before", "mode"), [
    ("{}\n", 0o600),  # the same bytes, another mode
    ("[]\n", 0o644),  # the same size, other bytes
    ("{}\n\n", 0o644),  # longer
    ("{", 0o644),  # shorter
])
def test_a_file_differing_in_bytes_size_or_mode_is_replaced(tmp_path, before, mode):
    write_files(tmp_path, {"x.json": "{}\n", "y.json": "1\n"}, "local")
    (tmp_path / "x.json").write_text(before)
    (tmp_path / "x.json").chmod(mode)
    result = write_files(tmp_path, {"x.json": "{}\n", "y.json": "1\n"}, "local")
    assert result.changed == ("x.json",)
    assert (tmp_path / "x.json").read_text() == "{}\n" and (tmp_path / "x.json").stat().st_mode & 0o777 == 0o644


def test_a_folder_where_a_file_belongs_is_an_error_not_a_match(tmp_path):
    write_files(tmp_path, {"x.json": "{}\n"}, "local")
    (tmp_path / "x.json").unlink()
    (tmp_path / "x.json").mkdir()
    with pytest.raises(OSError):
        write_files(tmp_path, {"x.json": "{}\n"}, "local")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", ["/abs.json", "../up.json", "a/../../b", "", ".", "./", "a/..", MANIFEST])
def test_a_file_name_outside_the_output_folder_is_refused_and_nothing_is_written(tmp_path, name):
    with pytest.raises(LoopcError, match="not a relative path inside the output folder"):
        write_files(tmp_path / "out", {"ok.json": "{}\n", name: "{}\n"}, "local")
    assert not (tmp_path / "out").exists()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab1_.-/", min_size=1, max_size=12))
def test_names_the_fast_check_takes_are_relative_paths_inside_the_folder(name):
    assume(_PLAIN_RELATIVE.fullmatch(name))
    path = PurePosixPath(name)
    assert not path.is_absolute() and ".." not in path.parts and path.parts and name != MANIFEST
    assert "/".join(path.parts) == name  # no '.' or empty part that the path would drop
