"""The public HTTP API as a Powertools resolver: ``create_app(backend, settings)``."""

from omnisearch_embed.api.factory import create_app

__all__ = ["create_app"]
