"""``python -m local_server``: see local_server.cli."""

import sys

from local_server.cli import main

try:
    sys.exit(main())
except KeyboardInterrupt:  # Ctrl-C while the model is still loading
    sys.exit(130)
