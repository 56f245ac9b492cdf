#!/usr/bin/env bash
# Soak: larder on SQLite under a steady mixed load (reads of one key and ten
# features at concurrency 16, writes of ten rows at concurrency 2, over a
# fixed key space so the data stops growing) for MINUTES, recording resident
# memory and p99 latency every 10 s.
#
#   bench/soak.sh [MINUTES]   the record run (default 30): bench/plots/data/soak.tsv,
#                             bench/plots/soak.png and the Soak section of bench/RESULTS.md
#   bench/soak.sh --smoke     three 2-second intervals in a scratch folder (CI): proves the script
#
# larder runs on CPU 0, the load generators on CPU 1 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SMOKE=0 MINUTES=${1:-30} INTERVAL=10 OUT=$ROOT/bench
if [ "${1:-}" = "--smoke" ]; then SMOKE=1 MINUTES=0 INTERVAL=2 OUT=$(mktemp -d); fi
ROUNDS=$(( SMOKE ? 3 : MINUTES * 60 / INTERVAL ))
KEY_SPACE=10000
WORK=$(mktemp -d)
PID=

log() { printf '[soak] %s\n' "$*" >&2; }
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
  [ "$SMOKE" = 1 ] && rm -rf "$OUT"
  return 0
}
trap cleanup EXIT

log "build"
bash scripts/deps.sh --test >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLARDER_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
BENCH=$ROOT/build/larder-bench

port=26700
# admin_rpcs: --preload creates its views with Update (off by default since issue 10).
printf 'project: soak\nonline_store:\n  type: sqlite\n  path: online.db\nlarder:\n  listen: 127.0.0.1:%s\n  admin_rpcs: true\n' \
  "$port" > "$WORK/feature_store.yaml"
taskset -c 0 build/larder serve -c "$WORK/feature_store.yaml" 2> "$WORK/larder.log" &
PID=$!
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
"$BENCH" --target "127.0.0.1:$port" --view f10 --features 10 --key-space "$KEY_SPACE" --preload --duration 0
"$BENCH" --target "127.0.0.1:$port" --view w10 --features 10 --key-space "$KEY_SPACE" --preload --duration 0

mkdir -p "$OUT/plots/data"
TSV=$OUT/plots/data/soak.tsv
printf '# seconds\tVmRSS_KiB\tRssAnon_KiB\tread_qps\tread_p99_us\twrite_qps\twrite_p99_us\terrors\n' > "$TSV"
log "$ROUNDS intervals of $INTERVAL s"
for i in $(seq "$ROUNDS"); do
  taskset -c 1 "$BENCH" --target "127.0.0.1:$port" --view f10 --features 10 --keys 1 --key-space "$KEY_SPACE" \
    --concurrency 16 --warmup 0 --duration "$INTERVAL" --label read > "$WORK/read.out" || [ $? = 3 ] &
  r=$!
  taskset -c 1 "$BENCH" --target "127.0.0.1:$port" --method write --view w10 --features 10 --rows 10 \
    --key-space "$KEY_SPACE" --concurrency 2 --warmup 0 --duration "$INTERVAL" --label write > "$WORK/write.out" || [ $? = 3 ] &
  w=$!
  wait "$r" "$w"
  kill -0 "$PID" || { log "larder exited:"; cat "$WORK/larder.log" >&2; exit 1; }
  rss=$(awk '/^VmRSS/{print $2}' "/proc/$PID/status")
  anon=$(awk '/^RssAnon/{print $2}' "/proc/$PID/status")
  /usr/bin/python3 - "$((i * INTERVAL))" "$rss" "$anon" "$WORK/read.out" "$WORK/write.out" >> "$TSV" <<'PY'
import json, sys
t, rss, anon, rf, wf = sys.argv[1:]
r, w = (json.loads(open(f).read().strip().splitlines()[-1]) for f in (rf, wf))
errors = sum(r["errors"].values()) + sum(w["errors"].values())
print("%s\t%s\t%s\t%.0f\t%d\t%.0f\t%d\t%d" % (t, rss, anon, r["qps"], r["p99_us"], w["qps"], w["p99_us"], errors))
PY
  tail -n 1 "$TSV" | awk -F'\t' '{printf "[soak] %5d s: VmRSS %.1f MiB, reads %d/s p99 %d us, writes %d/s p99 %d us, errors %d\n", $1, $2/1024, $4, $5, $6, $7, $8}' >&2
done
kill "$PID"
wait "$PID" || { log "larder did not stop cleanly"; exit 1; }
PID=

gnuplot -e "set terminal png size 900,520 font ',10'; set output '$OUT/plots/soak.png';
  set title 'Soak: larder on SQLite under mixed load'; set xlabel 'minutes'; set ylabel 'MiB';
  set y2label 'p99 latency, ms'; set ytics nomirror; set y2tics; set yrange [0:*]; set y2range [0:*];
  set key outside bottom center horizontal; set grid;
  plot '$TSV' using (\$1/60):(\$2/1024) axes x1y1 with lines lw 2 title 'VmRSS',
       '' using (\$1/60):(\$3/1024) axes x1y1 with lines lw 2 title 'RssAnon',
       '' using (\$1/60):(\$5/1000) axes x1y2 with lines title 'read p99',
       '' using (\$1/60):(\$7/1000) axes x1y2 with lines title 'write p99'"
if [ "$SMOKE" = 1 ]; then
  [ "$(grep -vc '^#' "$TSV")" = 3 ] && [ -s "$OUT/plots/soak.png" ] || { log "the soak record is incomplete"; exit 1; }
  log "smoke run complete"
  exit 0
fi
D=$OUT/plots/data
/usr/bin/python3 bench/report.py --results "$D/results.jsonl" --memory "$D/memory.txt" --h2load "$D/h2load.txt" \
  --out "$OUT" --soak "$TSV"
log "bench/RESULTS.md written with the soak section"
