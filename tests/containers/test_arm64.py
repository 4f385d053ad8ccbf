"""arm64, the production architecture, under qemu: /health and one text embed end to end.

``sam local start-lambda`` runs the arm64 build in the arm64 Lambda runtime equivalent under qemu; the embed
function reaches the SageMaker runtime front as on x86_64. Emulation is slow (minutes for the first invoke),
so these tests run only with ARM64_TESTS=1 (``make test-containers ARGS=...``, or the environment); without
emulation they fail with what to install.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from containers.engine import Engine, require_emulation
from containers.sam import SamCli
from tests.containers.local_aws import function_env, sam_venv
from tests.containers.test_lambda_events import EXPECT, invoke

pytestmark = pytest.mark.skipif(os.environ.get("ARM64_TESTS") != "1", reason="arm64 under qemu: ARM64_TESTS=1")


@pytest.fixture(scope="module")
def arm64_url(engine: Engine, emulation: str, moto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from containers.base_images import lambda_runtime

    require_emulation("arm64")
    # Emulated, the functions need far more than the template's timeouts: the template's are for AWS.
    sam = SamCli(sam_venv(), "arm64", lambda_runtime("arm64"), function_timeout=600)
    sam.build()
    with sam.serving("start-lambda", function_env(emulation, moto), tmp_path_factory.mktemp("arm64"),
                     start_timeout=900, warm="LAZY") as url:  # fmt: skip
        yield url


@pytest.mark.parametrize("event", ["health", "embed_text"])
def test_arm64_under_emulation(arm64_url: str, tiny: Any, event: str) -> None:
    status, body = invoke(arm64_url, "EmbedFunction", event)
    assert status == 200, body
    EXPECT[event](body, tiny)
