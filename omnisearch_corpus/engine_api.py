"""``--engine api``: the public API's batch routes (the deployed API Gateway stage, or the local server).

Requests carry the API key as ``x-api-key`` and ask for base64 vectors. Bodies are cut by the core's wire
splitter to stay under the API's request limit (the batch routes take the wire protocol's ``texts`` /
``images`` fields). Throttling and unavailability (429, 502, 503, 504) are retried by urllib3 with
exponential backoff, honouring ``Retry-After``; a 4xx that names the input isolates the bad item.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from omnisearch_corpus.engines import Answer, BatchResult, EngineError, ItemRejected, isolating, rejected
from omnisearch_embed.backends import wire
from omnisearch_embed.errors import EmbedError
from omnisearch_embed.settings import Settings

RETRY_STATUSES = (429, 502, 503, 504)
ITEM_STATUSES = (400, 413, 415, 422)  # the input's fault; 401, 403 or 404 stop the run (key or URL wrong)
# Lambda takes 6 MB per event, headers and the event's own fields included: bodies stay well under it.
REQUEST_BYTES = 5 * 1024 * 1024


class ApiError(EngineError):
    """The API failed in a way retrying did not fix: the run stops (and resumes on a re-run)."""


def session(retries: int, backoff: float, pool: int) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # POST too: embedding is idempotent
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    s = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool, pool_maxsize=pool)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


class ApiEngine:
    name = "api"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        retries: int = 6,
        backoff: float = 0.5,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_request_bytes: int | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.headers = {"x-api-key": api_key} if api_key else {}
        self.timeout = timeout
        self.max_request_bytes = min(max_request_bytes or REQUEST_BYTES, Settings().max_request_bytes)
        self.http = session(retries, backoff, max(1, concurrency))
        health = self._get("/health")
        self.model_id: str | None = health.get("model")

    def _get(self, path: str) -> dict[str, Any]:
        try:
            response = self.http.get(self.url + path, headers=self.headers, timeout=self.timeout)
        except requests.RequestException as e:
            raise ApiError(f"cannot reach {self.url}: {e}") from e
        if response.status_code >= 400 and response.status_code != 503:
            raise ApiError(f"GET {self.url}{path} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def _post(self, path: str, body: bytes) -> dict[str, Any]:
        headers = {**self.headers, "content-type": "application/json"}
        try:
            response = self.http.post(self.url + path, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as e:  # includes retries exhausted on 429/5xx
            raise ApiError(f"POST {self.url}{path} failed: {e}") from e
        doc = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code == 200:
            return doc
        error = doc.get("error") if isinstance(doc.get("error"), dict) else {}
        code, message = error.get("code", f"http_{response.status_code}"), error.get("message", response.text[:300])
        if response.status_code in ITEM_STATUSES:
            raise ItemRejected(code, message)
        raise ApiError(f"POST {self.url}{path} answered {response.status_code} ({code}): {message}")

    def _call(self, kind: str, payloads: list[Any]) -> Answer:
        try:
            if kind == "text":
                chunks = wire.text_chunks(payloads, max_bytes=self.max_request_bytes)
            else:
                chunks = wire.image_chunks(payloads, max_bytes=self.max_request_bytes)
        except EmbedError as e:  # one item alone is over the request limit
            item = rejected(e)
            if item is None:
                raise
            raise item from e
        path = "/embed/batch/text" if kind == "text" else "/embed/batch/image"
        parts = [self._post(path, chunk.body) for chunk in chunks]
        model = parts[0]["model"]
        if any(p["model"] != model for p in parts):
            raise ApiError("the API answered one batch with two models (a deployment in progress?); re-run to resume")
        rows = [np.frombuffer(base64.b64decode(v), dtype="<f4") for p in parts for v in p["embeddings"]]
        truncated = [bool(t) for p in parts for t in p.get("truncated", [False] * len(p["embeddings"]))]
        return Answer(model, np.stack(rows).astype(np.float32, copy=False), truncated)

    def embed(self, kind: str, payloads: Sequence[bytes | str]) -> BatchResult:
        return isolating(lambda batch: self._call(kind, batch), payloads)

    def close(self) -> None:
        self.http.close()
