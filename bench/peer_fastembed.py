#!/usr/bin/env python
"""Side by side with the torch-free peer: our ONNX Runtime engine against fastembed 0.9.1, in process, one run.

Both run the same ViT-B-32 graphs (random weights, seeded): ours as exported by clip_export.export and served
by inference.load_onnx (OrtClip), fastembed's ``ImageEmbedding("Qdrant/clip-ViT-B-32-vision")`` and
``TextEmbedding("Qdrant/clip-ViT-B-32-text")`` from a folder written here from that same export through
``specific_model_path`` (image.onnx as it is with an HF ``preprocessor_config.json``; text.onnx with its input
renamed ``tokens`` -> ``input_ids``, which is the name fastembed feeds, and an HF-style CLIP ``tokenizer.json``
built from our vocab and merges). Same ONNX Runtime threads (``--threads``: ``CLIP_ONNX_THREADS`` and
``CLIP_DECODE_THREADS`` for ours, ``threads=`` for fastembed). Bytes in, unit vectors out: JPEG file bytes
(``io.BytesIO`` for fastembed) and texts in, L2-normalised float32 rows out (fastembed leaves text vectors
unnormalised, so they are normalised in the timed region, as a user would).

Measured, engines alternating which goes first from case to case:
- start-up: a fresh ``python -c`` per engine that imports, loads both towers and reports the time from
  spawn to ready and VmRSS after load (then the time to its first image and text vectors);
- images/s at batch 1 and 16 (640x480 JPEGs), texts/s at batch 1 and 32 (short search queries);
- the ceiling: each engine's bare ``session.run`` on ready inputs (our session options for ours, fastembed's
  for fastembed), so a gap is either the graph run or what surrounds it (decode, preprocess, tokenize).
Figures are the best of ``--rounds`` (a busy machine only slows things); ratios are ours / fastembed. Goals:
start-up and RSS <= fastembed's, images/s and texts/s >= 1.1x fastembed's. Vector agreement (min cosine,
ours against fastembed) is printed too: fastembed floors the crop offset where torchvision rounds, so odd
offsets differ slightly; the texts agree as far as the token ids do, which the golden corpus
(omnisearch_testkit.golden_texts) shows text by text: fastembed has no ftfy or HTML clean-up, and its special
tokens are HF's ``<|endoftext|>`` where open_clip's are ``<end_of_text>``.

fastembed is a benchmark-only dependency, not in pyproject. fastembed 0.9.1 asks for huggingface-hub<2.0
but runs from a folder with the 2.x the venv has, so install it without touching the venv's other pins:

    .venv/bin/pip install --no-deps fastembed==0.9.1 loguru==0.7.3 mmh3==5.3.1 py_rust_stemmers==0.1.8
    .venv/bin/python bench/peer_fastembed.py --quick        # a couple of minutes on 2 cores
    .venv/bin/python bench/peer_fastembed.py                # full counts, about 6 minutes on 2 cores
    .venv/bin/python bench/peer_fastembed.py --threads 4 --json bench/results/peer_fastembed.json

``--workdir DIR`` keeps the export (and fastembed's folder) there and reuses it on the next run (empty it after
the export code changes); without it both live in a temporary folder. A benchmark, not a test: CI never runs it.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from model_throughput import QUERIES, make_jpegs, rate

ROOT = Path(__file__).resolve().parents[1]
MODEL = "ViT-B-32"
FE_VISION, FE_TEXT = "Qdrant/clip-ViT-B-32-vision", "Qdrant/clip-ViT-B-32-text"
SOT, EOT = "<|startoftext|>", "<|endoftext|>"
# HF's CLIPTokenizerFast pre-tokenizer: open_clip's word regex, special tokens first (after lower-casing).
CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
ENGINES = ("ours", "fastembed")
GOAL_SPEED = 1.1  # ours / fastembed, items per second

EXPORT_CODE = """
import sys
from model_code.code import clip_export, inference
clip = inference.load_model(sys.argv[2], "", device="cpu")
clip_export.export(clip, sys.argv[1])
"""

# Start-up children: what a user of each engine writes, and nothing else imported before it.
RSS_CODE = "int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])"
STARTUP_CODE = {
    "ours": f"""
