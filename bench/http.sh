#!/usr/bin/env bash
# Feast's feature-server HTTP API: larder's `http_listen` against the server a
# Feast user runs today (`feast serve`, rebuilt in bench/feast_http_baseline.py
# from Feast's own code on Debian's FastAPI and uvicorn), on one SQLite store,
# side by side in one run; and larder's gRPC GetOnlineFeatures on the same
# shape, for the server CPU one request costs over each transport.
#
#   bench/http.sh           the record run (about 10 minutes): bench/plots/data/http.jsonl,
#                           http_params.json and the HTTP section of bench/RESULTS.md
#   bench/http.sh --smoke   each server for a second (CI): proves the script and checks the
#                           answers; its report goes to a scratch folder and is removed
#
# Servers run on CPU 0, the load generators (wrk, build/larder-bench) on CPU 1
# (taskset); the server being measured runs alone, the others paused. Reads
# are measured in ROUNDS rounds, the servers alternating, and the report takes
# each one's run with the median requests/s. While
# larder has no HTTP listener yet (its configuration refuses `http_listen`, or
# nothing answers there), the script says "larder HTTP: not available" and
# still measures and reports the baseline and larder's gRPC.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
if [ "$SMOKE" = 1 ]; then
  WARMUP=0.5 DURATION=1 CONCURRENCY="16" KEY_SPACE=500 PUSH_CONC="1" ROUNDS=1 OUT=$(mktemp -d)
  BASELINES=${BASELINES:-"feast-serve"}
else
  WARMUP=2 DURATION=10 CONCURRENCY="16 64" KEY_SPACE=10000 PUSH_CONC="1 16" ROUNDS=3 OUT=$ROOT/bench
  BASELINES=${BASELINES:-"feast-serve feast-serve-nolog feast-gunicorn"}
fi
PUSH_ROWS=100
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PROJECT=bench
KNOWN_KEY=$((KEY_SPACE + 1000)) # outside the random keys: the check's own rows
WORK=$(mktemp -d)
chmod 755 "$WORK"
RESULTS=$WORK/http.jsonl
: > "$RESULTS"
PIDS=()

log() { printf '[http] %s\n' "$*" >&2; }

tree() { # PID: it and its children (gunicorn's worker)
  echo "$1"
  pgrep -P "$1" 2>/dev/null || true
}

# only PID...: every server of ours but these is paused (SIGSTOP), so that idle
# servers on CPU 0 do not take from the one being measured.
only() {
  local q
  for q in "${PIDS[@]}"; do kill -STOP $(tree "$q") 2>/dev/null || true; done
  for q in "$@"; do kill -CONT $(tree "$q") 2>/dev/null || true; done
}

stop_tree() { # PID: the process and its children (gunicorn's worker), continued first
  local p=$1 c
  for c in $(pgrep -P "$p" 2>/dev/null || true); do kill -CONT "$c" 2>/dev/null || true; done
  kill -CONT "$p" 2>/dev/null || true
  kill "$p" 2>/dev/null || true
}

cleanup() {
  local q
  for q in "${PIDS[@]}"; do stop_tree "$q"; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then log "kept: $WORK (logs, bodies, database)"; else rm -rf "$WORK"; fi
  [ "$SMOKE" = 1 ] && rm -rf "$OUT"
  return 0
}
trap cleanup EXIT

command -v wrk >/dev/null || { log "wrk is not installed (apt-get install wrk; bash scripts/deps.sh --test)"; exit 1; }

log "build"
bash scripts/deps.sh --test >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLARDER_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
BENCH=$ROOT/build/larder-bench

