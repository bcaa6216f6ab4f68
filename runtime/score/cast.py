"""Rows to score, cast to the dataset's declared column types exactly as the validate step cast the rows
the model was trained on (runtime/data/casting.py): an int column declared float, numbers or booleans
held as text, ISO times as text all reach the model as they did in training."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds

from loopc.runtime.data.casting import cast_column, examples
from loopc.runtime.data.formats import csv_nulls, csv_text_columns
from loopc.runtime.score.resolve import ScoreError


class InputCast:
    """Checks each input file once for the columns the model reads and casts each record batch."""

    def __init__(self, schema: dict, csv: bool = False):
        self.required = [c["name"] for c in schema["columns"]]
        self.types = {c["name"]: c["type"] for c in schema["columns"] if c.get("type")}
        # read from CSV: the declared non-text columns come as text, their null spellings made null here
        self.text = csv_text_columns(self.types) if csv else frozenset()
        self._checked: set[str] = set()

    def __call__(self, batch: pa.RecordBatch, fragment) -> pa.RecordBatch:
        """``batch`` (read from ``fragment``) with every declared input column cast; ScoreError names the
        file and column of a missing column or a value that cannot be cast."""
        path = str(getattr(fragment, "path", "") or "the input")
        self._check_file(path, fragment)
        for name, ctype in self.types.items():
            if name in self.text:
                batch = batch.set_column(batch.schema.get_field_index(name), name, csv_nulls(batch.column(name)))
            cast, bad = cast_column(batch.column(name), ctype)
            if bad.any():
                shown = ", ".join(repr(v) for v in examples(batch.column(name), bad, distinct=True))
                raise ScoreError(f"'{path}': column '{name}' has {int(bad.sum())} value(s) that cannot be read as "
                                 f"{ctype}, the type the model was trained on (e.g. {shown})")
            batch = batch.set_column(batch.schema.get_field_index(name), name, cast)
        return batch

    def _check_file(self, path: str, fragment) -> None:
        if path in self._checked:
            return
        physical = getattr(fragment, "physical_schema", None)
        if physical is None:
            return
        in_path = ds.get_partition_keys(fragment.partition_expression)  # hive folders: name=value
        missing = [c for c in self.required if c not in physical.names and c not in in_path]
        if missing:
            raise ScoreError(f"'{path}' lacks column(s) {', '.join(missing)} that the model reads")
        self._checked.add(path)
