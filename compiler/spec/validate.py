"""Validate a composed spec: pydantic structure (LPC1xx), then cross-references (LPC2xx) and policy (LPC3xx)."""

from __future__ import annotations

from pydantic import ValidationError

from loopc.compiler.errors import SpecError, SpecErrors
from loopc.compiler.frontend.compose import ComposedSpec
from loopc.compiler.frontend.load import SpecPath
from loopc.compiler.frontend.overrides import OVERRIDE_FILE
from loopc.compiler.spec.crossrefs import Issue, check_references
from loopc.compiler.spec.locate import dotted, position_of, tree_path
from loopc.compiler.spec.models import Spec
from loopc.compiler.spec.policy import check_policy
from loopc.compiler.spec.structure import structure_errors

_RISK_CLASS: SpecPath = ("pipeline", "risk_class")


def validate_spec(composed: ComposedSpec) -> Spec:
    """The validated Spec of ``composed``, or SpecErrors with every problem found, sorted."""
    fallback = (composed.file, 1, 1)
    try:
        spec = Spec.model_validate(composed.tree)
    except ValidationError as exc:
        errors = structure_errors(exc.errors(include_url=False), composed.tree, composed.positions, Spec, fallback)
        raise SpecErrors([_with_override(e, composed) for e in errors]) from None
    errors = [locate_issue(i, composed) for i in check_references(spec)]
    errors += [locate_issue(i, composed, _RISK_CLASS) for i in check_policy(spec)]
    if errors:
        raise SpecErrors([_with_override(e, composed) for e in errors])
    return spec


def locate_issue(issue: Issue, composed: ComposedSpec, missing_at: SpecPath | None = None) -> SpecError:
    """Place an issue at the node its path names; a missing node at ``missing_at`` or its nearest parent."""
    path = tree_path(issue.path, composed.tree)
    if missing_at is not None and path not in composed.positions:
        path = missing_at
    file, line, col = position_of(path, composed.positions, (composed.file, 1, 1))
    return SpecError(file, line, col, issue.code, dotted(issue.path), issue.message, issue.hint)


def _with_override(error: SpecError, composed: ComposedSpec) -> SpecError:
    """Errors in values that came from an override name the override they came from."""
    if error.file != OVERRIDE_FILE or not 0 < error.line <= len(composed.overrides):
        return error
    text = composed.overrides[error.line - 1]
    hint = f"from override '{text}'" + (f"; {error.hint}" if error.hint else "")
    return SpecError(error.file, error.line, error.column, error.code, error.spec_path, error.message, hint)
