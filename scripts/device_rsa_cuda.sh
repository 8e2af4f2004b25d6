#!/usr/bin/env bash
# The GPU checks of the RSA CUDA kernel, as one prepared run for a session lent a device machine (its python3
# has a CUDA build of torch and nvcc): just-in-time build of the extension with its CUDA part, the CUDA and
# CPU kernel tests, then the benchmark on the GPU. Logs go to $OUT (or /tmp/rsa-cuda-out).
#   run: bash scripts/device_rsa_cuda.sh
set -uo pipefail
OUT=${OUT:-/tmp/rsa-cuda-out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:$PWD/plugins/etk-kernels${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR=/tmp/etk-torch-extensions MAX_JOBS=${MAX_JOBS:-16}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
python3 - <<'PY' 2>&1 | tee "$OUT/build.log"
import logging, time
logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
start = time.time()
from etk_kernels import rsa
print("kernel", rsa.kernel_status(), "cuda kernel", rsa.cuda_kernel_available(), f"({time.time() - start:.0f} s)")
PY
python3 -m pytest -q -p no:cacheprovider plugins/etk-kernels/tests/test_rsa_cuda.py \
  plugins/etk-kernels/tests/test_rsa_kernel.py 2>&1 | tee "$OUT/tests.log"
python3 benchmarks/rsa.py --device cuda --lengths 1024 2048 4096 8192 16384 --no-reference --repeats 10 \
  2>&1 | tee "$OUT/bench.log"
