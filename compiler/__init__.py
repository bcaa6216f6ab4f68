"""loopc compiler: YAML specs -> validated Spec -> Plan -> files for a target.

Stages, in order: load (parse YAML with positions), compose (defaults lists,
overrides, interpolation, sweeps), validate (models + cross-references),
plan (DAG of steps), emit (backends). Only the CLI touches the filesystem
beyond reading specs.
"""
