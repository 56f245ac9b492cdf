#!/usr/bin/env bash
# Builds larder every way a user may: each CMake build type with gcc and with
# clang, warnings as errors (a user's build does not make them errors, but
# none may be there); then each backend left out in turn, running the tests
# that remain. Folders go under ${MATRIX_DIR:-build-matrix}. The databases of
# integration/services.sh must be running for the backend-less test runs
# (scripts/test.sh starts them).
#   bash scripts/build-matrix.sh [types|backends|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
root=${MATRIX_DIR:-build-matrix}
mkdir -p "$root"

if [ "$what" = types ] || [ "$what" = all ]; then
  for cc in gcc clang; do
    for type in Debug RelWithDebInfo Release MinSizeRel; do
      dir=$root/$cc-$type
      start=$(date +%s)
      if ! CC=$cc cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DLARDER_TESTS=ON -DLARDER_WERROR=ON \
          >"$dir.log" 2>&1 || ! cmake --build "$dir" -j"$(nproc)" >>"$dir.log" 2>&1; then
        echo "build-matrix: $cc $type failed:" >&2
        grep -E 'error|warning' "$dir.log" | head -20 >&2
        exit 1
      fi
      echo "build-matrix: $cc $type: built in $(( $(date +%s) - start )) s, no warnings"
      rm -rf "$dir"
    done
  done
fi

if [ "$what" = backends ] || [ "$what" = all ]; then
  for backend in SQLITE POSTGRES MYSQL; do
    dir=$root/without-$backend
    start=$(date +%s)
    cmake -S . -B "$dir" -DLARDER_TESTS=ON -DLARDER_WERROR=ON -DLARDER_WITH_$backend=OFF >"$dir.log" 2>&1
    cmake --build "$dir" -j"$(nproc)" >>"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; exit 1; }
    # The scale-out tests (balancers, standbys, replicas: about 90 s) ran on the
    # full build and under the sanitizers; leaving a store out changes nothing of theirs.
    log=$PWD/$dir.log # absolute: the tests run in $dir
    if ! (cd "$dir" && ctest --output-on-failure --no-tests=error -j2 -E '^integration\.scaleout\.' \
        >>"$log" 2>&1); then
      tail -40 "$dir.log" >&2
      exit 1
    fi
    summary=$(grep -E 'tests passed' "$dir.log" | tail -1)
    echo "build-matrix: LARDER_WITH_$backend=OFF: built and tested in $(( $(date +%s) - start )) s: $summary"
    rm -rf "$dir"
  done
fi
