"""Subcommands that live in modules of their own: each declares ``HELP``, ``add_arguments(parser)``
and ``run(args) -> exit status`` (importing its machinery inside ``run``), so ``handprop.cli``
mounts it and a test can parse its arguments and call ``run`` directly."""
