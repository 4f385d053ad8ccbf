"""FallbackBackend: answer from a second backend while the primary is failing, never from another model.

Only the backend's own faults (429 and 5xx) fall back; the caller's 4xx would fail the same way anywhere.
The models are checked twice: the configured ids when it is built, and every fallback answer against the
model the primary last answered with (a 502 ``model_mismatch`` instead of vectors from another model).
A circuit breaker stops paying the primary's timeout on every call once it is clearly down; a primary that
says it is waking (scaled to zero) is skipped at once, without counting as a failure. Both share the
request's one deadline: the primary may use ``primary_share`` of what is left, so a hanging primary still
leaves the secondary time to answer; when too little is left the primary's error is the answer.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from omnisearch_embed import deadline
from omnisearch_embed.backends.base import Backend
from omnisearch_embed.backends.circuit import CLOSED, CircuitBreaker
from omnisearch_embed.embeddings import Embeddings
from omnisearch_embed.errors import ConfigError, EmbedError, ModelError, ModelWakingError

logger = logging.getLogger(__name__)
MIN_FALLBACK_SECONDS = 0.5  # with less left than this the secondary is not tried


def is_backend_fault(error: EmbedError) -> bool:
    """Throttling and 5xx are the backend's fault; 4xx are the caller's and must not fall back."""
    return error.status == 429 or error.status >= 500


class FallbackBackend:
    """Sends to ``primary``; on its faults, or while its circuit is open, answers from ``secondary``."""

    def __init__(
        self,
        primary: Backend,
        secondary: Backend,
        *,
        failure_threshold: int = 3,
        cooldown_seconds: float = 30.0,
        primary_share: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if primary.model_id != secondary.model_id:
            raise ConfigError(
                f"fallback serves model {secondary.model_id!r} but the primary serves {primary.model_id!r}: "
                "vectors from two models must never meet in one index; point FALLBACK at the same model"
            )
        if not 0 < primary_share <= 1:
            raise ConfigError(f"primary_share={primary_share} must be in (0, 1]")
        self.primary = primary
        self.primary_share = primary_share
        self.secondary = secondary
        self.model_id = primary.model_id
        self.service = primary.service
        self.circuit = CircuitBreaker(failure_threshold, cooldown_seconds, clock=clock)
        self._primary_model = primary.model_id  # what the primary answered with last (an endpoint may differ)
        self._waking: ModelWakingError | None = None  # the primary's last "waking" answer, while it skips it

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        return self._call("embed_texts", texts, normalize)

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings:
        return self._call("embed_images", images, normalize)

    def health(self) -> dict[str, Any]:
        """ok while the circuit is closed; degraded while the secondary stands in; down if that fails too."""
        circuit = self.circuit.snapshot()
        primary, secondary = _health(self.primary), _health(self.secondary)
        waking = circuit["waking"] or bool(primary.get("waking"))
        if circuit["state"] == CLOSED and not waking:
            status = primary.get("status", "down")
        else:
            status = "degraded" if secondary.get("status") == "ok" or waking else "down"
        report = {
            "status": status,
            "service": self.service,
            "model": self.model_id,
            "circuit": circuit,
            "primary": primary,
            "secondary": secondary,
        }
        return {**report, "waking": True} if waking else report

    def _call(self, method: str, items: Sequence[Any], normalize: bool) -> Embeddings:
        permit = self.circuit.acquire()
        if permit is None:
            if self._waking is None or not self.circuit.is_waking:
                return self._from_secondary(method, items, normalize, "circuit_open")
            try:
                return self._from_secondary(method, items, normalize, self._waking.code)
            except EmbedError as error:
                if not is_backend_fault(error):
                    raise
                waking = self._waking
                raise ModelWakingError(waking.message, retry_after_seconds=waking.retry_after_seconds) from error
        try:
            with deadline.scope(self._primary_deadline()):
                result = getattr(self.primary, method)(items, normalize=normalize)
        except EmbedError as error:
            if not is_backend_fault(error):
                self.circuit.release(permit)
                raise
            primary_error = error
        except BaseException:
            self.circuit.release(permit)  # a bug, not an outage: surface it, keep the trial slot free
            raise
        else:
            self.circuit.success(permit)
            self._primary_model = result.model
            return result

        left = deadline.remaining()
        if left is not None and left < MIN_FALLBACK_SECONDS:
            logger.warning("primary %s failed (%s), no time left for the fallback", self.service, primary_error.code)
            self._primary_failed(permit, primary_error)
            raise primary_error
        logger.warning("primary %s failed (%s); answering from the fallback", self.primary.service, primary_error.code)
        try:
            result = self._from_secondary(method, items, normalize, primary_error.code)
        except EmbedError as error:
            if not is_backend_fault(error) and primary_error.code == "model_error":
                # both backends refuse this input: the input is at fault, not the primary's health
                self.circuit.release(permit)
                raise
            self._primary_failed(permit, primary_error)
            if not is_backend_fault(error):
                raise
            raise primary_error from error
        except BaseException:
            self._primary_failed(permit, primary_error)
            raise
        self._primary_failed(permit, primary_error)
        return result

    def _primary_failed(self, permit: str, error: EmbedError) -> None:
        if isinstance(error, ModelWakingError):
            self._waking = error
            self.circuit.waking(permit)
        else:
            self.circuit.failure(permit)

    def _primary_deadline(self) -> float | None:
        left = deadline.remaining()
        return None if left is None else time.monotonic() + max(0.0, left) * self.primary_share

    def _from_secondary(self, method: str, items: Sequence[Any], normalize: bool, reason: str) -> Embeddings:
        result = getattr(self.secondary, method)(items, normalize=normalize)
        expected = self._primary_model
        if result.model != expected:
            logger.error(
                "fallback %s answered with model %r, the primary's is %r",
                self.secondary.service,
                result.model,
                expected,
            )
            raise ModelError(
                f"the fallback ({self.secondary.service}) serves model {result.model!r}, the primary {expected!r}: "
                "vectors from two models must never meet in one index, so its answer is refused",
                code="model_mismatch",
            )
        return dataclasses.replace(result, meta={**result.meta, "fallback": True, "fallback_reason": reason})


def _health(backend: Backend) -> dict[str, Any]:
    try:
        return backend.health()
    except EmbedError as error:
        return {"status": "down", "service": backend.service, "error": error.to_dict()}
