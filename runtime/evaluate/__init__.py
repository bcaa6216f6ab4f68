"""Evaluation: the metric table, metrics of predictions, slices and fairness gaps (pure functions).

Imports nothing else of loopc.
"""
