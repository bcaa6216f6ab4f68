"""Execution machinery: step documents, the runner (cache keys, run records, logs), step kinds by
name, the local executor, progress and the run report.

Imports the stage packages below it for their error types; names step functions as strings, so it
never imports ``loopc.runtime.steps``.
"""