import json, sys, time
from model_code.code import inference
clip = inference.load_onnx(sys.argv[1], sys.argv[4], model_id=sys.argv[4])
ready, rss = time.time(), {RSS_CODE}
jpeg = open(sys.argv[3], "rb").read()
inference.predict_fn(inference.Request("images", [jpeg], normalize=True), clip)
inference.predict_fn(inference.Request("texts", ["a photo of a cat"], normalize=True), clip)
print(json.dumps({{"ready": ready, "rss_kb": rss, "first": time.time()}}))
""",
    "fastembed": f"""
import io, json, sys, time
import numpy as np
from fastembed import ImageEmbedding, TextEmbedding
vision = ImageEmbedding("{FE_VISION}", specific_model_path=sys.argv[1] + "/vision", threads=int(sys.argv[2]))
text = TextEmbedding("{FE_TEXT}", specific_model_path=sys.argv[1] + "/text", threads=int(sys.argv[2]))
ready, rss = time.time(), {RSS_CODE}
jpeg = open(sys.argv[3], "rb").read()
list(vision.embed([io.BytesIO(jpeg)]))
t = np.stack(list(text.embed(["a photo of a cat"])))
t = t / np.linalg.norm(t, axis=1, keepdims=True)
print(json.dumps({{"ready": ready, "rss_kb": rss, "first": time.time()}}))
""",
}


# -- the folders -------------------------------------------------------------------------------------------


def export_ours(directory: Path, env: dict[str, str]) -> None:
    """clip_export.export of the seeded random ViT-B-32, in a child: this process never imports torch."""
    subprocess.run([sys.executable, "-c", EXPORT_CODE, str(directory), MODEL], check=True, cwd=ROOT, env=env)


def hf_clip_tokenizer(ours: Path, meta: dict[str, Any]) -> Any:
    """An HF CLIPTokenizerFast-style ``tokenizer.json`` from our vocab and merges, for fastembed to read.

    Our file is a bare byte-level BPE (the clean-up and word split are Python, clip_tokens.py); fastembed
    reads only ``tokenizer.json``, so the split, lower-casing, start/end tokens, truncation and padding
    (``<|endoftext|>``, as HF's CLIP pads) go into the file, as in HF's own CLIP tokenizer.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors

    described = meta["tokenizer"]
    sot, eot, context = int(described["sot"]), int(described["eot"]), int(meta["context_length"])
    data = json.loads((ours / described["file"]).read_text())
    vocab = data["model"]["vocab"]
    for word in described["specials"]:  # open_clip names them <start_of_text>, HF <|startoftext|>: same ids
        vocab.pop(word, None)
    vocab[SOT], vocab[EOT] = sot, eot
    data["model"]["unk_token"] = EOT
    tok = Tokenizer.from_str(json.dumps(data))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.post_processor = processors.RobertaProcessing(
        (EOT, eot), (SOT, sot), trim_offsets=False, add_prefix_space=False
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(
        [AddedToken(SOT, special=True, normalized=False), AddedToken(EOT, special=True, normalized=False)]
    )
    tok.enable_truncation(max_length=context)
    tok.enable_padding(pad_id=eot, pad_token=EOT, length=context)
    return tok


def rename_input(source: Path, target: Path, old: str, new: str) -> None:
    """``source`` with its graph input ``old`` renamed ``new``: same weights, the name fastembed feeds."""
    import onnx

    model = onnx.load(str(source))
    if old not in {value.name for value in model.graph.input}:
        raise SystemExit(f"{source} has no input {old!r}: {[v.name for v in model.graph.input]}")
    for value in model.graph.input:
        if value.name == old:
            value.name = new
    for node in model.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
    onnx.save(model, str(target))


def link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)  # one file, one page cache: both engines read the same bytes
    except OSError:
        shutil.copyfile(source, target)


def write_fastembed_folder(ours: Path, target: Path) -> None:
    """fastembed's two folders (``vision/``, ``text/``) from our export, so both engines run the same weights."""
    meta = json.loads((ours / "clip_onnx.json").read_text())
    pre = meta["preprocess"]
    size = pre["size"]
    height, width = (size, size) if isinstance(size, int) else size
    if height != width or (pre.get("resize_mode") or "shortest") != "shortest" or not meta.get("tokenizer"):
        raise SystemExit(f"{ours}: fastembed's CLIP pipeline needs a square shortest-side resize and a tokenizer")
    vision, text = target / "vision", target / "text"
    vision.mkdir(parents=True, exist_ok=True)
    text.mkdir(parents=True, exist_ok=True)
    link_or_copy(ours / "image.onnx", vision / "model.onnx")
    processor = {  # HF CLIPImageProcessor's fields, as Qdrant/clip-ViT-B-32-vision ships them
        "image_processor_type": "CLIPImageProcessor",
        "do_convert_rgb": True,
        "do_resize": True,
        "size": {"shortest_edge": height},
        "resample": 3 if (pre.get("interpolation") or "bicubic") == "bicubic" else 2,
        "do_center_crop": True,
        "crop_size": {"height": height, "width": width},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(pre["mean"]),
        "image_std": list(pre["std"]),
    }
    (vision / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))
    rename_input(ours / "text.onnx", text / "model.onnx", "tokens", "input_ids")
    hf_clip_tokenizer(ours, meta).save(str(text / "tokenizer.json"))
    context = int(meta["context_length"])
    specials = {"bos_token": SOT, "eos_token": EOT, "pad_token": EOT, "unk_token": EOT}
    config = {"model_max_length": context, "tokenizer_class": "CLIPTokenizer", "do_lower_case": True, **specials}
    (text / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (text / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
    (target / "source.json").write_text(json.dumps(meta["sha256"]))


def prepare(workdir: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """(our export, fastembed's folder) under ``workdir``, reused where a previous run left them complete."""
    ours, peer = workdir / "ours", workdir / "fastembed"
    if not (ours / "clip_onnx.json").is_file():
        print(f"exporting {MODEL} (random weights) into {ours} ...", flush=True)
        export_ours(ours, env)
    sha = json.loads((ours / "clip_onnx.json").read_text())["sha256"]
    marker = peer / "source.json"
    if not marker.is_file() or json.loads(marker.read_text()) != sha:
        print(f"writing fastembed's folder {peer} from it ...", flush=True)
        write_fastembed_folder(ours, peer)
    return ours, peer


# -- the host ----------------------------------------------------------------------------------------------


def host() -> dict[str, Any]:
    """CPU model and the flags that decide ONNX Runtime's kernels, thread count, load, versions."""
    flags: set[str] = set()
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import importlib.metadata as md

    versions = {}
    for name in ("onnxruntime", "fastembed", "numpy", "tokenizers", "pillow", "huggingface-hub"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": model,
        "flags": {flag: flag in flags for flag in CPU_FLAGS},
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": os.getloadavg()[0],
        "python": platform.python_version(),
        "versions": versions,
    }


# -- start-up ----------------------------------------------------------------------------------------------


def startup_once(engine: str, ours: Path, peer: Path, jpeg: Path, threads: int, env: dict[str, str]) -> dict:
    """One fresh process: seconds from spawn to ready (imports included), VmRSS after load, first vectors."""
    folder = ours if engine == "ours" else peer
    argv = [sys.executable, "-c", STARTUP_CODE[engine], str(folder), str(threads), str(jpeg), MODEL]
    began = time.time()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{engine} start-up failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "ready_s": report["ready"] - began,
        "first_vectors_s": report["first"] - began,
        "rss_mb": report["rss_kb"] / 1024,
    }


def startup(rounds: int, ours: Path, peer: Path, jpeg: Path, threads: int, env: dict[str, str]) -> dict:
    """Best ready time (and first vectors) and median RSS over ``rounds`` alternating spawns per engine."""
    runs: dict[str, list[dict]] = {name: [] for name in ENGINES}
    for r in range(rounds):
        for engine in ENGINES if r % 2 == 0 else ENGINES[::-1]:
            runs[engine].append(startup_once(engine, ours, peer, jpeg, threads, env))
            m = runs[engine][-1]
            print(
                f"  start-up {engine:<9} ready {m['ready_s']:5.2f} s  first vectors {m['first_vectors_s']:5.2f} s  "
                f"RSS {m['rss_mb']:6.0f} MB",
                flush=True,
            )
    return {
        name: {
            "ready_s": min(m["ready_s"] for m in ms),
            "first_vectors_s": min(m["first_vectors_s"] for m in ms),
            "rss_mb": statistics.median(m["rss_mb"] for m in ms),
            "runs": ms,
        }
        for name, ms in runs.items()
    }


# -- in process --------------------------------------------------------------------------------------------


def unit(x: Any) -> Any:
    import numpy as np

    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))


