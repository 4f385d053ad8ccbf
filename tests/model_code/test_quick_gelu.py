"""A weights file never silently loses QuickGELU: its model name, a statement or its hash decides, else a refusal."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import open_clip
import pytest
from open_clip import factory

from model_code.code import clip_activation
from model_code.tiny_shapes import CHECKPOINT_PATH, CONFIG_PATH

TWIN = "tiny-twin"  # an architecture with a -quickgelu variant, as ViT-B-32 has, small enough for a test


@contextmanager
def registered(configs: Path) -> Iterator[None]:
    """open_clip knows the model configs in the folder ``configs`` inside the block, and none of them after it.

    open_clip's registry is global: a name left in it would change what every later test can load.
    """
    names = [path.stem for path in configs.glob("*.json")]
    before = {name: factory._MODEL_CONFIGS[name] for name in names if name in factory._MODEL_CONFIGS}
    open_clip.add_model_config(configs)
    try:
        yield
    finally:
        factory._MODEL_CONFIG_PATHS.remove(configs)
        for name in names:  # the rescan rebinds the dict: read it from the module each time
            factory._MODEL_CONFIGS.pop(name, None)
        factory._MODEL_CONFIGS.update(before)


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``tiny-twin`` and ``tiny-twin-quickgelu`` registered with open_clip, and a random checkpoint file of it."""
    root = tmp_path_factory.mktemp("twin")
    config = json.loads(CONFIG_PATH.read_text())
    (root / f"{TWIN}.json").write_text(json.dumps(config))
    (root / f"{TWIN}-quickgelu.json").write_text(json.dumps({**config, "quick_gelu": True}))
    weights = root / "random.pt"
    shutil.copy(CHECKPOINT_PATH, weights)
    with registered(root):
        yield weights


def test_a_registered_config_is_forgotten_after_its_block(tmp_path: Path) -> None:
    (tmp_path / "tiny-passing.json").write_text(CONFIG_PATH.read_text())
    with registered(tmp_path):
        assert "tiny-passing" in open_clip.list_models()
    assert "tiny-passing" not in open_clip.list_models() and tmp_path not in factory._MODEL_CONFIG_PATHS


def activation(clip) -> str:
    return type(clip.model.transformer.resblocks[0].mlp.gelu).__name__


def test_a_file_of_an_architecture_with_a_quickgelu_twin_is_refused_unless_stated(inference, twin, monkeypatch):
    monkeypatch.delenv("CLIP_QUICK_GELU", raising=False)
    with pytest.raises(ValueError, match=r"random\.pt does not say which activation tiny-twin .* tiny-twin-quickgelu"):
        inference.load_model(TWIN, str(twin), device="cpu")
    assert activation(inference.load_model(TWIN, str(twin), device="cpu", quick_gelu=True)) == "QuickGELU"
    assert activation(inference.load_model(TWIN, str(twin), device="cpu", quick_gelu=False)) == "GELU"
    assert activation(inference.load_model(f"{TWIN}-quickgelu", str(twin), device="cpu")) == "QuickGELU"
    monkeypatch.setenv("CLIP_QUICK_GELU", "true")
    assert activation(inference.load_model(TWIN, str(twin), device="cpu")) == "QuickGELU"
    monkeypatch.setenv("CLIP_QUICK_GELU", "maybe")
    with pytest.raises(ValueError, match="CLIP_QUICK_GELU='maybe' is not a boolean"):
        inference.load_model(TWIN, str(twin), device="cpu")


def test_a_known_openai_checkpoint_is_recognised_by_its_hash(inference, twin, monkeypatch):
    monkeypatch.delenv("CLIP_QUICK_GELU", raising=False)
    known = clip_activation.known_checkpoints()
    # open_clip's own table: OpenAI's ViT-B-32 file, whose URL names its sha256
    assert known["40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"] == "ViT-B-32/openai"
    monkeypatch.setitem(known, hashlib.sha256(twin.read_bytes()).hexdigest(), "tiny-twin/openai")
    assert activation(inference.load_model(TWIN, str(twin), device="cpu")) == "QuickGELU"


def test_without_a_twin_or_with_a_tag_nothing_is_asked(tiny, monkeypatch):
    monkeypatch.delenv("CLIP_QUICK_GELU", raising=False)
    assert activation(tiny) == "GELU"  # tiny-shapes from its file: no QuickGELU variant exists
    assert clip_activation.quick_gelu_for("ViT-B-32", "openai") is True  # the tag's own setting
    assert clip_activation.quick_gelu_for("ViT-B-32", "laion2b_s34b_b79k") is False
    assert clip_activation.quick_gelu_for("ViT-B-32", "") is False  # random weights


def test_package_model_states_the_choice_in_the_manifest(twin, tmp_path, capsys):
    from omnisearch_ops import package_model

    output = tmp_path / "m.tar.gz"
    assert package_model.main(["--model", TWIN, "--pretrained", str(twin), "--output", str(output), "--no-wheels"]) == 1
    assert "does not say which activation" in capsys.readouterr().err
    args = ["--model", TWIN, "--pretrained", str(twin), "--output", str(output), "--no-wheels", "--quick-gelu"]
    assert package_model.main([*args, "--no-onnx", "--skip-verify"]) == 0
    import tarfile

    with tarfile.open(output) as tar:
        assert json.load(tar.extractfile("clip_model.json"))["quick_gelu"] is True
