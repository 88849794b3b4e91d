"""``python -m handprop`` is the ``handprop`` command."""
import sys

from .cli import main

sys.exit(main())
