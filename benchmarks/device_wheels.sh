#!/usr/bin/env bash
# Wheels for benchmarks/device_run.sh: the packages metarl needs that the GPU machine's image lacks, for
# Python 3.12 on x86-64, into .whl/ (git-ignored). Run here, where pip reaches the package index; the device
# machine reaches nothing, and the tree that travels to it (.whl included, via `carry`) is limited to 64 MiB.
#
#   bash benchmarks/device_wheels.sh            # ~1.6 MB: evosax, gymnax, tyro and their missing needs
#
# The pinned stack itself (jax/jaxlib 0.9.2 with jax-cuda13-plugin and -pjrt 0.9.2) does not fit: jaxlib alone is
# 83 MB and the CUDA PJRT plugin 158 MB. So the device run uses the image's jax 0.11.2 with its CUDA 13 plugin
# and its flax, optax, chex, orbax-checkpoint, numpy and matplotlib; benchmarks/device.py records every version.
# (The image's CUDA libraries are CUDA 13 builds: a jax-cuda12 plugin would not find them.)
# Versions below are those of the CPU venv the tests ran with (pip freeze).
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-python3 -m pip}
rm -rf .whl
mkdir -p .whl
$PIP download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    evosax==0.3.2 dotmap==1.3.30 \
    gymnax==1.0.1 gymnasium==1.3.0 farama-notifications==0.0.6 \
    tyro==1.0.17 docstring-parser==0.18.0 typeguard==4.6.1
ls -l .whl
du -sh .whl
