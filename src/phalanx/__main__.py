"""``python -m phalanx`` runs the CLI."""

import sys

from phalanx.cli.main import main

sys.exit(main())
