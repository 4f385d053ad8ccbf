"""deploy's --parameter-overrides: a flag given replaces samconfig's value, a flag left out keeps it.

The values come from the real samconfig.toml: its dev environment caps autoscaling at 2 instances, where
template.yaml (and so the command line's old defaults) says 4.
"""

from __future__ import annotations

import shlex
import tomllib

import pytest

from omnisearch_ops import deploy_cli
from omnisearch_ops.aws import AwsTarget
from omnisearch_ops.deploy_commands import DeployRequest, deploy
from omnisearch_ops.paths import SAMCONFIG

URL = "s3://b/k/model.tar.gz"
SIZING = ("InstanceType", "MinInstances", "MaxInstances", "TargetInvocationsPerInstance")


def samconfig_overrides(config_env: str) -> dict[str, str]:
    raw = tomllib.loads(SAMCONFIG.read_text())[config_env]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in shlex.split(raw))


def parameter_overrides(printed: str) -> dict[str, str]:
    """The ``--parameter-overrides`` of the dry run's ``sam deploy`` line, as a dict."""
    line = next(line for line in printed.splitlines() if "sam deploy " in line)
    words = shlex.split(line.split(" ", 2)[2])
    start = words.index("--parameter-overrides") + 1
    end = next((i for i in range(start, len(words)) if words[i].startswith("--")), len(words))
    return dict(word.split("=", 1) for word in words[start:end])


def dry_run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, str]:
    common = ["deploy", "--dry-run", "--model-data-url", URL, "--serving-container", "toolkit"]
    assert deploy_cli.main([*common, *argv]) == 0
    return parameter_overrides(capsys.readouterr().out)


def test_the_dev_environment_differs_from_the_template_defaults() -> None:
    dev = samconfig_overrides("dev")
    assert (dev["MinInstances"], dev["MaxInstances"], dev["TargetInvocationsPerInstance"]) == ("1", "2", "600")
    assert "InstanceType" not in dev and "ClipModel" not in dev and "ClipPretrained" not in dev


def test_flags_left_out_keep_samconfigs_values(capsys) -> None:
    dev = samconfig_overrides("dev")
    sent = dry_run(capsys, "--config-env", "dev")
    assert sent == {**dev, "ModelDataUrl": URL, "ServingContainer": "toolkit"}
    assert sent["MaxInstances"] == "2"
    for name in ("InstanceType", "ClipModel", "ClipPretrained"):  # template.yaml's defaults apply
        assert name not in sent


def test_flags_given_replace_only_their_own_values(capsys) -> None:
    dev = samconfig_overrides("dev")
    sent = dry_run(capsys, "--config-env", "dev", "--max-instances", "3", "--instance-type", "ml.g5.xlarge")
    assert sent["MaxInstances"] == "3" and sent["InstanceType"] == "ml.g5.xlarge"
    assert sent["MinInstances"] == dev["MinInstances"] == "1"
    assert sent["TargetInvocationsPerInstance"] == dev["TargetInvocationsPerInstance"] == "600"
    sent = dry_run(capsys, "--config-env", "dev", "--model", "ViT-B-16", "--pretrained", "laion2b_s34b_b88k")
    assert (sent["ClipModel"], sent["ClipPretrained"], sent["MaxInstances"]) == ("ViT-B-16", "laion2b_s34b_b88k", "2")


def test_prod_keeps_its_own_sizing(capsys) -> None:
    prod = samconfig_overrides("prod")
    sent = dry_run(capsys, "--config-env", "prod", "--target-invocations", "250")
    assert sent["TargetInvocationsPerInstance"] == "250"
    for name in ("InstanceType", "MinInstances", "MaxInstances"):
        assert sent[name] == prod[name]


def test_a_typed_request_without_sizing_sends_none(capsys) -> None:
    request = DeployRequest(model_data_url=URL, serving_container="toolkit", dry_run=True)
    assert deploy(AwsTarget(config_env="dev"), request) == 0
    sent = parameter_overrides(capsys.readouterr().out)
    assert {name: sent.get(name) for name in SIZING} == {name: samconfig_overrides("dev").get(name) for name in SIZING}


def test_a_minimum_above_samconfigs_maximum_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        deploy_cli.main(["deploy", "--dry-run", "--model-data-url", URL, "--config-env", "dev", "--min-instances", "3"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "MinInstances=3" in err and "MaxInstances=2" in err
