#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz and runs
# each for SECONDS (default 10) from the seed corpus in fuzz/corpus/<target>.
# New inputs go to a scratch folder, so the repository's corpus only changes
# on purpose. Exit status 1 when a target finds a crash, leak or failed check;
# its input is kept under build-fuzz/findings/.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
# The record of the long runs is fuzz/RECORD.md (bash scripts/fuzz.sh 600).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true
CC=clang cmake -S . -B build-fuzz -DLARDER_FUZZ=ON -DLARDER_TESTS=OFF -DLARDER_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLARDER_SANITIZE=address,undefined,fuzzer-no-link >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(ls fuzz/corpus)
mkdir -p build-fuzz/findings
status=0
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  log=build-fuzz/findings/$t.log
  export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  if build-fuzz/fuzz/fuzz_"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix=build-fuzz/findings/"$t"- "$scratch" fuzz/corpus/"$t" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    corpus=$(find "$scratch" fuzz/corpus/"$t" -type f | wc -l)
    echo "fuzz $t: ${seconds} s, $runs runs, $cov, corpus $corpus: nothing found"
  else
    echo "fuzz $t: FOUND a failure; see $log and build-fuzz/findings/$t-*" >&2
    tail -40 "$log" >&2
    status=1
  fi
  rm -rf "$scratch"
done
exit $status
