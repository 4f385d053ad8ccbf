"""Which AWS account, region, samconfig environment and endpoint a command works on.

``AwsTarget`` is what the library functions take; ``add_aws_arguments`` and ``target_from_args`` are the
one place the command lines' ``--endpoint-name``, ``--region``, ``--profile`` and ``--config-env`` become it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3

from omnisearch_ops.paths import SAMCONFIG

DEFAULT_ENV = "dev"
T = TypeVar("T")


def samconfig_parameters(config_env: str, command: str = "deploy") -> dict[str, Any]:
    """``[<env>.<command>.parameters]`` from samconfig.toml, or {} when there is no such file or table."""
    if not SAMCONFIG.is_file():
        return {}
    config = tomllib.loads(SAMCONFIG.read_text())
    return dict(config.get(config_env, {}).get(command, {}).get("parameters", {}))


def stack_name(config_env: str) -> str:
    return str(samconfig_parameters(config_env).get("stack_name") or f"omnisearch-embed-{config_env}")


@dataclass(frozen=True)
class AwsTarget:
    """An endpoint in a samconfig environment; unset fields fall back to the environment and samconfig."""

    config_env: str = DEFAULT_ENV
    endpoint_name: str | None = None
    region: str | None = None
    profile: str | None = None

    @property
    def endpoint(self) -> str:
        return self.endpoint_name or f"omnisearch-embed-{self.config_env}"

    @property
    def stack(self) -> str:
        return stack_name(self.config_env)

    def region_name(self) -> str:
        return (
            self.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or str(samconfig_parameters(self.config_env).get("region") or "us-east-1")
        )

    def session(self) -> boto3.session.Session:
        """A session for the profile and region; boto3 itself honours AWS_ENDPOINT_URL (moto, LocalStack)."""
        return boto3.session.Session(profile_name=self.profile, region_name=self.region_name())


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("AWS")
    group.add_argument("--endpoint-name", help="SageMaker endpoint (default: omnisearch-embed-<config env>)")
    group.add_argument("--region", help="AWS region (default: AWS_REGION, then samconfig.toml, then us-east-1)")
    group.add_argument("--profile", help="AWS named profile")
    group.add_argument("--config-env", default=DEFAULT_ENV, help="samconfig.toml environment: dev or prod")


def from_args(cls: type[T], args: argparse.Namespace, **values: Any) -> T:
    """A dataclass from the parsed options named like its fields (``values`` add or override), at the CLI's edge."""
    names = [f.name for f in dataclasses.fields(cls)]
    return cls(**{name: getattr(args, name) for name in names if hasattr(args, name)}, **values)


def target_from_args(args: argparse.Namespace) -> AwsTarget:
    return from_args(AwsTarget, args)
