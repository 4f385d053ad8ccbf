"""``python -m local_server`` with its ONNX cache warm serves texts and images without importing torch or open_clip."""

from __future__ import annotations

import base64
import re
import subprocess
import sys

import httpx

from omnisearch_testkit.images import image_bytes
from tests.helpers.heavy_modules import reported
from tests.helpers.local_server_process import ROOT, child_env, interrupt, started

INHERITED = ("CLIP_", "USE_SAGEMAKER", "API_KEY", "FALLBACK")


def test_a_warm_start_serves_texts_and_images_without_torch(tmp_path) -> None:
    env = child_env(INHERITED, CLIP_ONNX_CACHE=str(tmp_path / "onnx-cache"))
    warm = [sys.executable, "-c", "from local_server.clip_backend import LocalClipBackend; LocalClipBackend()"]
    subprocess.run(warm, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)  # exports with torch
    args = [sys.executable, "-m", "tests.helpers.heavy_modules", "local_server.cli", "--port", "0"]
    with started(args, env) as (process, text):
        url = re.search(r"API\s+(http://127\.0\.0\.1:\d+)", text).group(1)
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.post("/embed/text", json={"text": "a red circle"}).status_code == 200
            png = image_bytes("PNG", (80, 50), (200, 20, 20))
            assert client.post("/embed/image", files={"file": ("shape.png", png, "image/png")}).status_code == 200
            jpeg = base64.b64encode(image_bytes("JPEG", (40, 90))).decode()
            batch = client.post("/embed/batch", json={"items": [{"text": "a star"}, {"image": jpeg}]})
            assert batch.status_code == 200 and batch.json()["count"] == 2
        out, err = interrupt(process)
    assert process.returncode == 0, err
    assert reported(out) == []
