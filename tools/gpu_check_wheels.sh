#!/usr/bin/env bash
# Download the wheels tools/gpu_check.py needs on the GPU machine (Python 3.12,
# torch and the packages of tools/gpu_check_device_packages.txt already there,
# no network) into a fresh .whl/ of the repository root: exactly those of
# tools/gpu_check_wheels.txt (mmengine and what it imports that the machine
# lacks, diffusers for the baseline), then check that every Requires-Dist of
# them is carried or on the machine (tools/gpu_check_wheels.py).
# After changing tools/gpu_check_wheels.txt, also rewrite the manifest the
# tests read: python tools/gpu_check_wheels.py manifest --wheels .whl
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .git/info
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl -r tools/gpu_check_wheels.txt
ls -la .whl
python3 tools/gpu_check_wheels.py check --wheels .whl
