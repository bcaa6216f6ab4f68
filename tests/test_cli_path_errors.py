"""A path the machine refuses (too long, not allowed) is the user's error with the path named, on every command;
any other OS error stays loopc's bug."""

from __future__ import annotations

import errno

import pytest

from loopc.compiler.cli import main as cli_main

LONG = "x" * 300  # one path component beyond every common file system's 255 bytes

COMMAND_LINES = [
    ["validate", LONG],
    ["run", LONG],
    ["graph", LONG],
    ["explain", LONG],
    ["inventory", LONG],
    ["status", LONG],
    ["cancel", LONG],
    ["doctor", LONG],
    ["init", LONG],
    ["schema", "--output", LONG],
    ["plan", "--base-dir", LONG],
    ["drift", LONG, LONG],
    ["registry", "verify", "--registry", LONG],
    ["registry", "list", "--state-dir", LONG],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=lambda argv: " ".join(a if a != LONG else "LONG" for a in argv))
def test_a_path_too_long_is_an_error_naming_it(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOOPC_DEBUG", raising=False)
    code = cli_main.main(list(argv))
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith(f"error: '{LONG}") or f"'{tmp_path / LONG}" in err, err
    assert "File name too long" in err and "internal error" not in err


def test_an_unwritable_folder_is_named(tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"  # raised, not made: the suite may run as root, whom no mode stops
    monkeypatch.setattr(cli_main, "build_parser", _raising(PermissionError(errno.EACCES, "Permission denied",
                                                                          str(locked / "schema"))))
    assert cli_main.main(["schema"]) == 1
    # the machine's faults read as the runtime's steps report them (runner.environment_problem)
    assert capsys.readouterr().err == (f"error: Permission denied: '{locked / 'schema'}'; free space or fix "
                                       "permissions, then run again\n")


def test_a_rename_names_both_paths():
    error = OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b")
    assert cli_main.path_error(error) == "'/a' -> '/b': Invalid cross-device link; check the path and its length"


@pytest.mark.parametrize("error", [OSError(errno.ECONNREFUSED, "Connection refused", "/run/socket"),
                                   OSError(errno.ENAMETOOLONG, "File name too long"),
                                   ValueError("bad")])
def test_other_errors_stay_internal(error, monkeypatch, capsys):
    monkeypatch.delenv("LOOPC_DEBUG", raising=False)
    monkeypatch.setattr(cli_main, "build_parser", _raising(error))
    assert cli_main.main(["schema"]) == 1
    assert capsys.readouterr().err.startswith("internal error (a bug in loopc")


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("LOOPC_DEBUG", "1")
    monkeypatch.setattr(cli_main, "build_parser", _raising(OSError(errno.ECONNREFUSED, "Connection refused")))
    with pytest.raises(OSError, match="Connection refused"):
        cli_main.main(["schema"])


def _raising(error: BaseException):
    def build_parser(argv=None):
        raise error

    return build_parser
