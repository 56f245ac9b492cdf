#!/usr/bin/env bash
# Runs every benchmark of bench/ and writes bench/RESULTS.md and bench/plots/.
#
#   bench/run.sh           the full run (about 17 minutes)
#   bench/run.sh --smoke   each server and baseline for a second: proves the
#                          script works (CI); its report is written to a scratch folder, checked, removed
#                          (kept with SMOKE_KEEP=1)
#
# Servers run on CPU 0 and load generators on CPU 1 (taskset): unpinned runs
# on a 2-core machine are bimodal. Every server that is compared is started at
# once and measured back to back for each shape, so ratios come from the same
# minutes of the same machine. Databases are throw-away servers of
# integration/services.sh, started and stopped here (ports BENCH_PG_PORT,
# BENCH_MYSQL_PORT, default 27432 and 27306, or the next free ones).
#
# On PostgreSQL and MariaDB, larder's CPU and the database's (from /proc) are
# measured per read beside reads per second, against the plain C client naive
# (a round trip per read) and pipelined (build/db-ceiling). Then a larder of
# its own reaches each database through build/delay-proxy, which delays every
# chunk by DELAY_MS (default 2.5) each way and counts round trips:
# GetOnlineFeatures over 1, 2, 4 and 8 views at concurrency 1, an OnlineRead
# of 100 keys and an OnlineWriteBatch of 100 rows.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
if [ "$SMOKE" = 1 ]; then
  WARMUP=0.2 DURATION=1 CONCURRENCY="16" READ_SHAPES="1x10 100x50" WRITE_CONC="16" KEY_SPACE=500
  GOF_VIEWS="1 8" GOF_DURATION=0.5 OUT=$(mktemp -d)
else
  WARMUP=1 DURATION=3 CONCURRENCY="1 16 64" READ_SHAPES="1x10 1x50 10x50 100x50" WRITE_CONC="1 16"
  KEY_SPACE=10000 GOF_VIEWS="1 2 4 8" GOF_DURATION=3 OUT=$ROOT/bench
fi
DELAY_MS=${DELAY_MS:-2.5} # each way: a database in another zone
GOF_KEYS=1000             # entities of the views g0..g7
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
DB_WORKERS=${DB_WORKERS:-2} # a worker waits for its database: two per CPU served best here
WORK=$(mktemp -d)
chmod 755 "$WORK"
RESULTS=$WORK/results.jsonl
PROXY_RESULTS=$WORK/proxy.jsonl # beside results.jsonl: report.py finds it there
: > "$RESULTS"
: > "$PROXY_RESULTS"
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
trap 'echo "[bench] ERR at line $LINENO: $BASH_COMMAND" >&2' ERR

log "build"
bash scripts/deps.sh --test >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLARDER_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
BENCH=$ROOT/build/larder-bench

busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_from() { # PORT: it, or the next port nothing listens on
  local p=$1
  while busy "$p"; do p=$((p + 1)); done
  echo "$p"
}

log "databases"
export SVC_DIR=$WORK/services SERVICES="postgres mariadb"
PG_PORT=$(free_from "${BENCH_PG_PORT:-27432}")
MYSQL_PORT=$(free_from "${BENCH_MYSQL_PORT:-27306}")
export PG_PORT MYSQL_PORT
bash integration/services.sh start >/dev/null
# shellcheck disable=SC1091
source "$SVC_DIR/env"
# The database's processes, whose CPU time is read from /proc (PostgreSQL's postmaster and its backends).
PG_PID=$(head -n 1 "$SVC_DIR/postgres/data/postmaster.pid")
MY_PID=$(cat "$SVC_DIR/mariadb/mysqld.pid")

