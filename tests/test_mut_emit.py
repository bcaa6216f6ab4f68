"""The emit filters as their specification: whatever a spec value holds, pyrepr gives the Python literal that
evaluates back to it, shquote the one word a real shell reads back, ident a Python identifier, cronline a
checked one-line schedule; the Jinja environment is strict, unescaped and keeps the template's layout.
"""

from __future__ import annotations

import ast
import re
import subprocess
from importlib import metadata

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopc.compiler.errors import InternalError
from loopc.compiler.targets.jinja import cronline, environment, ident, loopc_version, pyrepr, shquote

HOSTILE = ["", "plain", "it's", 'say "hi"', "a\nb", "back\\slash", "$(rm -rf /)", "`x`", "tab\there", "日本",
           "'; import os; os.system('x') #", "-n"]  # fmt: skip
# a spec's numbers are finite (the spec check refuses .inf and .nan with LPC105 before anything is emitted)
SCALARS = st.one_of(st.text(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                    st.none())  # fmt: skip


@given(st.recursive(SCALARS, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=10))
@settings(max_examples=200, deadline=None)
def test_pyrepr_is_a_python_literal_of_the_value(value):
    assert ast.literal_eval(pyrepr(value)) == value


@pytest.mark.parametrize("value", HOSTILE)
def test_pyrepr_of_a_hostile_string_is_one_string_literal(value):
    tree = ast.parse(pyrepr(value), mode="eval")
    assert isinstance(tree.body, ast.Constant) and tree.body.value == value


def test_shquote_gives_one_word_that_bash_reads_back_unchanged():
    values = [*HOSTILE, 42, 1.5, None]
    script = "".join(f"printf '%s\\0' {shquote(v)}\n" for v in values)
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout.decode("utf-8")
    assert out.split("\0")[:-1] == [str(v) for v in values]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")))
@settings(max_examples=200, deadline=None)
def test_shquote_is_one_shlex_word(value):
    import shlex

    assert shlex.split(shquote(value)) == [value]


@pytest.mark.parametrize(("value", "expected"), [
    ("train.churn", "train_churn"), ("1st", "_1st"), ("", "_"), ("a-b c", "a_b_c"), ("é", "_"), ("ok_9", "ok_9"),
    (7, "_7"), ("__x", "__x"),
])  # fmt: skip
def test_ident_maps_everything_else_to_underscores_and_never_starts_with_a_digit(value, expected):
    assert ident(value) == expected


@given(st.text())
def test_ident_is_always_an_identifier(value):
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ident(value))


def test_cronline_normalises_a_valid_schedule_and_refuses_an_unchecked_one():
    assert cronline("0  5 *   * 1") == "0 5 * * 1"
    assert cronline("@daily") == "@daily"
    with pytest.raises(InternalError, match="unchecked schedule reached a template: .*line breaks"):
        cronline("0 5 * * *\n* * * * * evil")


def test_the_version_in_generated_headers_is_the_installed_distributions():
    assert loopc_version() == metadata.version("loopc")


def test_the_environment_is_strict_unescaped_and_keeps_layout():
    env = environment("local")
    assert environment("local") is env and environment("slurm") is not env
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()
    assert env.from_string("{{ v }}").render(v="<a & 'b'>") == "<a & 'b'>"
    text = "a\n  {% if x %}\nyes\n  {% endif %}\nend\n"
    assert env.from_string(text).render(x=True) == "a\nyes\nend\n"
    assert {"pyrepr", "shquote", "ident", "cronline"} <= set(env.filters)
    assert env.from_string("{{ v | pyrepr }} {{ v | shquote }} {{ v | ident }}").render(v="a b") == "'a b' 'a b' a_b"
    assert env.get_template("run.sh.j2") is not None