port=26800
wait_port() { # PORT PID
  for _ in $(seq 300); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
http_health() { # PORT: 0 when GET /health answers 200
  [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$1/health" 2>/dev/null)" = 200 ]
}

log "stubs, registry, request bodies"
mkdir -p "$WORK/stubs" "$WORK/larder"
protoc -Iprotos --python_out="$WORK/stubs" feast/types/Value.proto feast/types/EntityKey.proto \
  feast/core/Registry.proto feast/serving/ServingService.proto
TOOL=(/usr/bin/python3 bench/http_tool.py)
"${TOOL[@]}" registry --stubs "$WORK/stubs" --project "$PROJECT" --out "$WORK/larder/registry.db"
"${TOOL[@]}" bodies --out "$WORK" --key-space "$KEY_SPACE" --rows "$PUSH_ROWS"

# larder, with its HTTP listener when this build has one.
GRPC_PORT=$((++port)) HTTP_PORT=$((++port))
write_yaml() { # WITH_HTTP
  {
    printf 'project: %s\nregistry:\n  path: registry.db\n  cache_ttl_seconds: 0\n' "$PROJECT"
    printf 'online_store:\n  type: sqlite\n  path: online.db\nentity_key_serialization_version: 3\n'
    printf 'larder:\n  listen: 127.0.0.1:%s\n  admin_rpcs: true\n  max_message_bytes: 16777216\n' "$GRPC_PORT"
    if [ "$1" = 1 ]; then printf '  http_listen: 127.0.0.1:%s\n' "$HTTP_PORT"; fi
  } > "$WORK/larder/feature_store.yaml"
}
start_larder() {
  taskset -c "$SERVER_CPU" build/larder serve -c "$WORK/larder/feature_store.yaml" 2>> "$WORK/larder/larder.log" &
  LARDER_PID=$!
  wait_port "$GRPC_PORT" "$LARDER_PID"
}
LARDER_HTTP="not available"
write_yaml 1
if start_larder; then
  PIDS+=("$LARDER_PID")
  if wait_port "$HTTP_PORT" "$LARDER_PID" && http_health "$HTTP_PORT"; then LARDER_HTTP=available; fi
else
  wait "$LARDER_PID" 2>/dev/null || true
  log "larder refused http_listen: $(grep -m1 -i 'http_listen' "$WORK/larder/larder.log" || tail -n 1 "$WORK/larder/larder.log")"
  write_yaml 0
  start_larder || { log "larder did not start:"; cat "$WORK/larder/larder.log" >&2; exit 1; }
  PIDS+=("$LARDER_PID")
fi
log "larder HTTP: $LARDER_HTTP"

log "data: $KEY_SPACE entities of f10 (10 features), the push view p10, one known row"
"$BENCH" --target "127.0.0.1:$GRPC_PORT" --view f10 --features 10 --key-space "$KEY_SPACE" --preload --duration 0
"$BENCH" --target "127.0.0.1:$GRPC_PORT" --view p10 --features 10 --key-space 10 --preload --duration 0
"${TOOL[@]}" known-row --stubs "$WORK/stubs" --db "$WORK/larder/online.db" --project "$PROJECT" --key "$KNOWN_KEY"

# The baselines, on the same registry and data: each its own copy of the database file, because
# Feast's store shares one connection between concurrent pushes, which can leave a transaction
# open, and so SQLite's write lock held, in a server that is then paused.
declare -A BPORT BPID
for b in $BASELINES; do
  p=$((++port))
  /usr/bin/python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))' \
    "$WORK/larder/online.db" "$WORK/$b.db" # with what is still in larder's WAL
  args=(--registry "$WORK/larder/registry.db" --db "$WORK/$b.db" --project "$PROJECT"
    --stubs "$WORK/stubs" --port "$p")
  case $b in
    feast-serve) ;;
    feast-serve-nolog) args+=(--no-access-log) ;;
    feast-gunicorn) args+=(--gunicorn) ;;
  esac
  # The access log goes where `feast serve`'s goes, standard output: a file here.
  taskset -c "$SERVER_CPU" /usr/bin/python3 bench/feast_http_baseline.py "${args[@]}" \
    > "$WORK/$b.out" 2> "$WORK/$b.log" &
  BPID[$b]=$!
  PIDS+=("${BPID[$b]}")
  BPORT[$b]=$p
  if ! wait_port "$p" "${BPID[$b]}" || ! http_health "$p"; then
    log "baseline $b did not start:"; tail -n 20 "$WORK/$b.log" >&2; exit 1
  fi
done

