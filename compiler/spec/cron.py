"""Cron schedules every target accepts: Airflow (croniter) and Slurm's scrontab.

A schedule is one line: a macro (``@hourly`` ... ``@yearly``; ``@once`` only where allowed) or five
fields (minute hour day-of-month month day-of-week). Each field is a comma list of ``*``, ``N``,
``N-M``, each optionally ``/STEP``; months and weekdays also take three-letter names (JAN, MON).
Anything else, including control characters and extra lines, is refused: the text is written
verbatim into scheduler files (``schedule.scrontab``), where it cannot be quoted.
"""

from __future__ import annotations

import re

MACROS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, lowest, highest, names starting at lowest)
_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_ITEM = re.compile(r"^(?:(\*)|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:/([0-9]+))?$")
CRON_HINT = "write five fields such as '0 3 * * 1' (minute hour day month weekday) or " + ", ".join(MACROS)


def cron_problem(value: str, allow_once: bool = False) -> str | None:
    """Why ``value`` is not a one-line cron schedule every target accepts; None when it is one."""
    if value.startswith("@"):
        allowed = (*MACROS, "@once") if allow_once else MACROS
        return None if value in allowed else f"unknown schedule macro {value!r}; use one of {', '.join(allowed)}"
    if not value.isprintable() or not value.isascii():  # a tab or line break is not printable
        return f"schedule {value!r} has characters a cron line cannot carry (line breaks, control or non-ASCII)"
    fields = value.split()
    if len(fields) != 5:
        return f"schedule {value!r} has {len(fields)} fields; a cron expression has 5"
    for text, (name, low, high, names) in zip(fields, _FIELDS):
        problem = _field_problem(text, name, low, high, names)
        if problem:
            return f"schedule {value!r}: {problem}"
    return None


def normalized(value: str) -> str:
    """A valid schedule with single spaces between its fields (the form written into scheduler files)."""
    return " ".join(value.split())


def _field_problem(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            return f"{name} field {text!r} is not '*', N, N-M or a comma list of those (each may end in /STEP)"
        star, first, last, step = match.groups()
        if step is not None and not 1 <= int(step) <= high:
            return f"{name} step '/{step}' must be between 1 and {high}"
        if star:
            continue
        numbers = [_number(part, low, names) for part in (first, last) if part is not None]
        if any(n is None or not low <= n <= high for n in numbers):
            return f"{name} field {text!r} must stay within {low}-{high}" + (
                f" (or names {names[0]}-{names[-1]})" if names else "")
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            return f"{name} range {item!r} runs backwards"
    return None


def _number(part: str, low: int, names: tuple[str, ...]) -> int | None:
    if part.isdigit():
        return int(part)
    upper = part.upper()
    return names.index(upper) + low if upper in names else None
