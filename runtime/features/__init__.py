"""Features: transforms fitted on the train split, saved as JSON, applied alike at training and serving.

Imports ``loopc.runtime.data`` only.
"""
