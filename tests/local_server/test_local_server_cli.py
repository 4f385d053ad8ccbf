"""``python -m local_server``: flags over environment, backend choice, banner, start-up and a clean Ctrl-C."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import httpx
import pytest

from local_server.batched_backend import BatchedBackend
from local_server.cli import LazyLocalModel, banner, bind, describe, parse_args, settings_from
from omnisearch_embed.backends.factory import backend_from_settings
from omnisearch_embed.backends.fallback import FallbackBackend
from omnisearch_embed.backends.sagemaker import SageMakerBackend
from omnisearch_embed.errors import ConfigError
from omnisearch_embed.settings import Settings
from tests.helpers.keepalive import survives_idle
from tests.helpers.local_server_process import ROOT, child_env, interrupt, started
from tests.helpers.ping import wait_healthy

INHERITED = ("CLIP_", "USE_SAGEMAKER", "API_KEY", "FALLBACK")  # settings the servers started here must not inherit
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": "/dev/null"}


def test_flags_take_precedence_over_the_environment() -> None:
    env = {"CLIP_MODEL": "ViT-B-32", "CLIP_PRETRAINED": "openai", "API_KEY": "from-env"}
    assert settings_from(parse_args([]), env).model_id == "ViT-B-32/openai"
    flagged = settings_from(parse_args(["--model", "tiny-shapes", "--pretrained", "", "--api-key", "k"]), env)
    assert flagged.model_id == "tiny-shapes" and flagged.api_key == "k"
    assert settings_from(parse_args([]), {}).model_id == "tiny-shapes"  # the default: the bundled demo model


def test_bad_flags_are_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--workers", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--max-batch-wait-ms", "-1"])


def test_local_model_is_built_once_and_shared(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[tuple[str, str]] = []

    class Recording:
        def __init__(self, model: str, pretrained: str = "") -> None:
            built.append((model, pretrained))

    monkeypatch.setattr("local_server.clip_backend.LocalClipBackend", Recording)
    lazy = LazyLocalModel("tiny-shapes", "")
    assert built == []  # nothing loads until asked
    assert lazy() is lazy() and built == [("tiny-shapes", "")]


def test_backend_choice(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**AWS_ENV, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
    assert backend_from_settings(Settings(), local_factory=lambda: tiny) is tiny
    cloud = {"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": "local", "CLIP_MODEL": "tiny-shapes"}
    sagemaker = backend_from_settings(Settings.from_env(cloud), local_factory=lambda: tiny)
    assert isinstance(sagemaker, SageMakerBackend) and sagemaker.model_id == "tiny-shapes"
    assert describe(sagemaker) == "SageMakerBackend: endpoint 'local' at http://127.0.0.1:9"
    fallback = backend_from_settings(Settings.from_env({**cloud, "FALLBACK": "local"}), local_factory=lambda: tiny)
    assert isinstance(fallback, FallbackBackend) and fallback.secondary is tiny
    with BatchedBackend(fallback, max_batch_size=8, max_wait_ms=3) as batcher:
        assert describe(batcher) == (
            "SageMakerBackend: endpoint 'local' at http://127.0.0.1:9, falling back to LocalClipBackend "
            "(local, in this process); dynamic batching (up to 8 items, 3 ms)"
        )
    other_model = {**cloud, "FALLBACK": "local", "CLIP_MODEL": "ViT-B-32"}
    with pytest.raises(ConfigError, match="same model"):
        backend_from_settings(Settings.from_env(other_model), local_factory=lambda: tiny)  # never mix two models


def test_banner_names_everything_and_warns_about_the_demo_model(tiny: Any) -> None:
    text = banner("http://127.0.0.1:8000", tiny, Settings(api_key="k"), 32)
    for expected in ("http://127.0.0.1:8000", "tiny-shapes", "LocalClipBackend", "http://127.0.0.1:8000/swagger",
                     "/endpoints/<name>/invocations", "required", "WARNING", "DEMO model"):  # fmt: skip
        assert expected in text

    class RealModel:
        model_id, service = "ViT-B-32/openai", "local"

    assert "WARNING" not in banner("http://127.0.0.1:8000", RealModel(), Settings(), 32)


def test_banner_says_how_browsers_get_in() -> None:
    class RealModel:
        model_id, service = "ViT-B-32/openai", "local"

    assert "CORS_ALLOW_ORIGIN" in banner("http://127.0.0.1:8000", RealModel(), Settings(), 32)
    assert "Access-Control-Allow-Origin: *" in banner("http://x", RealModel(), Settings(cors_allow_origin="*"), 1)


def test_serves_keeps_idle_connections_and_stops_cleanly_on_ctrl_c() -> None:
    args = [sys.executable, "-m", "local_server", "--port", "0", "--workers", "2"]
    with started(args, child_env(INHERITED)) as (process, text):
        url = re.search(r"API\s+(http://127\.0\.0\.1:\d+)", text).group(1)
        assert "tiny-shapes" in text and "DEMO model" in text and f"{url}/swagger" in text
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.post("/embed/text", json={"text": "a red circle"}).json()["model"] == "tiny-shapes"
            assert wait_healthy(client).json()["status"] == "Healthy"
        # clients that pool connections (Weaviate, the OpenAI SDKs) must not find theirs closed after a pause
        assert survives_idle("127.0.0.1", int(url.rsplit(":", 1)[1]), "/health")
        out, err = interrupt(process)
    assert process.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_start_up_errors_are_one_clear_line() -> None:
    taken = bind("127.0.0.1", 0)
    try:
        port = str(taken.getsockname()[1])
        busy = subprocess.run(
            [sys.executable, "-m", "local_server", "--port", port], cwd=ROOT, env=child_env(INHERITED),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        taken.close()
    assert busy.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "Traceback" not in busy.stderr
    config = subprocess.run(
        [sys.executable, "-m", "local_server"], cwd=ROOT, env=child_env(INHERITED, USE_SAGEMAKER="true"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert config.returncode == 2 and "SAGEMAKER_ENDPOINT_NAME" in config.stderr and "Traceback" not in config.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [("CLIP_ENGINE", "bogus", "CLIP_ENGINE='bogus' is not one of"),
     ("CLIP_DECODE_THREADS", "x", "CLIP_DECODE_THREADS='x' is not an integer")],
)  # fmt: skip
def test_a_bad_model_setting_is_a_configuration_error(variable: str, value: str, says: str) -> None:
    """The model code reads its settings with the core's reader; its ConfigError is exit 2 like the core's."""
    bad = subprocess.run(
        [sys.executable, "-m", "local_server", "--port", "0"], cwd=ROOT, env=child_env(INHERITED, **{variable: value}),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and says in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-2000:]
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
