"""Weaviate's ``multi2vec-clip`` inference API on the local server: ``CLIP_INFERENCE_API`` can point here.

The routes (``/.well-known/live``, ``/.well-known/ready``, ``/meta``, ``/vectorize``) take no API key,
because Weaviate sends none: they belong on a private network next to Weaviate (see docs/WEAVIATE.md).
"""

from __future__ import annotations

from local_server.weaviate.options import ENV_VAR, choose, flag_from_env, routes_enabled
from local_server.weaviate.routes import WeaviateRoutes

__all__ = ["ENV_VAR", "WeaviateRoutes", "choose", "flag_from_env", "routes_enabled"]
