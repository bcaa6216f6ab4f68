"""The spec language: pydantic models, structural and cross-reference checks, governance policy,
error codes, the JSON Schema, the docs' field tables, and ``validate_spec`` that runs them all.

Imports the front end and ``loopc.compiler.errors``; never planning, targets or the CLI.
"""
