"""Semantic comparison of two sides of a spec tree (a base revision and the working tree): what
changed in each pipeline's validated spec, and what each change means (retrain, re-gate,
operational, metadata) by a table of spec-path patterns.

Compares ``Spec.model_dump(mode="json")`` values, so formatting, key order, comments, anchors and
equal numbers written differently are never changes. Imports ``loopc.compiler.errors`` and the
spec models only; never the front end's internals, planning, targets, the CLI or the runtime.
"""
