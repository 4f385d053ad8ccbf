"""scripts/monitor_sagemaker_endpoint.py as a subprocess against moto's server mode (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.aws_moto import (
    create_endpoint,
    enable_percentiles,
    moto_server,
    put_endpoint_figures,
    put_function_figures,
    reset,
    run_script,
    server_client,
    subprocess_env,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "monitor_sagemaker_endpoint.py"
ENDPOINT = "omnisearch-embed-dev"


@pytest.fixture(scope="module")
def server():
    with pytest.MonkeyPatch.context() as mp, moto_server() as url:
        enable_percentiles(mp)
        yield url


@pytest.fixture
def aws(server: str):
    """A fresh moto state with the dev endpoint; the environment a subprocess needs to reach it."""
    reset(server)
    sagemaker, cloudwatch = server_client(server, "sagemaker"), server_client(server, "cloudwatch")
    create_endpoint(sagemaker, ENDPOINT)
    return subprocess_env(server), sagemaker, cloudwatch


def run(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run_script(SCRIPT, env, *args, cwd=cwd)


def now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def test_default_table_shows_status_and_figures(aws):
    env, _, cloudwatch = aws
    put_endpoint_figures(cloudwatch, ENDPOINT, now())
    put_function_figures(cloudwatch, now())
    result = run(env, "--endpoint-name", ENDPOINT)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "InService" in out and "ml.g4dn.xlarge" in out
    assert "Invocations" in out and " 30" in out
    assert "55 ms / 100 ms / 100 ms" in out
    assert "2 / 1" in out  # 4XX / 5XX
    assert "OmniSearchEmbed/TextEmbeddings (sum)  8" in out


def test_empty_window_shows_na(aws):
    env, _, _ = aws
    result = run(env, "--config-env", "dev", "--hours", "6")  # default name omnisearch-embed-<env>
    assert result.returncode == 0, result.stderr
    assert "last 6 h" in result.stdout
    assert "n/a / n/a / n/a" in result.stdout
    assert "Invocations" in result.stdout and "Traceback" not in result.stderr


def test_missing_endpoint_exits_non_zero_with_a_clear_message(aws):
    env, _, _ = aws
    result = run(env, "--endpoint-name", "omnisearch-embed-nope")
    assert result.returncode == 1
    assert "omnisearch-embed-nope" in result.stderr and "endpoint_not_found" in result.stderr
    assert "Traceback" not in result.stderr


def test_export_writes_the_report_with_window_and_series(aws, tmp_path):
    env, _, cloudwatch = aws
    put_endpoint_figures(cloudwatch, ENDPOINT, now())
    target = tmp_path / "metrics.json"
    result = run(env, "--endpoint-name", ENDPOINT, "--export", str(target))
    assert result.returncode == 0, result.stderr
    report = json.loads(target.read_text())
    assert report["endpoint_name"] == ENDPOINT and report["total_invocations"] == 30
    assert report["avg_latency_ms"] == pytest.approx(55.0)
    assert report["window"]["hours"] == 1 and report["window"]["start"] < report["window"]["end"]
    assert report["series"]["model_latency_ms"]["values"] == pytest.approx([30.0, 80.0])
    assert report["gpu_utilization_percent"] is None  # null in JSON, not 0


def test_export_of_an_empty_window_is_null(aws, tmp_path):
    env, _, _ = aws
    target = tmp_path / "metrics.json"
    assert run(env, "--endpoint-name", ENDPOINT, "--export", str(target)).returncode == 0
    text = target.read_text()
    assert '"total_invocations": null' in text and '"avg_latency_ms": null' in text


@pytest.mark.parametrize("with_data", [True, False])
def test_plot_writes_a_png(aws, tmp_path, with_data):
    env, _, cloudwatch = aws
    if with_data:
        put_endpoint_figures(cloudwatch, ENDPOINT, now())
    target = tmp_path / "latency.png"
    result = run(env, "--endpoint-name", ENDPOINT, "--plot", str(target))
    assert result.returncode == 0, result.stderr
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000


def test_watch_refreshes_then_stops(aws):
    env, _, _ = aws
    result = run(env, "--endpoint-name", ENDPOINT, "--watch", "--interval", "0.2", "--iterations", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("refresh every 0.2 s") == 3
    assert result.stdout.count("InService") == 3


def test_watch_exits_cleanly_on_ctrl_c(aws):
    env, _, _ = aws
    import signal
    import time

    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--endpoint-name", ENDPOINT, "--watch", "--interval", "0.2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "refresh every" not in line and time.monotonic() < deadline:
            line = process.stdout.readline()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_list_shows_endpoints(aws):
    env, sagemaker, _ = aws
    create_endpoint(sagemaker, "omnisearch-embed-prod")
    result = run(env, "--list")
    assert result.returncode == 0, result.stderr
    assert "omnisearch-embed-dev" in result.stdout and "omnisearch-embed-prod" in result.stdout


@pytest.mark.parametrize("args", [["--hours", "0"], ["--hours", "100"], ["--watch", "--list"], ["--interval", "-1"]])
def test_bad_arguments_exit_2(aws, args):
    env, _, _ = aws
    result = run(env, *args)
    assert result.returncode == 2
    assert "usage:" in result.stderr
