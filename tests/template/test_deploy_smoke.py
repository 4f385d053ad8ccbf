"""The deploy workflow's smoke test proves inference: its own script, run against a local server.

The step's ``run`` block is taken from ``.github/workflows/deploy.yml`` and executed with bash. The only
stand-in is the ``aws`` CLI (a script on PATH answering the stack outputs and the key value); the API is the
real local server with an API key, so the script must send the key, get a vector and check its dimension.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from omnisearch_embed.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KEY = "smoke-test-key"
FAKE_AWS = """#!/usr/bin/env bash
case "$*" in
  *OutputKey==\\'ApiUrl\\'*) echo "$SMOKE_API_URL" ;;
  *OutputKey==\\'ApiKeyId\\'*) echo "a1b2c3d4e5" ;;
  "apigateway get-api-key --api-key a1b2c3d4e5 --include-value --query value --output text") echo "$SMOKE_KEY" ;;
  *) echo "unexpected aws call: $*" >&2; exit 2 ;;
esac
"""


def smoke_script() -> str:
    workflow = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())
    (step,) = [s for s in workflow["jobs"]["deploy"]["steps"] if s.get("name", "").startswith("smoke test")]
    return step["run"]


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    from local_server.clip_backend import LocalClipBackend
    from tests.local_server.serving import serving

    tiny = LocalClipBackend("tiny-shapes")
    with serving(tiny, Settings(api_key=KEY), local_model=lambda: tiny, workers=2) as running:
        yield running.url


def run_smoke(tmp_path: Path, url: str, key: str) -> subprocess.CompletedProcess[str]:
    """The step's script as GitHub runs it (bash -e -o pipefail); a wrong key would fail it after curl's retries."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)  # the workflow's setup-python puts one on PATH
    (tmp_path / "samconfig.toml").write_text((ROOT / "samconfig.toml").read_text())
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CONFIG_ENV": "dev",
        "SMOKE_API_URL": url,
        "SMOKE_KEY": key,
    }
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", smoke_script()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_smoke_test_embeds_text_with_the_key_and_checks_the_vector(tmp_path: Path, api: str) -> None:
    done = run_smoke(tmp_path, api, KEY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "model tiny-shapes:" in done.stdout and "-d vectors, deep health ok" in done.stdout


def test_the_smoke_test_does_not_settle_for_shallow_health() -> None:
    script: Any = smoke_script()
    assert "/embed/text" in script and "x-api-key" in script and "deep=true" in script
