"""The model registry: one interface (``interface``), one module per backend (``sqlite``), its schema,
``connect.open_registry(url)`` choosing the backend, and model cards.

Imports nothing else of loopc but the test kill points (``loopc.runtime.faults``): no execution, steps or
training.
"""
