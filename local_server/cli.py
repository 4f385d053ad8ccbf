"""``python -m local_server``: choose the backend from the environment and flags, print the banner, serve.

By default the bundled tiny-shapes model runs in this process. ``--model``/``--pretrained`` (or
CLIP_MODEL/CLIP_PRETRAINED) serve any open_clip model; USE_SAGEMAKER=true sends requests to a SageMaker
endpoint through the core's backend factory, with FALLBACK=local falling back to the local model. Every
server also answers the SageMaker runtime's InvokeEndpoint with the local model, so the cloud path can run
on one machine (see docs/LOCAL_SERVER.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from endpoint_server.cli import KEEP_ALIVE_SECONDS, bind  # the serving container's socket and connection rules
from omnisearch_embed.backends.factory import backend_from_settings
from omnisearch_embed.errors import ConfigError
from omnisearch_embed.settings import TINY_SHAPES_MODEL_ID, Settings

if TYPE_CHECKING:  # pyarrow and numpy load only with --index
    from local_server.page.corpus_index import CorpusIndex

_logger = logging.getLogger("local_server")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_server",
        description="Serve the OmniSearch Embed API locally: the Lambda handlers behind real HTTP.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--model", help="open_clip model name (default CLIP_MODEL, else tiny-shapes)")
    parser.add_argument("--pretrained", help="pretrained tag or checkpoint path (default CLIP_PRETRAINED)")
    parser.add_argument(
        "--engine",
        choices=["auto", "torch", "onnxruntime"],
        help="CLIP_ENGINE: auto (default) is ONNX Runtime on the CPU (towers exported once to build/onnx-cache), "
        "torch on CUDA",
    )
    parser.add_argument("--api-key", help="require this key (x-api-key or Authorization: Bearer); default API_KEY")
    parser.add_argument("--workers", type=int, default=32, help="handler threads (default 32)")
    parser.add_argument("--max-batch-size", type=int, default=32, help="most items in one merged model call")
    parser.add_argument("--max-batch-wait-ms", type=float, default=5.0, help="longest a request waits to be merged")
    parser.add_argument("--no-batching", action="store_true", help="one model call per request")
    parser.add_argument(
        "--index",
        metavar="FILE.parquet",
        help="a corpus indexed by scripts/embed_corpus.py: the page at / searches it (same model only)",
    )
    parser.add_argument(
        "--weaviate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve Weaviate's multi2vec-clip inference API (/vectorize, /meta, /.well-known/*) without an API key; "
        "default WEAVIATE_ROUTES, else on unless an API key is set",
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.max_batch_size < 1 or args.max_batch_wait_ms < 0:
        parser.error("--workers and --max-batch-size must be at least 1, --max-batch-wait-ms not negative")
    return args


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """The core Settings, with the flags taking precedence over the environment."""
    env = dict(os.environ if environ is None else environ)
    for flag, name in ((args.model, "CLIP_MODEL"), (args.pretrained, "CLIP_PRETRAINED"), (args.api_key, "API_KEY")):
        if flag is not None:
            env[name] = flag
    return Settings.from_env(env)


class LazyLocalModel:
    """Builds the LocalClipBackend on first use, once, from any thread; shared by the API and the emulation."""

    def __init__(self, model: str, pretrained: str) -> None:
        self.model, self.pretrained = model, pretrained
        self._lock = threading.Lock()
        self._backend: Any = None

    def __call__(self) -> Any:
        with self._lock:
            if self._backend is None:
                from local_server.clip_backend import LocalClipBackend  # torch: imported only when needed

                self._backend = LocalClipBackend(self.model, pretrained=self.pretrained)
            return self._backend


def describe(backend: Any) -> str:
    """One line naming what answers requests, for the banner."""
    if hasattr(backend, "max_batch_size") and hasattr(backend, "backend"):
        wait = backend.max_wait_s * 1000
        return f"{describe(backend.backend)}; dynamic batching (up to {backend.max_batch_size} items, {wait:g} ms)"
    if hasattr(backend, "primary") and hasattr(backend, "secondary"):
        return f"{describe(backend.primary)}, falling back to {describe(backend.secondary)}"
    if hasattr(backend, "endpoint_name"):
        url = getattr(getattr(getattr(backend, "client", None), "meta", None), "endpoint_url", "?")
        return f"SageMakerBackend: endpoint '{backend.endpoint_name}' at {url}"
    return f"{type(backend).__name__} ({backend.service}, in this process)"


def cors_line(settings: Settings) -> str:
    """What the banner says about browsers: which origin may call, and how to allow one."""
    if not settings.cors_allow_origin:
        return "off: browsers on other origins are blocked (set CORS_ALLOW_ORIGIN=* or https://your.app)"
    return f"Access-Control-Allow-Origin: {settings.cors_allow_origin} (CORS_ALLOW_ORIGIN; preflights need no key)"


def page_line(url: str, backend: Any, index: CorpusIndex | None) -> str:
    """Where the page is and what its search holds; an index of another model is named as refused."""
    if index is None:
        return f"{url}/   (zero-shot labels; --index FILE.parquet adds a corpus search)"
    if index.model != backend.model_id:
        return (
            f"{url}/   index {index.path.name} REFUSED: it holds vectors of {index.model}, this server embeds with "
            f"{backend.model_id} (searches answer 409 index_model_mismatch)"
        )
    return f"{url}/   index {index.path.name}: {index.rows} rows of {index.model}"


def banner(
    url: str,
    backend: Any,
    settings: Settings,
    workers: int,
    *,
    weaviate: bool = False,
    index: CorpusIndex | None = None,
) -> str:
    example = "-H 'content-type: application/json' -d '{\"text\": \"a red circle\"}'"
    lines = [
        "OmniSearch Embed local server",
        f"  API          {url}",
        f"  Model        {backend.model_id}",
        f"  Backend      {describe(backend)}",
        f"  Page         {page_line(url, backend, index)}",
        f"  Swagger UI   {url}/swagger   (OpenAPI JSON: {url}/swagger?format=json)",
        f"  SageMaker    POST {url}/endpoints/<name>/invocations   (runtime emulation with the local model)",
        f"  API key      {'required: x-api-key or Authorization: Bearer' if settings.api_key else 'not required'}",
        f"  CORS         {cors_line(settings)}",
        f"  Workers      {workers} threads",
        f"  Weaviate     {weaviate_line(url, weaviate, settings)}",
        f"  Try          curl -s {url}/embed/text {example}",
    ]
    if backend.model_id == TINY_SHAPES_MODEL_ID:
        rule = "!" * 100
        lines += [
            rule,
            "!! WARNING: this is the tiny-shapes DEMO model. It knows 8 colours x 4 shapes and nothing else:",
            "!! its vectors are useless for real search. For a real CLIP run, for example:",
            "!!   python -m local_server --model ViT-B-32-quickgelu --pretrained /path/to/openai_weights.safetensors",
            rule,
        ]
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def weaviate_line(url: str, enabled: bool, settings: Settings) -> str:
    if not enabled:
        return "off (--weaviate serves the multi2vec-clip inference API)"
    keyless = "WITHOUT the API key" if settings.api_key else "with no API key"
    return f"CLIP_INFERENCE_API={url}  (multi2vec-clip; answers {keyless}: keep it on a private network)"


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    from local_server.batched_backend import BatchedBackend
    from local_server.server import LocalServer
    from local_server.weaviate import choose as weaviate_routes

    args = parse_args(argv)
    # Before torch loads. OpenMP threads that spin after each of a forward pass's many small parallel regions
    # take the cores the model thread, the client and the rest of the machine need; on a shared 2-core machine
    # that cost a single-text request 831 ms against 79 ms with passive waiting.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.engine:
        os.environ["CLIP_ENGINE"] = args.engine  # read by the model code when the model loads
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from(args)
        weaviate = weaviate_routes(args.weaviate, os.environ, settings.api_key)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    index = None
    if args.index:
        from local_server.page.corpus_index import IndexFileError, load_index  # pyarrow, numpy: only with one

        try:
            index = load_index(args.index)
        except IndexFileError as e:
            print(f"cannot use the index: {e}", file=sys.stderr)
            return 2
    try:
        sock = bind(args.host, args.port)  # before loading the model: a busy port fails at once
    except OSError as e:
        print(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    local_model = LazyLocalModel(settings.clip_model, settings.clip_pretrained)
    try:
        backend = backend_from_settings(settings, local_factory=local_model)
    except Exception as e:  # a bad combination or model setting (ConfigError), a missing checkpoint, an unknown model
        _logger.debug("backend failed to start", exc_info=True)
        print(f"cannot start the backend: {e}", file=sys.stderr)
        sock.close()
        return 2 if isinstance(e, ConfigError) else 1  # the model code's ConfigError is this class (clip_env.py)
    if not args.no_batching:
        backend = BatchedBackend(backend, max_batch_size=args.max_batch_size, max_wait_ms=args.max_batch_wait_ms)
    server = LocalServer(
        backend, settings, local_model=local_model, workers=args.workers, weaviate=weaviate, index=index
    )
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    print(banner(url, backend, settings, args.workers, weaviate=weaviate, index=index), flush=True)
    config = uvicorn.Config(
        server.asgi,
        log_level="info",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        lifespan="on",
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        pass
    finally:
        getattr(backend, "close", lambda: None)()
        sock.close()
    print("stopped", flush=True)
    return 0
