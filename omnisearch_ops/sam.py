"""The deploy command's steps on this machine: the sam build / sam deploy commands, model packaging and upload."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from omnisearch_ops.aws import samconfig_parameters
from omnisearch_ops.console import fail
from omnisearch_ops.paths import ROOT


def model_s3_prefix(bucket: str | None, config_env: str, model: str, pretrained: str) -> str | None:
    """Where this environment's archives go; each one's key adds its sha256 (upload_archive.content_key)."""
    if not bucket:
        return None
    slug = f"{model}-{pretrained}".replace("/", "-") if pretrained else model
    return f"s3://{bucket.removeprefix('s3://').strip('/')}/omnisearch-embed/{config_env}/{slug}"


def sam_executable() -> str:
    """SAM_CLI, then sam on PATH, then the project's own .venv-sam (SAM conflicts with the main venv)."""
    local = ROOT / ".venv-sam" / "bin" / "sam"
    return os.environ.get("SAM_CLI") or shutil.which("sam") or (str(local) if local.exists() else "sam")


def samconfig_overrides(config_env: str) -> dict[str, str]:
    """samconfig's parameter_overrides: passing our own on the command line replaces them, so we merge."""
    raw = samconfig_parameters(config_env).get("parameter_overrides", [])
    items = shlex.split(raw) if isinstance(raw, str) else list(raw)
    return dict(item.split("=", 1) for item in items if "=" in item)


def merged_overrides(config_env: str, overrides: dict[str, Any]) -> dict[str, str]:
    """samconfig's parameter_overrides with ``overrides`` on top: a parameter not in ``overrides`` keeps its value."""
    return {**samconfig_overrides(config_env), **{k: str(v) for k, v in overrides.items()}}


def sam_commands(
    config_env: str, overrides: dict[str, Any], *, region: str | None = None, profile: str | None = None
) -> tuple[list[str], list[str]]:
    sam = sam_executable()
    merged = merged_overrides(config_env, overrides)
    build = [sam, "build", "--config-env", config_env]
    deploy = [
        sam,
        "deploy",
        "--config-env",
        config_env,
        "--parameter-overrides",
        *(f"{k}={v}" for k, v in merged.items()),
    ]
    for flag, value in (("--region", region), ("--profile", profile)):
        if value:
            deploy += [flag, value]
    return build, deploy


def shell(command: list[str]) -> str:
    return shlex.join(command)


def run_command(command: list[str]) -> None:
    print(f"$ {shell(command)}", flush=True)
    try:
        result = subprocess.run(command, cwd=ROOT, check=False)
    except FileNotFoundError:
        fail(f"{command[0]} not found: install the SAM CLI or set SAM_CLI")
    if result.returncode != 0:
        fail(f"{command[1] if len(command) > 1 else command[0]} failed with exit code {result.returncode}")


def package_and_upload(
    model: str, pretrained: str, archive: Path, s3_prefix: str, s3_client: Any, *, require_onnx: bool = False
) -> str:
    """The packager does the work (offline wheels included); returns the content-addressed URI.

    ``require_onnx``: the archive must carry its ONNX files (the slim serverless image), checked before upload.
    """
    from omnisearch_ops import onnx_archive, package_model, wheels

    archive.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    house = wheels.wheelhouse((package_model.CODE_DIR / "requirements.txt").read_text(), say=package_model.say)
    path = package_model.build_archive(model, pretrained, archive, wheels=house)
    print(f"packaged {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s", flush=True)
    if require_onnx:
        onnx_archive.require_local(path)
    uri = package_model.upload_archive(path, s3_prefix, s3_client=s3_client)
    print(f"uploaded {uri}", flush=True)
    return uri
