"""The REST API as SAM generates it: which routes need a key, how the key is read, what the gateway answers."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from omnisearch_embed.api.cors import ALLOW_HEADERS
from omnisearch_embed.settings import Settings

SWAGGER = ("/swagger", "get")  # served by Powertools' enable_swagger, not listed in its own OpenAPI
OPEN_ROUTES = {("/health", "get"), SWAGGER}  # a browser opens the docs page without a key header


def app_routes() -> dict[tuple[str, str], str]:
    """Every route the real resolvers serve (their OpenAPI paths use API Gateway's {param} syntax)."""
    from omnisearch_embed.api import create_app
    from omnisearch_embed.settings import Settings
    from tests.helpers.backends import StaticBackend

    metrics_app = importlib.import_module("functions.metrics.app").app
    embed_app = create_app(StaticBackend(), Settings())
    routes = {SWAGGER: "EmbedFunction"}
    for app, function in ((embed_app, "EmbedFunction"), (metrics_app, "MetricsFunction")):
        for path, item in app.get_openapi_schema().paths.items():
            for method in item.model_dump(exclude_none=True):
                routes[(path, method)] = function
    return routes


def api_body(stack: Any) -> dict[str, Any]:
    return stack.resources["EmbedApi"]["Properties"]["Body"]


def operations(stack: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): op
        for path, item in api_body(stack)["paths"].items()
        for method, op in item.items()
        if method != "options"
    }


