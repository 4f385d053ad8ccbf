"""moto helpers for the metrics tests: an endpoint, CloudWatch figures, percentiles, a server for subprocesses.

moto 5.2 answers GetMetricData percentile statistics (``p95``) with a null value and then fails to
serialise it; real CloudWatch computes them. :func:`enable_percentiles` teaches moto's statistics the
nearest-rank percentile so the product code keeps asking CloudWatch exactly what it asks in AWS.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto.cloudwatch.models import Statistics

ROLE_ARN = "arn:aws:iam::123456789012:role/omnisearch-embed-sagemaker"
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")
_original_stat = Statistics.get_statistics_for_type


def _stat_with_percentiles(self: Statistics, stat: str) -> Any:
    match = _PERCENTILE.match(stat)
    if not match:
        return _original_stat(self, stat)
    values = sorted(self.metric_single_values_list + [s.max for s in self.metric_aggregated_list])
    rank = max(1, math.ceil(float(match.group(1)) / 100 * len(values)))
    return values[rank - 1]


def enable_percentiles(monkeypatch: Any) -> None:
    """Patch moto's CloudWatch statistics (in this process, which also hosts the threaded server)."""
    monkeypatch.setattr(Statistics, "get_statistics_for_type", _stat_with_percentiles)


def create_endpoint(
    sagemaker: Any, name: str, *, instance_type: str = "ml.g4dn.xlarge", instances: int = 1, variant: str = "AllTraffic"
) -> None:
    """Model, config and endpoint as the SAM template creates them."""
    sagemaker.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={
            "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-gpu",
            "ModelDataUrl": "s3://omnisearch-models/model.tar.gz",
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": f"{name}-model",
                "InitialInstanceCount": instances,
                "InstanceType": instance_type,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def put_endpoint_figures(cloudwatch: Any, name: str, now: datetime, variant: str = "AllTraffic") -> None:
    """A known hour of traffic: 30 invocations, latencies 10..100 ms (as µs), 2 4XX, 1 5XX, CPU 40/60 %.

    Plus one burst two hours ago that a one-hour window must not count.
    """
    dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": variant}]
    t1, t2 = now - timedelta(minutes=50), now - timedelta(minutes=10)

    def datum(metric: str, when: datetime, values: list[float], unit: str = "None") -> dict[str, Any]:
        return {"MetricName": metric, "Dimensions": dims, "Timestamp": when, "Values": values, "Unit": unit}

    cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            datum("Invocations", t1, [10]),
            datum("Invocations", t2, [20]),
            datum("Invocations", now - timedelta(hours=2), [1000]),
            datum("InvocationsPerInstance", t1, [10]),
            datum("InvocationsPerInstance", t2, [20]),
            datum("ModelLatency", t1, [10_000, 20_000, 30_000, 40_000, 50_000], "Microseconds"),
            datum("ModelLatency", t2, [60_000, 70_000, 80_000, 90_000, 100_000], "Microseconds"),
            datum("OverheadLatency", t2, [2_000, 4_000], "Microseconds"),
            datum("Invocation4XXErrors", t2, [2]),
            datum("Invocation5XXErrors", t2, [1]),
        ],
    )
    cloudwatch.put_metric_data(
        Namespace="/aws/sagemaker/Endpoints",
        MetricData=[datum("CPUUtilization", t1, [40], "Percent"), datum("CPUUtilization", t2, [60], "Percent")],
    )


def put_function_figures(cloudwatch: Any, now: datetime, namespace: str = "OmniSearchEmbed") -> None:
    """What the embed function's Powertools EMF lines become: metrics with a ``service`` dimension."""
    dims = [{"Name": "service", "Value": "omnisearch-embed"}]
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": "TextEmbeddings",
                "Dimensions": dims,
                "Timestamp": now - timedelta(minutes=5),
                "Values": [3, 5],
                "Unit": "Count",
            },
            {
                "MetricName": "FallbackUsed",
                "Dimensions": dims,
                "Timestamp": now - timedelta(minutes=5),
                "Values": [1],
                "Unit": "Count",
            },
        ],
    )


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode on 127.0.0.1 (a free port): the URL for AWS_ENDPOINT_URL in subprocesses."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        server._server.server_close()  # stop() leaves the listening socket open (a ResourceWarning)


def reset(server: str) -> None:
    """Forget every resource of earlier tests (moto's state lives in this process)."""
    urllib.request.urlopen(urllib.request.Request(f"{server}/moto-api/reset", method="POST")).close()


def subprocess_env(server: str) -> dict[str, str]:
    """This environment minus any real AWS settings, pointed at the moto server with dummy credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=server,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        MPLBACKEND="Agg",
    )
    return env


def server_client(server: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def run_script(script: Path, env: dict[str, str], *args: str, cwd: Path | None = None, stdin: Any = None) -> Any:
    """Run an operator script as a user would: a subprocess, its own environment, no terminal on stdin."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=env,
        cwd=cwd or script.parents[1],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL if stdin is None else stdin,
    )
