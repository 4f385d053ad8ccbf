"""The torch-free CPU engine: no torch or open_clip imported; open_clip's pixels, ids, vectors and errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image

from model_code.code import clip_pixels
from omnisearch_testkit.golden_texts import GOLDEN, random_texts
from omnisearch_testkit.images import image_bytes, png_claiming, truncated_png, webp_claiming
from tests.helpers.model_dirs import copy_of

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "model_code" / "code"
# code/ on sys.path and inference imported as a top-level module, as the SageMaker toolkit runs it. With
# BLOCK, torch and open_clip cannot be imported at all: an image that does not have them.
SERVE = """
import base64, json, sys
if {block}:
    sys.modules.update(torch=None, open_clip=None)
sys.path.insert(0, {code!r})
import inference
try:
    clip = inference.model_fn({model_dir!r})
except Exception as e:
    print(json.dumps({{"error": type(e).__name__, "message": str(e)}}))
    raise SystemExit(0)
answers = {{}}
images = [base64.b64encode(open(p, "rb").read()).decode() for p in {images!r}]
for kind, items in (("texts", {texts!r}), ("images", images)):
    request = inference.input_fn(json.dumps({{kind: items}}), "application/json")
    body, _ = inference.output_fn(inference.predict_fn(request, clip), "application/json")
    answers[kind] = json.loads(body)["embeddings"]