def test_the_api_routes_exactly_what_the_handlers_serve(stack: Any) -> None:
    routes = app_routes()
    assert set(operations(stack)) == set(routes)
    for route, op in operations(stack).items():
        uri = stack.resolve(op["x-amazon-apigateway-integration"]["uri"])
        assert op["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
        # Through the alias, so CodeDeploy's traffic shifting applies to API traffic.
        assert f"<{routes[route]}Aliaslive>" in uri, route


def test_every_route_but_health_and_swagger_needs_the_authorizer_and_a_usage_plan_key(stack: Any) -> None:
    keyed = [route for route in operations(stack) if route not in OPEN_ROUTES]
    assert len(keyed) >= 8
    for route in keyed:
        assert operations(stack)[route]["security"] == [{"ApiKeyAuthorizer": []}, {"api_key": []}], route


def test_health_and_swagger_need_no_key_and_no_authorizer(stack: Any) -> None:
    for route in OPEN_ROUTES:
        assert operations(stack)[route]["security"] == [], route


def test_cors_preflight_needs_no_key(stack: Any) -> None:
    for path, item in api_body(stack)["paths"].items():
        assert "options" in item, path
        assert "security" not in item["options"] or item["options"]["security"] == [], path
        assert item["options"]["x-amazon-apigateway-integration"]["type"] == "mock"


def test_cors_origin_is_the_parameter(make_stack: Any) -> None:
    stack = make_stack(CorsAllowOrigin="https://app.example.com")
    preflight = stack.resolve(api_body(stack)["paths"]["/embed/text"]["options"])
    headers = preflight["x-amazon-apigateway-integration"]["responses"]["default"]["responseParameters"]
    assert headers["method.response.header.Access-Control-Allow-Origin"] == "'https://app.example.com'"
    allowed = headers["method.response.header.Access-Control-Allow-Headers"].strip("'").split(",")
    assert allowed == list(ALLOW_HEADERS)  # the local server's preflight answers the same list
    assert {"X-Stainless-Retry-Count", "X-Stainless-OS", "Authorization"} <= set(allowed)
    # real responses need the origin too: the handler adds it only when it knows it
    env = stack.props("EmbedFunction")["Environment"]["Variables"]
    assert env["CORS_ALLOW_ORIGIN"] == "https://app.example.com"
    assert Settings.from_env({**env, "AWS_REGION": "us-east-1"}).cors_allow_origin == "https://app.example.com"


def test_key_comes_from_the_authorizer_which_is_uncached(stack: Any) -> None:
    assert stack.props("EmbedApi")["ApiKeySourceType"] == "AUTHORIZER"
    scheme = api_body(stack)["components"]["securitySchemes"]["ApiKeyAuthorizer"]
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "request"
    # TTL 0 and no identity source: API Gateway calls the authorizer on every request, with or without
    # either header, so "x-api-key OR Authorization" works (a cached authorizer needs all its sources).
    assert authorizer["authorizerResultTtlInSeconds"] == 0
    assert "identitySource" not in authorizer
    assert "<AuthorizerFunctionAliaslive>" in stack.resolve(authorizer["authorizerUri"])
    assert stack.props("AuthorizerFunction")["Handler"] == "app.lambda_handler"


def test_api_gateway_may_invoke_the_authorizer_alias_only_from_this_api(stack: Any) -> None:
    name = "EmbedApiApiKeyAuthorizerAuthorizerPermission"
    props = stack.props(name)
    assert props["FunctionName"] == "<AuthorizerFunctionAliaslive>"
    assert props["Principal"] == "apigateway.amazonaws.com"
    assert props["SourceArn"] == "arn:aws:execute-api:us-east-1:123456789012:<EmbedApi>/authorizers/*"


def test_binary_media_types_for_image_uploads(stack: Any) -> None:
    assert api_body(stack)["x-amazon-apigateway-binary-media-types"] == ["multipart/form-data", "image/*"]


def test_usage_plan_throttle_and_quota_come_from_parameters(make_stack: Any) -> None:
    stack = make_stack(ThrottleRateLimit="7", ThrottleBurstLimit="11", QuotaLimit="12345", Stage="qa")
    plan = stack.props("EmbedApiUsagePlan")
    # Number parameters reach CloudFormation as strings; it converts them.
    assert {k: int(v) for k, v in plan["Throttle"].items()} == {"RateLimit": 7, "BurstLimit": 11}
    assert (int(plan["Quota"]["Limit"]), plan["Quota"]["Period"]) == (12345, "MONTH")
    assert plan["ApiStages"] == [{"ApiId": "<EmbedApi>", "Stage": "<EmbedApiStage>"}]
    key = stack.props("EmbedApiUsagePlanKey")
    assert key == {"KeyId": "<EmbedApiApiKey>", "KeyType": "API_KEY", "UsagePlanId": "<EmbedApiUsagePlan>"}


def test_stage_has_tracing_and_json_access_logs(stack: Any) -> None:
    stage = stack.props("EmbedApiStage")
    assert stage["StageName"] == "dev"
    assert stage["TracingEnabled"] is True
    log = stage["AccessLogSetting"]
    assert log["DestinationArn"] == (
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/apigateway/omnisearch-embed-dev/access:*"
    )
    fields = stack.filled_json(log["Format"])
    assert {"requestId", "status", "latencyMs", "apiKeyId", "keySource", "error"} <= set(fields)


GATEWAY_CODES = {
    "UNAUTHORIZED": ("missing_api_key", None),
    "INVALID_API_KEY": ("invalid_api_key", None),
    "ACCESS_DENIED": ("access_denied", None),
    "THROTTLED": ("rate_limited", None),
    "QUOTA_EXCEEDED": ("quota_exceeded", None),
    "MISSING_AUTHENTICATION_TOKEN": ("not_found", "404"),
    "REQUEST_TOO_LARGE": ("request_too_large", None),
    "INTEGRATION_TIMEOUT": ("gateway_timeout", None),
    "DEFAULT_4XX": ("bad_request", None),
    "DEFAULT_5XX": ("gateway_error", None),
}


@pytest.mark.parametrize("response_type", sorted(GATEWAY_CODES))
def test_gateway_errors_are_json_in_both_error_shapes(stack: Any, response_type: str) -> None:
    responses = stack.resolve(api_body(stack)["x-amazon-apigateway-gateway-responses"])
    response = responses[response_type]
    code, status = GATEWAY_CODES[response_type]
    error = stack.filled_json(response["responseTemplates"]["application/json"])["error"]
    # {"code", "message"} is the service's shape; {"message", "type", "param", "code"} is OpenAI's.
    assert set(error) == {"code", "message", "type", "param"}
    assert error["code"] == code
    assert error["message"]
    assert response.get("statusCode") == status
    assert response["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"


def test_every_gateway_response_is_covered(stack: Any) -> None:
    assert set(api_body(stack)["x-amazon-apigateway-gateway-responses"]) == set(GATEWAY_CODES)
