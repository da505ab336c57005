#!/usr/bin/env bash
# Prepares gpuclean/: the committed tree (git archive HEAD) plus GoogleTest's sources, to carry to the GPU
# machine (device tool: carry ["gpuclean"], command "cd gpuclean && scripts/gpu_check.sh ..."). Carrying a
# clean tree keeps uncommitted work in progress off the device; carry it on every call (an uncarried
# ignored folder is not kept there).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx "/gpuclean/" .git/info/exclude 2>/dev/null || echo "/gpuclean/" >> .git/info/exclude
rm -rf gpuclean
mkdir gpuclean
git archive HEAD | tar -x -C gpuclean
gtest=third_party/googletest
[ -d "$gtest" ] || gtest=/usr/src/googletest
mkdir -p gpuclean/third_party
cp -r "$gtest" gpuclean/third_party/googletest
du -sh gpuclean
