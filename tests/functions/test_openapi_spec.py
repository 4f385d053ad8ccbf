"""The OpenAPI document Swagger UI reads: valid OpenAPI 3.1, and every request body it declares is one the code takes.

``POST /embed/image`` reads its body itself, so its request body is declared by hand; these tests keep that
declaration and the code from drifting apart, by sending one request per declared content type.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from local_server.lambda_context import LambdaContext
from omnisearch_embed.api import create_app
from omnisearch_embed.images import MEDIA_TYPES
from omnisearch_testkit.events import load_event, make_event, multipart_body
from omnisearch_testkit.images import animated, image_bytes
from tests.helpers.backends import StaticBackend
from tests.helpers.lambda_app import SETTINGS

APP = create_app(StaticBackend(), SETTINGS)
SPEC: dict[str, Any] = json.loads(APP.get_openapi_json_schema())
IMAGE_BODY = SPEC["paths"]["/embed/image"]["post"]["requestBody"]
FILES = {"image/png": image_bytes("PNG"), "image/jpeg": image_bytes("JPEG"), "image/webp": image_bytes("WEBP")}
FILES["image/gif"] = animated("GIF")


def resolve(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = APP.resolve(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_the_document_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1")
    validate(SPEC)


def test_image_upload_is_declared_as_a_form_file_raw_images_and_json() -> None:
    content = IMAGE_BODY["content"]
    assert IMAGE_BODY["required"] is True
    assert next(iter(content)) == "multipart/form-data"  # Swagger UI selects the first: the file picker
    form = content["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": "PNG, JPEG, WebP or GIF",
    }
    assert {k for k in content if k.startswith("image/")} == set(MEDIA_TYPES) - {"image/jpg"}
    assert all(content[k]["schema"] == {"type": "string", "format": "binary"} for k in content if "image/" in k)
    assert set(content["application/json"]["schema"]["properties"]) == {"image", "s3_uri", "normalize", "encoding"}
    query = SPEC["paths"]["/embed/image"]["post"]["parameters"]
    assert {(p["name"], p["in"]) for p in query} == {("normalize", "query"), ("encoding", "query")}


@pytest.mark.parametrize("media", list(IMAGE_BODY["content"]))
def test_every_declared_image_body_embeds(media: str) -> None:
    if media == "multipart/form-data":
        form = multipart_body({"file": ("c.png", FILES["image/png"], "image/png")}, {"normalize": "false"})
        event = load_event("embed_image_multipart", body=form)
    elif media == "application/json":
        event = load_event("embed_image_json", body={"image": base64.b64encode(FILES["image/webp"]).decode()})
    else:
        event = make_event("POST", "/embed/image", body=FILES[media], headers={"Content-Type": media})
        event["queryStringParameters"] = {"encoding": "base64"}
    status, body = resolve(event)
    assert status == 200, body
    assert body["dimension"] == 8 and body["model"] == "static-test"


def test_json_routes_declare_json_bodies_only() -> None:
    for path, item in SPEC["paths"].items():
        if "post" in item and path not in ("/embed/image", "/classify"):
            assert set(item["post"]["requestBody"]["content"]) == {"application/json"}, path


CLASSIFY_BODY = SPEC["paths"]["/classify"]["post"]["requestBody"]


@pytest.mark.parametrize("media", list(CLASSIFY_BODY["content"]))
def test_every_declared_classify_body_classifies(media: str) -> None:
    app = create_app(StaticBackend(logit_scale=30.0), SETTINGS)
    labels = ["circle", "square", "star"]
    if media == "multipart/form-data":
        form = multipart_body({"file": ("c.png", FILES["image/png"], "image/png")}, {"labels": json.dumps(labels)})
        event = load_event("classify_multipart", body=form)
    elif media == "application/json":
        event = load_event("classify", body={"image": base64.b64encode(FILES["image/webp"]).decode(), "labels": labels})
    else:
        event = make_event("POST", "/classify", body=FILES[media], headers={"Content-Type": media})
        event["multiValueQueryStringParameters"] = {"labels": labels, "top_k": ["2"]}
        event["queryStringParameters"] = {"labels": labels[-1], "top_k": "2"}
    response = app.resolve(event, LambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert body["logit_scale"] == 30.0 and len(body["results"]) == 1
    assert {s["label"] for s in body["results"][0]["labels"]} <= set(labels)
    declared = {p["name"] for p in SPEC["paths"]["/classify"]["post"]["parameters"]}
    assert declared == {"labels", "template", "top_k"}
