#!/usr/bin/env bash
# Download the wheels tools/gpu_verify.py installs on the GPU device machine (CPython 3.12, x86-64 manylinux) into
# .whl/ (git-ignored through .git/info/exclude), from the pinned list in tools/gpu_wheels.txt.
#     bash tools/gpu_wheels.sh [DEST]        # DEST defaults to .whl
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-.whl}"
mkdir -p "$dest"
exclude="$(git rev-parse --git-common-dir)/info/exclude"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
mapfile -t pins < <(sed 's/#.*//' tools/gpu_wheels.txt | grep -v '^\s*$' | grep -v '^deepspeed==')
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$dest" "${pins[@]}"
# DeepSpeed publishes no current wheel; its sdist builds a pure-Python one (DS_BUILD_OPS=0: ops are JIT-compiled).
deepspeed_pin="$(grep '^deepspeed==' tools/gpu_wheels.txt)"
tmp="$(mktemp -d)"
python3 -m pip download -q --no-deps --no-binary=:all: -d "$tmp" "$deepspeed_pin"
DS_BUILD_OPS=0 python3 -m pip wheel -q --no-deps --no-build-isolation -w "$dest" "$tmp"/deepspeed-*.tar.gz
rm -rf "$tmp"
du -sh "$dest"
