"""The ``loopc`` command line: parse arguments, dispatch to a command, turn errors into exit codes.

Exit codes: 0 success, 1 the input is invalid or the work failed, 2 usage error,
130 interrupted. No traceback reaches the user unless LOOPC_DEBUG=1.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from typing import Iterable

from loopc.compiler.errors import InternalError, LoopcError, UsageError

# Command name -> module in loopc.compiler.cli exposing add_arguments(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("validate", "check specs and report every error with file:line:col"),
    "schema": ("schema", "write the JSON Schema of the spec language"),
    "init": ("init", "scaffold a runnable example project"),
    "compile": ("compile", "compile a spec to files for a target (local, airflow, slurm)"),
    "run": ("run", "run the whole loop here with the local executor"),
    "graph": ("graph", "print the plan as Mermaid or DOT"),
    "explain": ("explain", "say which steps would run and which input changed"),
    "plan": ("plan", "what changed against a git revision, per pipeline: retrain, re-gate, ..."),
    "registry": ("registry", "list, show, verify, migrate, promote and roll back model versions"),
    "doctor": ("doctor", "on a worker: store writable, registry reachable and migrated, versions as compiled"),
    "predict": ("predict", "score Parquet rows with a registered model (champion, alias or version)"),
    "export": ("export", "write a model bundle a service loads with JAX alone"),
    "drift": ("drift", "compare two Parquet datasets (or a reference profile) with the drift engine"),
    "inventory": ("inventory", "every model in a spec tree: owner, risk class, data, status"),
    "status": ("status", "state of a pipeline submitted to Slurm"),
    "cancel": ("cancel", "cancel a pipeline submitted to Slurm"),
}


# OS errors about a path named on the command line (the machine's own faults, a full disk or a denied write,
# are the runtime's environment_problem): reported as the user's errors
PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EEXIST,
                         errno.EBUSY, errno.EXDEV, errno.ENOTEMPTY})


def path_error(exc: OSError) -> str | None:
    """The message for an OS error the user can fix (the machine's, or one about a path), or None for any other."""
    from loopc.runtime.execution.runner import environment_problem

    machine = environment_problem(exc)
    if machine is not None or exc.errno not in PATH_ERRNOS or exc.filename is None:
        return machine
    other = f" -> '{exc.filename2}'" if exc.filename2 is not None else ""
    return f"'{exc.filename}'{other}: {exc.strerror}; check the path and its length"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit 2 itself; keep the exit in one place
        raise UsageError(f"{self.prog}: {message}")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given ``argv`` naming a command, only that command's subparser is built and only its module
    imported (start-up time). Help before the command, ``--`` or no known command builds them all."""
    parser = _Parser(prog="loopc", description="Compile ML operations loops from YAML specs.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    chosen = _chosen_command(argv or ())
    for name, (module, help_text) in COMMANDS.items():
        if chosen is not None and name != chosen:
            continue
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        command = importlib.import_module(f"loopc.compiler.cli.{module}")
        command.add_arguments(command_parser)
        command_parser.set_defaults(handler=command.run)
    return parser


def _chosen_command(argv: Iterable[str]) -> str | None:
    """The command ``argv`` runs, if parsing it needs no other command's parser (None: build them all)."""
    for arg in argv:
        if arg in ("-h", "--help", "--"):  # the top-level help, or argparse's '--' handling, lists every command
            return None
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``loopc`` console script."""
    try:
        argv = sys.argv[1:] if argv is None else argv
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if args.version:
            from loopc.compiler.targets.jinja import loopc_version

            print(f"loopc {loopc_version()}")
            return 0
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        return int(args.handler(args) or 0)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except InternalError as exc:
        print(f"internal error (a bug in loopc, please report it): {exc}", file=sys.stderr)
        return 1
    except LoopcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `loopc ... | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        message = path_error(exc)
        if message is None:
            return _internal(exc)
        print(f"error: {message}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback for users
        return _internal(exc)


def _internal(exc: BaseException) -> int:
    """Report an unexpected exception as loopc's bug (its traceback with LOOPC_DEBUG=1)."""
    if os.environ.get("LOOPC_DEBUG"):
        raise exc
    print(f"internal error (a bug in loopc, please report it; LOOPC_DEBUG=1 shows the traceback): "
          f"{type(exc).__name__}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
