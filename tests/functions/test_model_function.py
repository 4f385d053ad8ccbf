"""ModelFunction's handler in process over the tiny-shapes archive: the wire's bytes, bad input, the init checks.

Its answers are compared with inference.py's own functions over the same unpacked archive, and the core's
LambdaModelBackend reads them through a real boto3 Lambda client (Stubber) as it would in AWS.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from model_code.code import inference
from omnisearch_embed.backends import wire
from omnisearch_embed.backends.lambda_model import LambdaModelBackend, event_bytes
from omnisearch_embed.embeddings import SERVICE_LAMBDA_MODEL
from omnisearch_embed.env import ConfigError
from omnisearch_embed.errors import UnprocessableError
from omnisearch_testkit.events import sample_png
from omnisearch_testkit.images import truncated_png
from tests.helpers.model_dirs import copy_of

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "functions" / "model" / "app.py"
FUNCTION = "omnisearch-embed-dev-model"
TEXTS = ["a red circle", "a blue star", "ein grünes Dreieck " * 40]
_names = itertools.count()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from omnisearch_ops import package_model

    work = tmp_path_factory.mktemp("archive")
    archive = package_model.build_archive("tiny-shapes", "", work / "model.tar.gz")
    target = work / "model"
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")
    return target


def load_app(monkeypatch: pytest.MonkeyPatch, model_dir: Path, expected: str | None = None) -> ModuleType:
    """functions/model/app.py imported afresh, as a cold start imports it, with MODEL_DIR and EXPECTED_MODEL_ID."""
    import importlib.util

    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    if expected is None:
        monkeypatch.delenv("EXPECTED_MODEL_ID", raising=False)
    else:
        monkeypatch.setenv("EXPECTED_MODEL_ID", expected)
    spec = importlib.util.spec_from_file_location(f"model_function_app_{next(_names)}", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def app(model_dir: Path) -> ModuleType:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return load_app(monkeypatch, model_dir)


@pytest.fixture(scope="module")
def direct(model_dir: Path) -> Any:
    return inference.model_fn(str(model_dir))


def serve_directly(model: Any, body: bytes, content_type: str, accept: str = "application/json") -> tuple[bytes, str]:
    return inference.output_fn(inference.predict_fn(inference.input_fn(body, content_type), model), accept)


def wire_body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def answer_bytes(answer: dict[str, Any]) -> bytes:
    assert set(answer) == {"contentType", "body", "isBase64Encoded"}, answer
    body = answer["body"]
    return base64.b64decode(body) if answer["isBase64Encoded"] else body.encode("utf-8")


def png(colour: tuple[int, int, int]) -> bytes:
    return sample_png(48, colour)


def test_texts_as_the_core_sends_them_are_answered_as_inference_answers(app: ModuleType, direct: Any) -> None:
    doc = {"texts": TEXTS, "normalize": True, "encoding": "base64"}
    answer = app.lambda_handler({"contentType": "application/json", "accept": "application/json", "json": doc})
    assert answer["contentType"] == "application/json" and answer["isBase64Encoded"] is False  # text, no 4/3 growth
    expected, _ = serve_directly(direct, wire_body(doc), "application/json")
    assert json.loads(answer_bytes(answer)) == json.loads(expected)
    assert json.loads(expected)["truncated"] == [False, False, True]


@pytest.mark.parametrize("encoding", ["base64", "float"])
def test_images_give_the_same_vectors_as_inference(app: ModuleType, direct: Any, encoding: str) -> None:
    images = [base64.b64encode(png(c)).decode() for c in ((220, 30, 30), (30, 30, 220))]
    doc = {"images": images, "normalize": False, "encoding": encoding}
    answer = app.lambda_handler({"contentType": "application/json", "json": doc})  # accept defaults to JSON
    expected, _ = serve_directly(direct, wire_body(doc), "application/json")
    assert json.loads(answer_bytes(answer)) == json.loads(expected)


def test_a_raw_image_body_and_a_npy_answer(app: ModuleType, direct: Any) -> None:
    image = png((30, 200, 30))
    event = {
        "contentType": "image/png",
        "accept": "application/x-npy",
        "body": base64.b64encode(image).decode(),
        "isBase64Encoded": True,
    }
    answer = app.lambda_handler(event)
    assert answer["contentType"] == "application/x-npy" and answer["isBase64Encoded"] is True
    expected, _ = serve_directly(direct, image, "image/png", "application/x-npy")
    assert answer_bytes(answer) == expected
    assert np.load(io.BytesIO(answer_bytes(answer))).shape == (1, direct.dimension)


def test_a_plain_text_body(app: ModuleType, direct: Any) -> None:
    answer = app.lambda_handler({"contentType": "text/plain", "body": "a yellow star"})
    expected, _ = serve_directly(direct, b"a yellow star", "text/plain")
    assert answer_bytes(answer) == expected


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({"contentType": "application/json", "json": {"texts": []}}, "invalid_input"),
        ({"contentType": "application/json", "json": {"images": ["not base64!"]}}, "invalid_base64"),
        ({"contentType": "application/json", "json": {"texts": ["a"], "encoding": "npy"}}, "invalid_input"),
        ({"contentType": "image/png", "body": base64.b64encode(truncated_png()).decode(), "isBase64Encoded": True},
         "invalid_image"),
        ({"contentType": "application/xml", "body": "<texts/>"}, "unsupported_media_type"),
        ({"contentType": "application/json", "accept": "text/csv", "json": {"texts": ["a"]}}, "not_acceptable"),
        ({"contentType": "application/json", "body": "{not json"}, "invalid_json"),
    ],
)  # fmt: skip
def test_bad_input_is_answered_with_the_model_codes_own_code_and_status(
    app: ModuleType, event: dict[str, Any], code: str
) -> None:
    answer = app.lambda_handler(event)
    assert set(answer) == {"error"}
    assert answer["error"]["code"] == code
    assert answer["error"]["status"] == inference.STATUS_BY_CODE.get(code, 400)
    assert 400 <= answer["error"]["status"] < 500 and answer["error"]["message"]


def test_a_corrupt_image_in_a_batch_names_the_item(app: ModuleType) -> None:
    images = [base64.b64encode(png((1, 2, 3))).decode(), base64.b64encode(truncated_png()).decode()]
    answer = app.lambda_handler({"contentType": "application/json", "json": {"images": images}})
    assert answer["error"]["code"] == "invalid_image" and answer["error"]["status"] == 422
    assert answer["error"]["message"].startswith("images[1]")


@pytest.mark.parametrize(
    "event",
    [
        None,
        ["texts"],
        {"json": {"texts": ["a"]}},
        {"contentType": "application/json"},
        {"contentType": "application/json", "json": {"texts": ["a"]}, "body": "{}"},
        {"contentType": "text/plain", "json": {"texts": ["a"]}},
        {"contentType": "image/png", "body": "%%%", "isBase64Encoded": True},
        {"contentType": "text/plain", "body": 42},
    ],
)
def test_an_unreadable_event_is_invalid_event(app: ModuleType, event: Any) -> None:
    answer = app.lambda_handler(event)
    assert answer["error"]["code"] == "invalid_event" and answer["error"]["status"] == 400


def test_a_model_failure_is_raised_as_a_function_error(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: Any, model: Any) -> Any:
        raise RuntimeError("the forward pass failed")

    monkeypatch.setattr(inference, "predict_fn", broken)
    with pytest.raises(RuntimeError, match="forward pass"):
        app.lambda_handler({"contentType": "application/json", "json": {"texts": ["a"]}})


def test_the_model_loads_once_at_import(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_second_load(model_dir: str) -> Any:
        raise AssertionError("model_fn called per request")

    monkeypatch.setattr(inference, "model_fn", no_second_load)
    for _ in range(2):
        assert "body" in app.lambda_handler({"contentType": "text/plain", "body": "a red square"})
    assert app.server.model_id == "tiny-shapes"


def test_a_cold_start_refuses_another_model_than_expected(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_app(monkeypatch, model_dir, expected="ViT-B-32/openai")
    assert "'tiny-shapes'" in str(raised.value) and "'ViT-B-32/openai'" in str(raised.value)
    assert load_app(monkeypatch, model_dir, expected="tiny-shapes").server.model_id == "tiny-shapes"


def test_a_cold_start_without_exported_towers_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"clip_onnx\.json.*package_model\.py"):
        load_app(monkeypatch, copy_of(model_dir, tmp_path, onnx=False))


def lambda_client() -> Any:
    import boto3

    return boto3.client("lambda", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def relay(app: ModuleType, payload: bytes) -> dict[str, Any]:
    """What Lambda answers Invoke with: the handler's return value as the JSON payload."""
    answer = json.dumps(app.lambda_handler(json.loads(payload))).encode()
    return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(answer), len(answer))}


