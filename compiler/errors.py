"""Errors a user can see. Every failure that reaches the CLI is a LoopcError."""

from __future__ import annotations

from dataclasses import dataclass, field


class LoopcError(Exception):
    """Root of every error loopc reports to a user (never shown with a traceback)."""


class UsageError(LoopcError):
    """The command line itself is wrong (exit code 2)."""


class InternalError(LoopcError):
    """A bug in loopc, not in the user's input: report it upstream."""


@dataclass(frozen=True, order=True)
class SpecError:
    """One problem in a spec, located at the YAML node where the user wrote it.

    Sorted by file, line, column, then code, so reports are deterministic.
    """

    file: str
    line: int
    column: int
    code: str
    spec_path: str
    message: str
    hint: str | None = field(default=None, compare=False)

    def render(self) -> str:
        """``path:line:col: LPC### spec.path: message (hint)``, one line: control characters escaped."""
        where = f"{self.file}:{self.line}:{self.column}"
        text = f"{where}: {self.code} {self.spec_path or '<root>'}: {self.message}"
        return one_line(f"{text} ({self.hint})" if self.hint else text)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters written as escapes (``\\n``, ``\\x1b``)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


class SpecErrors(LoopcError):
    """A spec failed validation; carries every error found, sorted."""

    def __init__(self, errors: list[SpecError]):
        self.errors = sorted(errors)
        super().__init__("\n".join(e.render() for e in self.errors))
