#!/usr/bin/env bash
# One prepared run on a lent GPU machine (device tool): wheels it lacks, the CUDA check, the throughput bench.
# Usage there: bash bench/gpu_run.sh   (with .whl carried: open_clip_torch, ftfy, wcwidth); figures -> $OUT
set -uo pipefail
# shellcheck source=bench/gpu_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/gpu_setup.sh"
versions torch open_clip timm
python3 bench/cuda_check.py 2>&1 | grep -v "^INFO" | tee "$OUT/cuda_check.txt"
CLIP_IMAGE_BATCH_SIZE=256 python3 bench/model_throughput.py --device cuda --precision fp16 --batch-sizes 64,256 --decode-threads 16 \
  --json "$OUT/gpu_throughput.json" 2>&1 | grep -v "^INFO" | tee "$OUT/gpu_throughput.txt"
