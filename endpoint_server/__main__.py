"""``python -m endpoint_server serve``: see endpoint_server.cli."""

import sys

from endpoint_server.cli import main

if __name__ == "__main__":  # worker processes (spawned) import this module under another name
    sys.exit(main())
