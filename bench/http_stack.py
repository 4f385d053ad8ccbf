"""What uvicorn's fast stack buys the local server: asyncio + h11 against uvloop + httptools.

The real LocalServer (the Powertools app behind the HTTP adapter) serving the bundled tiny-shapes model, whose
forward pass is about a millisecond, so the figures are the server's own overhead per request: p50 over one
kept-alive connection for GET /health and POST /v1/embeddings (one text), both stacks in this process, taking
turns. ``python -m local_server`` uses uvicorn's "auto" choice, which is uvloop + httptools when installed.

    .venv/bin/python bench/http_stack.py [--requests 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time

import uvicorn

from local_server.batched_backend import BatchedBackend
from local_server.cli import bind
from local_server.clip_backend import LocalClipBackend
from local_server.server import LocalServer
from omnisearch_embed.settings import Settings

STACKS = [("asyncio", "h11"), ("uvloop", "httptools")]
BODY = json.dumps({"model": "tiny-shapes", "input": ["a red circle"]}).encode()


def p50_ms(port: int, method: str, path: str, count: int) -> float:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": "application/json"} if method == "POST" else {}
    times = []
    try:
        for i in range(count + 5):
            began = time.perf_counter()
            client.request(method, path, body=BODY if method == "POST" else None, headers=headers)
            response = client.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{method} {path}: {response.status}")
            if i >= 5:  # the first few warm the worker threads
                times.append(time.perf_counter() - began)
    finally:
        client.close()
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="each stack serves this many times, taking turns")
    args = parser.parse_args(argv)
    backend = BatchedBackend(LocalClipBackend("tiny-shapes"))
    server = LocalServer(backend, Settings(), workers=4)
    figures: dict[tuple[str, str], list[tuple[float, float]]] = {s: [] for s in STACKS}
    for _ in range(args.rounds):
        for loop, protocol in STACKS:
            sock = bind("127.0.0.1", 0)
            config = uvicorn.Config(server.asgi, loop=loop, http=protocol, log_level="warning", lifespan="off")
            uv = uvicorn.Server(config)
            thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
            thread.start()
            while not uv.started:
                time.sleep(0.01)
            port = sock.getsockname()[1]
            figures[(loop, protocol)].append(
                (p50_ms(port, "GET", "/health", args.requests), p50_ms(port, "POST", "/v1/embeddings", args.requests))
            )
            uv.should_exit = True
            thread.join(30)
            sock.close()
    print("| stack | GET /health p50 ms | POST /v1/embeddings p50 ms |")
    print("| --- | ---: | ---: |")
    for (loop, protocol), runs in figures.items():
        health = statistics.median(r[0] for r in runs)
        embed = statistics.median(r[1] for r in runs)
        print(f"| {loop} + {protocol} | {health:.2f} | {embed:.2f} |")
    backend.close()
    server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
