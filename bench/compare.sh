#!/usr/bin/env bash
# Before and after: two larder binaries on SQLite, measured in turns.
#
#   bench/compare.sh OLD_LARDER NEW_LARDER [ROUNDS]
#
# Build the older one from its commit in a directory of its own, e.g.
#   git worktree add /tmp/old <commit> && cmake -S /tmp/old -B /tmp/old/build \
#     -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build /tmp/old/build -j2
#
# Each round runs OLD and NEW, in turn first (a round's second server can inherit
# the first's write-back of its preload), each on a fresh database preloaded with
# the same keys, and reads 1x10, 10x50 and 100x50 at concurrency 16 and 64 with
# build/larder-bench. The server runs on CPU SERVER_CPU (default 0) with one
# worker, the load generator on LOAD_CPU (default 1). Prints each round's QPS,
# then the median of the rounds for each binary and their ratio; SHAPES="100x50"
# measures one shape. Rounds differ by a few per cent on a quiet machine: run it
# with nothing else running, and read a ratio within 0.95-1.05 as noise.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ $# -ge 2 ] || { sed -n '2,17p' "$0"; exit 2; }
OLD=$(realpath "$1") NEW=$(realpath "$2") ROUNDS=${3:-4}
BENCH=$ROOT/build/larder-bench
SERVER_CPU=${SERVER_CPU:-0} LOAD_CPU=${LOAD_CPU:-1} DURATION=${DURATION:-4}
PORT=${PORT:-17790}
for b in "$OLD" "$NEW" "$BENCH"; do [ -x "$b" ] || { echo "compare.sh: $b: not executable" >&2; exit 2; }; done
WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
SHAPES=${SHAPES:-"1x10 10x50 100x50"}
CONCS="16 64"

# measure LABEL BIN: one round of every shape, appended to $WORK/LABEL.
measure() {
  local label=$1 bin=$2 dir=$WORK/run
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'project: bench\nonline_store:\n  type: sqlite\n  path: online.db\nlarder:\n  listen: 127.0.0.1:%s\n  workers: 1\n  admin_rpcs: true\n  max_message_bytes: 16777216\n' \
    "$PORT" > "$dir/feature_store.yaml"
  (cd "$dir" && exec taskset -c "$SERVER_CPU" "$bin" serve -c feature_store.yaml 2> larder.log) &
  PID=$!
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  for f in 10 50; do
    "$BENCH" --target "127.0.0.1:$PORT" --view "f$f" --features "$f" --key-space 10000 --preload \
      --duration 0 > /dev/null
  done
  local s k f c qps
  for s in $SHAPES; do
    k=${s%x*} f=${s#*x}
    for c in $CONCS; do
      qps=$(taskset -c "$LOAD_CPU" "$BENCH" --target "127.0.0.1:$PORT" --view "f$f" --features "$f" \
        --keys "$k" --key-space 10000 --concurrency "$c" --warmup 0.5 --duration "$DURATION" |
        sed -n '1s/.*: \([0-9]*\) QPS.*/\1/p')
      echo "$s c$c $qps" >> "$WORK/$label"
      printf '  %-5s %-7s c%-3s %8s QPS\n' "$label" "$s" "$c" "$qps"
    done
  done
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  sleep 2
}

for r in $(seq "$ROUNDS"); do
  echo "round $r"
  if [ $((r % 2)) = 1 ]; then
    measure old "$OLD"
    measure new "$NEW"
  else
    measure new "$NEW"
    measure old "$OLD"
  fi
done
# median LABEL KEY: the median QPS of KEY ("1x10 c16") over the rounds (the mean of the middle two).
median() {
  awk -v k="$2" '$1" "$2==k {print $3}' "$WORK/$1" | sort -n |
    awk '{a[NR]=$1} END {m=int((NR+1)/2); print (NR % 2) ? a[m] : int((a[m]+a[m+1])/2)}'
}

echo
echo "median QPS of $ROUNDS rounds (old: $1, new: $2)"
printf '%-7s %-4s %9s %9s %7s\n' shape conc old new new/old
for s in $SHAPES; do
  for c in $CONCS; do
    o=$(median old "$s c$c")
    n=$(median new "$s c$c")
    printf '%-7s c%-3s %9s %9s %7s\n' "$s" "$c" "$o" "$n" "$(awk -v o="$o" -v n="$n" 'BEGIN {printf "%.2f", o ? n / o : 0}')"
  done
done
