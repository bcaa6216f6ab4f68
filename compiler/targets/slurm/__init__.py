"""The ``slurm`` target: sbatch scripts chained with afterok, and what Slurm says of submitted jobs
(``jobs``: status and cancel).

Imports ``loopc.compiler.targets`` and ``loopc.compiler.plan`` only.
"""
