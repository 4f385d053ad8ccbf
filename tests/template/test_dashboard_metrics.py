"""The dashboard graphs what the embed function really emits: names, dimensions and values read from its EMF output.

The handler runs for real (Powertools Metrics printing CloudWatch EMF on stdout) over a request mix that makes
it emit every metric it has (text and image items, a fallback, an error); each Powertools metric the dashboard
plots, plain row or SEARCH expression, must be one of those, with the same dimension names and values.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from local_server.lambda_context import LambdaContext
from omnisearch_embed.backends.fallback import FallbackBackend
from omnisearch_embed.errors import BackendUnavailableError
from omnisearch_testkit.events import load_event, sample_png
from tests.helpers.backends import StaticBackend
from tests.helpers.lambda_app import emf_blobs, use_backend

Metric = tuple[str, str, frozenset[tuple[str, str]]]  # namespace, name, {(dimension, value)}
_SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\}\s+MetricName=\"(?P<name>[^\"]+)\"")


def emitted_metrics(blobs: list[dict[str, Any]]) -> set[Metric]:
    found: set[Metric] = set()
    for blob in blobs:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                dims = frozenset((name, str(blob[name])) for name in dimensions)
                found |= {(directive["Namespace"], m["Name"], dims) for m in directive["Metrics"]}
    return found


def dashboard_rows(body: dict[str, Any]) -> list[list[str]]:
    """Every plain metric row with CloudWatch's "." (same as above) and "..." (all of the above) expanded."""
    rows: list[list[str]] = []
    for widget in body["widgets"]:
        previous: list[str] = []
        for row in widget["properties"].get("metrics", []):
            names = [x for x in row if isinstance(x, str)]
            if not names:
                continue
            if names[0] == "...":
                names = previous + names[1:]
            else:
                names = [previous[i] if x == "." else x for i, x in enumerate(names)]
            rows.append(names)
            previous = names
    return rows


def dashboard_searches(body: dict[str, Any]) -> list[tuple[str, frozenset[str], str]]:
    """(namespace, dimension names, metric name) of every SEARCH expression."""
    found = []
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            for item in row:
                if isinstance(item, dict) and (match := _SEARCH.search(item.get("expression", ""))):
                    namespace, *dims = (part.strip() for part in match["schema"].split(","))
                    found.append((namespace, frozenset(dims), match["name"]))
    return found


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> set[Metric]:
    failing = StaticBackend(fail_with=BackendUnavailableError("down", code="endpoint_unavailable"))
    use_backend(monkeypatch, FallbackBackend(failing, StaticBackend()))
    png = base64.b64encode(sample_png()).decode()
    events = [
        load_event("embed_text", body={"text": "a red circle"}),  # the fallback answers: fallback_used
        load_event("embed_image_json", body={"image": png}),
        load_event("embed_batch_text", body={"texts": ["a", "b"]}),
        load_event("embed_text", body={"text": ""}),  # an error: errors by code
    ]
    import functions.embed.app as embed_app

    capsys.readouterr()
    for event in events:
        embed_app.lambda_handler(event, LambdaContext())
    return emitted_metrics(emf_blobs(capsys.readouterr().out))


def test_every_function_metric_on_the_dashboard_is_emitted_with_those_dimensions(stack: Any, emitted: set) -> None:
    namespace = stack.props("EmbedFunction")["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    body = json.loads(stack.props("Dashboard")["DashboardBody"])
    plotted = [row for row in dashboard_rows(body) if row[0] == namespace]
    assert plotted, "the dashboard graphs none of the function's metrics"
    for row in plotted:
        metric = (row[0], row[1], frozenset(zip(row[2::2], row[3::2], strict=True)))
        assert metric in emitted, f"the dashboard plots {metric}, which the function never emits"
    names = {row[1] for row in plotted}
    assert {"text_items", "image_items", "backend_latency", "fallback_used", "requests"} <= names


def test_the_errors_search_matches_the_emitted_dimensions(stack: Any, emitted: set) -> None:
    body = json.loads(stack.props("Dashboard")["DashboardBody"])
    searches = dashboard_searches(body)
    assert searches
    shapes = {(ns, frozenset(d for d, _ in dims), name) for ns, name, dims in emitted}
    for search in searches:
        assert search in shapes, f"the dashboard searches {search}; the function emits {sorted(map(str, shapes))}"
