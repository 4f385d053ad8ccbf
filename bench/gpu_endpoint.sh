#!/usr/bin/env bash
# One prepared run on a lent GPU machine (device tool): the serving container's H200 figures and the GPU JPEG
# decoding fidelity test. Carry .whl/ with the pure-Python wheels the machine lacks (open_clip_torch, ftfy,
# wcwidth, timm, uvicorn, starlette, h11, click, anyio, sniffio, idna) and, for its Python, httptools and
# uvloop (without them uvicorn serves with h11 and asyncio). Figures -> $OUT.
#   bash bench/gpu_endpoint.sh [--quick]
set -uo pipefail
# shellcheck source=bench/gpu_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/gpu_setup.sh"
versions torch torchvision open_clip uvicorn
if python3 -c "import pytest" 2>/dev/null; then  # the device test: nvJPEG batches vs the CPU path, cos >= 0.999
  python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/model_code/test_tensor_decode.py 2>&1 | tail -5 | tee "$OUT/tensor_decode.txt"
fi
python3 bench/endpoint_gpu.py --json "$OUT/endpoint_gpu.json" "$@" 2>&1 | grep -v "^INFO" | tee "$OUT/endpoint_gpu.txt"
