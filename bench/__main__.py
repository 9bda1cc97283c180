"""``python -m bench``: see :mod:`bench.run`."""

import sys

from bench.run import cli

sys.exit(cli())
