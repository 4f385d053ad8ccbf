"""One image the model refuses gets the same status and code through every door.

The image passes the core's checks (a PNG whose pixels decode) but not the model's: its EXIF block is no
TIFF structure, and the model reads EXIF to turn the picture upright. Three doors lead to the model:
in process (LocalClipBackend behind the Lambda handler), the serving container over HTTP (``/invocations``,
answered by endpoint_server), and SageMaker through boto3 (SageMakerBackend behind the handler, calling the
local server's runtime emulation). All read the status from the model code's one table.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

import httpx
import pytest
from PIL import Image

from model_code.code.clip_inputs import STATUS_BY_CODE
from omnisearch_embed.backends.sagemaker import SageMakerBackend
from omnisearch_embed.images import validate_image
from omnisearch_testkit.events import load_event
from tests.helpers.lambda_app import invoke, use_backend
from tests.local_server.serving import MainServer

BAD_IMAGE_STATUS, BAD_IMAGE_CODE = 422, "invalid_image"  # the README's error table lists invalid_image under 422


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_broken_exif() -> bytes:
    """A 16x16 PNG whose pixels decode, with an ``eXIf`` chunk that is not a TIFF structure."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(out, "PNG")
    png = out.getvalue()
    after_header = 8 + 25  # the signature, then IHDR (length, type, 13 bytes, CRC)
    return png[:after_header] + _chunk(b"eXIf", b"MM\x00\x07\x00\x00\x00\x08\x00\x00") + png[after_header:]


BAD = png_with_broken_exif()
BODY = {"images": [base64.b64encode(BAD).decode()]}


def test_the_table_puts_invalid_image_at_422() -> None:
    assert STATUS_BY_CODE[BAD_IMAGE_CODE] == BAD_IMAGE_STATUS


def test_the_core_lets_the_image_through() -> None:
    assert validate_image(BAD, max_bytes=1 << 20, max_pixels=1 << 20).format == "png"


def test_in_process(monkeypatch: pytest.MonkeyPatch, tiny: Any) -> None:
    use_backend(monkeypatch, tiny)
    status, body = invoke(load_event("embed_batch_image", body=BODY))
    assert (status, body["error"]["code"]) == (BAD_IMAGE_STATUS, BAD_IMAGE_CODE), body
    assert "is not a readable image" in body["error"]["message"], body


def test_the_container_over_http(server: MainServer) -> None:
    answer = httpx.post(server.url + "/invocations", json=BODY, timeout=60)
    assert (answer.status_code, answer.json()["code"]) == (BAD_IMAGE_STATUS, BAD_IMAGE_CODE), answer.text


def test_sagemaker_through_boto3(monkeypatch: pytest.MonkeyPatch, runtime: Any) -> None:
    use_backend(monkeypatch, SageMakerBackend("local", "tiny-shapes", client=runtime))
    status, body = invoke(load_event("embed_batch_image", body=BODY))
    assert (status, body["error"]["code"]) == (BAD_IMAGE_STATUS, BAD_IMAGE_CODE), body
    assert "is not a readable image" in body["error"]["message"], body
