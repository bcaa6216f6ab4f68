"""The ``airflow`` target: one static Airflow 3 DAG file per plan.

Imports ``loopc.compiler.targets`` and ``loopc.compiler.plan`` only.
"""