log "answers"
only "${PIDS[@]}"
# feast-compat's replayable cases, where a copy is at hand: the baseline must give Feast's answers.
for v in tests/data/http_vectors.json ../shared/feast-compat/http_vectors.json; do
  if [ -f "$v" ]; then
    "${TOOL[@]}" vectors --stubs "$WORK/stubs" --vectors "$v" | tail -n 1 >&2 ||
      { log "the baseline does not give Feast's answers to $v:"; "${TOOL[@]}" vectors --stubs "$WORK/stubs" \
        --vectors "$v" >&2 || true; exit 1; }
    break
  fi
done
for b in $BASELINES; do
  "${TOOL[@]}" check --url "http://127.0.0.1:${BPORT[$b]}" --key "$KNOWN_KEY" ||
    { log "the baseline $b does not answer as HTTP.md says"; exit 1; }
done
LARDER_CHECK="not run"
if [ "$LARDER_HTTP" = available ]; then
  if "${TOOL[@]}" check --url "http://127.0.0.1:$HTTP_PORT" --key "$KNOWN_KEY"; then LARDER_CHECK=passed
  else LARDER_CHECK=failed; log "larder HTTP answers differ from HTTP.md (measured all the same)"; fi
fi

cpu() { "${TOOL[@]}" cpu "$1"; }

# wrk_run LABEL KIND C PID PORT BODIES PATH [ROWS]: warm-up, then the measured run with the server's CPU.
wrk_run() {
  local label=$1 kind=$2 c=$3 pid=$4 p=$5 bodies=$6 path=$7 rows=${8:-0} before after
  only "$pid"
  taskset -c "$LOAD_CPU" wrk -t1 -c "$c" -d "${WARMUP}s" -s bench/http.lua "http://127.0.0.1:$p" -- "$bodies" "$path" \
    > /dev/null 2>&1 || true
  before=$(cpu "$pid")
  taskset -c "$LOAD_CPU" wrk -t1 -c "$c" -d "${DURATION}s" --latency -s bench/http.lua "http://127.0.0.1:$p" \
    -- "$bodies" "$path" > "$WORK/wrk.out" 2>&1 || true
  after=$(cpu "$pid")
  "${TOOL[@]}" wrk --label "$label" --kind "$kind" --concurrency "$c" --cpu-before "$before" --cpu-after "$after" \
    --rows "$rows" "$WORK/wrk.out" | tee -a "$RESULTS" >&2
  quiesce "$pid"
}

# quiesce PID: wait (at most 30 s) until the server has finished what wrk left in flight, so that
# it is not paused holding SQLite's write lock (the next server would wait for it).
quiesce() {
  local a b
  for _ in $(seq 60); do
    a=$(cpu "$1"); sleep 0.5; b=$(cpu "$1")
    awk -v a="$a" -v b="$b" 'BEGIN { exit !(b - a < 0.02) }' && return 0
  done
}

grpc_run() { # C
  local c=$1 before after
  only "$LARDER_PID"
  taskset -c "$LOAD_CPU" "$BENCH" --target "127.0.0.1:$GRPC_PORT" --method gof --view f10 --features 10 --keys 1 \
    --key-space "$KEY_SPACE" --concurrency "$c" --warmup 0 --duration "$WARMUP" > /dev/null || [ $? = 3 ]
  before=$(cpu "$LARDER_PID")
  taskset -c "$LOAD_CPU" "$BENCH" --target "127.0.0.1:$GRPC_PORT" --method gof --view f10 --features 10 --keys 1 \
    --key-space "$KEY_SPACE" --concurrency "$c" --warmup 0 --duration "$DURATION" --label larder-grpc \
    > "$WORK/grpc.out" || [ $? = 3 ]
  after=$(cpu "$LARDER_PID")
  "${TOOL[@]}" grpc --label larder-grpc --cpu-before "$before" --cpu-after "$after" "$WORK/grpc.out" |
    tee -a "$RESULTS" >&2
}

for c in $CONCURRENCY; do
  for round in $(seq "$ROUNDS"); do
    log "get-online-features 1x10, concurrency $c, round $round of $ROUNDS"
    [ "$LARDER_HTTP" = available ] &&
      wrk_run larder-http gof "$c" "$LARDER_PID" "$HTTP_PORT" "$WORK/gof.bodies" /get-online-features
    grpc_run "$c"
    for b in $BASELINES; do
      wrk_run "$b" gof "$c" "${BPID[$b]}" "${BPORT[$b]}" "$WORK/gof.bodies" /get-online-features
    done
  done
