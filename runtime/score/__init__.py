"""Batch scoring: resolve a registered model (by alias or version), build or reuse its export bundle,
stream input rows in record batches, cast them to the dataset's declared types and score them through
the bundle's own loader, and write predictions as partitioned Parquet, published by one rename. Owns
``resolve``, ``cast`` and ``batch``. Imports data (casting), export, registry and store only; must not
import steps, execution, monitor or loopc.compiler.
"""
