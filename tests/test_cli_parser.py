"""`loopc` builds only the subparser of the command it runs, and answers every command line as the full parser does."""

from __future__ import annotations

import argparse

import pytest

from loopc.compiler.cli import main as cli_main

ARGVS = [[], ["--help"], ["-h"], ["-h", "validate"], ["--help", "validate", "x"], ["nosuch"], ["nosuch", "--help"],
         ["valid"], ["validate"], ["validate", "--help"], ["--version", "validate"], ["--bogus", "validate", "x"],
         ["compile", "--help"], ["registry", "--help"], ["registry", "nosuch"], ["schema", "--bogus"],
         ["validate", "--format", "xml", "x"], ["-x"], ["--", "validate"], ["validate", "--", "--no-such-file"]]


def answer(argv: list[str], capsys) -> tuple:
    try:
        code = cli_main.main(list(argv))
    except SystemExit as exc:  # --help
        code = f"exit {exc.code}"
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("argv", ARGVS, ids=" ".join)
def test_every_command_line_is_answered_as_by_the_full_parser(argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    chosen = answer(argv, capsys)
    monkeypatch.setattr(cli_main, "_chosen_command", lambda argv: None)  # every subparser built
    assert chosen == answer(argv, capsys)


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(action.choices)


@pytest.mark.parametrize(("argv", "built"), [
    (["validate", "specs"], ["validate"]),
    (["--version", "plan", "--base", "HEAD"], ["plan"]),
    (["-h", "validate"], list(cli_main.COMMANDS)),
    (["--", "validate"], list(cli_main.COMMANDS)),
    (["nosuch"], list(cli_main.COMMANDS)),
    ([], list(cli_main.COMMANDS)),
])
def test_only_the_chosen_command_is_built(argv, built):
    assert subcommands(cli_main.build_parser(argv)) == built
    assert subcommands(cli_main.build_parser()) == list(cli_main.COMMANDS)
