#!/usr/bin/env python
"""One model, the CPU engines, in one process: torch eager, ONNX Runtime, OpenVINO fp32 and bf16, tower by tower.

    python bench/engines.py                      # ViT-B-32 random weights, 2 threads
    python bench/engines.py --threads 1 --json bench/results/engines.json

Each engine runs the towers alone on ready inputs (the ceiling of a server using it): images as a
preprocessed batch, texts as token ids. Texts are trimmed as served (to the batch's last end token):
typical queries, and one 77-token text. Torch eager is inference.py's own call (trimmed encode_text,
encode_image); ONNX Runtime is clip_onnx.OnnxTowers over the graphs package_model.py ships; OpenVINO is
clip_openvino.OpenVinoTowers compiling those same files, in fp32 and, where OpenVINO runs it (AVX-512 or
AMX), in bf16. The CPU's flags are printed first: bf16 is native only with amx_bf16 or avx512_bf16, which
is where ``CLIP_PRECISION=auto`` serves it. Figures are the best of ``--rounds`` alternating rounds (a
busy machine only slows things); ratios are ONNX Runtime / engine; cosines are against torch's fp32.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from model_throughput import QUERIES, make_jpegs, rate

LONG = " ".join(["a small red circle next to a large blue square"] * 12)  # over 77 tokens: cut to the context


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def cpu_line() -> str:
    from model_code.code import clip_cpu

    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    native = clip_cpu.native_bf16()
    flags = ", ".join(clip_cpu.bf16_flags()) or "none of amx_bf16, avx512_bf16, avx512f, avx2"
    verdict = f"bf16 native ({native})" if native else "no native bf16: auto serves fp32"
    return f"{name}; flags: {flags}; {verdict}"


def load_timed(make: Callable[[], object]) -> tuple[object, float, float]:
    """(towers, seconds to load, MB of RSS they added)."""
    before, start = rss_mb(), time.perf_counter()
    towers = make()
    return towers, time.perf_counter() - start, rss_mb() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of every engine")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-openvino", action="store_true")
    parser.add_argument("--no-torch", action="store_true", help="leave torch eager out (it is the slowest)")
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

    print(cpu_line(), flush=True)
    torch.set_num_threads(args.threads)
    clip = inference.load_model(args.model, "", device="cpu", precision="fp32")
    export_dir = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    clip_export.export(clip, export_dir)
    ort_towers, ort_s, ort_mb = load_timed(lambda: clip_onnx.OnnxTowers(export_dir))
    loads = {"onnxruntime": (ort_s, ort_mb)}
    eager = {"text": functools.partial(inference.encode_text, clip.model), "image": clip.model.encode_image}
    engines: dict[str, dict[str, Callable]] = {
        "torch": eager,
        "onnxruntime": {"text": ort_towers.encode_text, "image": ort_towers.encode_image},
    }
    versions = f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}"
    if not args.no_openvino:
        try:
            import openvino

            from model_code.code import clip_openvino
        except ImportError:
            print("openvino is not installed (pip install openvino): measuring torch and ONNX Runtime only")
        else:
            versions += f", openvino {openvino.__version__}"
            for precision in ("fp32", "bf16"):
                towers, seconds, mb = load_timed(functools.partial(clip_openvino.OpenVinoTowers, export_dir, precision))
                if towers.runs_in != precision:
                    print(f"OpenVINO runs {precision} as {towers.runs_in} on this CPU: no openvino-{precision} column")
                    continue
                engines[f"openvino-{precision}"] = {"text": towers.encode_text, "image": towers.encode_image}
                loads[f"openvino-{precision}"] = (seconds, mb)
    if args.no_torch:
        del engines["torch"]
    print(
        f"{clip.model_id}, {args.threads} threads, {os.cpu_count()} CPUs, OMP_WAIT_POLICY "
        f"{os.environ['OMP_WAIT_POLICY']}, load average {os.getloadavg()[0]:.1f}; {versions}",
        flush=True,
    )
    for name, (seconds, mb) in loads.items():
        print(f"load {name}: {seconds:.2f} s, +{mb:.0f} MB RSS", flush=True)
    starts = {}
    for setting in ("onnxruntime",) if args.no_openvino else ("onnxruntime", "auto"):  # what a server's start pays
        os.environ["CLIP_ENGINE"] = setting
        start = time.perf_counter()
        served = inference.load_onnx(export_dir, args.model, model_id=clip.model_id)
        starts[setting] = time.perf_counter() - start
        print(f"start, CLIP_ENGINE={setting}: {starts[setting]:.2f} s, serving {served.engine} {served.precision}: "
              f"{served.describe()['precision_reason']}", flush=True)  # fmt: skip
        del served
    os.environ.pop("CLIP_ENGINE")

    jpegs = make_jpegs(16)
    pixels = torch.stack([clip.preprocess(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs])
    queries = [QUERIES[i % len(QUERIES)] for i in range(32)]
    cases = {
        "image, batch 1": ("image", pixels[:1]),
        "image, batch 16": ("image", pixels),
        "text query, batch 1": ("text", inference.tokenize(clip, QUERIES[:1])[0]),
        "text queries, batch 32": ("text", inference.tokenize(clip, queries)[0]),
        "text 77 tokens, batch 1": ("text", inference.tokenize(clip, [LONG])[0]),
    }
    rows = []
    others = [name for name in engines if name != "onnxruntime"]
    header = "".join(f"{name:>15}" for name in engines) + "".join(f"{'ort/' + n[-9:]:>15}" for n in others)
    print(f"{'case (ms per call)':<26}{header}   min cos vs torch fp32")
    with torch.inference_mode():
        for case, (tower, data) in cases.items():
            items = data.shape[0]
            calls = {name: functools.partial(fns[tower], data) for name, fns in engines.items()}
            best = dict.fromkeys(engines, 0.0)
            for _ in range(args.rounds):  # alternate engines so a busy spell hits them all
                for name, call in calls.items():
                    best[name] = max(best[name], rate(call, items=items, seconds=args.seconds, sync=lambda: None))
            ms = {name: 1000 * items / best[name] for name in engines}
            reference = np.asarray(eager[tower](data), dtype=np.float32)
            cosines = {}
            for name, call in calls.items():
                out = np.asarray(call(), dtype=np.float32)
                cos = (out * reference).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(reference, axis=1)
                cosines[name] = float(cos.min())
            rows.append({"case": case, "items": items, "ms_per_call": ms, "min_cos_vs_torch": cosines})
            figures = "".join(f"{ms[name]:15.1f}" for name in engines)
            speedups = "".join(f"{ms['onnxruntime'] / ms[name]:14.2f}x" for name in others)
            parity = " ".join(f"{cosines[name]:.6f}" for name in engines if name != "torch")
            print(f"{case:<26}{figures}{speedups}   {parity}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "model": clip.model_id,
            "threads": args.threads,
            "cpu": cpu_line(),
            "loads": loads,
            "starts": starts,
            "rows": rows,
        }
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
