#!/usr/bin/env bash
# Runs every benchmark of bench/ and writes bench/RESULTS.md and bench/plots/.
#
#   bench/run.sh           the full run (about 8 minutes)
#   bench/run.sh --smoke   each server and baseline for a second: proves the
#                          script works (CI); its report is written to a scratch folder, checked, removed
#
# Servers run on CPU 0 and load generators on CPU 1 (taskset): unpinned runs
# on a 2-core machine are bimodal. Every server that is compared is started at
# once and measured back to back for each shape, so ratios come from the same
# minutes of the same machine. Databases are throw-away servers of
# integration/services.sh, started and stopped here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
if [ "$SMOKE" = 1 ]; then
  WARMUP=0.2 DURATION=1 CONCURRENCY="16" READ_SHAPES="1x10 100x50" WRITE_CONC="16" KEY_SPACE=500
  OUT=$(mktemp -d)
else
  WARMUP=1 DURATION=3 CONCURRENCY="1 16 64" READ_SHAPES="1x10 1x50 10x50 100x50" WRITE_CONC="1 16"
  KEY_SPACE=10000 OUT=$ROOT/bench
fi
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
DB_WORKERS=${DB_WORKERS:-2} # a worker waits for its database: two per CPU served best here
WORK=$(mktemp -d)
chmod 755 "$WORK"
RESULTS=$WORK/results.jsonl
: > "$RESULTS"
PIDS=()

log() { printf '[bench] %s\n' "$*" >&2; }

# only PID...: every server of ours but these is paused (SIGSTOP), so that
# idle servers on CPU 0 (gRPC timers, Python's event loop) do not steal from
# the one being measured.
only() {
  local q
  for q in "${PIDS[@]}"; do kill -STOP "$q" 2>/dev/null || true; done
  for q in "$@"; do kill -CONT "$q" 2>/dev/null || true; done
}

