"""omnisearch-deploy's subcommands, the old action flags they replace, and the typed calls underneath."""

from __future__ import annotations

import pytest

from omnisearch_ops import deploy_cli
from omnisearch_ops.aws import AwsTarget
from omnisearch_ops.deploy_commands import DeployRequest, Sizing, deploy

URL = "s3://b/k/model.tar.gz"


@pytest.mark.parametrize("command", sorted(deploy_cli.HELP))
def test_each_old_action_flag_becomes_its_subcommand(command: str) -> None:
    assert deploy_cli.legacy_argv(["--config-env", "prod", f"--{command}", "--region", "eu-west-1"]) == [
        command,
        "--config-env",
        "prod",
        "--region",
        "eu-west-1",
    ]
    assert deploy_cli.legacy_argv([command, "--config-env", "prod"]) == [command, "--config-env", "prod"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert deploy_cli.main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "new, old",
    [
        (
            ["cost", "--instance-type", "ml.g5.xlarge", "--hours-per-day", "8"],
            ["--cost", "--hours-per-day", "8", "--instance-type", "ml.g5.xlarge"],
        ),
        (
            ["deploy", "--dry-run", "--model-data-url", URL, "--serving-container", "toolkit", "--config-env", "prod"],
            [
                "--config-env",
                "prod",
                "--deploy",
                "--serving-container",
                "toolkit",
                "--model-data-url",
                URL,
                "--dry-run",
            ],
        ),
    ],
)
def test_a_subcommand_and_its_old_form_print_the_same(capsys, new, old) -> None:
    printed = run(capsys, *new)
    assert printed and printed == run(capsys, *old)


@pytest.mark.parametrize(
    "argv",
    [
        ["test", "--dry-run"],  # --dry-run belongs to deploy
        ["deploy", "--direct", "--model-data-url", URL],  # --direct belongs to test
        ["info", "--yes"],  # --yes belongs to delete
        ["list", "--min-instances", "2"],  # sizing belongs to deploy, autoscale and cost
        ["autoscale", "--min-instances", "3", "--max-instances", "2"],
        ["--cost", "--info"],
        ["nonsense"],
    ],
)
def test_options_outside_their_subcommand_are_usage_errors(argv, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        deploy_cli.main(argv)
    assert stopped.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(deploy_cli.HELP))
def test_each_subcommand_has_its_own_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        deploy_cli.main([command, "--help"])
    assert stopped.value.code == 0
    assert f"usage: omnisearch-deploy {command}" in capsys.readouterr().out


def test_deploy_is_a_typed_call(capsys) -> None:
    request = DeployRequest(  # the stock DLCs for both models: no image of ours to build
        model_data_url=URL,
        serving_container="toolkit",
        serverless_container="toolkit",
        sizing=Sizing(max_instances=6),
        dry_run=True,
    )
    assert deploy(AwsTarget(config_env="prod", region="eu-west-1"), request) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 2)[1] for line in lines] == ["1/2", "2/2"]
    assert lines[0].endswith("sam build --config-env prod")
    sent = ("MaxInstances=6", f"ModelDataUrl={URL}", "ServingContainer=toolkit", "ServerlessContainer=toolkit")
    for part in (*sent, "--region eu-west-1"):
        assert part in lines[1], part
