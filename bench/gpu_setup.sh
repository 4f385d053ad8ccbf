# shellcheck shell=bash
# Sourced, from the repository root, by the prepared runs on a lent GPU machine (bench/gpu_run.sh,
# bench/gpu_endpoint.sh): makes $OUT, installs the carried .whl/ wheels into /tmp/site (exits if that fails),
# puts them and the checkout on PYTHONPATH, and names the GPU in $OUT/gpu.txt.
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit
export PYTHONPATH=/tmp/site:$PWD:$PWD/layers/common PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

# versions MODULE...: "torch 2.x open_clip 3.x ..." appended to $OUT/gpu.txt
versions() {
  python3 -c "import importlib, sys; print(*(f'{m} {importlib.import_module(m).__version__}' for m in sys.argv[1:]))" \
    "$@" | tee -a "$OUT/gpu.txt"
}