def test_the_backend_reads_the_functions_answers_split_across_invokes(
    app: ModuleType, direct: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = lambda_client()
    texts = [f"a shape number {i}" for i in range(9)]
    backend = LambdaModelBackend(FUNCTION, "tiny-shapes", client=client, max_invoke_bytes=120, max_concurrency=1)
    chunks = wire.text_chunks(texts, max_bytes=120)
    assert len(chunks) > 2
    with Stubber(client) as stubber:
        for chunk in chunks:
            expected = {"FunctionName": FUNCTION, "InvocationType": "RequestResponse", "Payload": event_bytes(chunk)}
            stubber.add_response("invoke", relay(app, event_bytes(chunk)), expected)
        result = backend.embed_texts(texts)
        stubber.assert_no_pending_responses()
    whole, _ = serve_directly(direct, wire_body({"texts": texts, "encoding": "base64"}), "application/json")
    reference = wire.decode_response(whole, count=len(texts), service=SERVICE_LAMBDA_MODEL, texts=True)
    assert (result.model, result.service, result.dimension) == ("tiny-shapes", SERVICE_LAMBDA_MODEL, direct.dimension)
    np.testing.assert_allclose(np.array(result.vectors), np.array(reference.vectors), rtol=0, atol=1e-6)
    assert result.tokens == reference.tokens and result.truncated == reference.truncated


def test_the_backend_names_the_callers_bad_image_by_its_place_in_the_whole_batch(app: ModuleType) -> None:
    client = lambda_client()
    images = [png((10, 10, 10)), png((20, 20, 20)), truncated_png()]
    one_each = max(len(wire.image_chunks([image])[0].body) for image in images)
    backend = LambdaModelBackend(FUNCTION, "tiny-shapes", client=client, max_invoke_bytes=one_each, max_concurrency=1)
    chunks = wire.image_chunks(images, max_bytes=backend.max_invoke_bytes)
    assert [c.count for c in chunks] == [1, 1, 1]
    with Stubber(client) as stubber:
        for chunk in chunks:
            stubber.add_response("invoke", relay(app, event_bytes(chunk)))
        with pytest.raises(UnprocessableError) as raised:
            backend.embed_images(images)
    assert raised.value.code == "invalid_image" and raised.value.index == 2
    assert raised.value.message.startswith("images[2]")


BLOCKED = ("torch", "open_clip", "huggingface_hub", "sympy", "boto3", "botocore", "omnisearch_embed", "pydantic")
# Each blocked name raises ImportError when imported: the cold start and the invoke must not need it.
COLD_START = """
import json, sys
sys.modules.update({blocked})
import app
answer = app.lambda_handler({{"contentType": "application/json", "json": {{"texts": ["a red circle"]}}}})
body = json.loads(answer["body"])
print(json.dumps({{"model": body["model"], "dimension": body["dimension"], "engine": app.server.model.engine}}))
"""


def test_the_function_serves_with_only_its_image_packages(model_dir: Path) -> None:
    """As in the image: app.py at the top level, model_code beside it, and no torch, Hub client, boto3 or core."""
    code = COLD_START.format(blocked={name: None for name in BLOCKED})
    env = {**os.environ, "MODEL_DIR": str(model_dir), "PYTHONPATH": os.pathsep.join([str(APP.parent), str(ROOT)])}
    env.pop("EXPECTED_MODEL_ID", None)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=APP.parent, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {"model": "tiny-shapes", "dimension": 64, "engine": "onnxruntime"}
