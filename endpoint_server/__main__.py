"""``python -m endpoint_server serve``: see endpoint_server.cli."""

import sys

from endpoint_server.cli import main

sys.exit(main())
