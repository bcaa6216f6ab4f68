"""loopc runtime: runs one step of a compiled plan. Never imports loopc.compiler.

Subpackages, in the order of the loop: ``data``, ``features``, ``train``, ``evaluate``, ``gate``,
``registry``, ``monitor``; beside them ``store`` (artifacts) and ``execution`` (step documents,
runner, executor, report); ``steps`` wires them to each step kind.
"""
