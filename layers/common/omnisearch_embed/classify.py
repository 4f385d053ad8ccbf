"""Zero-shot classification: inputs scored against caller-chosen labels, as CLIP was trained to be used.

Each label becomes a prompt (``template`` with ``{}`` replaced by the label), embedded as text; an input's
probabilities are ``softmax(logit_scale * cosine)`` over the labels, with the model's own ``logit_scale``
(reported with every embedding, never assumed). Label vectors are kept in a bounded LRU keyed by
(model id, template, label), so a label set used again costs only the inputs' forward pass.
Pure Python (no numpy): 1,000 labels against one 512-d vector is some 20 ms of dot products.
"""

from __future__ import annotations

import math
import operator
import threading
import weakref
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from omnisearch_embed.embeddings import Embeddings
from omnisearch_embed.errors import InvalidInputError, ModelError, PayloadTooLargeError
from omnisearch_embed.service import EmbedService

DEFAULT_TEMPLATE = "a photo of {}"
PLACEHOLDER = "{}"
MIN_LABELS = 2
MAX_LABELS = 1000
LABEL_CACHE_SIZE = 4096  # float32 vectors: about 2 KB each at 512-d, so 8 MB at most

_Key = tuple[str, str, str]


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
        self._entries: OrderedDict[_Key, LabelVector] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: _Key) -> LabelVector | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: _Key, value: LabelVector) -> None:
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


class Classifier:
    """Scores inputs embedded by :class:`EmbedService` against labels embedded (or cached) through it."""

    def __init__(self, service: EmbedService, cache: LabelCache | None = None) -> None:
        self.service = service
        self.cache = cache if cache is not None else cache_for(service.backend)

    def classify(
        self, embed_inputs: Callable[[], Embeddings], labels: Sequence[str], *, template: str, top_k: int | None
    ) -> Classification:
        """Check the request, embed the labels (cache first), then the inputs (``embed_inputs``), and rank.

        Labels cached from another model than the one that embedded the inputs (an endpoint redeployed
        since) are embedded again once; two models still answering is a 502 ``model_mismatch``.
        """
        k = check_request(labels, template, top_k)
        entries, label_scale = self._label_entries(labels, template, refresh=False)
        emb = embed_inputs()
        if any(e.model != emb.model for e in entries):
            entries, label_scale = self._label_entries(labels, template, refresh=True)
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
        vectors = [e.vector for e in entries]
        results = [rank(v, labels, vectors, scale, k) for v in emb.vectors]
        flagged = [label for label, e in zip(labels, entries, strict=True) if e.truncated]
        return Classification(emb.model, emb.service, template, scale, results, flagged)

    def _label_entries(
        self, labels: Sequence[str], template: str, *, refresh: bool
    ) -> tuple[list[LabelVector], float | None]:
        """Each label's vector, from the cache or embedded (all of them with ``refresh``), in order."""
        key = self.service.model_id
        found = [None if refresh else self.cache.get((key, template, label)) for label in labels]
        missing = [i for i, entry in enumerate(found) if entry is None]
        scale: float | None = None
        step = self.service.settings.max_batch_items
        for start in range(0, len(missing), step):
            part = missing[start : start + step]
            prompts = [template.replace(PLACEHOLDER, labels[i]) for i in part]
            emb = self.service.embed_texts(prompts, param="labels", positions=part)
            scale = emb.logit_scale or scale
            cut = emb.truncated or [False] * emb.count
            for i, vector, was_cut in zip(part, emb.vectors, cut, strict=True):
                entry = LabelVector(_unit(vector), bool(was_cut), emb.model)
                self.cache.put((key, template, labels[i]), entry)
                found[i] = entry
        return [entry for entry in found if entry is not None], scale
