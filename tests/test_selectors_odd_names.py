"""Tables nobody here named: a selector makes a valid, distinct feature of every column whatever its name, and
`loopc init --from-data` writes a spec that validates and composes back to the file's names."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopc.compiler.api import load_project
from loopc.compiler.cli.init_data import literal
from loopc.compiler.cli.main import main
from loopc.compiler.frontend.selectors import feature_name, selected_feature_names
from loopc.compiler.spec.models import IDENT

ODD = ["<script>alert(1)</script>", 'a"b', "a'b", "a b", "ünï", "a.b", "$HOME", "--x", "`rm -rf`", "x\\y",
       "${oc.env:HOME}", "1st", "2nd half", "class", "a/b", "%(x)s", "{{ x }}", "{% raw %}", "a_b", "a_b_2",
       "Price ($)", "Price (€)", "", "   ", "_", "L" * 80, "L" * 80 + "!", "ÀÉÎ"]


def test_names_that_clash_get_numbered_in_column_order_and_identifiers_keep_theirs() -> None:
    assert selected_feature_names(["a b", "a.b", "a_b", "A-B"]) == ["a_b_2", "a_b_3", "a_b", "a_b_4"]
    # 'a_b' is spelled as its name and keeps it; the others take the free numbers, skipping a column's own name
    assert selected_feature_names(["a b", "a_b_2", "a.b", "a_b"]) == ["a_b_3", "a_b_2", "a_b_4", "a_b"]
    assert selected_feature_names(["Price ($)", "Price (€)"]) == ["price", "price_2"]
    assert selected_feature_names(["x", "y"]) == ["x", "y"]


def test_a_leading_digit_and_a_long_name_still_make_identifiers() -> None:
    assert feature_name("1st") == "column_1st" and feature_name("") == "column" and feature_name("__") == "column"
    assert feature_name("L" * 80) == "l" * 63
    assert selected_feature_names(["L" * 80, "L" * 80 + "!"]) == ["l" * 63, "l" * 61 + "_2"]
    # a cut that ends on '_' drops it, before a number too
    assert feature_name("a" * 62 + " b") == "a" * 62
    assert selected_feature_names(["a" * 60 + " b", "a" * 60 + ".b"]) == ["a" * 60 + "_b", "a" * 60 + "_2"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(ODD), st.text(max_size=90)), min_size=1, max_size=12))
def test_every_column_list_makes_distinct_identifiers(columns: list[str]) -> None:
    made = selected_feature_names(columns)
    assert len(made) == len(columns)
    assert all(re.fullmatch(IDENT, name) for name in made), made
    assert len(set(made)) == len(made) or len(set(columns)) < len(columns)
    for column, name in zip(columns, made):
        if re.fullmatch(IDENT, column) and columns.count(column) == 1:
            assert name == column  # an identifier is its own feature's name


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_a_literal_composes_to_itself(text: str) -> None:
    from omegaconf import OmegaConf

    assert OmegaConf.create({"v": literal(text)}).v == text


def _odd_table(rows: int = 400) -> pa.Table:
    rng = np.random.default_rng(3)
    columns = {name: rng.normal(size=rows) for name in ODD if name}
    columns["kind;drop"] = pa.array(rng.choice(["x", "<b>y</b>"], rows))
    columns["label ✓"] = pa.array(rng.random(rows) < 0.4)
    return pa.table(columns)


@pytest.mark.parametrize("label", ["label ✓", "${oc.env:HOME}", "a\\${x}", "Price ($)"])
def test_init_from_data_on_odd_names_validates_to_the_files_names(tmp_path: Path, label: str) -> None:
    table = _odd_table()
    if label not in table.column_names:
        table = table.append_column(label, pa.array(np.arange(table.num_rows) % 2 == 0))
    data = tmp_path / "odd ${weird} file.parquet"
    pq.write_table(table, data)
    assert main(["init", str(tmp_path / "p"), "--from-data", str(data), "--label", label]) == 0
    text = (tmp_path / "p" / "pipeline.yaml").read_text(encoding="utf-8")
    assert "ünï" in text and "\\x" not in text  # written as read, not escaped
    (loaded,) = load_project(tmp_path / "p" / "pipeline.yaml")
    spec = loaded.spec
    assert spec.model.label == label
    (dataset,) = spec.datasets.values()
    assert list(dataset.columns) == table.column_names
    assert str(dataset.source.path).endswith("odd ${weird} file.parquet")
    numeric = [c for c in table.column_names if c != label and pa.types.is_floating(table.schema.field(c).type)]
    assert [spec.features[f].column for f in spec.model.features] == numeric
    assert len(set(spec.model.features)) == len(numeric)


def test_a_long_file_name_makes_a_valid_model_name(tmp_path: Path) -> None:
    data = tmp_path / ("t" * 70 + ".parquet")
    pq.write_table(pa.table({"x": [1.0, 2.0], "y": [True, False]}), data)
    assert main(["init", str(tmp_path / "p"), "--from-data", str(data)]) == 0
    (loaded,) = load_project(tmp_path / "p" / "pipeline.yaml")
    assert loaded.spec.model.name == "t" * 57 + "_model"
