"""A bad image inside a batch fails the request naming the caller's item (``images[1]``), as texts do.

Two places can refuse an image: the core's checks (a truncated file) and the model itself (its own decoder
and limits, answered through SageMaker as a ModelError for one chunk of a split batch). Either way the
error names the item by its place in the caller's list, not in the chunk the model saw.
"""

from __future__ import annotations

import base64
import json

import pytest
from botocore.stub import Stubber

from omnisearch_embed.backends import wire
from omnisearch_embed.backends.sagemaker import SageMakerBackend
from omnisearch_testkit.events import load_event, sample_png
from omnisearch_testkit.images import image_bytes, truncated_png
from omnisearch_testkit.sagemaker_stubs import container_body, invoke_params, item_vector, runtime_client, stub_response
from tests.helpers.backends import StaticBackend
from tests.helpers.lambda_app import invoke, use_backend

ENDPOINT = "omnisearch-embed-test"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("bad", [truncated_png(), image_bytes("JPEG", (64, 64))[:300]], ids=["png", "jpeg"])
def test_a_truncated_image_in_a_batch_names_its_index(monkeypatch: pytest.MonkeyPatch, bad: bytes) -> None:
    use_backend(monkeypatch, StaticBackend())
    event = load_event("embed_batch_image", body={"images": [b64(sample_png()), b64(bad), b64(sample_png())]})
    status, body = invoke(event)
    assert status == 422, body
    assert body["error"]["code"] == "corrupt_image"
    assert body["error"]["message"].startswith("images[1]: "), body


def test_a_single_image_error_keeps_its_plain_message(monkeypatch: pytest.MonkeyPatch) -> None:
    use_backend(monkeypatch, StaticBackend())
    status, body = invoke(load_event("embed_image_json", body={"image": b64(truncated_png())}))
    assert status == 422 and body["error"]["message"].startswith("the PNG image is truncated"), body


def test_the_model_refusing_an_image_of_a_later_chunk_names_the_callers_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three images, one per invocation; the container refuses the only image of the third chunk."""
    images = [sample_png(), sample_png(colour=(30, 200, 30)), sample_png(colour=(30, 30, 200))]
    single = wire.image_chunks(images[:1])[0].body
    chunks = wire.image_chunks(images, max_bytes=len(single) + 8)
    assert [c.count for c in chunks] == [1, 1, 1]
    client = runtime_client()
    backend = SageMakerBackend(
        ENDPOINT, "tiny-shapes", client=client, max_invoke_bytes=len(single) + 8, max_concurrency=1
    )
    error = json.dumps({"code": "invalid_image", "message": "images[0] is not a readable image (90 bytes): broken"})
    with Stubber(client) as stub:
        for chunk in chunks[:2]:
            stub.add_response(
                "invoke_endpoint",
                stub_response(container_body([item_vector(b"x")], model="tiny-shapes")),
                invoke_params(ENDPOINT, chunk.body),
            )
        stub.add_client_error(
            "invoke_endpoint", "ModelError", "Received client error (422) from primary", 424,
            modeled_fields={"OriginalStatusCode": 422, "OriginalMessage": error},
            expected_params=invoke_params(ENDPOINT, chunks[2].body),
        )  # fmt: skip
        use_backend(monkeypatch, backend)
        status, body = invoke(load_event("embed_batch_image", body={"images": [b64(i) for i in images]}))
        stub.assert_no_pending_responses()
    assert status == 422, body
    assert body["error"] == {"code": "invalid_image", "message": "images[2] is not a readable image (90 bytes): broken"}


def test_v1_names_the_input_item_the_model_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    client = runtime_client()
    error = json.dumps({"code": "invalid_image", "message": "images[1] is not a readable image (90 bytes): broken"})
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_endpoint", "ModelError", "Received client error (422) from primary", 424,
            modeled_fields={"OriginalStatusCode": 422, "OriginalMessage": error},
        )  # fmt: skip
        use_backend(monkeypatch, SageMakerBackend(ENDPOINT, "tiny-shapes", client=client))
        uri = "data:image/png;base64," + b64(sample_png())
        event = load_event("v1_embeddings", body={"input": [uri, uri], "model": "tiny-shapes", "modality": "image"})
        status, body = invoke(event)
    assert status == 422, body
    assert body["error"]["param"] == "input[1]" and body["error"]["message"].startswith("input[1] is not a readable")
