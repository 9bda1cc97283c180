import sys

from chaos.run import cli

sys.exit(cli())
