#!/usr/bin/env bash
# One prepared run on a lent GPU machine (device tool): the serving container's H200 figures and the GPU JPEG
# decoding fidelity test. Carry .whl/ with the pure-Python wheels the machine lacks (open_clip_torch, ftfy,
# wcwidth, timm, uvicorn, starlette, h11, click, anyio, sniffio, idna) and, for its Python, httptools and
# uvloop (without them uvicorn serves with h11 and asyncio). Figures -> $OUT.
#   bash bench/gpu_endpoint.sh [--quick]
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit
export PYTHONPATH=/tmp/site:$PWD:$PWD/layers/common PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, torchvision, open_clip, uvicorn; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'open_clip', open_clip.__version__, 'uvicorn', uvicorn.__version__)" | tee -a "$OUT/gpu.txt"
if python3 -c "import pytest" 2>/dev/null; then  # the device test: nvJPEG batches vs the CPU path, cos >= 0.999
  python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/model_code/test_tensor_decode.py 2>&1 | tail -5 | tee "$OUT/tensor_decode.txt"
fi
python3 bench/endpoint_gpu.py --json "$OUT/endpoint_gpu.json" "$@" 2>&1 | grep -v "^INFO" | tee "$OUT/endpoint_gpu.txt"
