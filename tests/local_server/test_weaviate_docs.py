"""docs/WEAVIATE.md stays true: its compose files, flags, routes and pins, and its torch-free sidecar claim."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from local_server.cli import parse_args
from local_server.weaviate import ENV_VAR, WeaviateRoutes
from omnisearch_embed.settings import Settings
from tests.helpers.backends import StaticBackend
from tests.helpers.local_server_process import child_env, interrupt, started
from tests.local_server.serving import MainServer
from tests.local_server.weaviate_client import check_ready, go_vectorize

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "WEAVIATE.md").read_text()
COMPOSE = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC, flags=re.S)]


def test_the_readme_links_the_guide() -> None:
    assert "(docs/WEAVIATE.md)" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("compose", COMPOSE, ids=["local", "sagemaker"])
def test_compose_files_point_weaviate_at_a_private_clip_service(compose: dict[str, Any]) -> None:
    weaviate, clip = compose["services"]["weaviate"], compose["services"]["clip"]
    assert "multi2vec-clip" in weaviate["environment"]["ENABLE_MODULES"].split(",")
    command = re.search(r"^CMD (\[.*\])$", clip["build"]["dockerfile_inline"], flags=re.M)
    argv = ast.literal_eval(command.group(1))
    assert argv[:3] == ["python", "-m", "local_server"]
    args = parse_args(argv[3:])
    assert weaviate["environment"]["CLIP_INFERENCE_API"] == f"http://clip:{args.port}"
    assert args.host == "0.0.0.0" and "ports" not in clip and clip["expose"] == [str(args.port)]
    assert "/.well-known/ready" in " ".join(clip["healthcheck"]["test"])
    assert weaviate["depends_on"]["clip"]["condition"] == "service_healthy"


def test_the_sagemaker_sidecar_is_configured_as_the_settings_read_it() -> None:
    clip = COMPOSE[1]["services"]["clip"]
    settings = Settings.from_env(clip["environment"])
    assert settings.use_sagemaker and settings.sagemaker_endpoint_name and settings.model_id == "ViT-B-32/openai"
    pyproject = (ROOT / "pyproject.toml").read_text()
    for pin in re.findall(r'"(\w+==[\d.]+)"', clip["build"]["dockerfile_inline"]):
        assert f'"{pin}"' in pyproject, f"the sidecar's {pin} differs from pyproject.toml"


def test_flags_env_vars_and_routes_named_in_the_guide_exist() -> None:
    for flag in set(re.findall(r"`(--[\w-]+)", DOC)):
        parse_args([flag] if flag in ("--weaviate", "--no-weaviate") else [flag, "1"])
    assert f"`{ENV_VAR}=false`" in DOC
    routes = WeaviateRoutes(StaticBackend(), Settings(), executor=None).routes()  # type: ignore[arg-type]
    documented = set(re.findall(r"^\| `(?:GET|POST) ([/\w.-]+)`", DOC, flags=re.M))
    assert documented == {route.path for route in routes}


def test_the_python_example_is_valid_python() -> None:
    (example,) = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)
    ast.parse(example)
    assert "Configure.Vectors.multi2vec_clip(" in example and ".query.near_text(" in example


def test_the_sagemaker_sidecar_runs_without_torch(server: MainServer) -> None:
    # torch, torchvision and open_clip made unimportable: the sidecar must never need them
    code = (
        "import sys; sys.modules.update(dict.fromkeys(['torch', 'torchvision', 'open_clip']));"
        "from local_server.cli import main; sys.exit(main(['--port', '0', '--workers', '4']))"
    )
    env = child_env(
        ("CLIP_", "API_KEY", "FALLBACK", ENV_VAR),
        USE_SAGEMAKER="true",
        SAGEMAKER_ENDPOINT_NAME="local",
        CLIP_MODEL="tiny-shapes",
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=server.url,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    with started([sys.executable, "-c", code], env) as (process, text):
        url = re.search(r"CLIP_INFERENCE_API=(http://127\.0\.0\.1:\d+)", text).group(1)
        with httpx.Client(base_url=url) as client:
            for _ in range(100):
                if check_ready(client).status_code == 204:
                    break
            assert check_ready(client).status_code == 204
        answer = go_vectorize(url, ["a red circle"])
        assert answer.status == 200 and len(answer.text_vectors) == 1
        _, err = interrupt(process)
    assert process.returncode == 0 and "Traceback" not in err, err
