#!/usr/bin/env python
"""One model, three CPU engines, in one process: torch eager, ONNX Runtime and OpenVINO, tower by tower.

    python bench/engines.py                      # ViT-B-32 random weights, 2 threads
    python bench/engines.py --threads 1 --json bench/results/engines.json

Each engine runs the towers alone on ready inputs (the ceiling of a server using it): images as a
preprocessed batch, texts as token ids. Texts are trimmed as served (to the batch's last end token):
typical queries, and one 77-token text. Torch eager is inference.py's own call (trimmed encode_text,
encode_image); ONNX Runtime is clip_onnx.OnnxTowers over the graphs package_model.py ships; OpenVINO
compiles those same ONNX files (``pip install openvino``; it is a benchmark-only dependency). Figures are
the best of ``--rounds`` alternating rounds (a busy machine only slows things); ratios are torch / engine.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from model_throughput import QUERIES, make_jpegs, rate

LONG = " ".join(["a small red circle next to a large blue square"] * 12)  # over 77 tokens: cut to the context


def openvino_towers(directory: Path, threads: int, trim: tuple[str, int | None] | None) -> dict[str, Callable]:
    import openvino as ov

    from model_code.code import clip_text

    core = ov.Core()
    # f32: without the hint OpenVINO runs bf16 where the CPU has it, which is not the same model any more
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    text = core.compile_model(str(directory / "text.onnx"), "CPU", config)
    image = core.compile_model(str(directory / "image.onnx"), "CPU", config)

    def encode_text(tokens):
        if trim is not None:
            tokens = tokens[:, : clip_text.trim_length(tokens, *trim)]
        return text(tokens.numpy())[0]

    return {"text": encode_text, "image": lambda pixels: image(pixels.numpy())[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of every engine")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-openvino", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    os.environ["CLIP_ONNX_THREADS"] = str(args.threads)
    # As the local server runs them (before torch loads): idle threads wait rather than spin, which on a
    # small shared machine costs torch eager several times its time at batch 1. ONNX Runtime follows it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import numpy as np
    import torch
    from PIL import Image

    from model_code.code import clip_export, clip_onnx, inference

    torch.set_num_threads(args.threads)
    clip = inference.load_model(args.model, "", device="cpu", precision="fp32")
    export_dir = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    clip_export.export(clip, export_dir)
    ort_towers = clip_onnx.OnnxTowers(export_dir)
    engines: dict[str, dict[str, Callable]] = {
        "torch": {
            "text": functools.partial(inference.encode_text, clip.model),
            "image": clip.model.encode_image,
        },
        "onnxruntime": {"text": ort_towers.encode_text, "image": ort_towers.encode_image},
    }
    if not args.no_openvino:
        try:
            engines["openvino"] = openvino_towers(export_dir, args.threads, ort_towers.trim)
        except ImportError:
            print("openvino is not installed (pip install openvino): measuring torch and ONNX Runtime only")
    import onnxruntime

    versions = f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"
    if "openvino" in engines:
        import openvino

        versions += f", openvino {openvino.__version__}"
    print(
        f"{clip.model_id}, {args.threads} threads, {os.cpu_count()} CPUs, OMP_WAIT_POLICY "
        f"{os.environ['OMP_WAIT_POLICY']}, load average {os.getloadavg()[0]:.1f}; {versions}",
        flush=True,
    )

    jpegs = make_jpegs(16)
    pixels = torch.stack([clip.preprocess(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs])
    queries16 = [QUERIES[i % len(QUERIES)] for i in range(16)]
    cases = {
        "image, batch 1": ("image", pixels[:1]),
        "image, batch 16": ("image", pixels),
        "text query, batch 1": ("text", inference.tokenize(clip, QUERIES[:1])[0]),
        "text queries, batch 16": ("text", inference.tokenize(clip, queries16)[0]),
        "text 77 tokens, batch 1": ("text", inference.tokenize(clip, [LONG])[0]),
    }
    rows = []
    header = "".join(f"{name:>14}" for name in engines)
    ratios = "".join(f"{'torch/' + name[:4]:>12}" for name in engines if name != "torch")
    ratios += f"{'onnx/open':>12}" if "openvino" in engines else ""
    print(f"{'case (ms per call)':<26}{header}{ratios}   min cos vs torch")
    with torch.inference_mode():
        for case, (tower, data) in cases.items():
            items = data.shape[0]
            calls = {name: functools.partial(fns[tower], data) for name, fns in engines.items()}
            best = dict.fromkeys(engines, 0.0)
            for _ in range(args.rounds):  # alternate engines so a busy spell hits them all
                for name, call in calls.items():
                    best[name] = max(best[name], rate(call, items=items, seconds=args.seconds, sync=lambda: None))
            ms = {name: 1000 * items / best[name] for name in engines}
            reference = np.asarray(calls["torch"](), dtype=np.float32)
            cosines = {}
            for name, call in calls.items():
                out = np.asarray(call(), dtype=np.float32)
                cos = (out * reference).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(reference, axis=1)
                cosines[name] = float(cos.min())
            rows.append({"case": case, "items": items, "ms_per_call": ms, "min_cos_vs_torch": cosines})
            figures = "".join(f"{ms[name]:14.1f}" for name in engines)
            speedups = "".join(f"{ms['torch'] / ms[name]:11.2f}x" for name in engines if name != "torch")
            speedups += f"{ms['onnxruntime'] / ms['openvino']:11.2f}x" if "openvino" in engines else ""
            parity = " ".join(f"{cosines[name]:.7f}" for name in engines if name != "torch")
            print(f"{case:<26}{figures}{speedups}   {parity}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": clip.model_id, "threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
