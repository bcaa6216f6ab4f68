"""The cache key and the plan fingerprint, computed independently: hashlib over the documented parts, and
canonical JSON by hand. A change of format would orphan every artifact cached so far, so the texts are pinned.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from loopc.compiler.plan.fingerprint import canonical_json, outcome_view, sha256_text, step_fingerprint
from loopc.runtime.execution.runner import RUNTIME_FORMAT, cache_key, is_cacheable
from loopc.runtime.execution.step import StepDoc

UPSTREAM = {"validate.d": {"key": "k1"}, "split.d": {"key": "k2"}}


def doc(kind: str = "train", cacheable: bool = True) -> StepDoc:
    return StepDoc(id=f"{kind}.m", kind=kind, deps=("validate.d", "split.d"), fingerprint="fp", config={},
                   cacheable=cacheable)  # fmt: skip


def test_the_cache_key_is_sha256_of_the_zero_terminated_parts_in_order():
    text = f"runtime:{RUNTIME_FORMAT}\0fp\0validate.d=k1\0split.d=k2\0input=digest\0"
    assert cache_key(doc(), UPSTREAM, "digest", "run") == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert RUNTIME_FORMAT == 3


def test_a_step_compiled_as_not_cacheable_gets_a_new_key_every_execution():
    assert not is_cacheable(doc(cacheable=False)) and is_cacheable(doc())
    first, second = (cache_key(doc(cacheable=False), UPSTREAM, "d", "run") for _ in range(2))
    assert first != second
    assert cache_key(doc(), UPSTREAM, "d", "run") == cache_key(doc(), UPSTREAM, "d", "run")


def test_canonical_json_sorts_keys_drops_whitespace_keeps_unicode_and_rejects_nan():
    assert canonical_json({"b": [1, 2.5], "a": "é"}) == '{"a":"é","b":[1,2.5]}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_sha256_text_hashes_the_utf8_bytes():
    assert sha256_text("é") == hashlib.sha256("é".encode()).hexdigest()


def test_outcome_view_drops_descriptions_and_resources_at_every_depth_and_nothing_else():
    value = {"description": "d", "resources": {"mem": 1}, "a": 1,
             "nested": {"description": "x", "keep": [{"resources": 2, "b": 3}, 4, [{"description": 5, "c": 6}]]}}
    assert outcome_view(value) == {"a": 1, "nested": {"keep": [{"b": 3}, 4, [{"c": 6}]]}}
    assert outcome_view([{"description": 1}, "s"]) == [{}, "s"]
    assert outcome_view("resources") == "resources"


def test_the_step_fingerprint_is_sha256_of_the_canonical_payload():
    config = {"z": 1, "description": "free text", "resources": {"cpus": 8}, "a": {"k": [1, {"resources": 0}]}}
    payload = {"kind": "train", "config": {"a": {"k": [1, {}]}, "z": 1}, "deps": ["d1", "d2"], "step_format": 3,
               "runtime_format": RUNTIME_FORMAT}  # fmt: skip
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert step_fingerprint("train", config, ["d2", "d1"], 3) == expected
    assert step_fingerprint("train", config, iter(["d1", "d2"]), 3) == expected
    assert step_fingerprint("train", config, ["d1", "d2"], 4) != expected
    assert step_fingerprint("score", config, ["d1", "d2"], 3) != expected
