"""The portable model bundle: write a self-contained folder (params, fitted transforms, input schema,
model card, the prediction function serialized with ``jax.export``, and ``score.py``, the loader a
service runs with JAX alone). Owns ``bundle`` (writer), ``bundle_score`` (the loader) and ``input_cast``
(the loader's cast to the declared column types), both copied into every bundle. Imports features, train,
registry and store only; must not import data, steps, execution, monitor or loopc.compiler;
``bundle_score`` and ``input_cast`` import nothing of loopc at all.
"""
