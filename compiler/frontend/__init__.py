"""Front end: YAML text to a composed tree with a source map (load, tree, defaults, overrides, apply,
interpolate, compose), with Hydra's semantics.

Imports only ``loopc.compiler.errors``: nothing here knows the spec's models, plans or targets.
"""
