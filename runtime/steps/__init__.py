"""Step kinds: one function per kind that wires the stage packages to a step document.

The top of the runtime: may import every runtime package; nothing in the runtime imports it.
"""
