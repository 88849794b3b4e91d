"""Subcommands written as plain modules, each ``add_arguments(parser)`` + ``run(args) -> int``.

``handprop.cli`` mounts them (``summary``, ``lr-find``, ``init-study``); each can also be run
and tested alone by parsing its arguments and calling ``run``. Imports are lazy, as the CLI's.
"""