class Engines:
    """Both engines loaded in this process, with the whole call (bytes in, unit rows out) and the bare session."""

    def __init__(self, ours: Path, peer: Path, threads: int) -> None:
        from fastembed import ImageEmbedding, TextEmbedding

        from model_code.code import inference

        self.inference = inference
        self.ours = inference.load_onnx(ours, MODEL, model_id=MODEL)
        self.fe_vision = ImageEmbedding(FE_VISION, specific_model_path=str(peer / "vision"), threads=threads)
        self.fe_text = TextEmbedding(FE_TEXT, specific_model_path=str(peer / "text"), threads=threads)

    # the whole call, as a user of each writes it
    def ours_images(self, jpegs: Sequence[bytes]) -> Any:
        request = self.inference.Request("images", list(jpegs), normalize=True)
        return self.inference.predict_fn(request, self.ours).vectors

    def ours_texts(self, texts: Sequence[str]) -> Any:
        return self.inference.predict_fn(
            self.inference.Request("texts", list(texts), normalize=True), self.ours
        ).vectors

    def fe_images(self, jpegs: Sequence[bytes]) -> Any:
        import numpy as np

        return np.stack(list(self.fe_vision.embed([io.BytesIO(j) for j in jpegs], batch_size=len(jpegs))))

    def fe_texts(self, texts: Sequence[str]) -> Any:
        import numpy as np

        return unit(np.stack(list(self.fe_text.embed(list(texts), batch_size=len(texts)))))

    # the bare sessions on ready inputs: the ceiling of each
    def ours_bare(self, kind: str, items: Sequence[Any]) -> Callable[[], Any]:
        import numpy as np

        from model_code.code import clip_inputs, clip_onnx

        towers = self.ours.onnx  # OnnxTowers or OpenVinoTowers: each runs one graph on an array through _run
        if kind == "image":
            name = clip_onnx.IMAGE_FILE
            array = self.ours.pil_stage.normalize([clip_inputs.prepare(i, j, self.ours) for i, j in enumerate(items)])
        else:
            tokens = self.ours.tokenize(list(items))[0]
            if towers.trim is not None:
                tokens = tokens[:, : clip_onnx.trim_length(tokens, *towers.trim)]
            name, array = clip_onnx.TEXT_FILE, np.ascontiguousarray(tokens)
        return lambda: towers._run(name, array)

    def fe_bare(self, kind: str, items: Sequence[Any]) -> Callable[[], Any]:
        import numpy as np
        from PIL import Image

        if kind == "image":
            model = self.fe_vision.model
            array = np.array(model.processor([Image.open(io.BytesIO(j)) for j in items]))
            feed = {model.model.get_inputs()[0].name: array}
        else:
            model = self.fe_text.model
            feed = {"input_ids": np.array([e.ids for e in model.tokenizer.encode_batch(list(items))], dtype=np.int64)}
        return lambda: model.model.run(None, feed)[0]


