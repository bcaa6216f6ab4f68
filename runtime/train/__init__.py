"""Training with JAX and optax: networks, optimizers, epochs, input staging, checkpoints, prediction
and multi-process set-up.

Imports ``loopc.runtime.store`` only: no data reading, registry or execution.
"""
