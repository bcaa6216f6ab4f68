"""Batch scoring: resolve a registered model (by alias or version), build or reuse its export bundle,
stream input rows in record batches through the bundle's own loader and write predictions as
partitioned Parquet, published by one rename. Owns ``resolve`` and ``batch``. Imports export,
registry and store only; must not import data, steps, execution, monitor or loopc.compiler.
"""
