"""The ``local`` target: plan.json, step documents and run.sh for the embedded executor.

Imports ``loopc.compiler.targets`` and ``loopc.compiler.plan`` only.
"""
