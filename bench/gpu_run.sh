#!/usr/bin/env bash
# One prepared run on a lent GPU machine (device tool): wheels it lacks, the CUDA check, the throughput bench.
# Usage there: bash bench/gpu_run.sh   (with .whl carried: open_clip_torch, ftfy, wcwidth); figures -> $OUT
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit
export PYTHONPATH=/tmp/site:$PWD:$PWD/layers/common PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, open_clip, timm; print('torch', torch.__version__, 'open_clip', open_clip.__version__, 'timm', timm.__version__)" | tee -a "$OUT/gpu.txt"
python3 bench/cuda_check.py 2>&1 | grep -v "^INFO" | tee "$OUT/cuda_check.txt"
CLIP_IMAGE_BATCH_SIZE=256 python3 bench/model_throughput.py --device cuda --precision fp16 --batch-sizes 64,256 --decode-threads 16 \
  --json "$OUT/gpu_throughput.json" 2>&1 | grep -v "^INFO" | tee "$OUT/gpu_throughput.txt"