def min_cos(a: Any, b: Any) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float((unit(a) * unit(b)).sum(1).min())


def agreement(engines: Engines, jpegs: list[bytes], odd: list[bytes]) -> dict[str, Any]:
    """Min cosine ours against fastembed, and how many token ids agree, on photos, odd sizes and texts."""
    import numpy as np

    from omnisearch_testkit.golden_texts import GOLDEN

    out: dict[str, Any] = {
        "images_640x480": min_cos(engines.ours_images(jpegs), engines.fe_images(jpegs)),
        "images_394x240": min_cos(engines.ours_images(odd), engines.fe_images(odd)),
        "queries": min_cos(engines.ours_texts(QUERIES), engines.fe_texts(QUERIES)),
    }
    for name, rows in (("ours", engines.ours_texts(QUERIES)), ("fastembed", engines.fe_texts(QUERIES))):
        out[f"{name}_text_norm_max_error"] = float(np.abs(np.linalg.norm(rows, axis=1) - 1).max())
    tokenizer = engines.fe_text.model.tokenizer
    same: list[float] = []  # min cosine of each golden text whose ids agree
    differ: dict[str, float] = {}  # the others (HTML entities, ftfy's repairs, typed-in special tokens), by text
    failed = 0
    for text in GOLDEN:
        try:
            ours_ids, counts, _ = engines.ours.tokenize([text])
            theirs = tokenizer.encode(text)
            cos = min_cos(engines.ours_texts([text]), engines.fe_texts([text]))
        except Exception:  # e.g. a lone surrogate, which tokenizers (Rust strings) refuses
            failed += 1
            continue
        ids = [i for i, m in zip(theirs.ids, theirs.attention_mask, strict=True) if m]
        if list(ours_ids[0, : counts[0]]) == ids:
            same.append(cos)
        else:
            differ[text[:40]] = cos
    out["golden_ids_same"], out["golden_ids_differ"], out["golden_failed"] = len(same), differ, failed
    out["golden_same_ids_min_cos"] = min(same) if same else None
    out["golden_differ_ids_min_cos"] = min(differ.values()) if differ else None
    return out


