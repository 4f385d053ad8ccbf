"""How the commands end: a one-line error and an exit code, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from omnisearch_embed.endpoint_status import aws_error
from omnisearch_embed.errors import EmbedError

EXIT_FAILURE, EXIT_USAGE = 1, 2


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_guarded(main: Callable[[], int | None]) -> int:
    """Typed errors and Ctrl-C become a one-line message and an exit code, never a traceback."""
    try:
        return int(main() or 0)
    except EmbedError as e:
        print(f"error: {e.message} [{e.code}]", file=sys.stderr)
        return EXIT_FAILURE
    except (ClientError, BotoCoreError) as e:
        error = aws_error(e, "AWS call")
        print(f"error: {error.message} [{error.code}]", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
