"""The ``loopc`` command line: ``main`` parses and dispatches; one module per subcommand with
``add_arguments(parser)`` and ``run(args) -> exit code``; ``demo`` runs the bundled example.

The top of the compiler: may import every compiler package and the runtime; nothing imports it.
"""
