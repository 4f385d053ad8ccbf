"""Zero-shot classification: inputs scored against caller-chosen labels, as CLIP was trained to be used.

Each label becomes a prompt (``template`` with ``{}`` replaced by the label), embedded as text; an input's
probabilities are ``softmax(logit_scale * cosine)`` over the labels, with the model's own ``logit_scale``
(reported with every embedding, never assumed).

Order of work: the label list (cheap), then the inputs with the embed routes' own checks (decoding, S3,
pixels), then every prompt not yet cached, and only then the backend. A request that is refused costs no
model call and leaves the label cache as it was.

Label vectors are kept in a bounded LRU keyed by the SHA-256 digest of (model id, prompt): 32 bytes a key,
however long the label and template (each may have 10,000 characters), so a label set used again costs only
the inputs' forward pass and the cache's size is its vectors'. Scoring is pure Python (no numpy): 1,000
labels against one 512-d vector is some 20 ms of dot products, so it runs inside the request's time budget
(:mod:`omnisearch_embed.deadline`) and stops with our own 504 when the inputs left cannot be ranked in time.
"""

from __future__ import annotations

import hashlib
import math
import operator
import threading
import weakref
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from omnisearch_embed import deadline
from omnisearch_embed.errors import BackendTimeoutError, InvalidInputError, ModelError, PayloadTooLargeError
from omnisearch_embed.schemas import DEFAULT_TEMPLATE
from omnisearch_embed.service import EmbedService, Prepared

PLACEHOLDER = "{}"
MIN_LABELS = 2
MAX_LABELS = 1000
LABEL_CACHE_SIZE = 4096  # float32 vectors: about 2 KB each at 512-d, plus a 32-byte key: 8 MB at most


def label_key(model: str, prompt: str) -> bytes:
    """The cache key of ``prompt`` embedded by ``model``: a digest, so the cache never holds the strings."""
    data = f"{len(model)}:{model}\n{prompt}".encode("utf-8", "surrogatepass")  # lone surrogates are refused later
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class LabelVector:
    """A cached prompt embedding (unit length), whether its prompt ran past the context, and its model."""

    vector: array
    truncated: bool
    model: str


@dataclass(frozen=True, slots=True)
class LabelScore:
    label: str
    probability: float
    similarity: float


@dataclass(frozen=True, slots=True)
class Classification:
    """One ranked list per input, in input order; ``truncated_labels`` were cut at the model's context."""

    model: str
    service: str
    template: str
    logit_scale: float
    results: list[list[LabelScore]]
    truncated_labels: list[str]


class LabelCache:
    """A thread-safe LRU of label vectors; the local server classifies from many threads at once."""

    def __init__(self, max_entries: int = LABEL_CACHE_SIZE) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries={max_entries} must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, LabelVector] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> LabelVector | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: bytes, value: LabelVector) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


