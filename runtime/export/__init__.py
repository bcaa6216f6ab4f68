"""The portable model bundle: write a self-contained folder (params, fitted transforms, input schema,
model card, the prediction function serialized with ``jax.export``, and ``score.py``, the loader a
service runs with JAX alone). Owns ``bundle`` (writer) and ``bundle_score`` (the loader, copied into
every bundle). Imports features, train, registry and store only; must not import data, steps,
execution, monitor or loopc.compiler; ``bundle_score`` imports nothing of loopc at all.
"""
