"""api/json_body.py on a bare resolver: JSON is the only body a pydantic route reads, whatever Powertools parses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
from pydantic import BaseModel

from local_server.lambda_context import LambdaContext
from omnisearch_embed.api.errors import install_error_handlers
from omnisearch_embed.api.json_body import install_json_bodies, json_loader, media_type
from omnisearch_embed.errors import InvalidInputError, PayloadTooLargeError
from omnisearch_testkit.events import make_event


class Item(BaseModel):
    name: str


@pytest.fixture
def app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=json_loader(1000))
    install_json_bodies(app)
    install_error_handlers(app)

    @app.post("/items")
    def _items(item: Item) -> dict[str, str]:
        return {"name": item.name}

    return app


def post(app: APIGatewayRestResolver, body: str, content_type: str | None) -> tuple[int, dict[str, Any]]:
    event = make_event("POST", "/items", body=body, headers={"Content-Type": content_type})
    response = app.resolve(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize("content_type", [None, "application/json", "Application/JSON; charset=utf-8"])
def test_json_is_read_under_any_spelling_of_its_media_type(app: APIGatewayRestResolver, content_type: Any) -> None:
    assert post(app, '{"name": "a"}', content_type) == (200, {"name": "a"})


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=x"]
)
def test_forms_are_415_not_parsed_by_powertools(app: APIGatewayRestResolver, content_type: str) -> None:
    status, body = post(app, "name=a", content_type)
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")


def test_bad_json_is_400_and_an_oversized_body_413(app: APIGatewayRestResolver) -> None:
    status, body = post(app, '{"name": ', "application/json")
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    status, body = post(app, json.dumps({"name": "x" * 2000}), "application/json")
    assert (status, body["error"]["code"]) == (413, "request_too_large")


def test_json_loader_refuses_before_parsing() -> None:
    load = json_loader(10)
    assert load('{"a": 1}') == {"a": 1}
    with pytest.raises(PayloadTooLargeError):
        load("é" * 6)  # 6 characters, 12 bytes
    for bad in ("[" * 100_000, "1" * 5000, "{"):
        with pytest.raises(InvalidInputError):
            json_loader(1 << 20)(bad)


def test_media_type_drops_parameters_and_case() -> None:
    assert media_type("Image/PNG; q=1") == "image/png" and media_type(None) == ""


def test_install_refuses_an_app_without_validation() -> None:
    with pytest.raises(ValueError, match="enable_validation"):
        install_json_bodies(APIGatewayRestResolver())


def test_install_fails_loudly_if_powertools_stops_reading_bodies_through_get_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(OpenAPIRequestValidationMiddleware, "_get_body")
    with pytest.raises(RuntimeError, match="_get_body"):
        install_json_bodies(APIGatewayRestResolver(enable_validation=True))
