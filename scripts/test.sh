#!/usr/bin/env bash
# The second set-up command: installs what is missing, checks formatting,
# starts throw-away database servers on loopback (stopped again on exit),
# builds with warnings as errors, and runs every test twice: on the normal
# build and on an AddressSanitizer + UndefinedBehaviorSanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/deps.sh --test

echo "== clang-format"
mapfile -t sources < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
clang-format --dry-run --Werror "${sources[@]}"

echo "== databases: throw-away PostgreSQL and MariaDB on 127.0.0.1"
svc_root=$(mktemp -d)
chmod 755 "$svc_root" # the database users must reach their folders
export SVC_DIR=$svc_root/services SERVICES="postgres mariadb"
trap 'bash integration/services.sh stop || true; rm -rf "$svc_root"' EXIT
bash integration/services.sh start >/dev/null
# shellcheck disable=SC1091
source "$SVC_DIR/env"
export LARDER_REQUIRE_DB=1 # a test that finds no database fails instead of skipping

echo "== build (RelWithDebInfo, -Werror)"
bash scripts/build.sh build -DLARDER_TESTS=ON
echo "== tests"
(cd build && ctest --output-on-failure --no-tests=error -j2)

echo "== benchmarks: bench/run.sh --smoke (every server and baseline for a second; no timing checked)"
bash bench/run.sh --smoke
echo "== soak: bench/soak.sh --smoke (three short intervals; the 30-minute record is in bench/RESULTS.md)"
bash bench/soak.sh --smoke

echo "== build (ASan + UBSan)"
BUILD_TYPE=Debug bash scripts/build.sh build-asan -DLARDER_TESTS=ON -DLARDER_SANITIZE=address,undefined
echo "== tests under ASan + UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure --no-tests=error -j2)

echo "== all tests passed in $(( $(date +%s) - t0 )) s"
