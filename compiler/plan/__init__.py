"""Planning: a validated spec to Plans (a networkx DAG of steps with fingerprints), sweeps expanded,
and the step documents every target hands to the runtime.

Imports the spec models and ``loopc.compiler.errors``; never targets or the CLI.
"""
