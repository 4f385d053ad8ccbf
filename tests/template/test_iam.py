"""Least privilege: every IAM statement of every role, as concrete ARNs, for several configurations."""

from __future__ import annotations

from typing import Any

import pytest

ACCOUNT_REGION = "us-east-1:123456789012"
LOGS = f"arn:aws:logs:{ACCOUNT_REGION}"
ENDPOINT_ARN = f"arn:aws:sagemaker:{ACCOUNT_REGION}:endpoint/omnisearch-embed-dev"
XRAY = {"Effect": "Allow", "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Resource": ["*"]}
LAMBDA_TRUST = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}


def logs(function: str, stage: str = "dev") -> dict[str, Any]:
    group = f"{LOGS}:log-group:/aws/lambda/omnisearch-embed-{stage}-{function}:*"
    return {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": [group]}


def policies(stack: Any, role: str) -> dict[str, list[dict[str, Any]]]:
    props = stack.props(role)
    return {p["PolicyName"]: stack.statements(p["PolicyDocument"]) for p in props.get("Policies", [])}


def test_roles_are_exactly_these(stack: Any) -> None:
    assert set(stack.of_type("AWS::IAM::Role")) == {
        "AuthorizerFunctionRole",
        "EmbedFunctionRole",
        "MetricsFunctionRole",
        "ModelFunctionRole",
        "SageMakerExecutionRole",
        "CodeDeployServiceRole",
    }
    for other in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::InstanceProfile"):
        assert not stack.of_type(other), other


def test_each_function_runs_as_its_own_role(stack: Any) -> None:
    for function in ("EmbedFunction", "MetricsFunction", "AuthorizerFunction"):
        assert stack.props(function)["Role"] == f"<{function}Role.Arn>"


@pytest.mark.parametrize("role", ["AuthorizerFunctionRole", "EmbedFunctionRole", "MetricsFunctionRole"])
def test_function_roles_trust_lambda_only_and_use_no_managed_policy(stack: Any, role: str) -> None:
    props = stack.props(role)
    assert props["AssumeRolePolicyDocument"]["Statement"] == [LAMBDA_TRUST]
    assert "ManagedPolicyArns" not in props


def test_authorizer_role_only_writes_its_logs_and_traces(stack: Any) -> None:
    assert policies(stack, "AuthorizerFunctionRole") == {"logs-and-traces": [logs("authorizer"), XRAY]}


def test_embed_role_invokes_only_this_endpoint_by_default(stack: Any) -> None:
    assert policies(stack, "EmbedFunctionRole") == {
        "logs-and-traces": [logs("embed"), XRAY],
        "invoke-endpoint": [{"Effect": "Allow", "Action": ["sagemaker:InvokeEndpoint"], "Resource": [ENDPOINT_ARN]}],
    }


def test_embed_role_adds_the_fallback_endpoint_and_allowed_buckets(make_stack: Any) -> None:
    stack = make_stack(Stage="prod", FallbackMode="omnisearch-embed-prod-b", AllowedS3Buckets="photos,media.example")
    assert policies(stack, "EmbedFunctionRole") == {
        "logs-and-traces": [logs("embed", "prod"), XRAY],
        "invoke-endpoint": [
            {
                "Effect": "Allow",
                "Action": ["sagemaker:InvokeEndpoint"],
                "Resource": [
                    f"arn:aws:sagemaker:{ACCOUNT_REGION}:endpoint/omnisearch-embed-prod",
                    f"arn:aws:sagemaker:{ACCOUNT_REGION}:endpoint/omnisearch-embed-prod-b",
                ],
            }
        ],
        "read-allowed-images": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": ["arn:aws:s3:::media.example/*", "arn:aws:s3:::photos/*"],
            },
            # a missing key is then S3's 404 (s3_object_not_found), not a 403
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": ["arn:aws:s3:::media.example", "arn:aws:s3:::photos"],
            },
        ],
    }


def test_one_allowed_bucket(make_stack: Any) -> None:
    stack = make_stack(AllowedS3Buckets="photos")
    read, listing = policies(stack, "EmbedFunctionRole")["read-allowed-images"]
    assert (read["Resource"], listing["Resource"]) == (["arn:aws:s3:::photos/*"], ["arn:aws:s3:::photos"])


KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0f4cf0a2-5d3a-4c1e-9a52-6a3f0e5d9c11"


def test_sse_kms_buckets_get_decrypt_on_that_key_through_s3_only(make_stack: Any) -> None:
    stack = make_stack(AllowedS3Buckets="photos", S3KmsKeyArn=KMS_KEY)
    assert policies(stack, "EmbedFunctionRole")["read-allowed-images"][2] == {
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [KMS_KEY],
        "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
    }
    assert len(policies(make_stack(AllowedS3Buckets="photos"), "EmbedFunctionRole")["read-allowed-images"]) == 2
    assert "read-allowed-images" not in policies(make_stack(S3KmsKeyArn=KMS_KEY), "EmbedFunctionRole")


def test_metrics_role_reads_metrics_and_describes_this_endpoint_only(stack: Any) -> None:
    assert policies(stack, "MetricsFunctionRole") == {
        "logs-and-traces": [logs("metrics"), XRAY],
        "read-endpoint-metrics": [
            {"Effect": "Allow", "Action": ["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"], "Resource": ["*"]},
            {
                "Effect": "Allow",
                "Action": ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"],
                # Ref of AWS::SageMaker::EndpointConfig is its ARN.
                "Resource": ["<EndpointConfig>", ENDPOINT_ARN],
            },
        ],
    }


def test_sagemaker_role_reads_the_archive_pulls_the_image_and_writes_its_logs(stack: Any) -> None:
    props = stack.props("SageMakerExecutionRole")
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert "ManagedPolicyArns" not in props
    assert policies(stack, "SageMakerExecutionRole") == {
        "model-artifact": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": ["arn:aws:s3:::omni-models/clip/vit-b-32/model.tar.gz"],
            }
        ],
        "pull-inference-image": [
            {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]},
            {
                "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": [f"arn:aws:ecr:{ACCOUNT_REGION}:repository/omnisearch-embed-endpoint"],
            },
        ],
        "endpoint-logs-and-metrics": [
            {
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                "Resource": [
                    f"arn:aws:logs:{ACCOUNT_REGION}:log-group:/aws/sagemaker/Endpoints/omnisearch-embed-dev:*"
                ],
            },
            {
                "Effect": "Allow",
                "Action": ["cloudwatch:PutMetricData"],
                "Resource": ["*"],
                "Condition": {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}},
            },
        ],
    }


@pytest.mark.parametrize(
    ("image", "repository_arn"),
    [
        (
            "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker",
            "arn:aws:ecr:eu-west-1:763104351884:repository/pytorch-inference",
        ),
        (
            "111122223333.dkr.ecr.us-west-2.amazonaws.com/team/clip-serving@sha256:" + "ab" * 32,
            "arn:aws:ecr:us-west-2:111122223333:repository/team/clip-serving",
        ),
    ],
)
def test_image_pull_is_scoped_to_the_image_repository(make_stack: Any, image: str, repository_arn: str) -> None:
    stack = make_stack(ServingContainer="toolkit", InferenceImage=image)
    pull = policies(stack, "SageMakerExecutionRole")["pull-inference-image"][1]
    assert pull["Resource"] == [repository_arn]
    assert stack.props("Model")["PrimaryContainer"]["Image"] == image


def test_codedeploy_role_is_sams_standard_lambda_deployer(stack: Any) -> None:
    props = stack.props("CodeDeployServiceRole")
    assert props["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda"]
    assert "Policies" not in props
    principals = [s["Principal"]["Service"] for s in props["AssumeRolePolicyDocument"]["Statement"]]
    assert principals == [["codedeploy.amazonaws.com"]]


# Actions that have no resource-level permissions in IAM, so "*" is the only possible resource.
RESOURCELESS = {
    "AuthorizerFunctionRole": {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
    "EmbedFunctionRole": {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
    "MetricsFunctionRole": {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "cloudwatch:GetMetricData",
        "cloudwatch:ListMetrics",
        "application-autoscaling:DescribeScalingActivities",  # a component's copy changes; no resource-level form
    },
    "SageMakerExecutionRole": {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"},
}


@pytest.mark.parametrize(
    "overrides", [{}, {"FallbackMode": "other-endpoint", "AllowedS3Buckets": "a-bucket,b-bucket", "Stage": "prod"}]
)
def test_no_other_wildcard(make_stack: Any, overrides: dict[str, str]) -> None:
    stack = make_stack(**overrides)
    for role, allowed in RESOURCELESS.items():
        for statement in (st for sts in policies(stack, role).values() for st in sts):
            assert statement["Effect"] == "Allow"
            assert not any("*" in action for action in statement["Action"]), (role, statement)
            for resource in statement["Resource"]:
                if resource == "*":
                    assert set(statement["Action"]) <= allowed, (role, statement)
                elif "*" in resource:
                    # Only "the streams of one log group" or "the objects of one allowed bucket".
                    assert resource.endswith((":*", "/*")) and resource.count("*") == 1, (role, resource)
                    assert ":log-group:" in resource or resource.startswith("arn:aws:s3:::"), (role, resource)