heavy = [m for m in ("torch", "open_clip") if sys.modules.get(m)]
print(json.dumps({{"engine": clip.engine, "heavy": heavy, **answers}}))
"""


def odd_images() -> dict[str, bytes]:
    """Images whose decoding or geometry differs from a plain RGB square."""
    out: dict[str, bytes] = {}

    def save(name: str, img: Image.Image, fmt: str, **kw: Any) -> None:
        buffer = io.BytesIO()
        img.save(buffer, fmt, **kw)
        out[name] = buffer.getvalue()

    rng = np.random.default_rng(3)
    rgb = Image.fromarray(rng.integers(0, 255, (240, 394, 3), dtype=np.uint8))
    save("non-square jpeg, crop offset 71.5", rgb, "JPEG", quality=92)  # 394x240 -> 367x224: round, not floor
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 0
    save("palette with alpha", palette, "PNG")
    save("16-bit grey", Image.fromarray(rng.integers(0, 65535, (90, 70), dtype=np.uint16)), "PNG")
    save("cmyk jpeg", rgb.convert("CMYK"), "JPEG")
    save("1x3000", Image.fromarray(rng.integers(0, 255, (3000, 1, 3), dtype=np.uint8)), "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    save("exif-rotated jpeg", rgb.crop((0, 0, 300, 200)), "JPEG", exif=exif)
    save("rgba webp", rgb.convert("RGBA").resize((123, 77)), "WEBP")
    return out


ODD = odd_images()
CONFIGS = {
    "ViT-B-32": {"size": 224, "mode": "RGB", "mean": clip_pixels.OPENAI_MEAN, "std": clip_pixels.OPENAI_STD,
                 "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0},
    "squash bilinear": {"size": 64, "resize_mode": "squash", "interpolation": "bilinear"},
    "longest, grey fill": {"size": 96, "resize_mode": "longest", "fill_color": 128},
    "shortest, not square": {"size": (64, 96), "resize_mode": "shortest"},
}  # fmt: skip


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("name", ODD)
def test_pixels_equal_open_clips_transform(inference, config: str, name: str) -> None:
    cfg = {"mode": "RGB", "mean": clip_pixels.OPENAI_MEAN, "std": clip_pixels.OPENAI_STD, **CONFIGS[config]}
    theirs = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
    ours = clip_pixels.Preprocess(cfg)
    rgb = inference.decode_image(0, ODD[name])
    try:
        expected = theirs(rgb)[None]
    except ValueError:  # open_clip cannot scale a 1x3000 image's long side to 96 (a side of 0 pixels)
        assert ours(rgb).shape == (*clip_pixels._pair(cfg["size"]), 3)
        return
    torch.testing.assert_close(torch.from_numpy(ours.normalize([ours(rgb)])), expected, rtol=0, atol=1e-6)


def test_the_exported_tokenizer_gives_open_clips_ids(inference, tiny, tiny_onnx) -> None:
    texts = GOLDEN + random_texts(400, seed=5) + ["x<end_of_text>y", "<START_OF_TEXT> cat", "&amp;amp; caf\u00e9"]
    theirs, their_counts, their_cut = inference.tokenize(tiny, texts)
    ours, counts, cut = tiny_onnx.tokenize(texts)
    np.testing.assert_array_equal(ours, theirs.numpy())
    assert (counts, cut) == (their_counts, their_cut)


def min_cos(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.asarray(a) * np.asarray(b)).sum(axis=1).min())


def test_odd_images_give_open_clips_vectors(inference, vit_b32, vit_b32_onnx) -> None:
    request = inference.Request("images", list(ODD.values()))
    torch_free = inference.predict_fn(request, vit_b32_onnx).vectors
    assert min_cos(torch_free, inference.predict_fn(request, vit_b32).vectors) >= 0.9999


BAD = {
    "truncated png": truncated_png(),
    "not an image": b"hello, world",
    "too many pixels": png_claiming(9000, 9000),
    "webp claiming 16384x16384": webp_claiming(16384, 16384),
    "zero bytes of a png": b"\x89PNG\r\n\x1a\n",
}


@pytest.mark.parametrize("name", BAD)
def test_a_bad_image_fails_with_the_same_code_on_both_engines(inference, tiny, tiny_onnx, name: str) -> None:
    found = []
    for clip in (tiny, tiny_onnx):
        with pytest.raises(inference.InputError) as caught:
            inference.predict_fn(inference.Request("images", [image_bytes(), BAD[name]]), clip)
        found.append((caught.value.code, caught.value.status_code, str(caught.value).split(":")[0]))
    assert found[0] == found[1] and found[0][0] in ("invalid_image", "image_too_many_pixels")


def serve(model_dir: Path, tmp_path: Path, *, block: bool) -> dict[str, Any]:
    paths = []
    for i, data in enumerate([image_bytes("JPEG", (300, 200)), *list(ODD.values())[:3]]):
        paths.append(str(tmp_path / f"{i}.img"))
        Path(paths[-1]).write_bytes(data)
    script = SERVE.format(block=block, code=str(CODE), model_dir=str(model_dir), texts=GOLDEN[:20], images=paths)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("block", [False, True], ids=["torch installed", "no torch in the image"])
def test_inference_serves_an_archive_without_importing_torch(inference, tiny, model_dir, tmp_path, block) -> None:
    answer = serve(model_dir, tmp_path, block=block)
    assert answer["engine"] == "onnxruntime" and answer["heavy"] == []
    expected = inference.predict_fn(inference.Request("texts", GOLDEN[:20]), tiny).vectors
    assert min_cos(answer["texts"], expected) >= 0.9999
    images = [image_bytes("JPEG", (300, 200)), *list(ODD.values())[:3]]
    assert min_cos(answer["images"], inference.predict_fn(inference.Request("images", images), tiny).vectors) >= 0.9999


def test_an_archive_without_onnx_files_on_a_torch_free_image_names_the_fix(model_dir, tmp_path) -> None:
    answer = serve(copy_of(model_dir, tmp_path, onnx=False), tmp_path, block=True)
    assert answer["error"] == "ConfigError"
    assert "no ONNX towers (clip_onnx.json)" in answer["message"] and "without --no-onnx" in answer["message"]


def test_an_export_from_before_the_tokenizer_on_a_torch_free_image_names_the_fix(model_dir, tmp_path) -> None:
    root = copy_of(model_dir, tmp_path)
    meta = json.loads((root / "clip_onnx.json").read_text())
    del meta["tokenizer"], meta["sha256"]["tokenizer.json"]
    (root / "clip_onnx.json").write_text(json.dumps(meta))
    answer = serve(root, tmp_path, block=True)
    assert answer["error"] == "OnnxModelError" and "package the model again with package_model.py" in answer["message"]


def test_an_export_from_before_the_tokenizer_still_serves_where_open_clip_is_installed(
    inference, tiny, model_dir, tmp_path
) -> None:
    root = copy_of(model_dir, tmp_path)
    meta = json.loads((root / "clip_onnx.json").read_text())
    del meta["tokenizer"], meta["sha256"]["tokenizer.json"]
    (root / "clip_onnx.json").write_text(json.dumps(meta))
    answer = serve(root, tmp_path, block=False)
    assert answer["engine"] == "onnxruntime" and answer["heavy"] == ["torch", "open_clip"]
    expected = inference.predict_fn(inference.Request("texts", GOLDEN[:20]), tiny).vectors
    assert min_cos(answer["texts"], expected) >= 0.9999


def test_a_changed_tokenizer_file_fails_at_load_naming_it(inference, model_dir, tmp_path) -> None:
    root = copy_of(model_dir, tmp_path)
    (root / "tokenizer.json").write_text("{}")
    with pytest.raises(RuntimeError, match=r"tokenizer\.json is not the file clip_onnx\.json describes"):
        inference.load_onnx(root, "tiny-shapes", model_id="tiny-shapes")