cleanup() {
  local q
  for q in "${PIDS[@]}"; do kill -CONT "$q" 2>/dev/null || true; kill "$q" 2>/dev/null || true; done
  wait 2>/dev/null || true
  SVC_DIR=$WORK/services bash integration/services.sh stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log "build"
bash scripts/deps.sh --test >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLARDER_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
BENCH=$ROOT/build/larder-bench

log "databases"
export SVC_DIR=$WORK/services SERVICES="postgres mariadb" PG_PORT=25432 MYSQL_PORT=23306
bash integration/services.sh start >/dev/null
# shellcheck disable=SC1091
source "$SVC_DIR/env"

port=26600 # the next free port is ++port (not in a subshell, so the count holds)
# wait_port PORT PID: until PID (still alive) listens on PORT.
wait_port() {
  for _ in $(seq 200); do
    kill -0 "$2" 2>/dev/null || { log "the server for port $1 exited"; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  log "nothing listens on $1"; exit 1
}

# start_larder NAME STORE_YAML WORKERS: a larder on CPU 0; sets LARDER_<NAME>_{PORT,PID}.
start_larder() {
  local name=$1 store=$2 workers=$3 p
  p=$((++port))
  mkdir -p "$WORK/$name"
  # admin_rpcs: --preload creates its views with Update (off by default since issue 10).
  printf 'project: bench\n%s\nlarder:\n  listen: 127.0.0.1:%s\n  workers: %s\n  admin_rpcs: true\n  max_message_bytes: 16777216\n' \
    "$store" "$p" "$workers" > "$WORK/$name/feature_store.yaml"
  taskset -c "$SERVER_CPU" build/larder serve -c "$WORK/$name/feature_store.yaml" 2> "$WORK/$name/larder.log" &
  PIDS+=($!)
  eval "LARDER_${name}_PORT=$p LARDER_${name}_PID=$!"
  wait_port "$p" "$!"
}

# bench LABEL EXTRA... : one larder-bench run on CPU 1, its JSON line kept with LABEL.
bench() {
  local label=$1; shift
  local out
  # Exit status 3 means some calls failed: they are counted in the JSON line, not fatal here.
  out=$(taskset -c "$LOAD_CPU" "$BENCH" --label "$label" --warmup "$WARMUP" --duration "$DURATION" \
    --key-space "$KEY_SPACE" "$@") || [ $? = 3 ]
  echo "$out" | head -n 1 >&2
  echo "$out" | tail -n 1 >> "$RESULTS"
}

# settle: wait (at most 20 s) until the machine is idle, so that a database's
# background work after a heavy run (checkpoints, page flushing, purge) does
# not land in the next measurement.
settle() {
  local t=40 a b
  while [ "$t" -gt 0 ]; do
    a=$(awk '/^cpu /{print $5+$6, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    sleep 0.5
    b=$(awk '/^cpu /{print $5+$6, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," "); exit !((y[1]-x[1]) >= 0.95*(y[2]-x[2]))}' && return 0
    t=$((t - 1))
  done
}

# Peak resident memory of a process while a command runs: VmRSS and RssAnon, in KiB.
rss_during() {
  local pid=$1; shift
  local max_rss=0 max_anon=0 r a
  "$@" &
  local job=$!
  while kill -0 "$job" 2>/dev/null; do
    r=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    a=$(awk '/^RssAnon/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${r:-0}" -gt "$max_rss" ] && max_rss=$r
    [ "${a:-0}" -gt "$max_anon" ] && max_anon=$a
    sleep 0.2
  done
  wait "$job"
  echo "$max_rss $max_anon"
}

log "larder on sqlite, postgres and mysql"
start_larder sqlite "online_store:
  type: sqlite
  path: online.db" 0
start_larder postgres "online_store:
  type: postgres
  host: 127.0.0.1
  port: $TEST_PG_PORT
  database: $TEST_PG_DB
  user: $TEST_PG_USER
  password: \${TEST_PG_PASSWORD}
  sslmode: disable" "$DB_WORKERS"
start_larder mysql "online_store:
  type: mysql
  host: 127.0.0.1
  port: $TEST_MYSQL_PORT
  database: $TEST_MYSQL_DB
  user: $TEST_MYSQL_USER
  password: \${TEST_MYSQL_PASSWORD}" "$DB_WORKERS"

log "preload: $KEY_SPACE entities with 10 and 50 features in every store"
for b in sqlite postgres mysql; do
  eval "p=\$LARDER_${b}_PORT"
  for f in 10 50; do
    "$BENCH" --target "127.0.0.1:$p" --view "f$f" --features "$f" --key-space "$KEY_SPACE" --preload --duration 0
  done
  "$BENCH" --target "127.0.0.1:$p" --view w10 --features 10 --key-space 10 --preload --duration 0
done

log "baselines: the echo ceiling (one per shape), the Python peer, h2load frames"
mkdir -p "$WORK/stubs"
protoc -Iprotos --python_out="$WORK/stubs" --grpc_out="$WORK/stubs" \
  --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin \
  feast/types/Value.proto feast/types/EntityKey.proto larder/v1/online_store.proto
for shape in $READ_SHAPES write; do
  if [ "$shape" = write ]; then args=(--method write --view w10 --features 10 --rows 100)
  else args=(--view "f${shape#*x}" --features "${shape#*x}" --keys "${shape%x*}"); fi
  "$BENCH" --target "127.0.0.1:$LARDER_sqlite_PORT" "${args[@]}" --key-space "$KEY_SPACE" --duration 0 \
    --dump-reply "$WORK/reply_$shape.bin" --dump-request "$WORK/request_$shape.grpc"
  p=$((++port))
  taskset -c "$SERVER_CPU" build/larder-echo --listen "127.0.0.1:$p" --reply "$WORK/reply_$shape.bin" 2>/dev/null &
  PIDS+=($!)
  eval "ECHO_${shape}_PORT=$p ECHO_${shape}_PID=$!"
  wait_port "$p" "$!"
done
PY_PORT=$((++port))
taskset -c "$SERVER_CPU" /usr/bin/python3 bench/py_peer.py --db "$WORK/sqlite/online.db" --project bench \
  --listen "127.0.0.1:$PY_PORT" --stubs "$WORK/stubs" 2>/dev/null &
PY_PID=$!
PIDS+=($PY_PID)
wait_port "$PY_PORT" "$PY_PID"

MEM=$WORK/memory.txt
: > "$MEM"
settle
# SQLite, its ceiling and its Python peer first, before the databases have been loaded.
for shape in $READ_SHAPES; do
  keys=${shape%x*} feats=${shape#*x}
  read_args=(--view "f$feats" --features "$feats" --keys "$keys")
  eval "echo_port=\$ECHO_${shape}_PORT echo_pid=\$ECHO_${shape}_PID"
  for c in $CONCURRENCY; do
    log "read $shape, concurrency $c: larder on sqlite, echo, python"
    only "$LARDER_sqlite_PID"
    if [ "$c" = 64 ]; then
      read -r rss anon < <(rss_during "$LARDER_sqlite_PID" bench larder-sqlite --target "127.0.0.1:$LARDER_sqlite_PORT" \
        "${read_args[@]}" --concurrency "$c")
      echo "sqlite $shape $rss $anon" >> "$MEM"
    else
      bench larder-sqlite --target "127.0.0.1:$LARDER_sqlite_PORT" "${read_args[@]}" --concurrency "$c"
    fi
    only "$echo_pid"
    bench echo --target "127.0.0.1:$echo_port" "${read_args[@]}" --concurrency "$c"
    # The ratio of the first target: two more alternating pairs, the median counts.
    if [ "$shape" = 1x10 ] && [ "$c" != 1 ] && [ "$SMOKE" = 0 ]; then
      for _ in 1 2; do
        only "$LARDER_sqlite_PID"
        bench larder-sqlite --target "127.0.0.1:$LARDER_sqlite_PORT" "${read_args[@]}" --concurrency "$c"
        only "$echo_pid"
        bench echo --target "127.0.0.1:$echo_port" "${read_args[@]}" --concurrency "$c"
      done
    fi
    only "$PY_PID"
    bench python-peer --target "127.0.0.1:$PY_PORT" "${read_args[@]}" --concurrency "$c"
  done
done

# larder on each database, then the plain client on it, each after the machine settled.
for shape in $READ_SHAPES; do
  keys=${shape%x*} feats=${shape#*x}
  read_args=(--view "f$feats" --features "$feats" --keys "$keys")
  for c in $CONCURRENCY; do
    log "read $shape, concurrency $c: larder on postgres and mysql, plain clients"
    for db in postgres mysql; do
      eval "p=\$LARDER_${db}_PORT pid=\$LARDER_${db}_PID"
      only "$pid"
      settle
      if [ "$c" = 64 ]; then
        read -r rss anon < <(rss_during "$pid" bench "larder-$db" --target "127.0.0.1:$p" "${read_args[@]}" --concurrency "$c")
        echo "$db $shape $rss $anon" >> "$MEM"
      else
        bench "larder-$db" --target "127.0.0.1:$p" "${read_args[@]}" --concurrency "$c"
      fi
      only
      settle
      out=$(taskset -c "$LOAD_CPU" build/db-ceiling --backend "$db" --label "$db-c" --table "bench_f$feats" \
        --keys "$keys" --features "$feats" --key-space "$KEY_SPACE" --concurrency "$c" --warmup "$WARMUP" \
        --duration "$DURATION")
      echo "$out" | head -n 1 >&2
      echo "$out" | tail -n 1 >> "$RESULTS"
    done
  done
done

for c in $WRITE_CONC; do
  log "write 100x10, concurrency $c"
  for b in sqlite postgres mysql; do
    eval "p=\$LARDER_${b}_PORT pid=\$LARDER_${b}_PID"
    only "$pid"
    settle
    bench "larder-$b" --target "127.0.0.1:$p" --method write --view w10 --features 10 --rows 100 --concurrency "$c"
  done
  only "$ECHO_write_PID"
  bench echo --target "127.0.0.1:$ECHO_write_PORT" --method write --view w10 --features 10 --rows 100 --concurrency "$c"
done

log "h2load, a second client, on larder/sqlite and the echo ceiling"
H2=$WORK/h2load.txt
: > "$H2"
for shape in $READ_SHAPES; do
  [ "$shape" = 1x10 ] || [ "$shape" = 100x50 ] || continue
  eval "echo_port=\$ECHO_${shape}_PORT echo_pid=\$ECHO_${shape}_PID"
  for target in "larder-sqlite:$LARDER_sqlite_PORT:$LARDER_sqlite_PID" "echo:$echo_port:$echo_pid"; do
    only "${target##*:}"
    target=${target%:*}
    n=$([ "$SMOKE" = 1 ] && echo 2000 || echo 200000)
    [ "$shape" = 100x50 ] && [ "$SMOKE" = 0 ] && n=20000
    out=$(taskset -c "$LOAD_CPU" h2load -n "$n" -c 4 -m 16 -d "$WORK/request_$shape.grpc" \
      -H 'content-type: application/grpc' -H 'te: trailers' \
      "http://127.0.0.1:${target#*:}/larder.v1.OnlineStore/OnlineRead" 2>&1)
    rps=$(echo "$out" | awk '/^finished in/{print $4}')
    mean=$(echo "$out" | awk '/^time for request:/{print $6}')
    echo "${target%%:*} $shape 64 $rps $mean" >> "$H2"
    log "h2load ${target%%:*} $shape: $rps req/s, mean $mean"
  done
done
only "$LARDER_sqlite_PID"
# h2load counts HTTP answers: check once that gRPC said OK.
nghttp -v -d "$WORK/request_1x10.grpc" -H 'content-type: application/grpc' -H 'te: trailers' \
  "http://127.0.0.1:$LARDER_sqlite_PORT/larder.v1.OnlineStore/OnlineRead" 2>&1 | grep -aq 'grpc-status: 0' ||
  { log "h2load frames were not answered with grpc-status 0"; exit 1; }

log "report"
if [ "$SMOKE" = 0 ]; then
  # The raw measurements, so that the report can be written again from them.
  mkdir -p "$OUT/plots/data"
  cp "$RESULTS" "$OUT/plots/data/results.jsonl"
  cp "$MEM" "$OUT/plots/data/memory.txt"
  cp "$H2" "$OUT/plots/data/h2load.txt"
  printf '{"duration": "%s", "warmup": "%s", "db_workers": "%s"}\n' "$DURATION" "$WARMUP" "$DB_WORKERS" \
    > "$OUT/plots/data/params.json"
fi
/usr/bin/python3 bench/report.py --results "$RESULTS" --memory "$MEM" --h2load "$H2" --out "$OUT" \
  --smoke "$SMOKE" --duration "$DURATION" --warmup "$WARMUP" --db-workers "$DB_WORKERS"
if [ "$SMOKE" = 1 ]; then
  # The smoke run only proves the report can be written: check it, then discard it.
  [ -s "$OUT/RESULTS.md" ] && ls "$OUT"/plots/qps_*.png >/dev/null ||
    { log "the report or its plots are missing"; exit 1; }
  rm -rf "$OUT"
  log "done (smoke): the report and plots were written, then removed"
else
  log "done: $OUT/RESULTS.md"
fi