def cosine(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


CASES = [  # (name, kind, batch)
    ("images, batch 1", "image", 1),
    ("images, batch 16", "image", 16),
    ("texts, batch 1", "text", 1),
    ("texts, batch 32", "text", 32),
]


def throughput(engines: Engines, jpegs: list[bytes], rounds: int, seconds: float) -> list[dict]:
    """Items/s per case for both whole calls and both bare sessions, best of ``rounds`` alternating rounds."""
    rows = []
    for n, (name, kind, batch) in enumerate(CASES):
        items = jpegs[:batch] if kind == "image" else [QUERIES[i % len(QUERIES)] for i in range(batch)]
        whole = (engines.ours_images, engines.fe_images) if kind == "image" else (engines.ours_texts, engines.fe_texts)
        calls = {
            "ours": functools.partial(whole[0], items),
            "fastembed": functools.partial(whole[1], items),
            "ours_session": engines.ours_bare(kind, items),
            "fastembed_session": engines.fe_bare(kind, items),
        }
        best = dict.fromkeys(calls, 0.0)
        for r in range(rounds):
            order = list(calls) if (n + r) % 2 == 0 else list(calls)[::-1]  # who goes first alternates
            for key in order:
                best[key] = max(best[key], rate(calls[key], items=batch, seconds=seconds, sync=lambda: None))
        row = {"case": name, "kind": kind, "batch": batch, **best, "ratio": best["ours"] / best["fastembed"]}
        rows.append(row)
        print(
            f"  {name:<17} ours {best['ours']:7.1f}/s  fastembed {best['fastembed']:7.1f}/s  "
            f"({row['ratio']:.2f}x)   bare sessions: ours {best['ours_session']:7.1f}/s  "
            f"fastembed {best['fastembed_session']:7.1f}/s",
            flush=True,
        )
    return rows


# -- the table ---------------------------------------------------------------------------------------------


def table(start: dict, rows: list[dict]) -> None:
    """Markdown: ours, fastembed, ours / fastembed and the goal; for throughput each engine's share of its ceiling."""
    print(
        "\n| measure | ours | fastembed | ours/fastembed | goal | ours bare session | fastembed bare session |"
        " ours % of ceiling | fastembed % of ceiling |"
    )
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    ours, peer = start["ours"], start["fastembed"]
    for label, key, unit_name, goal in (
        ("start-up to ready", "ready_s", "s", True),
        ("start-up to first vectors", "first_vectors_s", "s", False),
        ("RSS after load", "rss_mb", "MB", True),
    ):
        ratio = ours[key] / peer[key]
        verdict = f"<= 1.0x {'met' if ratio <= 1.0 else 'NOT met'}" if goal else "(info)"
        fmt = ".2f" if unit_name == "s" else ".0f"
        print(
            f"| {label} | {ours[key]:{fmt}} {unit_name} | {peer[key]:{fmt}} {unit_name} | {ratio:.2f}x | {verdict} "
            "| | | | |"
        )
    for r in rows:
        what = "images/s" if r["kind"] == "image" else "texts/s"
        verdict = f">= {GOAL_SPEED}x {'met' if r['ratio'] >= GOAL_SPEED else 'NOT met'}"
        print(
            f"| {what}, batch {r['batch']} | {r['ours']:.1f} | {r['fastembed']:.1f} | {r['ratio']:.2f}x | {verdict} "
            f"| {r['ours_session']:.1f} | {r['fastembed_session']:.1f} | {100 * r['ours'] / r['ours_session']:.0f}% "
            f"| {100 * r['fastembed'] / r['fastembed_session']:.0f}% |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads of both engines (default 2)")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 s per case, 2 start-ups per engine")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per throughput case")
    parser.add_argument("--seconds", type=float, default=4.0, help="minimum timed seconds per measurement")
    parser.add_argument("--startups", type=int, default=5, help="fresh processes per engine")
    parser.add_argument("--workdir", type=Path, help="keep the export and fastembed's folder here (reused)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.startups = min(args.rounds, 2), min(args.seconds, 1.0), min(args.startups, 2)
    try:
        import fastembed  # noqa: F401
    except ImportError:
        parser.error("fastembed is not installed: see this file's docstring for the pip line")
    # Before model_code is imported (clip_inputs reads CLIP_DECODE_THREADS at import): the same threads as fastembed.
    os.environ["CLIP_ONNX_THREADS"] = str(args.threads)
    os.environ.setdefault("CLIP_DECODE_THREADS", str(args.threads))
    # The same graph in the same precision as fastembed: ONNX Runtime fp32 (CLIP_ENGINE=auto would pick
    # OpenVINO bf16 where the CPU has it natively; bench/engines.py measures that).
    os.environ.setdefault("CLIP_ENGINE", "onnxruntime")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

    temporary = None
    if args.workdir is None:
        temporary = tempfile.TemporaryDirectory(prefix="peer-fastembed-")
        workdir = Path(temporary.name)
    else:
        workdir = args.workdir.resolve()
    try:
        ours_dir, peer_dir = prepare(workdir, env)
        jpegs = make_jpegs(16)
        odd = make_jpegs(4, size=(394, 240))  # the crop offset is 71.5: fastembed floors it, torchvision rounds
        probe = workdir / "probe.jpg"
        probe.write_bytes(jpegs[0])
        info = host()
        flags = " ".join(f"{flag} {'yes' if on else 'no'}" for flag, on in info["flags"].items())
        versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        print(
            f"peer benchmark: {MODEL} random weights, our ONNX export on both engines (fastembed fp32); {args.threads} "
            f"ONNX Runtime threads each (ours: CLIP_ONNX_THREADS {os.environ['CLIP_ONNX_THREADS']}, "
            f"CLIP_DECODE_THREADS {os.environ['CLIP_DECODE_THREADS']}; fastembed threads={args.threads}); "
            f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}, CLIP_ENGINE {os.environ['CLIP_ENGINE']}\n"
            f"host: {info['cpu']}, {info['cpus']} CPUs ({info['affinity']} usable); {flags}; "
            f"load average {info['load_average']:.2f}\nversions: python {info['python']}, {versions}",
            flush=True,
        )
        print(f"start-up, {args.startups} fresh processes per engine:", flush=True)
        start = startup(args.startups, ours_dir, peer_dir, probe, args.threads, env)

        engines = Engines(ours_dir, peer_dir, args.threads)
        towers = engines.ours.onnx
        print(f"ours serves on {towers.engine} in {towers.precision} (CLIP_PRECISION "
              f"{os.environ.get('CLIP_PRECISION', 'auto')})", flush=True)  # fmt: skip
        if "torch" in sys.modules:
            print("note: torch was imported in this process", flush=True)
        agree = agreement(engines, jpegs, odd)
        print(
            f"agreement, min cosine ours vs fastembed: images 640x480 {agree['images_640x480']:.6f}, "
            f"images 394x240 {agree['images_394x240']:.6f}, queries {agree['queries']:.6f}\n"
            f"golden texts: token ids the same on {agree['golden_ids_same']} (min cosine "
            f"{cosine(agree['golden_same_ids_min_cos'])}), different on {len(agree['golden_ids_differ'])} (min cosine "
            f"{cosine(agree['golden_differ_ids_min_cos'])}), refused by a tokenizer on {agree['golden_failed']}",
            flush=True,
        )
        for text, cos in agree["golden_ids_differ"].items():
            print(f"  ids differ: cos {cos:.4f}  {text!r}", flush=True)
        print(f"throughput, best of {args.rounds} rounds of >= {args.seconds:g} s:", flush=True)
        rows = throughput(engines, jpegs, args.rounds, args.seconds)
        table(start, rows)
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            figures = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
            figures |= {"host": info, "startup": start, "agreement": agree, "rows": rows}
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        if temporary is not None:
            temporary.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
