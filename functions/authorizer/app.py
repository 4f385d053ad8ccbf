"""REQUEST authorizer that lets OpenAI clients use the API key they already send.

API Gateway only reads ``x-api-key`` by itself, while the OpenAI SDKs (and LangChain, LlamaIndex, ...) send
``Authorization: Bearer <key>``. The API therefore uses ``ApiKeySourceType: AUTHORIZER``: this function takes
the key from either header and hands it back as ``usageIdentifierKey``. It does not judge the key itself:
API Gateway then checks it against the usage plan (unknown key -> 403, throttling, quota), exactly as it
would for ``x-api-key``. No key at all -> ``Unauthorized`` (API Gateway's 401).

Results are not cached (``ReauthorizeEvery: 0``): a cache needs identity sources, and API Gateway answers 401
without calling the authorizer whenever one listed source is missing, so no cache key can express
"x-api-key OR Authorization". The function does no I/O, so an uncached call costs about a millisecond.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from omnisearch_embed.api_keys import extract_api_key

logger = Logger()

# API Gateway turns exactly this message into a 401 (the UNAUTHORIZED gateway response).
UNAUTHORIZED = "Unauthorized"


def principal_for(key: str) -> str:
    """A stable, non-secret principal id: access logs and CloudWatch show it, never the key itself."""
    return "apikey-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def build_policy(event: APIGatewayAuthorizerRequestEvent, key: str, source: str) -> dict[str, Any]:
    """Allow exactly the method being called (the result is not cached) and name the usage plan key."""
    arn = event.parsed_arn
    response = APIGatewayAuthorizerResponse(
        principal_id=principal_for(key),
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context={"keySource": source},
        usage_identifier_key=key,
        partition=arn.partition,
    )
    response.allow_route(http_method=arn.http_method or "*", resource=arn.resource or "/")
    return response.asdict()


@logger.inject_lambda_context
def lambda_handler(raw_event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Not @event_source: its middleware would log a traceback for every request without a key.
    event = APIGatewayAuthorizerRequestEvent(raw_event)
    found = extract_api_key(event.get("headers"))
    if found is None:
        logger.info("no API key", extra={"path": event.get("path"), "method": event.get("httpMethod")})
        raise Exception(UNAUTHORIZED)  # API Gateway matches this exact message
    key, source = found
    logger.debug("API key found", extra={"key_source": source, "principal": principal_for(key)})
    return build_policy(event, key, source)
