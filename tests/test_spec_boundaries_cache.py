"""The cache key of a step changes when anything it is computed from changes: any upstream key, the
fingerprint, the input digest; it is stable otherwise; stateful steps never share a key."""

from __future__ import annotations

import pytest

from loopc.runtime.execution.runner import STATEFUL_KINDS, cache_key
from loopc.runtime.execution.step import StepDoc

DEPS = ("validate.d", "split.d", "features.m")
UPSTREAM = {dep: {"key": f"key-of-{dep}"} for dep in DEPS}


def doc(kind: str = "train", fingerprint: str = "f" * 64, deps: tuple[str, ...] = DEPS) -> StepDoc:
    return StepDoc(id=f"{kind}.m", kind=kind, deps=deps, fingerprint=fingerprint, config={})


def test_the_key_is_stable_for_the_same_inputs_and_independent_of_the_run():
    assert cache_key(doc(), UPSTREAM, "digest", "run1") == cache_key(doc(), dict(UPSTREAM), "digest", "run2")


@pytest.mark.parametrize("changed", DEPS)
def test_changing_any_one_upstream_key_changes_the_key(changed):
    upstream = {**UPSTREAM, changed: {"key": "another"}}
    assert cache_key(doc(), upstream, "digest", "r") != cache_key(doc(), UPSTREAM, "digest", "r")


def test_the_fingerprint_and_the_input_digest_each_change_the_key():
    base = cache_key(doc(), UPSTREAM, "digest", "r")
    assert cache_key(doc(fingerprint="e" * 64), UPSTREAM, "digest", "r") != base
    assert cache_key(doc(), UPSTREAM, "other digest", "r") != base


def test_upstream_keys_are_bound_to_their_step_ids():
    swapped = {DEPS[0]: UPSTREAM[DEPS[1]], DEPS[1]: UPSTREAM[DEPS[0]], DEPS[2]: UPSTREAM[DEPS[2]]}
    assert cache_key(doc(), swapped, "digest", "r") != cache_key(doc(), UPSTREAM, "digest", "r")


def test_only_the_steps_own_deps_enter_the_key():
    extra = {**UPSTREAM, "unrelated.x": {"key": "k"}}
    assert cache_key(doc(), extra, "digest", "r") == cache_key(doc(), UPSTREAM, "digest", "r")


@pytest.mark.parametrize("kind", sorted(STATEFUL_KINDS))
def test_stateful_steps_get_a_new_key_every_execution(kind):
    assert cache_key(doc(kind), UPSTREAM, "digest", "r") != cache_key(doc(kind), UPSTREAM, "digest", "r")
