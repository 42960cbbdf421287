#!/usr/bin/env bash
# Download the wheels tools/gpu_check.py needs on the GPU machine (Python 3.12,
# torch already there, no network) into .whl/ of the repository root:
# mmengine and its small dependencies, and diffusers 0.24 for the baseline with
# the huggingface_hub it imports (0.26 removed cached_download).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    mmengine==0.10.7 addict==2.4.0 yapf==0.43.0 termcolor==2.5.0 \
    diffusers==0.24.0 huggingface_hub==0.25.2 importlib_metadata==8.5.0
ls -la .whl