_CACHES: weakref.WeakKeyDictionary[object, LabelCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def cache_for(backend: object) -> LabelCache:
    """The label cache of ``backend``: one per backend object, shared by every app built around it.

    The local server builds one resolver per worker thread around one backend; their classifiers share
    this cache, so a label set embedded by one thread serves them all.
    """
    with _CACHES_LOCK:
        cache = _CACHES.get(backend)
        if cache is None:
            cache = _CACHES[backend] = LabelCache()
        return cache


def check_request(labels: Sequence[str], template: str, top_k: int | None) -> int:
    """Refuse a label list, template or ``top_k`` that cannot be answered; returns the ``top_k`` to use."""
    if len(labels) < MIN_LABELS:
        raise InvalidInputError(
            f"send at least {MIN_LABELS} labels to choose between (got {len(labels)})",
            code="too_few_labels",
            param="labels",
        )
    if len(labels) > MAX_LABELS:
        raise PayloadTooLargeError(
            f"{len(labels)} labels is over the limit of {MAX_LABELS}", code="too_many_labels", param="labels"
        )
    seen: set[str] = set()
    for i, label in enumerate(labels):
        if label in seen:
            raise InvalidInputError(
                f"labels[{i}] repeats {label[:50]!r}: each label may appear once",
                code="duplicate_label",
                param=f"labels[{i}]",
            )
        seen.add(label)
    if PLACEHOLDER not in template:
        raise InvalidInputError(
            f"the template must contain {PLACEHOLDER} where the label goes, e.g. {DEFAULT_TEMPLATE!r}",
            code="invalid_template",
            param="template",
        )
    if top_k is None:
        return len(labels)
    if not 1 <= top_k <= len(labels):
        raise InvalidInputError(
            f"top_k={top_k} must be between 1 and the number of labels ({len(labels)})",
            code="invalid_top_k",
            param="top_k",
        )
    return top_k


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(map(operator.mul, a, b))


def _unit(vector: Sequence[float]) -> array:
    norm = math.sqrt(_dot(vector, vector))
    return array("f", (v / norm for v in vector) if norm > 0 else vector)


def rank(
    vector: Sequence[float], labels: Sequence[str], label_vectors: Sequence[array], logit_scale: float, top_k: int
) -> list[LabelScore]:
    """Labels by probability, highest first: softmax of ``logit_scale * cosine`` (max-shifted, no overflow)."""
    unit = _unit(vector)
    sims = [_dot(unit, lv) for lv in label_vectors]
    logits = [logit_scale * s for s in sims]
    top = max(logits)
    weights = [math.exp(x - top) for x in logits]
    total = math.fsum(weights)
    scores = [LabelScore(label, w / total, s) for label, w, s in zip(labels, weights, sims, strict=True)]
    scores.sort(key=lambda score: score.probability, reverse=True)
    return scores[:top_k]


def rank_all(
    vectors: Sequence[Sequence[float]],
    labels: Sequence[str],
    label_vectors: Sequence[array],
    logit_scale: float,
    top_k: int,
) -> list[list[LabelScore]]:
    """:func:`rank` for each input, in order, within the request's deadline.

    Before each input it projects the time the inputs left will take from the time the ranked ones took, and
    answers our own 504 ``deadline_exceeded`` when they cannot finish: Lambda would otherwise be killed
    mid-scoring, which API Gateway turns into a 502.
    """
    results: list[list[LabelScore]] = []
    start = deadline.remaining()
    for done, vector in enumerate(vectors):
        left = deadline.remaining()
        if start is not None and left is not None:
            per_input = (start - left) / done if done else 0.0
            if left <= per_input * (len(vectors) - done):
                raise BackendTimeoutError(
                    f"the request ran out of time ranking {len(vectors)} inputs against {len(labels)} labels "
                    f"({done} ranked); send fewer inputs or labels per request",
                    code=deadline.DEADLINE_EXCEEDED,
                )
        results.append(rank(vector, labels, label_vectors, logit_scale, top_k))
    return results


class Classifier:
    """Scores inputs embedded by :class:`EmbedService` against labels embedded (or cached) through it."""

    def __init__(self, service: EmbedService, cache: LabelCache | None = None) -> None:
        self.service = service
        self.cache = cache if cache is not None else cache_for(service.backend)

    def classify(
        self, prepare: Callable[[], Prepared], labels: Sequence[str], *, template: str, top_k: int | None
    ) -> Classification:
        """Check the request, then the inputs (``prepare`` checks them and returns the call that embeds them),
        then the label prompts; embed the labels (cache first), then the inputs, and rank.

        Labels cached from another model than the one that embedded the inputs (an endpoint redeployed
        since) are embedded again once; two models still answering is a 502 ``model_mismatch``.
        """
        k = check_request(labels, template, top_k)
        embed_inputs = prepare()
        prompts = [template.replace(PLACEHOLDER, label) for label in labels]
        entries, label_scale = self._label_entries(prompts, refresh=False)
        emb = embed_inputs()
        if any(e.model != emb.model for e in entries):
            entries, label_scale = self._label_entries(prompts, refresh=True)
        if any(e.model != emb.model or len(e.vector) != emb.dimension for e in entries):
            raise ModelError(
                f"the inputs were embedded by {emb.model} ({emb.dimension}-d) and the labels by another model, "
                "e.g. during a deployment; retry the request",
                code="model_mismatch",
            )
        scale = emb.logit_scale or label_scale
        if not scale:
            raise ModelError(
                f"the model {emb.model} did not report its logit_scale, which zero-shot probabilities need "
                "(deploy the current model code)",
                code="logit_scale_unavailable",
            )
        results = rank_all(emb.vectors, labels, [e.vector for e in entries], scale, k)
        flagged = [label for label, e in zip(labels, entries, strict=True) if e.truncated]
        return Classification(emb.model, emb.service, template, scale, results, flagged)

    def _label_entries(self, prompts: Sequence[str], *, refresh: bool) -> tuple[list[LabelVector], float | None]:
        """Each prompt's vector, from the cache or embedded (all of them with ``refresh``), in order.

        Every prompt to embed is checked before the first label call, so a bad label costs no model call.
        """
        keys = [label_key(self.service.model_id, prompt) for prompt in prompts]
        found = [None if refresh else self.cache.get(key) for key in keys]
        missing = [i for i, entry in enumerate(found) if entry is None]
        step = self.service.settings.max_batch_items
        parts = [missing[start : start + step] for start in range(0, len(missing), step)]
        checked = [
            (part, self.service.prepare_texts([prompts[i] for i in part], param="labels", positions=part))
            for part in parts
        ]
        scale: float | None = None
        for part, embed in checked:
            emb = embed()
            scale = emb.logit_scale or scale
            cut = emb.truncated or [False] * emb.count
            for i, vector, was_cut in zip(part, emb.vectors, cut, strict=True):
                entry = LabelVector(_unit(vector), bool(was_cut), emb.model)
                self.cache.put(keys[i], entry)
                found[i] = entry
        return [entry for entry in found if entry is not None], scale
