"""A binary label held as text (a category label with two allowed values) reads as validate reads a bool
column; the spec refuses allowed values that do not, and the steps name such values instead of failing
with an internal error."""

from __future__ import annotations

import copy

import numpy as np
import pyarrow as pa
import pytest
from test_plan_support import EXAMPLES, compose_tree, spec_from_tree

from loopc.compiler.spec.crossrefs import check_references
from loopc.runtime.evaluate.metrics import BINARY
from loopc.runtime.execution.runner import StepFailed
from loopc.runtime.steps.common import label_vector


@pytest.mark.parametrize("column", [
    pa.chunked_array([["yes", "no"], [" YES", "No", "yes"]]),
    pa.chunked_array([pa.array(["t", "f", "t", "f", "T"]).dictionary_encode()]),
    pa.chunked_array([["1", "0", "1", "0", "1"]]),
    pa.chunked_array([[True, False, True, False, True]]),
])  # fmt: skip
def test_a_binary_label_as_text_reads_as_validate_reads_a_bool(column):
    assert np.array_equal(label_vector(column, BINARY, None), np.array([1, 0, 1, 0, 1], np.float32))


def test_a_binary_label_value_that_is_no_bool_is_named():
    with pytest.raises(StepFailed, match=r"binary label values \['churned', 'stayed'\] do not read as true or "
                                         r"false \(true/false, yes/no, t/f, 1/0, any case\)"):
        label_vector(pa.chunked_array([["stayed", "churned", "no"]]), BINARY, None)


def _label_codes(allowed: list) -> list[str]:
    tree = copy.deepcopy(compose_tree(EXAMPLES / "churn" / "pipeline.yaml"))
    tree["datasets"]["customers"]["columns"]["churned"] = {"type": "category", "nullable": False, "allowed": allowed}
    return [issue.code for issue in check_references(spec_from_tree(tree)[0]) if issue.path == ("model", "label")]


def test_the_spec_takes_a_category_label_whose_two_values_read_as_bools():
    assert _label_codes(["no", "yes"]) == [] and _label_codes(["False", "True"]) == [] and _label_codes([0, 1]) == []
    assert _label_codes(["stayed", "churned"]) == ["LPC206"]
    assert _label_codes(["no", "yes", "maybe"]) == ["LPC206"]
