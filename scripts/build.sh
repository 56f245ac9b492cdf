#!/usr/bin/env bash
# Configures and builds larder into build/ (or the folder given as $1),
# RelWithDebInfo unless $BUILD_TYPE says otherwise. Extra arguments go to
# cmake's configure step (scripts/test.sh passes -DLARDER_WERROR=ON); $TARGET
# limits the build to one target.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" ${TARGET:+--target "$TARGET"}
