"""api/errors.py on a bare resolver: the error shapes, and 405 versus 404 (the one read of Powertools internals)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from local_server.lambda_context import LambdaContext
from omnisearch_embed.api.errors import (
    allowed_methods,
    describe_validation_errors,
    error_body,
    install_error_handlers,
    openai_error_type,
)
from omnisearch_embed.errors import ThrottledError
from omnisearch_testkit.events import make_event


@pytest.fixture
def app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    install_error_handlers(app)

    @app.post("/items/<item_id>")
    def _post(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @app.put("/items/<item_id>")
    def _put(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @app.get("/busy")
    def _busy() -> dict[str, str]:
        raise ThrottledError("slow down", code="throttled")

    return app


def call(app: APIGatewayRestResolver, method: str, path: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    response = app.resolve(make_event(method, path), LambdaContext())
    return response["statusCode"], response["multiValueHeaders"], json.loads(response["body"])


def test_a_known_path_with_another_method_is_405_naming_the_allowed_ones(app: APIGatewayRestResolver) -> None:
    status, headers, body = call(app, "GET", "/items/7")
    assert status == 405 and headers["Allow"] == ["POST, PUT"]
    assert body["error"]["code"] == "method_not_allowed" and "use POST, PUT" in body["error"]["message"]


def test_an_unknown_path_is_404(app: APIGatewayRestResolver) -> None:
    status, _, body = call(app, "GET", "/nothing")
    assert (status, body["error"]["code"]) == (404, "route_not_found")


def test_allowed_methods_reads_static_and_dynamic_routes(app: APIGatewayRestResolver) -> None:
    assert allowed_methods(app, "/items/1") == ["POST", "PUT"]
    assert allowed_methods(app, "/busy") == ["GET"]
    assert allowed_methods(app, "/nothing") == []


def test_an_embed_error_keeps_its_status_and_code(app: APIGatewayRestResolver) -> None:
    status, _, body = call(app, "GET", "/busy")
    assert (status, body) == (429, {"error": {"code": "throttled", "message": "slow down"}})


def test_openai_paths_get_openai_shaped_errors() -> None:
    assert error_body("/v1/embeddings", 429, "throttled", "slow", "input") == {
        "error": {"message": "slow", "type": "rate_limit_error", "param": "input", "code": "throttled"}
    }
    assert error_body("/embed/text", 429, "throttled", "slow") == {"error": {"code": "throttled", "message": "slow"}}


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
     (429, "rate_limit_error"), (503, "api_error"), (422, "invalid_request_error")],
)  # fmt: skip
def test_openai_error_type_follows_the_status(status: int, kind: str) -> None:
    assert openai_error_type(status) == kind


def test_validation_errors_name_locations_never_values() -> None:
    errors = [{"loc": ("body", "texts", 0), "msg": "Input should be a valid string", "input": "SECRET"}] * 7
    message, param = describe_validation_errors(errors)
    assert param == "texts.0" and "SECRET" not in message and message.endswith("; and 2 more")
    assert describe_validation_errors([{"loc": ("body",), "type": "missing"}]) == (
        "the request needs a JSON body",
        None,
    )
    assert describe_validation_errors([]) == ("the request is invalid", None)
