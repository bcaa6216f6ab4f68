"""Rendering helpers shared by every backend: one Jinja environment per target, safe filters.

Templates never put a spec value between hand-written quotes: every value goes
through ``pyrepr`` (a Python literal), ``shquote`` (one shell word), ``ident``
(a Python/Airflow-safe identifier) or ``cronline`` (a checked cron schedule: scrontab
cannot quote one).
"""

from __future__ import annotations

import re
import shlex
from functools import lru_cache
from importlib import metadata

import jinja2

from loopc.compiler.errors import InternalError
from loopc.compiler.spec.cron import cron_problem, normalized


@lru_cache(maxsize=1)
def loopc_version() -> str:
    """The installed loopc version (one place, used in generated headers)."""
    try:
        return metadata.version("loopc")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def pyrepr(value: object) -> str:
    """A Python literal for ``value``; strings become repr() literals, safe inside code."""
    return repr(value)


def shquote(value: object) -> str:
    """One shell word for ``value`` (shlex.quote of its str())."""
    return shlex.quote(str(value))


def ident(value: object) -> str:
    """A Python identifier derived from ``value``: non [A-Za-z0-9_] become '_', no leading digit."""
    text = re.sub(r"[^A-Za-z0-9_]", "_", str(value))
    return text if text and not text[0].isdigit() else f"_{text}"


def cronline(value: object) -> str:
    """A cron schedule as scrontab takes it (one line, single spaces); anything else is a bug upstream."""
    problem = cron_problem(str(value))
    if problem:  # backends check schedules before rendering; a plan that skipped the check is a bug
        raise InternalError(f"unchecked schedule reached a template: {problem}")
    return normalized(str(value))


@lru_cache(maxsize=None)
def environment(target: str) -> jinja2.Environment:
    """The Jinja environment for one target's templates (loopc.templates/<target>/)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("loopc.templates", target),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # package data: compiled once per process, never stat()ed again on each render
    )
    env.filters.update(pyrepr=pyrepr, shquote=shquote, ident=ident, cronline=cronline)
    return env


def render(target: str, template: str, **context: object) -> str:
    """Render one template of ``target`` with LF endings; the template sees ``context`` and nothing else.

    As ``Template.render``, but the context is handed over as is (``new_context(shared=True)``): Jinja neither
    copies it nor merges its global names (``range``, ``dict``, ... which no template here uses) into it on every
    render, a fifth of the time of a small script such as an sbatch file.
    """
    compiled = environment(target).get_template(template)
    try:
        text = compiled.environment.concat(compiled.root_render_func(compiled.new_context(context, shared=True)))
    except Exception:
        compiled.environment.handle_exception()  # re-raises with the template's lines in the traceback
    return text.replace("\r\n", "\n")
