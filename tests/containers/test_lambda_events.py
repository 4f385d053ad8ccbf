"""Every events/*.json through the functions in the Lambda python3.13 runtime (equivalent) under the real SAM CLI.

The functions run from ``sam build`` (x86_64) in SAM's emulator, warm (``sam local start-lambda``); the embed
function reaches the SageMaker runtime front through ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (``--env-vars``) and
S3 through moto. Each event must get what the API promises: its vectors are the model's own.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from containers.sam import SamCli
from omnisearch_testkit.events import load_event
from tests.containers.local_aws import AWS, ENDPOINT, EVENTS, event_body, function_env, red_circle

MIN_COSINE = 0.9999


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def assert_same_vectors(got: Sequence[Sequence[float]], expected: Sequence[Sequence[float]]) -> None:
    assert len(got) == len(expected)
    assert all(cosine(g, e) >= MIN_COSINE for g, e in zip(got, expected, strict=True))


@pytest.fixture(scope="module")
def lambda_url(sam: SamCli, emulation: str, moto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sam.serving("start-lambda", function_env(emulation, moto), tmp_path_factory.mktemp("sam")) as url:
        yield url


def invoke(url: str, function: str, event: str | dict[str, Any]) -> tuple[int, Any]:
    """``event``: the name of an events/*.json file, or an event built by the test."""
    client = boto3.client("lambda", endpoint_url=url, config=Config(read_timeout=300, retries={"max_attempts": 0}),
                          **AWS)  # fmt: skip
    payload = (EVENTS / f"{event}.json").read_bytes() if isinstance(event, str) else json.dumps(event).encode()
    answer = client.invoke(FunctionName=function, Payload=payload)
    assert "FunctionError" not in answer, answer["Payload"].read()
    proxy = json.loads(answer["Payload"].read())
    return proxy["statusCode"], json.loads(proxy["body"])


def texts(tiny: Any, *items: str) -> list[list[float]]:
    return [list(v) for v in tiny.embed_texts(list(items)).vectors]


def images(tiny: Any, *items: bytes) -> list[list[float]]:
    return [list(v) for v in tiny.embed_images(list(items)).vectors]


def test_every_event_has_an_expectation() -> None:
    assert {path.stem for path in EVENTS.glob("*.json")} == set(EXPECT)


def _health(body: dict, tiny: Any) -> None:
    assert body["status"] == "ok" and body["model"] == "tiny-shapes"
    assert body["backend"] == {"status": "ok", "service": "sagemaker", "endpoint": ENDPOINT, "model": "tiny-shapes"}


def _health_deep(body: dict, tiny: Any) -> None:
    _health(body, tiny)
    assert body["deep"]["ok"] is True and body["deep"]["dimension"] == 64 and body["deep"]["service"] == "sagemaker"


def _batch_image(body: dict, tiny: Any) -> None:
    inline = base64.b64decode(event_body("embed_batch_image")["images"][0])
    assert_same_vectors(body["embeddings"], images(tiny, inline, red_circle()))


def _metrics(body: dict, tiny: Any) -> None:
    assert body["endpoint_name"] == ENDPOINT and body["endpoint_status"] == "InService"
    assert body["variant_name"] == "AllTraffic" and body["current_instances"] == 1


def _v1_embeddings(body: dict, tiny: Any) -> None:
    assert [item["index"] for item in body["data"]] == [0, 1]
    got = [item["embedding"] for item in body["data"]]
    assert_same_vectors(got, texts(tiny, *event_body("v1_embeddings")["input"]))


def _one_image(body: dict, tiny: Any) -> None:
    assert_same_vectors([body["embedding"]], images(tiny, red_circle()))


def _classify(body: dict, tiny: Any, labels: Sequence[str], template: str, top_k: int | None = None) -> None:
    """The ranking of the model's own vectors: softmax of logit_scale x cosine over the event's labels."""
    (image,) = images(tiny, red_circle())
    prompts = texts(tiny, *(template.replace("{}", label) for label in labels))
    scale = tiny.embed_texts(["probe"]).logit_scale
    logits = [scale * cosine(image, p) for p in prompts]
    weights = [math.exp(x - max(logits)) for x in logits]
    expected = sorted(zip(labels, (w / sum(weights) for w in weights), strict=True), key=lambda lp: -lp[1])
    expected = expected[:top_k]
    (result,) = body["results"]
    assert [item["label"] for item in result["labels"]] == [label for label, _ in expected]
    assert all(abs(item["probability"] - p) < 1e-4 for item, (_, p) in zip(result["labels"], expected, strict=True))
    assert body["model"] == "tiny-shapes" and body["service"] == "sagemaker" and body["truncated_labels"] == []
    assert abs(body["logit_scale"] - scale) < 1e-3


def _classify_json(body: dict, tiny: Any) -> None:
    sent = event_body("classify")
    _classify(body, tiny, sent["labels"], sent["template"])


def _classify_multipart(body: dict, tiny: Any) -> None:
    form = base64.b64decode(json.loads((EVENTS / "classify_multipart.json").read_text())["body"]).decode("latin-1")
    labels = json.loads(re.search(r'name="labels"\r\n\r\n(.*?)\r\n', form).group(1))
    top_k = int(re.search(r'name="top_k"\r\n\r\n(.*?)\r\n', form).group(1))
    assert body["template"] == "a photo of {}"
    _classify(body, tiny, labels, body["template"], top_k)


def _batch_mixed(body: dict, tiny: Any) -> None:
    sent = event_body("embed_batch_mixed")["items"]
    expected = [
        texts(tiny, item["text"])[0] if "text" in item else images(tiny, _data_uri_bytes(item["image"]))[0]
        for item in sent
    ]
    assert_same_vectors(body["embeddings"], expected)
    assert body["truncated"] == [False] * len(sent)


def _data_uri_bytes(uri: str) -> bytes:
    """A data URI's picture; the events' ``s3://`` URI names the red circle the moto fixture put there."""
    return red_circle() if uri.startswith("s3://") else base64.b64decode(uri.split(",", 1)[1])


EXPECT = {
    "classify": _classify_json,
    "classify_multipart": _classify_multipart,
    "embed_batch_mixed": _batch_mixed,
    "health": _health,
    "health_deep": _health_deep,
    "embed_text": lambda body, tiny: assert_same_vectors([body["embedding"]], texts(tiny, "a red circle")),
    "embed_text_base64": lambda body, tiny: assert_same_vectors([body["embedding"]], texts(tiny, "a blue square")),
    "embed_batch_text": lambda body, tiny: assert_same_vectors(
        body["embeddings"], texts(tiny, "a red circle", "a green triangle", "a blue square")
    ),
    "embed_image_json": _one_image,
    "embed_image_multipart": _one_image,
    "embed_image_raw_png": _one_image,
    "embed_image_s3": _one_image,
    "embed_batch_image": _batch_image,
    "v1_embeddings": _v1_embeddings,
    "v1_models": lambda body, tiny: [m["id"] for m in body["data"]] == ["tiny-shapes"] or pytest.fail(str(body)),
    "metrics": _metrics,
}


@pytest.mark.parametrize("event", sorted(EXPECT))
def test_event_in_the_lambda_runtime(lambda_url: str, tiny: Any, event: str) -> None:
    function = "MetricsFunction" if event == "metrics" else "EmbedFunction"
    status, body = invoke(lambda_url, function, event)
    assert status == 200, body
    EXPECT[event](body, tiny)


def test_a_bad_image_in_a_batch_is_named_by_its_index(lambda_url: str) -> None:
    """The function in its runtime answers a truncated second image with 422, naming ``images[1]``."""
    good = base64.b64encode(red_circle()).decode()
    bad = base64.b64encode(red_circle()[:60]).decode()
    status, body = invoke(lambda_url, "EmbedFunction", load_event("embed_batch_image", body={"images": [good, bad]}))
    assert status == 422, body
    assert body["error"]["code"] == "corrupt_image" and body["error"]["message"].startswith("images[1]: "), body


def test_cold_start_under_sam_local_invoke(sam: SamCli, emulation: str, moto: str, tmp_path: Path) -> None:
    """One ``sam local invoke`` (a fresh container): the emulator's Init Duration plus the first request."""
    invoked = sam.invoke("EmbedFunction", EVENTS / "embed_text.json", function_env(emulation, moto), tmp_path)
    assert invoked.status == 200, invoked.body
    assert len(invoked.json()["embedding"]) == 64
    print(
        f"\ncold start (x86_64 equivalent): init {invoked.init_ms:.0f} ms + first request {invoked.duration_ms:.0f} ms"
    )
