"""Zero-shot scoring in the core: the checks, the softmax over the model's logit scale, and the label cache."""

from __future__ import annotations

import dataclasses
import math

import pytest

from omnisearch_embed import classify as classify_module
from omnisearch_embed import deadline
from omnisearch_embed.classify import (
    Classifier,
    LabelCache,
    LabelVector,
    check_request,
    label_key,
    rank,
    rank_all,
)
from omnisearch_embed.errors import EmbedError
from omnisearch_embed.service import EmbedService
from omnisearch_embed.settings import Settings
from tests.helpers.backends import StaticBackend, vector_for

LABELS = ["circle", "square", "triangle"]
IMAGE = b"\x89PNG pretend"


def classifier(backend: StaticBackend, **settings: int) -> Classifier:
    return Classifier(EmbedService(backend, Settings(**settings)), LabelCache())


def embed_images(clf: Classifier) -> object:
    """The inputs' ``prepare``: nothing to check, and the call that embeds the one image."""
    return lambda: lambda: clf.service.backend.embed_images([IMAGE])


@pytest.mark.parametrize(
    ("labels", "template", "top_k", "status", "code"),
    [
        ([], "a {}", None, 400, "too_few_labels"),
        (["one"], "a {}", None, 400, "too_few_labels"),
        ([f"l{i}" for i in range(1001)], "a {}", None, 413, "too_many_labels"),
        (["a", "b"], "a photo", None, 400, "invalid_template"),
        (["a", "b", "a"], "{}", None, 400, "duplicate_label"),
        (["a", "b"], "{}", 0, 400, "invalid_top_k"),
        (["a", "b"], "{}", 3, 400, "invalid_top_k"),
    ],
)
def test_requests_that_cannot_be_answered_are_refused(
    labels: list[str], template: str, top_k: int | None, status: int, code: str
) -> None:
    with pytest.raises(EmbedError) as info:
        check_request(labels, template, top_k)
    assert (int(info.value.status), info.value.code) == (status, code)


def test_a_thousand_labels_and_the_extremes_of_top_k_are_accepted() -> None:
    assert check_request([f"l{i}" for i in range(1000)], "{}", None) == 1000
    assert check_request(["a", "b"], "x {} y", 1) == 1
    assert check_request(["a", "b"], "{}", 2) == 2


def test_probabilities_are_the_softmax_of_scaled_cosines_highest_first() -> None:
    from array import array

    labels = ["x", "y", "z"]
    vectors = [array("f", v) for v in ([1.0, 0.0], [0.0, 1.0], [math.sqrt(0.5), math.sqrt(0.5)])]
    scores = rank([3.0, 4.0], labels, vectors, 10.0, 3)  # not unit length: cosine, not dot product
    cos = {"x": 0.6, "y": 0.8, "z": 0.7 * math.sqrt(2)}
    total = sum(math.exp(10 * c) for c in cos.values())
    assert [s.label for s in scores] == ["z", "y", "x"]
    for s in scores:
        assert s.similarity == pytest.approx(cos[s.label], abs=1e-6)
        assert s.probability == pytest.approx(math.exp(10 * cos[s.label]) / total, rel=1e-6)
    assert math.fsum(s.probability for s in scores) == pytest.approx(1.0)
    assert [s.label for s in rank([3.0, 4.0], labels, vectors, 10.0, 1)] == ["z"]


def test_a_large_logit_scale_does_not_overflow() -> None:
    from array import array

    scores = rank([1.0, 0.0], ["a", "b"], [array("f", [1, 0]), array("f", [-1, 0])], 5000.0, 2)
    assert scores[0].probability == 1.0 and scores[1].probability == 0.0


def test_a_repeated_label_set_costs_one_image_call_and_no_text_call() -> None:
    backend = StaticBackend(logit_scale=42.0)
    clf = classifier(backend)
    first = clf.classify(embed_images(clf), LABELS, template="a photo of a {}", top_k=None)
    second = clf.classify(embed_images(clf), list(reversed(LABELS)), template="a photo of a {}", top_k=2)
    kinds = [kind for kind, _, _ in backend.calls]
    assert kinds == ["texts", "images", "images"]
    assert backend.calls[0][1] == [f"a photo of a {label}" for label in LABELS]
    assert first.logit_scale == 42.0 and len(second.results[0]) == 2
    assert [s.label for s in first.results[0]][:2] == [s.label for s in second.results[0]]