port=27600 # next_port sets the next free one (not in a subshell, so the count holds)
next_port() {
  port=$((port + 1))
  while busy "$port"; do port=$((port + 1)); done
}
# wait_port PORT PID: until PID (still alive) listens on PORT.
wait_port() {
  for _ in $(seq 200); do
    kill -0 "$2" 2>/dev/null || { log "the server for port $1 exited"; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  log "nothing listens on $1"; exit 1
}

# start_larder NAME STORE_YAML WORKERS [YAML]: a larder on CPU 0, with YAML's
# top-level keys too; sets LARDER_<NAME>_{PORT,PID}.
start_larder() {
  local name=$1 store=$2 workers=$3 extra=${4:-} p
  next_port
  p=$port
  mkdir -p "$WORK/$name"
  # admin_rpcs: --preload creates its views with Update (off by default since issue 10).
  printf 'project: bench\n%s\nlarder:\n  listen: 127.0.0.1:%s\n  workers: %s\n  admin_rpcs: true\n  max_message_bytes: 16777216\n' \
    "$store" "$p" "$workers" > "$WORK/$name/feature_store.yaml"
  [ -z "$extra" ] || echo "$extra" >> "$WORK/$name/feature_store.yaml"
  taskset -c "$SERVER_CPU" build/larder serve -c "$WORK/$name/feature_store.yaml" 2> "$WORK/$name/larder.log" &
  PIDS+=($!)
  eval "LARDER_${name}_PORT=$p LARDER_${name}_PID=$!"
  wait_port "$p" "$!"
}

# first_last TEXT: its first line (the summary) to standard output, its last (the JSON line) to
# descriptor 3. Not `echo | head`: under pipefail, head's early exit can kill echo with SIGPIPE.
first_last() {
  printf '%s\n' "${1%%$'\n'*}"
  printf '%s\n' "${1##*$'\n'}" >&3
}

# bench LABEL EXTRA... : one larder-bench run on CPU 1, its JSON line kept with LABEL.
bench() {
  local label=$1; shift
  local out
  # Exit status 3 means some calls failed: they are counted in the JSON line, not fatal here.
  out=$(taskset -c "$LOAD_CPU" "$BENCH" --label "$label" --warmup "$WARMUP" --duration "$DURATION" \
    --key-space "$KEY_SPACE" "$@") || [ $? = 3 ]
  first_last "$out" >&2 3>> "$RESULTS"
}

# db_ticks: CPU ticks so far of the databases (mariadbd; PostgreSQL's postmaster and its children).
db_ticks() {
  local p t=0 v
  for p in "$MY_PID" "$PG_PID" $(pgrep -P "$PG_PID" 2>/dev/null || true); do
    v=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# settle: wait (at most 20 s; 4 s in the smoke run) until the databases are idle (under 2% of a
# CPU for half a second), so that their background work after a heavy run (checkpoints, page
# flushing, purge) does not land in the next measurement. The databases' own CPU, not the
# machine's: the machine is shared, and others' builds would keep it busy for good.
settle() {
  local t=$([ "$SMOKE" = 1 ] && echo 8 || echo 40) a b
  while [ "$t" -gt 0 ]; do
    a=$(db_ticks)
    sleep 0.5
    b=$(db_ticks)
    [ $((b - a)) -le 1 ] && return 0
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
  next_port
  p=$port
  taskset -c "$SERVER_CPU" build/larder-echo --listen "127.0.0.1:$p" --reply "$WORK/reply_$shape.bin" 2>/dev/null &
  PIDS+=($!)
  eval "ECHO_${shape}_PORT=$p ECHO_${shape}_PID=$!"
  wait_port "$p" "$!"
done
next_port
PY_PORT=$port
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

# plain LABEL DB EXTRA...: one db-ceiling run on CPU 1, with the database's CPU per read.
plain() {
  local label=$1 db=$2 out dbpid
  shift 2
  dbpid=$([ "$db" = postgres ] && echo "$PG_PID" || echo "$MY_PID")
  out=$(taskset -c "$LOAD_CPU" build/db-ceiling --backend "$db" --label "$label" --key-space "$KEY_SPACE" \
    --warmup "$WARMUP" --duration "$DURATION" --db-pid "$dbpid" "$@")
  first_last "$out" >&2 3>> "$RESULTS"
}

# larder on each database, then the plain client on it (naive, then pipelined on as many
# connections as larder has workers), each after the machine settled. larder's CPU and the
# database's are read from /proc over the measured seconds of each run.
for shape in $READ_SHAPES; do
  keys=${shape%x*} feats=${shape#*x}
  read_args=(--view "f$feats" --features "$feats" --keys "$keys")
  for c in $CONCURRENCY; do
    # The server CPU targets' cells are measured three times, alternating, and report.py takes the
    # median of each (one run of a busy two-core machine can be far off); memory and the
    # statement-per-key client once.
    rounds=1
    if [ "$SMOKE" = 0 ] && [ "$shape" != 1x50 ] && [ "$c" -ge 16 ]; then rounds=3; fi
    for round in $(seq "$rounds"); do
      log "read $shape, concurrency $c: larder on postgres and mysql, plain clients (round $round of $rounds)"
      for db in postgres mysql; do
        eval "p=\$LARDER_${db}_PORT pid=\$LARDER_${db}_PID"
        dbpid=$([ "$db" = postgres ] && echo "$PG_PID" || echo "$MY_PID")
        cpu=(--cpu-pid "larder=$pid" --cpu-pid "db=$dbpid")
        only "$pid"
        settle
        if [ "$c" = 64 ] && [ "$round" = 1 ]; then
          read -r rss anon < <(rss_during "$pid" bench "larder-$db" --target "127.0.0.1:$p" "${read_args[@]}" \
            --concurrency "$c" "${cpu[@]}")
          echo "$db $shape $rss $anon" >> "$MEM"
        else
          bench "larder-$db" --target "127.0.0.1:$p" "${read_args[@]}" --concurrency "$c" "${cpu[@]}"
        fi
        only
        table=(--table "bench_f$feats" --keys "$keys" --features "$feats" --concurrency "$c")
        settle
        plain "$db-c" "$db" "${table[@]}"
        if [ "$c" -gt "$DB_WORKERS" ]; then
          settle
          plain "$db-c-pipe" "$db" "${table[@]}" --connections "$DB_WORKERS"
          # A statement per key, as Feast's MySQL store reads (several keys, the full run only).
          if [ "$keys" -gt 1 ] && [ "$SMOKE" = 0 ] && [ "$c" -ge 16 ] && [ "$round" = 1 ]; then
            settle
            plain "$db-c-key" "$db" "${table[@]}" --connections "$DB_WORKERS" --per-key
          fi
        fi
      done
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

# ---- a database DELAY_MS away -------------------------------------------------------------
# proxied DB KIND VIEWS LABEL ARGS...: a warm-up on every worker (statements prepared, the
# statement time limit set), the proxy's counters zeroed, one measured run at concurrency 1,
# and its record with the proxy's figures in proxy.jsonl.
proxied() {
  local db=$1 kind=$2 views=$3 label=$4 out stats
  shift 4
  eval "local p=\$LARDER_gof_${db}_PORT ctl=\$PROXY_${db}_CTL"
  # Six channels are six connections, which larder spreads over its threads.
  "$BENCH" --target "127.0.0.1:$p" --concurrency 6 --channels 6 --warmup 0 --duration 0.3 "$@" > /dev/null || [ $? = 3 ]
  /usr/bin/python3 bench/proxy_tool.py ctl --port "$ctl" reset > /dev/null
  out=$(taskset -c "$LOAD_CPU" "$BENCH" --target "127.0.0.1:$p" --concurrency 1 --warmup 0 \
    --duration "$GOF_DURATION" --label "$label" "$@") || [ $? = 3 ]
  stats=$(/usr/bin/python3 bench/proxy_tool.py ctl --port "$ctl" stats)
  printf '%s\n' "${out%%$'\n'*}" >&2
  /usr/bin/python3 bench/proxy_tool.py record --db "$db" --kind "$kind" --views "$views" \
    --bench "${out##*$'\n'}" --proxy "$stats" | tee -a "$PROXY_RESULTS" |
    /usr/bin/python3 -c 'import json, sys; r = json.loads(sys.stdin.read()); print("[bench]   %.2f round trips per call at the proxy" % r["round_trips_per_call"])' >&2
}

log "a database $DELAY_MS ms away: GetOnlineFeatures over $GOF_VIEWS views, OnlineRead, OnlineWriteBatch through delay-proxy"
protoc -Iprotos --python_out="$WORK/stubs" feast/core/Registry.proto
/usr/bin/python3 bench/proxy_tool.py registry --stubs "$WORK/stubs" --project bench --views 8 --out "$WORK/registry.db"
only "$LARDER_postgres_PID" "$LARDER_mysql_PID"
for db in postgres mysql; do
  eval "p=\$LARDER_${db}_PORT"
  for v in 0 1 2 3 4 5 6 7; do # through the undelayed larder: the same database and project
    "$BENCH" --target "127.0.0.1:$p" --view "g$v" --features 10 --key-space "$GOF_KEYS" --preload --duration 0
  done
done
for db in postgres mysql; do
  if [ "$db" = postgres ]; then dbport=$TEST_PG_PORT proto=pg; else dbport=$TEST_MYSQL_PORT proto=mysql; fi
  taskset -c "$LOAD_CPU" build/delay-proxy --listen 127.0.0.1:0 --target "127.0.0.1:$dbport" --delay-ms "$DELAY_MS" \
    --control 127.0.0.1:0 --protocol "$proto" > "$WORK/proxy-$db.out" 2> "$WORK/proxy-$db.log" &
  proxy_pid=$!
  PIDS+=("$proxy_pid")
  for _ in $(seq 100); do [ -s "$WORK/proxy-$db.out" ] && break; sleep 0.05; done
  read -r _ listen _ control < "$WORK/proxy-$db.out"
  eval "PROXY_${db}_CTL=${control##*:}"
  if [ "$db" = postgres ]; then
    store="online_store:
  type: postgres
  host: 127.0.0.1
  port: ${listen##*:}
  database: $TEST_PG_DB
  user: $TEST_PG_USER
  password: \${TEST_PG_PASSWORD}
  sslmode: disable"
  else
    store="online_store:
  type: mysql
  host: 127.0.0.1
  port: ${listen##*:}
  database: $TEST_MYSQL_DB
  user: $TEST_MYSQL_USER
  password: \${TEST_MYSQL_PASSWORD}"
  fi
  start_larder "gof_$db" "$store" "$DB_WORKERS" "registry:
  path: $WORK/registry.db
  cache_ttl_seconds: 0"
  eval "gof_pid=\$LARDER_gof_${db}_PID"
  only "$gof_pid" "$proxy_pid"
  for n in $GOF_VIEWS; do
    views=$(seq -s, -f 'g%.0f' 0 $((n - 1)))
    proxied "$db" gof "$n" "gof-$db-$n" --method gof --view "$views" --features 10 --keys 1 --key-space "$GOF_KEYS"
  done
  proxied "$db" read 1 "read-$db" --view g0 --features 10 --keys 100 --key-space "$GOF_KEYS"
  proxied "$db" write 1 "write-$db" --method write --view w10 --features 10 --rows 100 --key-space "$GOF_KEYS"
  kill -CONT "$gof_pid" "$proxy_pid" 2>/dev/null || true
  kill "$gof_pid" "$proxy_pid" 2>/dev/null || true
  wait "$gof_pid" "$proxy_pid" 2>/dev/null || true
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
  cp "$PROXY_RESULTS" "$OUT/plots/data/proxy.jsonl"
  printf '{"duration": "%s", "warmup": "%s", "db_workers": "%s", "delay_ms": "%s", "gof_duration": "%s"}\n' \
    "$DURATION" "$WARMUP" "$DB_WORKERS" "$DELAY_MS" "$GOF_DURATION" > "$OUT/plots/data/params.json"
fi
# The full run reports from plots/data, where bench/http.sh's record (http.jsonl) is kept too.
DATA=$([ "$SMOKE" = 0 ] && echo "$OUT/plots/data" || echo "$WORK")
/usr/bin/python3 bench/report.py --results "$DATA/results.jsonl" --memory "$DATA/memory.txt" --h2load "$DATA/h2load.txt" --out "$OUT" \
  --smoke "$SMOKE" --duration "$DURATION" --warmup "$WARMUP" --db-workers "$DB_WORKERS"
if [ "$SMOKE" = 1 ]; then
  # The smoke run only proves the report can be written: check it, then discard it.
  [ -s "$OUT/RESULTS.md" ] && ls "$OUT"/plots/qps_*.png "$OUT"/plots/gof_views.png >/dev/null ||
    { log "the report or its plots are missing"; exit 1; }
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then log "done (smoke): kept in $OUT"; exit 0; fi
  rm -rf "$OUT"
  log "done (smoke): the report and plots were written, then removed"
else
  log "done: $OUT/RESULTS.md"
fi
