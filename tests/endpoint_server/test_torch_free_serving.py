"""Our serving container's process over an archive with its ONNX files: it serves without importing torch."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from omnisearch_testkit.images import image_bytes
from tests.helpers.heavy_modules import reported
from tests.helpers.ping import wait_healthy

ROOT = Path(__file__).resolve().parents[2]


def test_serve_answers_texts_and_images_without_torch(model_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers/common"), str(ROOT)])}
    env.pop("CLIP_ENGINE", None)
    command = [sys.executable, "-m", "tests.helpers.heavy_modules", "endpoint_server.cli", "serve",
               "--host", "127.0.0.1", "--port", "0", "--model-dir", str(model_dir)]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        port = re.search(r"on port (\d+)", line)
        assert port, line + process.stderr.read()
        with httpx.Client(base_url=f"http://127.0.0.1:{port.group(1)}", timeout=120) as client:
            wait_healthy(client)
            texts = client.post("/invocations", json={"texts": ["a red circle", "a blue star"]})
            jpeg = base64.b64encode(image_bytes("JPEG", (120, 90))).decode()
            images = client.post("/invocations", json={"images": [jpeg]})
        assert texts.status_code == 200 and len(texts.json()["embeddings"]) == 2
        assert images.status_code == 200 and images.json()["dimension"] == 64
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert reported(line + out) == []
