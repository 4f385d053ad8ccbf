"""deploy --kind: EndpointKind in the final --parameter-overrides, and the floor each kind takes.

A flag left out keeps samconfig's value (its ``default`` environment says EndpointKind=serverless; ``dev``
says nothing, so template.yaml's realtime applies). Only components takes --min-instances 0.
"""

from __future__ import annotations

import pytest

from omnisearch_ops import deploy_cli
from omnisearch_ops.aws import AwsTarget
from omnisearch_ops.deploy_commands import DeployRequest, Sizing, deploy
from tests.ops.test_deploy_overrides import URL, dry_run, parameter_overrides, samconfig_overrides


def test_kind_given_is_sent_with_the_floor_it_allows(capsys) -> None:
    sent = dry_run(capsys, "--config-env", "dev", "--kind", "components", "--min-instances", "0")
    changed = {"EndpointKind": "components", "MinInstances": "0", "ModelDataUrl": URL, "ServingContainer": "toolkit"}
    assert sent == {**samconfig_overrides("dev"), **changed}  # MaxInstances=2 and the rest: samconfig's


def test_kind_left_out_keeps_samconfigs_value(capsys) -> None:
    assert "EndpointKind" not in dry_run(capsys, "--config-env", "dev")  # template.yaml's realtime applies
    assert samconfig_overrides("default")["EndpointKind"] == "serverless"
    assert dry_run(capsys, "--config-env", "default")["EndpointKind"] == "serverless"
    assert dry_run(capsys, "--config-env", "default", "--kind", "realtime")["EndpointKind"] == "realtime"


def test_components_with_samconfigs_floor_of_one_is_deployed_with_a_note(capsys) -> None:
    common = ["deploy", "--dry-run", "--model-data-url", URL, "--serving-container", "toolkit"]
    assert deploy_cli.main([*common, "--config-env", "dev", "--kind", "components"]) == 0
    out = capsys.readouterr().out
    assert parameter_overrides(out)["MinInstances"] == "1"
    assert (
        "note: MinInstances=1" in out
        and "keeps 1 copy of the component" in out
        and "never scales to zero; --min-instances 0 lets it sleep" in out
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["deploy", "--model-data-url", URL, "--min-instances", "0"],
        ["deploy", "--model-data-url", URL, "--min-instances", "0", "--kind", "realtime"],
        ["autoscale", "--min-instances", "0"],
        ["cost", "--min-instances", "0"],
    ],
)
def test_a_floor_of_zero_needs_the_components_kind(argv, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        deploy_cli.main(argv)
    assert stopped.value.code == 2
    assert "--min-instances 0 needs --kind components" in capsys.readouterr().err


def test_a_typed_request_is_checked_against_the_kind_it_deploys(capsys) -> None:
    request = DeployRequest(model_data_url=URL, kind="realtime", sizing=Sizing(min_instances=0), dry_run=True)
    with pytest.raises(SystemExit) as stopped:
        deploy(AwsTarget(config_env="dev"), request)
    assert stopped.value.code == 2
    assert "MinInstances=0 needs EndpointKind components, not realtime" in capsys.readouterr().err
    request = DeployRequest(model_data_url=URL, serving_container="toolkit", dry_run=True)
    assert deploy(AwsTarget(config_env="dev"), request) == 0
    assert "EndpointKind" not in parameter_overrides(capsys.readouterr().out)
