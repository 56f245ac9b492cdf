#!/usr/bin/env bash
# The second set-up command: installs what is missing, checks formatting,
# builds with warnings as errors, and runs every test twice: on the normal
# build and on an AddressSanitizer + UndefinedBehaviorSanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/deps.sh

echo "== clang-format"
mapfile -t sources < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
clang-format --dry-run --Werror "${sources[@]}"

echo "== build (RelWithDebInfo, -Werror)"
bash scripts/build.sh build -DLARDER_TESTS=ON
echo "== tests"
(cd build && ctest --output-on-failure --no-tests=error -j2)

echo "== build (ASan + UBSan)"
BUILD_TYPE=Debug bash scripts/build.sh build-asan -DLARDER_TESTS=ON -DLARDER_SANITIZE=address,undefined
echo "== tests under ASan + UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure --no-tests=error -j2)

echo "== all tests passed in $(( $(date +%s) - t0 )) s"