done

for c in $PUSH_CONC; do
  log "push, $PUSH_ROWS rows x 10 features, concurrency $c"
  [ "$LARDER_HTTP" = available ] &&
    wrk_run larder-http push "$c" "$LARDER_PID" "$HTTP_PORT" "$WORK/push.bodies" /push "$PUSH_ROWS"
  for b in $BASELINES; do
    wrk_run "$b" push "$c" "${BPID[$b]}" "${BPORT[$b]}" "$WORK/push.bodies" /push "$PUSH_ROWS"
  done
done
only "${PIDS[@]}"
for q in "${PIDS[@]}"; do kill -0 "$q" 2>/dev/null || { log "a server exited during the run"; exit 1; }; done

log "report"
mkdir -p "$OUT/plots/data"
D=$OUT/plots/data
cp "$RESULTS" "$D/http.jsonl"
LARDER_HTTP=$LARDER_HTTP LARDER_CHECK=$LARDER_CHECK DURATION=$DURATION WARMUP=$WARMUP ROUNDS=$ROUNDS KEY_SPACE=$KEY_SPACE \
  PUSH_ROWS=$PUSH_ROWS PUSH_CONC="$PUSH_CONC" BASELINES="$BASELINES" /usr/bin/python3 - "$D/http_params.json" <<'PY'
import json, os, platform, subprocess, sys, time
def sh(c):
    return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
e = os.environ
cpu = sh("awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo")
mem = sh("awk '/MemTotal/{printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
osname = sh(". /etc/os-release && echo $PRETTY_NAME")
import fastapi, uvicorn, pydantic, starlette, pandas, google.protobuf, sqlite3
versions = ("Python %s, FastAPI %s, Starlette %s, uvicorn %s (uvloop %s, httptools %s), pydantic %s, protobuf %s, "
            "pandas %s, SQLite %s, %s" % (platform.python_version(), fastapi.__version__, starlette.__version__,
            uvicorn.__version__, sh("/usr/bin/python3 -c 'import uvloop; print(uvloop.__version__)'") or "none",
            sh("/usr/bin/python3 -c 'import httptools; print(httptools.__version__)'") or "none",
            pydantic.VERSION, google.protobuf.__version__, pandas.__version__, sqlite3.sqlite_version,
            sh("wrk -v 2>&1 | head -1 | cut -d' ' -f1,2")))
baselines = {"feast-serve": "uvicorn, 1 worker process, access log on (to a file), as `feast serve` with its defaults",
             "feast-serve-nolog": "the same with `--no-access-log`",
             "feast-gunicorn": "gunicorn with uvicorn's worker as Feast starts it on Linux (1 worker, restarted after "
                               "1000-1050 requests, keep-alive 30 s, access log on)"}
json.dump({"date": time.strftime("%Y-%m-%d", time.gmtime()),
           "machine": "%s, %d cores, %s, %s, kernel %s" % (cpu, os.cpu_count(), mem, osname, platform.release()),
           "larder_http": e["LARDER_HTTP"], "larder_check": e["LARDER_CHECK"], "duration": e["DURATION"],
           "warmup": e["WARMUP"], "rounds": int(e["ROUNDS"]), "key_space": int(e["KEY_SPACE"]), "push_rows": int(e["PUSH_ROWS"]),
           "push_concurrency": e["PUSH_CONC"],
           "baseline": "; ".join(baselines[b] for b in e["BASELINES"].split()), "versions": versions},
          open(sys.argv[1], "w"), indent=1)
PY
"${TOOL[@]}" report --data "$D"
if [ "$SMOKE" = 1 ]; then
  [ -s "$D/http.jsonl" ] || { log "no measurements were recorded"; exit 1; }
  log "done (smoke): every server answered and was measured; the report was written, then removed"
else
  # RESULTS.md again from every raw record, the HTTP section included.
  /usr/bin/python3 bench/report.py --results "$D/results.jsonl" --memory "$D/memory.txt" --h2load "$D/h2load.txt" \
    --out "$OUT"
  log "done: bench/RESULTS.md, HTTP section"
fi