def test_only_the_labels_not_yet_cached_are_embedded_and_a_new_template_is_a_new_key() -> None:
    backend = StaticBackend(logit_scale=42.0)
    clf = classifier(backend)
    clf.classify(embed_images(clf), LABELS[:2], template="{}", top_k=None)
    clf.classify(embed_images(clf), LABELS, template="{}", top_k=None)
    clf.classify(embed_images(clf), LABELS[:2], template="a {}", top_k=None)
    texts = [items for kind, items, _ in backend.calls if kind == "texts"]
    assert texts == [["circle", "square"], ["triangle"], ["a circle", "a square"]]


def test_labels_are_embedded_in_slices_of_the_batch_limit() -> None:
    backend = StaticBackend(logit_scale=42.0)
    clf = classifier(backend, max_batch_items=4)
    labels = [f"label {i}" for i in range(10)]
    result = clf.classify(embed_images(clf), labels, template="{}", top_k=None)
    assert [len(items) for kind, items, _ in backend.calls if kind == "texts"] == [4, 4, 2]
    expected = {
        label: sum(a * b for a, b in zip(vector_for("image", IMAGE), vector_for("text", label.encode()), strict=True))
        for label in labels
    }
    assert {s.label: s.similarity for s in result.results[0]} == pytest.approx(expected, abs=1e-6)


def test_a_bad_label_is_named_by_its_place_in_the_callers_list() -> None:
    clf = classifier(StaticBackend(logit_scale=42.0))
    clf.classify(embed_images(clf), ["a", "b"], template="{}", top_k=None)
    with pytest.raises(EmbedError) as info:
        clf.classify(embed_images(clf), ["a", "b", " "], template="{}", top_k=None)
    assert info.value.code == "empty_text" and info.value.param == "labels[2]"


def test_labels_past_the_context_are_flagged_not_refused() -> None:
    clf = classifier(StaticBackend(logit_scale=42.0))
    long = " ".join(["word"] * 80)
    result = clf.classify(embed_images(clf), ["short", long], template="{}", top_k=None)
    assert result.truncated_labels == [long] and len(result.results[0]) == 2


def test_a_model_that_reports_no_logit_scale_is_a_502_never_a_guess() -> None:
    clf = classifier(StaticBackend())
    with pytest.raises(EmbedError) as info:
        clf.classify(embed_images(clf), LABELS, template="{}", top_k=None)
    assert (int(info.value.status), info.value.code) == (502, "logit_scale_unavailable")


def test_the_cache_is_bounded_and_forgets_the_least_recently_used() -> None:
    from array import array

    cache = LabelCache(max_entries=2)
    entry = LabelVector(array("f", [1.0]), False, "m")
    a, b, c = (label_key("m", prompt) for prompt in "abc")
    cache.put(a, entry)
    cache.put(b, entry)
    assert cache.get(a) is entry  # a is now the most recent
    cache.put(c, entry)
    assert len(cache) == 2 and cache.get(b) is None and cache.get(a) is entry


def test_the_cache_keys_are_digests_not_the_label_strings() -> None:
    backend = StaticBackend(logit_scale=42.0)
    clf = classifier(backend)
    labels = [f"{i} " + "x" * 9_990 for i in range(3)]  # near the 10,000-character limit
    clf.classify(embed_images(clf), labels, template="a {} b", top_k=None)
    keys = list(clf.cache._entries)
    assert len(keys) == 3 and all(isinstance(key, bytes) and len(key) == 32 for key in keys)
    assert keys == [label_key("static-test", f"a {label} b") for label in labels]
    assert label_key("m", "x") not in (label_key("n", "x"), label_key("m", "y"), label_key("m\nx", ""))


def test_one_prompt_from_two_templates_is_one_entry() -> None:
    backend = StaticBackend(logit_scale=42.0)
    clf = classifier(backend)
    clf.classify(embed_images(clf), ["red circle", "blue star"], template="a {}", top_k=None)
    clf.classify(embed_images(clf), ["circle", "star"], template="a red {}", top_k=None)
    texts = [items for kind, items, _ in backend.calls if kind == "texts"]
    assert texts == [["a red circle", "a blue star"], ["a red star"]]  # "a red circle" was cached


