"""Rows to score, cast to the dataset's declared column types exactly as the validate step cast the rows
the model was trained on (runtime/data/casting.py): an int column declared float, numbers or booleans
held as text, ISO times as text all reach the model as they did in training."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds

from loopc.runtime.data.formats import cast_declared, csv_text_columns
from loopc.runtime.score.resolve import ScoreError


class InputCast:
    """Checks each input file once for the columns the model reads (and the ``keys`` copied to every prediction)
    and casts each record batch."""

    def __init__(self, schema: dict, csv: bool = False, keys: tuple[str, ...] = ()):
        self.required = [c["name"] for c in schema["columns"]]
        self.keys = [k for k in keys if k not in self.required]
        self.types = {c["name"]: c["type"] for c in schema["columns"] if c.get("type")}
        # read from CSV: the declared columns come as text, their null spellings made null here
        self.text = csv_text_columns(self.types) if csv else {}
        self._checked: set[str] = set()

    def __call__(self, batch: pa.RecordBatch, fragment) -> pa.RecordBatch:
        """``batch`` (read from ``fragment``) with every declared input column cast; ScoreError names the
        file and column of a missing column or a value that cannot be cast."""
        path = str(getattr(fragment, "path", "") or "the input")
        self._check_file(path, fragment)
        batch, bad = cast_declared(batch, self.types, self.text)
        if bad is not None:
            shown = ", ".join(repr(v) for v in bad.examples)
            raise ScoreError(f"'{path}': column '{bad.column}' has {bad.count} value(s) that cannot be read as "
                             f"{bad.ctype}, the type the model was trained on (e.g. {shown})")
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
        keys = [c for c in self.keys if c not in physical.names and c not in in_path]
        if keys:  # its rows' keys would be written as nulls
            raise ScoreError(f"'{path}' lacks key column(s) {', '.join(keys)} that other files have")
        self._checked.add(path)
