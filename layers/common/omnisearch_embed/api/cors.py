"""CORS for browsers: which origin may read our answers and which request headers a preflight may ask for.

API Gateway answers preflights itself (template.yaml's ``Cors``, kept equal to :data:`ALLOW_HEADERS` by a
test); the handlers add ``Access-Control-Allow-Origin`` to real responses, and the local server's
Powertools app answers both. ``CORS_ALLOW_ORIGIN`` empty means no CORS headers at all.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import CORSConfig

from omnisearch_embed.settings import Settings

# What the official OpenAI JS SDK (npm ``openai``) sends from a browser besides Authorization and Content-Type:
# its platform headers on every call, the retry and timeout headers, and the helper/poll ones of some methods.
OPENAI_SDK_HEADERS: tuple[str, ...] = (
    "X-Stainless-Arch",
    "X-Stainless-Lang",
    "X-Stainless-OS",
    "X-Stainless-Package-Version",
    "X-Stainless-Runtime",
    "X-Stainless-Runtime-Version",
    "X-Stainless-Retry-Count",
    "X-Stainless-Timeout",
    "X-Stainless-Helper-Method",
    "X-Stainless-Poll-Helper",
    "X-Stainless-Custom-Poll-Interval",
    "OpenAI-Organization",
    "OpenAI-Project",
)
ALLOW_HEADERS: tuple[str, ...] = ("Content-Type", "Authorization", "X-Api-Key", *OPENAI_SDK_HEADERS)
MAX_AGE_SECONDS = 600


def cors_config(settings: Settings) -> CORSConfig | None:
    """Powertools' CORS for the resolver, or None when ``CORS_ALLOW_ORIGIN`` is empty."""
    if not settings.cors_allow_origin:
        return None
    return CORSConfig(
        allow_origin=settings.cors_allow_origin, allow_headers=list(ALLOW_HEADERS), max_age=MAX_AGE_SECONDS
    )