def test_a_bad_input_is_refused_before_any_label_is_embedded() -> None:
    backend = StaticBackend(logit_scale=42.0)
    clf = classifier(backend)
    labels = [f"label {i}" for i in range(1000)]
    for prepare, code in [
        (lambda: clf.service.prepare_texts([" "], param="text"), "empty_text"),
        (lambda: clf.service.prepare_image_refs(["x"] * 257), "too_many_items"),
        (lambda: clf.service.prepare_image_bytes([b"\x89PNG\r\n\x1a\n cut short"]), "corrupt_image"),
    ]:
        with pytest.raises(EmbedError) as info:
            clf.classify(prepare, labels, template="{}", top_k=None)
        assert info.value.code == code
    assert backend.calls == [] and len(clf.cache) == 0


def test_every_label_is_checked_before_the_first_label_call() -> None:
    backend = StaticBackend(logit_scale=42.0)
    clf = classifier(backend, max_batch_items=4)
    labels = [f"label {i}" for i in range(9)] + [" "]
    with pytest.raises(EmbedError) as info:
        clf.classify(embed_images(clf), labels, template="{}", top_k=None)
    assert (info.value.code, info.value.param) == ("empty_text", "labels[9]")
    assert backend.calls == []


def test_scoring_after_the_deadline_is_our_504_not_a_killed_lambda() -> None:
    backend = StaticBackend(logit_scale=42.0)
    clf = classifier(backend)
    with deadline.scope(deadline.time.monotonic() - 0.001), pytest.raises(EmbedError) as info:
        clf.classify(embed_images(clf), LABELS, template="{}", top_k=None)
    assert (int(info.value.status), info.value.code) == (504, "deadline_exceeded")
    with deadline.scope(deadline.time.monotonic() + 60):
        assert len(clf.classify(embed_images(clf), LABELS, template="{}", top_k=None).results) == 1


class Clock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_ranking_stops_as_soon_as_the_inputs_left_cannot_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    from array import array
    from types import SimpleNamespace

    clock = Clock()
    monkeypatch.setattr(deadline, "time", SimpleNamespace(monotonic=clock.monotonic))
    real_rank = classify_module.rank
    ranked: list[int] = []

    def one_second_rank(*args: object) -> object:
        ranked.append(1)
        clock.now += 1.0
        return real_rank(*args)

    monkeypatch.setattr(classify_module, "rank", one_second_rank)
    vectors, label_vectors = [[1.0, 0.0]] * 5, [array("f", [1, 0]), array("f", [0, 1])]
    with deadline.scope(clock.now + 2.5), pytest.raises(EmbedError) as info:
        rank_all(vectors, ["a", "b"], label_vectors, 10.0, 2)  # 5 inputs at 1 s each, 2.5 s left
    assert info.value.code == "deadline_exceeded" and "(1 ranked)" in info.value.message
    assert len(ranked) == 1  # after the first, 1.5 s left could not rank the other 4
    ranked.clear()
    with deadline.scope(clock.now + 5.5):
        assert len(rank_all(vectors, ["a", "b"], label_vectors, 10.0, 2)) == 5


class Redeployable(StaticBackend):
    """Answers with the model ``serving`` names, whatever ``model_id`` (the configured id) says, as an endpoint does."""

    serving = "static-test"

    def embed_texts(self, texts, *, normalize=True):  # type: ignore[no-untyped-def]
        return dataclasses.replace(super().embed_texts(texts, normalize=normalize), model=self.serving)

    def embed_images(self, images, *, normalize=True):  # type: ignore[no-untyped-def]
        return dataclasses.replace(super().embed_images(images, normalize=normalize), model=self.serving)


def test_labels_cached_from_a_previous_model_are_embedded_again() -> None:
    backend = Redeployable(logit_scale=42.0)
    clf = classifier(backend)
    clf.classify(embed_images(clf), LABELS, template="{}", top_k=None)
    backend.serving = "static-test-v2"  # the endpoint was redeployed; the configured id is unchanged
    result = clf.classify(embed_images(clf), LABELS, template="{}", top_k=None)
    assert result.model == "static-test-v2"
    assert [kind for kind, _, _ in backend.calls] == ["texts", "images", "images", "texts"]
    clf.classify(embed_images(clf), LABELS, template="{}", top_k=None)  # the refreshed vectors are cached
    assert [kind for kind, _, _ in backend.calls][4:] == ["images"]


def test_inputs_and_labels_from_two_models_are_a_502() -> None:
    backend = StaticBackend(logit_scale=42.0)
    clf = classifier(backend)
    other = StaticBackend("another-model", logit_scale=42.0)
    with pytest.raises(EmbedError) as info:
        clf.classify(lambda: lambda: other.embed_images([IMAGE]), LABELS, template="{}", top_k=None)
    assert (int(info.value.status), info.value.code) == (502, "model_mismatch")
