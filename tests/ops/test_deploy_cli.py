"""scripts/deploy_sagemaker_endpoint.py as a subprocess against moto's server mode (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json
import re
import threading
import tomllib
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from omnisearch_ops import wheels
from tests.aws_moto import create_endpoint, moto_server, reset, run_script, server_client, subprocess_env

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = ROOT / "scripts" / "deploy_sagemaker_endpoint.py"
ENDPOINT = "omnisearch-embed-dev"
SCALING = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": f"endpoint/{ENDPOINT}/variant/AllTraffic",
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}


@pytest.fixture(scope="module")
def server():
    with moto_server() as url:
        yield url


@pytest.fixture
def aws(server: str):
    reset(server)
    sagemaker = server_client(server, "sagemaker")
    create_endpoint(sagemaker, ENDPOINT)
    return subprocess_env(server), sagemaker


def run(env: dict[str, str], *args: str, stdin: Any = None) -> Any:
    return run_script(SCRIPT, env, *args, cwd=ROOT, stdin=stdin)


def offline_env() -> dict[str, str]:
    """For actions that must not touch AWS: an endpoint URL nothing listens on."""
    env = subprocess_env("http://127.0.0.1:9")
    env["SAM_CLI"] = "sam"
    return env


def test_cost_table_follows_from_price_and_hours():
    result = run(offline_env(), "--cost")
    assert result.returncode == 0, result.stderr
    rows = {line.split("  ")[0]: line for line in result.stdout.splitlines()}
    always_on = rows["always on, 1 instance"]
    assert "ml.g4dn.xlarge" in always_on and "$0.7364" in always_on
    assert f"${0.7364 * 730:,.2f}" in always_on  # 730 h a month
    assert f"${0.7364 * 4 * 365 * 5 / 7 / 12:,.2f}" in rows["dev: 4 h/day on weekdays"]
    assert f"${0.7364 * 730 * 4:,.2f}" in rows["always on, 4 instances (autoscaling max)"]  # template MaxInstances
    assert "Assumptions" in result.stdout and "us-east-1" in result.stdout
    million = rows["1 million requests"]  # serverless: 6144 MB x 0.15 s, $0.00002 per GB-second, 4 KB each
    assert "6144 MB" in million and f"${1e6 * 0.15 * 6 * 0.00002 + 1e6 * 4 / 1024**2 * 0.016:,.2f}" in million
    assert rows["idle (dev stack, fallback never used)"].endswith("$0.00")


def test_cost_custom_scenario_and_price_override():
    result = run(
        offline_env(),
        "--cost",
        "--instance-type",
        "ml.g5.xlarge",
        "--hours-per-day",
        "8",
        "--instances",
        "2",
        "--price-per-hour",
        "1.5",
        "--max-instances",
        "3",
    )
    assert result.returncode == 0, result.stderr
    ours = next(line for line in result.stdout.splitlines() if line.startswith("your scenario"))
    assert f"${1.5 * 8 * 365 / 12 * 2:,.2f}" in ours and "$1.5000" in ours
    assert "always on, 3 instances" in result.stdout


def test_cost_unknown_instance_needs_a_price():
    result = run(offline_env(), "--cost", "--instance-type", "ml.unknown.xlarge")
    assert result.returncode == 1
    assert "unknown_instance_type" in result.stderr and "Traceback" not in result.stderr


def test_deploy_dry_run_prints_the_steps_and_sam_commands(tmp_path):
    # a "sam" that leaves a mark if anything runs it; the AWS endpoint is unreachable, so no upload can happen
    marker = tmp_path / "sam-ran"
    sam = tmp_path / "sam"
    sam.write_text(f"#!/bin/sh\ntouch {marker}\n")
    sam.chmod(0o755)
    env = offline_env()
    env["SAM_CLI"] = str(sam)
    result = run(
        env,
        "--deploy",
        "--dry-run",
        "--bucket",
        "my-models",
        "--config-env",
        "prod",
        "--instance-type",
        "ml.g4dn.2xlarge",
        "--model",
        "ViT-B-16",
        "--pretrained",
        "laion2b_s34b_b88k",
        "--max-instances",
        "6",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("[dry-run] ") for line in lines)
    url = "s3://my-models/omnisearch-embed/prod/ViT-B-16-laion2b_s34b_b88k/model-<sha256 of the archive>.tar.gz"
    assert any("package ViT-B-16" in line for line in lines) and any(url in line for line in lines)
    build = next(line for line in lines if "sam build" in line)
    deploy = next(line for line in lines if "sam deploy" in line)
    assert build.endswith("sam build --config-env prod")
    for part in (
        "--config-env prod",
        "--parameter-overrides",
        f"ModelDataUrl={url}",
        "ClipModel=ViT-B-16",
        "ClipPretrained=laion2b_s34b_b88k",
        "InstanceType=ml.g4dn.2xlarge",
        "MaxInstances=6",
        "Stage=prod",
    ):
        assert part in deploy, part
    samconfig = ROOT / "samconfig.toml"  # overrides kept from samconfig: sam replaces them when we pass ours
    if samconfig.is_file():
        raw = tomllib.loads(samconfig.read_text()).get("prod", {}).get("deploy", {}).get("parameters", {})
        overrides = raw.get("parameter_overrides", [])
        for item in overrides.split() if isinstance(overrides, str) else overrides:
            assert item.split("=", 1)[0] + "=" in deploy
    assert build.endswith(f"{sam} build --config-env prod")
    assert not marker.exists()


def test_deploy_uploads_a_content_addressed_archive_once_and_deploys_that_key(aws, server, tmp_path):
    env, _ = aws
    server_client(server, "s3").create_bucket(Bucket="my-models")
    calls = tmp_path / "sam-calls"
    sam = tmp_path / "sam"
    sam.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    sam.chmod(0o755)
    cache = tmp_path / "wheels"  # a complete cache entry: packaging needs no network
    entry = cache / wheels.cache_key((ROOT / "model_code" / "code" / "requirements.txt").read_text())
    entry.mkdir(parents=True)
    (entry / "demo_pkg-1.0-py3-none-any.whl").write_bytes(b"PK")
    (entry / wheels.LOCK_FILE).write_text("demo-pkg==1.0\n")
    env = {**env, "SAM_CLI": str(sam), "OMNISEARCH_WHEEL_CACHE": str(cache)}
    args = ("--deploy", "--bucket", "my-models", "--model", "tiny-shapes", "--pretrained", "", "--serving-container")
    first, second = run(env, *args, "toolkit"), run(env, *args, "toolkit")  # no image: tests/ops/test_image
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    keys = [o["Key"] for o in server_client(server, "s3").list_objects_v2(Bucket="my-models")["Contents"]]
    assert len(keys) == 1 and re.fullmatch(r"omnisearch-embed/dev/tiny-shapes/model-[0-9a-f]{64}\.tar\.gz", keys[0])
    assert "already uploaded" in second.stdout and "already uploaded" not in first.stdout
    deploys = [line for line in calls.read_text().splitlines() if line.startswith("deploy")]
    assert len(deploys) == 2 and all(f"ModelDataUrl=s3://my-models/{keys[0]}" in line for line in deploys)


def test_deploy_with_an_uploaded_model_skips_packaging():
    result = run(offline_env(), "--deploy", "--dry-run", "--model-data-url", "s3://b/k/model.tar.gz")
    assert result.returncode == 0, result.stderr
    assert "package" not in result.stdout and "ModelDataUrl=s3://b/k/model.tar.gz" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--deploy", "--dry-run"],
        ["--info", "--yes"],
        ["--list", "--dry-run"],
        ["--info", "--list"],
        ["--autoscale", "--min-instances", "3", "--max-instances", "2"],
    ],
)
def test_usage_errors_exit_2(args):
    result = run(offline_env(), *args)
    assert result.returncode == 2, result.stdout
    assert "error" in result.stderr


def test_list(aws):
    env, sagemaker = aws
    create_endpoint(sagemaker, "omnisearch-embed-prod")
    result = run(env, "--list")
    assert result.returncode == 0, result.stderr
    assert ENDPOINT in result.stdout and "omnisearch-embed-prod" in result.stdout and "InService" in result.stdout


def test_info_then_autoscale_then_info(aws, server):
    env, _ = aws
    before = run(env, "--info")
    assert before.returncode == 0, before.stderr
    assert "InService" in before.stdout and "not configured" in before.stdout and "n/a" in before.stdout
    scaled = run(env, "--autoscale", "--min-instances", "1", "--max-instances", "3", "--target-invocations", "250")
    assert scaled.returncode == 0, scaled.stderr
    scaling = server_client(server, "application-autoscaling")
    target = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (SCALING["ResourceId"], 1, 3)
    policy = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert config["TargetValue"] == 250.0
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert (config["ScaleOutCooldown"], config["ScaleInCooldown"]) == (300, 600)
    # running it again updates instead of duplicating
    assert run(env, "--autoscale", "--max-instances", "5").returncode == 0
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]["MaxCapacity"] == 5
    assert len(scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]) == 1
    after = run(env, "--info")
    assert "1 / 5" in after.stdout and "target 600 invocations/instance/min" in after.stdout


@pytest.mark.parametrize("action", ["--info", "--autoscale", "--delete", "--test"])
def test_missing_endpoint_is_a_clear_failure(aws, action):
    env, _ = aws
    extra = ["--yes"] if action == "--delete" else (["--direct"] if action == "--test" else [])
    result = run(env, action, *extra, "--endpoint-name", "omnisearch-embed-nope")
    assert result.returncode == 1
    assert "omnisearch-embed-nope" in result.stderr and "Traceback" not in result.stderr


def test_delete_refuses_without_yes_when_stdin_is_not_a_terminal(aws):
    env, sagemaker = aws
    result = run(env, "--delete")
    assert result.returncode == 2
    assert "refusing" in result.stderr and "--yes" in result.stderr
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"


def test_delete_with_yes_removes_endpoint_config_model_and_scaling(aws, server):
    env, sagemaker = aws
    assert run(env, "--autoscale").returncode == 0
    result = run(env, "--delete", "--yes")
    assert result.returncode == 0, result.stderr
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []
    scaling = server_client(server, "application-autoscaling")
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert f"deleted endpoint {ENDPOINT}" in result.stdout


def test_direct_test_invokes_the_endpoint_through_the_sagemaker_backend(aws, server):
    env, _ = aws
    text = {
        "model": "ViT-B-32/openai",
        "dimension": 4,
        "embeddings": [[0.5, 0.5, 0.5, 0.5]],
        "truncated": [False],
        "tokens": [7],
    }
    image = {"model": "ViT-B-32/openai", "dimension": 4, "embeddings": [[1.0, 0.0, 0.0, 0.0]]}
    queue = {
        "region": "us-east-1",
        "results": [
            {
                "Body": json.dumps(doc),
                "ContentType": "application/json",
                "InvokedProductionVariant": "AllTraffic",
                "CustomAttributes": "",
            }
            for doc in (text, image)
        ],
    }
    request = urllib.request.Request(
        f"{server}/moto-api/static/sagemaker/endpoint-results",
        method="POST",
        data=json.dumps(queue).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request).close()
    result = run(env, "--test", "--direct")
    assert result.returncode == 0, result.stderr
    assert "text: ok" in result.stdout and "image: ok" in result.stdout
    assert result.stdout.count("dimension 4") == 2


class _FakeApi(BaseHTTPRequestHandler):
    """Stands in for the deployed API Gateway stage: checks the key, records what the script sent."""

    seen: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _FakeApi.seen.append((self.path, self.headers["Content-Type"], body))
        ok = self.headers.get("x-api-key") == "secret-key-value-0123456789"
        doc = (
            {"model": "ViT-B-32/openai", "dimension": 512, "service": "sagemaker"}
            if ok
            else {"error": {"code": "unauthorized", "message": "bad key"}}
        )
        payload = json.dumps(doc).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("key_value", ["secret-key-value-0123456789", "wrong-key-value-0123456789"])
def test_api_test_uses_stack_outputs_and_the_api_key(aws, server, key_value):
    env, _ = aws
    api = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=api.serve_forever, daemon=True)
    thread.start()
    _FakeApi.seen.clear()
    try:
        gateway = server_client(server, "apigateway")
        key = gateway.create_api_key(name="omnisearch-embed-dev", enabled=True, value=key_value)
        template = {
            "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
            "Outputs": {
                "ApiUrl": {"Value": f"http://127.0.0.1:{api.server_address[1]}/dev"},
                "ApiKeyId": {"Value": key["id"]},
                "EndpointName": {"Value": ENDPOINT},
            },
        }
        server_client(server, "cloudformation").create_stack(
            StackName="omnisearch-embed-dev", TemplateBody=json.dumps(template)
        )
        result = run(env, "--test")
    finally:
        api.shutdown()
        thread.join()
        api.server_close()
    paths = [(path, ctype) for path, ctype, _ in _FakeApi.seen]
    assert paths == [("/dev/embed/text", "application/json"), ("/dev/embed/image", "image/png")]
    assert json.loads(_FakeApi.seen[0][2]) == {"text": "a photo of a red circle"}
    assert _FakeApi.seen[1][2].startswith(b"\x89PNG")
    if key_value == "secret-key-value-0123456789":
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("HTTP 200") == 2 and "dimension 512" in result.stdout
    else:
        assert result.returncode == 1
        assert result.stdout.count("HTTP 401") == 2 and "unauthorized" in result.stdout


def test_api_test_without_a_stack_says_deploy_first(aws):
    env, _ = aws
    result = run(env, "--test", "--config-env", "staging")
    assert result.returncode == 1
    assert "omnisearch-embed-staging" in result.stderr and "deploy first" in result.stderr
