"""model.tar.gz for SageMaker: the code/ files, the open_clip config, the weights and the manifest, byte-reproducible.

``package_model`` is its command; code/wheels/ comes from ``wheels``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from model_code.code import clip_activation, clip_export, clip_onnx, inference
from model_code.tiny_shapes import CHECKPOINT_PATH, CODE_DIR, CONFIG_PATH
from omnisearch_embed.settings import TINY_SHAPES_MODEL_ID, model_id_for
from omnisearch_ops.wheels import WHEEL_DIR, Wheelhouse

MANIFEST = "clip_model.json"  # the name inference.MANIFEST reads
CODE_FILES = (
    "inference.py",
    "clip_inputs.py",
    "clip_images.py",
    "clip_text.py",
    "clip_records.py",
    "clip_onnx.py",
    "clip_ort.py",
    "clip_openvino.py",
    "clip_cpu.py",
    "clip_export.py",
    "clip_tokens.py",
    "clip_pixels.py",
    "clip_torch.py",
    "clip_activation.py",
    "clip_archive.py",
    "clip_env.py",
    "clip_embed.py",
    "__init__.py",
    "requirements.txt",
)  # the whole of code/
ARCHIVE_MTIME = 1577836800  # 2020-01-01: every member gets it, so equal inputs give an equal archive


def say(message: str) -> None:
    print(message, flush=True)


def _resolve_weights(model: str, pretrained: str, quick_gelu: bool | None) -> tuple[Path, bool]:
    """(weights file, quick_gelu) for a checkpoint path or an open_clip pretrained tag.

    The activation is inference.py's answer (clip_activation.py), so an archive serving would refuse is not built:
    a tag's own, with a contradicting statement refused; a file's stated, known by hash, or refused.
    """
    import open_clip

    if model == TINY_SHAPES_MODEL_ID and not pretrained:
        return CHECKPOINT_PATH, False
    if not pretrained:
        raise ValueError(f"{model} needs --pretrained (a tag or a checkpoint file); random weights are not served")
    if Path(pretrained).is_file():
        return Path(pretrained), clip_activation.quick_gelu_for(model, pretrained, quick_gelu)
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        known = ", ".join(open_clip.list_pretrained_tags_by_model(model)) or "none"
        raise ValueError(f"{pretrained!r} is neither a file nor a pretrained tag of {model} (tags: {known})")
    activation = clip_activation.quick_gelu_for(model, pretrained, quick_gelu)  # before a download: may refuse
    say(f"fetching {model} weights {pretrained!r} through open_clip (cached after the first time)")
    try:
        return Path(open_clip.download_pretrained(cfg)), activation
    except Exception as e:  # network, hub or cache failures all mean the same thing here
        raise RuntimeError(f"cannot fetch {model} {pretrained!r} weights: {e}") from e


def _model_config(model: str) -> dict[str, Any]:
    import open_clip

    if model == TINY_SHAPES_MODEL_ID:
        return json.loads(CONFIG_PATH.read_text())
    config = open_clip.get_model_config(model)
    if not config:
        raise ValueError(f"unknown open_clip model {model!r}")
    return config


def _member(tar: tarfile.TarFile, name: str, data: io.BufferedIOBase | io.BytesIO, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, ARCHIVE_MTIME, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, data)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    _member(tar, name, io.BytesIO(data), len(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    with open(path, "rb") as f:
        _member(tar, name, f, path.stat().st_size)


def export_onnx(model: str, weights: Path, quick_gelu: bool, directory: Path) -> list[Path]:
    """Both towers as ONNX (clip_export.export) from the weights as inference.py loads them: the files to add."""
    config = CONFIG_PATH if model == TINY_SHAPES_MODEL_ID else None
    say("  exporting both towers to ONNX (opset 17)")
    clip = inference.load_model(
        model, str(weights), device="cpu", precision="fp32", config_path=config, quick_gelu=quick_gelu
    )
    try:
        meta = clip_export.export(clip, directory)
    finally:
        clip.pool.shutdown(wait=False)
    return [directory / name for name in (*meta["sha256"], clip_onnx.META)]  # the towers, the tokenizer


def build_archive(
    model: str,
    pretrained: str,
    output: Path,
    *,
    wheels: Wheelhouse | None = None,
    onnx: bool = True,
    quick_gelu: bool | None = None,
) -> Path:
    """Write model.tar.gz for ``model`` + ``pretrained`` (tag, checkpoint path; "" = bundled tiny-shapes).

    With ``wheels`` the archive's requirements.txt installs offline from code/wheels/; without, it is the
    repository's file as is. With ``onnx`` both towers ship as ONNX too, for ONNX Runtime on the CPU.
    ``quick_gelu`` states a weights file's activation (None: the model name or the file's hash must tell).
    """
    output = Path(output)
    weights, quick_gelu = _resolve_weights(model, pretrained, quick_gelu)
    config_name = f"{model}.json"
    manifest = {
        "model": model,
        "pretrained": pretrained if not Path(pretrained).is_file() else Path(pretrained).name,
        "model_id": model_id_for(model, pretrained),
        "config": config_name,
        "weights": weights.name,
        "quick_gelu": quick_gelu,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    say(f"packaging {manifest['model_id']} into {output}")
    requirements = (CODE_DIR / "requirements.txt").read_text()
    with (
        tempfile.TemporaryDirectory(prefix="onnx-export-") as exported,
        open(output, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in CODE_FILES:
            say(f"  code/{name}")
            if name == "requirements.txt" and wheels is not None:
                _add_bytes(tar, f"code/{name}", wheels.requirements_text(requirements).encode())
            else:
                _add_file(tar, f"code/{name}", CODE_DIR / name)
        for wheel in wheels.files if wheels is not None else ():
            _add_file(tar, f"code/{WHEEL_DIR}/{wheel.name}", wheel)
        if wheels is not None:
            size = sum(w.stat().st_size for w in wheels.files) / 1e6
            say(f"  code/{WHEEL_DIR}/ ({len(wheels.files)} wheels, {size:.1f} MB)")
        say(f"  {config_name} (open_clip config)")
        _add_bytes(tar, config_name, json.dumps(_model_config(model), indent=2).encode())
        say(f"  {weights.name} ({weights.stat().st_size / 1e6:.1f} MB of weights)")
        _add_file(tar, weights.name, weights)
        for path in export_onnx(model, weights, quick_gelu, Path(exported)) if onnx else ():
            say(f"  {path.name} ({path.stat().st_size / 1e6:.1f} MB)")
            _add_file(tar, path.name, path)
        say(f"  {MANIFEST}")
        _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
    say(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB, sha256 {archive_sha256(output)[:12]}...)")
    return output


def archive_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
