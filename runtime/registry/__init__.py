"""The model registry: one interface (``interface``), one module per backend (``sqlite``), its schema,
``connect.open_registry(url)`` choosing the backend, and model cards.

Imports nothing else of loopc: no execution, steps or training.
"""
