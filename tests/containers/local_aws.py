"""What the container tests give the functions: the events' bodies, the picture they name, ``--env-vars``."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ENDPOINT = "omnisearch-embed-local"
BUCKET = "omnisearch-test-images"
AWS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def sam_venv() -> Path:
    return Path(os.environ.get("SAM_VENV", ROOT / ".venv-sam")).absolute()


def event_body(name: str) -> dict[str, Any]:
    return json.loads(json.loads((EVENTS / f"{name}.json").read_text())["body"])


def red_circle() -> bytes:
    return base64.b64decode(event_body("embed_image_json")["image"].split(",", 1)[1])


def function_env(front: str, moto: str, **extra: str) -> dict[str, dict[str, str]]:
    """``--env-vars``: the embed function's endpoint behind ``front``, everything else of AWS in moto."""
    embed = {
        "USE_SAGEMAKER": "true",
        "SAGEMAKER_ENDPOINT_NAME": ENDPOINT,
        "CLIP_MODEL": "tiny-shapes",
        "ALLOWED_S3_BUCKETS": BUCKET,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": front,
        "AWS_ENDPOINT_URL": moto,
        **extra,
    }
    return {"EmbedFunction": embed, "MetricsFunction": {"SAGEMAKER_ENDPOINT_NAME": ENDPOINT, "AWS_ENDPOINT_URL": moto}}
