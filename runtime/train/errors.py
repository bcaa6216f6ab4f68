"""The training error, apart from JAX: reading a model's params (checkpoint) must not import it."""

from __future__ import annotations


class TrainError(ValueError):
    """Training cannot start or continue: the message says what is wrong and how to fix it."""
