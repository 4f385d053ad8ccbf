"""``create_app``: one Powertools resolver per call, wired to one :class:`EmbedService`.

Routes are registered by functions (``register_text_routes(app, service)``) rather than module-level
``Router`` singletons: Powertools binds a Router to the last app that included it, and the local
server builds one app per thread, so shared routers would answer with another thread's event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from omnisearch_embed import __version__
from omnisearch_embed.api.batch import register_batch_routes
from omnisearch_embed.api.classify import register_classify_routes
from omnisearch_embed.api.cors import cors_config
from omnisearch_embed.api.errors import ErrorHook, install_error_handlers
from omnisearch_embed.api.health import register_health_routes
from omnisearch_embed.api.image import register_image_routes
from omnisearch_embed.api.json_body import install_json_bodies, json_loader
from omnisearch_embed.api.openai_routes import register_openai_routes
from omnisearch_embed.api.swagger import register_swagger
from omnisearch_embed.api.text import register_text_routes
from omnisearch_embed.backends.base import Backend
from omnisearch_embed.classify import Classifier
from omnisearch_embed.s3_images import S3ImageFetcher
from omnisearch_embed.service import EmbedService, EmbedStats
from omnisearch_embed.settings import Settings

TITLE = "OmniSearch Embed"
DESCRIPTION = 'CLIP embeddings for text and images. Errors are `{"error": {"code", "message"}}`.'


def create_app(
    backend: Backend,
    settings: Settings | None = None,
    *,
    s3_client: Any | None = None,
    on_embedded: Callable[[EmbedStats], None] | None = None,
    on_error: ErrorHook | None = None,
) -> APIGatewayRestResolver:
    """Build the API around ``backend``; ``settings`` default to the environment's.

    ``s3_client`` replaces the lazily created boto3 S3 client; ``on_embedded`` receives one
    :class:`EmbedStats` per backend call and ``on_error(code, status)`` one call per error response
    (the Lambda turns both into metrics).
    """
    settings = settings if settings is not None else Settings.from_env()
    service = EmbedService(backend, settings, s3=S3ImageFetcher(settings, s3_client=s3_client), on_embedded=on_embedded)
    # With proxy integration API Gateway only answers preflights; real responses need the headers from us.
    cors = cors_config(settings)
    app = APIGatewayRestResolver(
        cors=cors, enable_validation=True, json_body_deserializer=json_loader(settings.max_request_bytes)
    )
    install_json_bodies(app)
    register_swagger(app, title=TITLE, version=__version__, description=DESCRIPTION)
    install_error_handlers(app, on_error=on_error)
    register_text_routes(app, service)
    register_image_routes(app, service)
    register_batch_routes(app, service)
    register_classify_routes(app, service, Classifier(service))
    register_health_routes(app, service)
    register_openai_routes(app, service)
    return app
