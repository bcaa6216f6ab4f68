"""loopc compiler: YAML specs -> validated Spec -> Plan -> files for a target.

Subpackages, in stage order: ``frontend`` (parse YAML with positions; compose defaults lists,
overrides, interpolation, sweeps), ``spec`` (models, structural and cross-reference checks,
policy, schema), ``plan`` (DAG of steps, fingerprints, step documents), ``targets`` (one folder
per scheduler), ``cli`` (the commands). ``api`` is the entry point the commands share. Only the
CLI touches the filesystem beyond reading specs.
"""
