#!/usr/bin/env bash
# Prepares gpuclean/: a committed tree (git archive of REV, default HEAD) plus GoogleTest's sources, to carry
# to the GPU machine (device tool: carry ["gpuclean"], command "cd gpuclean && scripts/gpu_check.sh ...").
# Carrying a clean tree keeps uncommitted work in progress off the device; carry it on every call (an
# uncarried ignored folder is not kept there).
# Usage: scripts/gpu_tree.sh [REV]   e.g. a branch that another worktree has checked out, without checking it
#                                    out here
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:-HEAD}
git rev-parse --verify --quiet "$REV^{commit}" >/dev/null || { echo "gpu_tree.sh: no commit named '$REV'" >&2; exit 2; }
# The exclude file through git (in a linked worktree .git is a file, not a folder).
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx "/gpuclean/" "$exclude" 2>/dev/null || echo "/gpuclean/" >> "$exclude"
rm -rf gpuclean
mkdir gpuclean
git archive "$REV" | tar -x -C gpuclean
echo "gpuclean: $(git rev-parse --short "$REV") ($REV)"
gtest=third_party/googletest
[ -d "$gtest" ] || gtest=/usr/src/googletest
mkdir -p gpuclean/third_party
cp -r "$gtest" gpuclean/third_party/googletest
du -sh gpuclean
