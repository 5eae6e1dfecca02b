"""``python -m tracegraph`` runs the `tracegraph` command (see `tracegraph.cli`)."""

import sys

from .cli import main

sys.exit(main())
