"""Gates: the pure decision to accept or reject a candidate against thresholds and the champion, and
the shadow comparison of challenger and champion.

Imports ``loopc.runtime.evaluate`` only.
"""
