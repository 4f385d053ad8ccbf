"""``python -m endpoint_server serve``: the container's entry point (SageMaker runs ``docker run IMAGE serve``).

Settings come from flags, else the environment SageMaker sets (``SAGEMAKER_BIND_TO_PORT``, ``SM_MODEL_DIR``)
or the model's container environment (``ENDPOINT_MAX_BATCH_SIZE``, ``ENDPOINT_MAX_WAIT_MS``,
``ENDPOINT_MAX_QUEUE``, ``ENDPOINT_WORKERS``). uvicorn serves with httptools and uvloop when installed; on
SIGTERM it stops accepting, waits for the requests in flight, and the lifespan shutdown drains the batcher.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from endpoint_server.app import EndpointServer, ServerConfig
from model_code.code.clip_env import ConfigError, env_float, env_int, env_str


def parse_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    """Flags, with the environment's values as their defaults.

    The environment is read by the one settings reader (model_code's clip_env, the core's omnisearch_embed.env):
    a bad value raises its ConfigError naming the variable, even where a flag would override it.
    """
    env = os.environ if environ is None else environ
    defaults = ServerConfig()

    parser = argparse.ArgumentParser(prog="python -m endpoint_server", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"], help="what SageMaker passes")
    parser.add_argument("--host", default="0.0.0.0", help="interface to bind (default all)")
    parser.add_argument(
        "--port",
        type=int,
        default=env_int(env, "SAGEMAKER_BIND_TO_PORT", 8080, minimum=0),
        help="env SAGEMAKER_BIND_TO_PORT",
    )
    parser.add_argument(
        "--model-dir", default=env_str(env, "SM_MODEL_DIR") or defaults.model_dir, help="env SM_MODEL_DIR"
    )
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=env_int(env, "ENDPOINT_MAX_BATCH_SIZE", defaults.max_batch_size),
        help="env ENDPOINT_MAX_BATCH_SIZE",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=env_float(env, "ENDPOINT_MAX_WAIT_MS", defaults.max_wait_ms, minimum=0.0),
        help="env ENDPOINT_MAX_WAIT_MS",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=env_int(env, "ENDPOINT_MAX_QUEUE", defaults.max_queue),
        help="env ENDPOINT_MAX_QUEUE",
    )
    parser.add_argument("--drain-seconds", type=float, default=defaults.drain_seconds)
    parser.add_argument(
        "--workers",
        type=int,
        default=env_int(env, "ENDPOINT_WORKERS", 1),
        help="server processes, each with its own model copy and batcher (default 1; more when HTTP binds); "
        "env ENDPOINT_WORKERS",
    )
    args = parser.parse_args(argv)
    if min(args.max_batch_size, args.max_queue, args.workers) < 1 or args.max_wait_ms < 0 or args.drain_seconds < 0:
        parser.error("--max-batch-size, --max-queue, --workers must be at least 1; --max-wait-ms, --drain-seconds >= 0")
    return args


def config_from(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        model_dir=args.model_dir,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        drain_seconds=args.drain_seconds,
    )


def create_app() -> Any:
    """The ASGI app of one worker process, configured from the environment main() exported.

    A worker whose model cannot load exits with uvicorn's STARTUP_FAILURE, on which the supervisor stops every
    worker rather than restarting one that would fail the same way.
    """
    return EndpointServer(config_from(parse_args(["serve"])), on_load_failure=_exit_worker).asgi


def _exit_worker(_error: BaseException) -> None:
    from uvicorn.config import STARTUP_FAILURE

    logging.shutdown()  # the traceback is logged; os._exit would not flush it
    sys.stderr.flush()
    os._exit(STARTUP_FAILURE)


# How long an idle kept-alive connection stays open. uvicorn's default (5 s) closes connections that the
# client still holds in its pool (SageMaker's front end, requests.Session, Go's http.Client: 90 s); a request
# sent as the server closes one fails, and under a queue longer than 5 s clients saw broken pipes. Longer
# than the 60 s an invocation may take, so a connection outlives any wait for an answer.
KEEP_ALIVE_SECONDS = 75


def bind(host: str, port: int) -> socket.socket:
    """Bind before serving, so port 0 works and the banner shows the real port.

    The socket is made with protocol IPPROTO_TCP: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    connections accepted from such a socket, and with Nagle on every response on a kept-alive connection
    waits ~40 ms for the client's delayed ACK. TCP_NODELAY is also set here, for loops that copy it instead.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    return sock


def fast_stack() -> dict[str, str]:
    """uvicorn's fast HTTP parser and event loop, where installed."""
    found = {name: importlib.util.find_spec(name) is not None for name in ("httptools", "uvloop")}
    return {"http": "httptools" if found["httptools"] else "h11", "loop": "uvloop" if found["uvloop"] else "asyncio"}


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    try:
        args = parse_args(argv)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    # Before torch loads its OpenMP runtime: idle OpenMP threads sleep instead of spinning. Spinning workers
    # starve the event loop and the decode threads between model calls (c=1 texts: 250 ms -> 18 ms p50 on
    # 2 cores); set OMP_WAIT_POLICY=ACTIVE to have them back.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_from(args)
    try:
        sock = bind(args.host, args.port)
    except OSError as e:
        print(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    stack = fast_stack()
    print(f"serving {config.model_dir} on port {sock.getsockname()[1]} ({stack['http']}, {stack['loop']})", flush=True)
    settings: dict[str, Any] = {
        "log_level": "info",
        "access_log": False,  # a log line per invocation costs more than the batching saves at high rates
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "lifespan": "on",
        "timeout_graceful_shutdown": int(config.drain_seconds),
        **stack,
    }
    if args.workers > 1:  # each worker process rebuilds the app from this environment
        os.environ.update(
            SM_MODEL_DIR=config.model_dir,
            ENDPOINT_MAX_BATCH_SIZE=str(config.max_batch_size),
            ENDPOINT_MAX_WAIT_MS=str(config.max_wait_ms),
            ENDPOINT_MAX_QUEUE=str(config.max_queue),
        )
        uv = uvicorn.Config("endpoint_server.cli:create_app", factory=True, workers=args.workers, **settings)
        supervisor = Multiprocess(uv, sockets=[sock])  # on SIGTERM it stops each worker, and each drains
        serve, failed = supervisor.run, lambda: any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    else:
        # A model that cannot load never will: the process exits 1 rather than answer /ping 503 until SageMaker
        # gives up on the health check (minutes), and the log above says why.
        load_failures: list[BaseException] = []

        def stop_on_load_failure(error: BaseException) -> None:
            load_failures.append(error)
            server.should_exit = True

        app = EndpointServer(config, on_load_failure=stop_on_load_failure).asgi
        server = uvicorn.Server(uvicorn.Config(app, **settings))
        serve, failed = functools.partial(server.run, [sock]), lambda: bool(load_failures)
        # uvicorn handles SIGTERM itself (graceful shutdown), then re-raises it under the previous handler:
        # a no-op here, so a drained server exits 0 and says so.
        signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        serve()
    finally:
        sock.close()
    if failed():
        print("stopped: the model failed to load (see the log above)", file=sys.stderr, flush=True)
        return 1
    print("stopped", flush=True)
    return 0
