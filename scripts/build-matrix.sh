#!/usr/bin/env bash
# Builds larder every way a user may: each CMake build type with gcc and with
# clang, warnings as errors (a user's build does not make them errors, but
# none may be there); then each backend left out in turn: the build, a
# config for the store left out refused, the unit tests and one remaining
# store's integration tests. Folders go under ${MATRIX_DIR:-build-matrix}.
# The databases of integration/services.sh must be running for the
# backend-less test runs (scripts/test.sh starts them).
#   bash scripts/build-matrix.sh [types|backends|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
root=${MATRIX_DIR:-build-matrix}
mkdir -p "$root"
root=$(cd "$root" && pwd) # absolute: the tests run in the build folder

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
  # Left out, then the store whose integration tests run in that build: each
  # remaining store's suite runs once in a build without another store. The
  # default build ran every suite on every store (and the scale-out tests);
  # leaving a store out changes the table of stores and the SQL registry's
  # clients, not how the others read and write.
  for pair in SQLITE:postgres POSTGRES:mysql MYSQL:sqlite; do
    backend=${pair%%:*} tested=${pair#*:}
    dir=$root/without-$backend
    start=$(date +%s)
    cmake -S . -B "$dir" -DLARDER_TESTS=ON -DLARDER_WERROR=ON -DLARDER_WITH_$backend=OFF >"$dir.log" 2>&1
    cmake --build "$dir" -j"$(nproc)" >>"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; exit 1; }
    # A config for the store left out is refused at start, saying so.
    gone=$(echo "$backend" | tr '[:upper:]' '[:lower:]')
    mkdir -p "$dir/gone"
    printf 'project: gone\nregistry: registry.db\nprovider: local\nonline_store:\n  type: %s\n' "$gone" \
      >"$dir/gone/feature_store.yaml"
    code=0
    out=$(cd "$dir/gone" && timeout 20 ../larder serve -c feature_store.yaml --listen 127.0.0.1:0 2>&1) || code=$?
    if [ "$code" -eq 0 ] || ! grep -q "online_store.type: the '$gone' online store is not served by this build" <<<"$out"; then
      echo "build-matrix: without $backend, a $gone config: exit $code, expected a refusal naming it:" >&2
      echo "$out" >&2
      exit 1
    fi
    # (The scale-out tests' names end in no store's name: the default build ran them.)
    if ! (cd "$dir" && ctest --output-on-failure --no-tests=error -j2 \
        -R "^(unit|vectors|conformance)\.|^integration\..*\.$tested\$" >>"$dir.log" 2>&1); then
      tail -40 "$dir.log" >&2
      exit 1
    fi
    summary=$(grep -E 'tests passed' "$dir.log" | tail -1)
    echo "build-matrix: LARDER_WITH_$backend=OFF: built, a $gone config refused, unit tests and the $tested" \
      "suite run in $(( $(date +%s) - start )) s: $summary"
    rm -rf "$dir"
  done
fi
