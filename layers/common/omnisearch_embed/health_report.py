"""What ``/health`` reports: the backend's own status and, when asked, one real embedding through it.

``ok`` < ``degraded`` < ``down``: the worse of the backend's word and the probe's stands. A fallback answering
is degraded; so is a model scaled to zero that is starting (``waking``), which answers again by itself once a
copy is up; anything else that fails the probe is down.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from omnisearch_embed.backends.base import Backend
from omnisearch_embed.embeddings import used_fallback
from omnisearch_embed.errors import EmbedError, ModelWakingError

logger = logging.getLogger(__name__)
HEALTH_PROBE_TEXT = "health"
_STATUS_RANK = {"ok": 0, "degraded": 1, "down": 2}


def ms_since(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` reading), to the microsecond."""
    return round((time.perf_counter() - start) * 1000.0, 3)


def health_report(backend: Backend, model_id: str, *, deep: bool = False) -> dict[str, Any]:
    """Backend status; with ``deep`` also one real embedding through the backend, timed and checked."""
    try:
        status_of_backend = dict(backend.health())
    except EmbedError as e:
        status_of_backend = {"status": "down", "error": e.to_dict()}
    except Exception:
        logger.exception("backend health check failed")
        status_of_backend = {"status": "down", "error": {"code": "internal_error", "message": "health check failed"}}
    status = status_of_backend.get("status") if status_of_backend.get("status") in _STATUS_RANK else "ok"
    report: dict[str, Any] = {"service": backend.service, "model": model_id, "backend": status_of_backend}
    waking = bool(status_of_backend.get("waking"))
    if deep:
        report["deep"] = found = probe(backend)
        waking = waking or _is_waking(found)
        status = max(status, _probe_status(found), key=_STATUS_RANK.__getitem__)
    if waking:
        report["waking"] = True
    report["status"] = status
    return report


def _is_waking(found: dict[str, Any]) -> bool:
    return not found["ok"] and found["error"]["code"] == ModelWakingError.code


def _probe_status(found: dict[str, Any]) -> str:
    if found["ok"]:
        return "degraded" if found.get("fallback") else "ok"
    return "degraded" if _is_waking(found) else "down"


def probe(backend: Backend) -> dict[str, Any]:
    """One text through the backend: its latency, and whether the vector it gave is usable."""
    start = time.perf_counter()
    try:
        emb = backend.embed_texts([HEALTH_PROBE_TEXT], normalize=True)
    except EmbedError as e:
        return {"ok": False, "latency_ms": ms_since(start), "error": e.to_dict()}
    except Exception:
        logger.exception("deep health probe failed")
        error = {"code": "internal_error", "message": "the probe raised an unexpected error"}
        return {"ok": False, "latency_ms": ms_since(start), "error": error}
    latency = ms_since(start)
    vector = emb.vectors[0] if emb.vectors else []
    norm = math.sqrt(sum(x * x for x in vector)) if vector else 0.0
    if emb.count != 1 or not vector or not math.isfinite(norm) or norm == 0.0:
        error = {"code": "bad_vector", "message": "the backend answered with an empty, zero or non-finite vector"}
        return {"ok": False, "latency_ms": latency, "error": error}
    return {
        "ok": True,
        "latency_ms": latency,
        "dimension": emb.dimension,
        "service": emb.service,
        "fallback": used_fallback(emb),
        "norm": round(norm, 4),
    }
