"""``python -m aemg`` runs the command line."""

import sys

from aemg.cli import main

sys.exit(main())
