"""A pretrained tag knows its own activation: a statement that contradicts it is refused at start, everywhere.

Serving (inference.py, the local server) and packaging (package_model) ask the same function, so the archive
that packaging refuses is one that serving would also refuse, never one built with the wrong activation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_code.code import clip_activation

# (model, tag, the tag's own activation, the contradicting statement)
CONTRADICTIONS = [
    ("ViT-B-32", "openai", "with QuickGELU", False),
    ("ViT-B-32-quickgelu", "openai", "with QuickGELU", False),
    ("ViT-B-32", "laion2b_s34b_b79k", "without QuickGELU", True),
]


@pytest.mark.parametrize("model, tag, own, stated", CONTRADICTIONS)
def test_an_argument_contradicting_the_tag_is_refused(model, tag, own, stated, monkeypatch) -> None:
    monkeypatch.delenv("CLIP_QUICK_GELU", raising=False)
    with pytest.raises(ValueError) as refused:
        clip_activation.quick_gelu_for(model, tag, stated)
    message = str(refused.value)
    assert f"{model} {tag!r} is trained {own}" in message
    assert f"quick_gelu={stated}" in message


@pytest.mark.parametrize("model, tag, own, stated", CONTRADICTIONS)
def test_clip_quick_gelu_contradicting_the_tag_is_refused(model, tag, own, stated, monkeypatch) -> None:
    monkeypatch.setenv("CLIP_QUICK_GELU", "true" if stated else "false")
    with pytest.raises(ValueError) as refused:
        clip_activation.quick_gelu_for(model, tag)
    message = str(refused.value)
    assert f"{model} {tag!r} is trained {own}" in message
    assert f"CLIP_QUICK_GELU={'true' if stated else 'false'}" in message


def test_a_statement_that_agrees_with_the_tag_is_accepted(monkeypatch) -> None:
    monkeypatch.setenv("CLIP_QUICK_GELU", "true")
    assert clip_activation.quick_gelu_for("ViT-B-32", "openai") is True
    assert clip_activation.quick_gelu_for("ViT-B-32", "openai", True) is True
    monkeypatch.setenv("CLIP_QUICK_GELU", "false")
    assert clip_activation.quick_gelu_for("ViT-B-32", "laion2b_s34b_b79k") is False
    assert clip_activation.quick_gelu_for("ViT-B-32", "", False) is False  # random weights: the statement decides
    assert clip_activation.quick_gelu_for("ViT-B-32", "", True) is True


def test_serving_refuses_before_building_or_fetching(inference, monkeypatch) -> None:
    monkeypatch.setenv("CLIP_QUICK_GELU", "false")
    with pytest.raises(ValueError, match=r"ViT-B-32 'openai' is trained with QuickGELU.*CLIP_QUICK_GELU=false"):
        inference.load_model("ViT-B-32", "openai", device="cpu")


def test_the_local_server_refuses_at_start(monkeypatch) -> None:
    from local_server.clip_backend import LocalClipBackend

    monkeypatch.setenv("CLIP_QUICK_GELU", "false")
    with pytest.raises(ValueError, match=r"ViT-B-32 'openai' is trained with QuickGELU.*CLIP_QUICK_GELU=false"):
        LocalClipBackend("ViT-B-32", "openai", device="cpu")


def test_packaging_gives_the_same_refusal_as_serving(tmp_path: Path, monkeypatch, capsys) -> None:
    from omnisearch_ops import package_model

    monkeypatch.setenv("CLIP_QUICK_GELU", "false")
    with pytest.raises(ValueError) as serving:
        clip_activation.quick_gelu_for("ViT-B-32", "openai")
    args = ["--model", "ViT-B-32", "--pretrained", "openai", "--output", str(tmp_path / "m.tar.gz"), "--no-wheels"]
    assert package_model.main(args) == 1
    assert capsys.readouterr().err.strip() == f"error: {serving.value}"
    monkeypatch.delenv("CLIP_QUICK_GELU")
    assert package_model.main([*args, "--no-quick-gelu"]) == 1
    assert "ViT-B-32 'openai' is trained with QuickGELU" in capsys.readouterr().err
    assert not (tmp_path / "m.tar.gz").exists()
