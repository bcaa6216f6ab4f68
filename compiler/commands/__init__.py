"""One module per ``loopc`` subcommand: ``add_arguments(parser)`` and ``run(args) -> exit code``."""
