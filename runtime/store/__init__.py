"""The artifact store: content-addressed step outputs published atomically, and atomic file writes.

Imports nothing else of loopc but the test kill points (``loopc.runtime.faults``).
"""
