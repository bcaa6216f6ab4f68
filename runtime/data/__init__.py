"""Data: resolving sources (sources), snapshots that fix which bytes a step reads (snapshot),
parsing files (formats), casting to declared types, schema and dataset checks, the expression
language, and deterministic splits.

Imports only ``loopc.runtime.units``: no features, training, registry or execution.
"""
