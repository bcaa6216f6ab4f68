"""Monitoring: reference profiles, drift statistics, the monitor verdict and its cooldown state.

Imports ``loopc.runtime.evaluate``, ``loopc.runtime.gate`` and ``loopc.runtime.store``; no training,
registry or execution.
"""
