"""Located warnings (LPC6xx): a valid spec that cannot do what it says, e.g. a shadow that can never pass.

Warnings do not fail validation; ``loopc validate`` prints them beside the errors (docs/cli-validate.md).
"""

from __future__ import annotations

from typing import Iterator

from loopc.compiler.errors import SpecError
from loopc.compiler.frontend.load import Position, SpecPath
from loopc.compiler.spec.crossrefs import Issue
from loopc.compiler.spec.locate import dotted, position_of
from loopc.compiler.spec.models import Dataset, RowCountCheck, Spec

SHADOW_MIN_ROWS: SpecPath = ("deploy", "shadow", "min_rows")


def spec_warnings(spec: Spec) -> list[Issue]:
    """Every warning of a validated spec."""
    return list(_shadow_rows(spec))


def located_warnings(spec: Spec, positions: dict[SpecPath, Position], fallback: Position) -> list[SpecError]:
    """The warnings of ``spec``, each at the node its path names (or its nearest written parent)."""
    located = []
    for issue in spec_warnings(spec):
        file, line, col = position_of(issue.path, positions, fallback)
        located.append(SpecError(file, line, col, issue.code, dotted(issue.path), issue.message, issue.hint))
    return sorted(located)


def max_rows(dataset: Dataset) -> int | None:
    """The most rows the dataset's row_count checks let through (None: nothing bounds it)."""
    bounds = [c.max for c in dataset.checks if isinstance(c, RowCountCheck) and c.max is not None]
    return min(bounds) if bounds else None


def _shadow_rows(spec: Spec) -> Iterator[Issue]:
    """deploy.shadow.min_rows above the rows of the test split the shadow step compares the models on."""
    shadow, dataset = spec.deploy.shadow, spec.datasets.get(spec.model.dataset)
    most = None if dataset is None else max_rows(dataset)
    if not shadow.enabled or most is None:
        return  # no static bound: the shadow step warns at run time (runtime/steps/deploy.run_shadow)
    fraction = dataset.split.test
    expected = most * fraction
    if shadow.min_rows <= expected:
        return
    yield Issue(SHADOW_MIN_ROWS, "LPC601",
                f"min_rows {shadow.min_rows} exceeds the rows the shadow step can compare: the test split holds "
                f"about {expected:g} rows (row_count max {most} x split.test {fraction:g} of dataset "
                f"'{spec.model.dataset}'), so every challenger fails the shadow and is never promoted",
                f"lower deploy.shadow.min_rows to at most {int(expected)}, raise split.test or the row_count "
                "max, or set deploy.shadow.enabled: false")
