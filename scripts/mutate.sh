#!/usr/bin/env bash
# Mutation testing (STYLE 19): each line of tests/mutations.txt breaks one
# behaviour with a one-line change; the tests that cover it must fail.
#
#   bash scripts/mutate.sh [--quick] [--slice K/N] [--match REGEX] [--list FILE]
#                          [--baseline-build-only]
#
# Copies of the tree live in build-mutate/lane<N>/src, each built in
# build-mutate/lane<N>/build (incrementally: after the first run only the
# mutated file and what links it are rebuilt); the worktree is never touched.
# For each mutant a lane applies it to its copy, builds the test programs its
# tests need, runs `ctest -R <regex>` and puts the file back. It reports
# KILLED or SURVIVED per mutant, and exits non-zero when any mutant survives,
# does not build, or has a text not found exactly once in its file.
#
# MUTATE_LANES (default: 2 on two cores or more) copies run mutants side by
# side, each taking the next from one queue and a share of the cores: most
# of a slow mutant's time is its tests waiting (for a timeout, a restart),
# which the other lane fills. A mutant whose tests run alone in ctest
# (RUN_SERIAL) runs its tests alone here too.
#
#   --quick       only the mutants whose tests are unit tests (unit.*,
#                 vectors.*): no database server and no server process needed
#   --slice K/N   only the mutants whose number (from 0) is K modulo N, for
#                 a rotating share in CI (scripts/test.sh picks K by day)
#   --match RE    only the mutants whose file or text matches RE (grep -E)
#   --list FILE   another list (default tests/mutations.txt)
#   --baseline-build-only
#                 build the unmutated copy but do not run its tests first:
#                 for scripts/test.sh, which has just run every test on the
#                 same tree (a test that failed there stopped it)
#
# Tests that need PostgreSQL or MariaDB read the TEST_* variables of
# integration/services.sh from the environment; LARDER_REQUIRE_DB=1 is set,
# so a missing database fails the baseline run instead of letting every
# mutant "survive" a skipped test. --baseline-build-only checks none of
# this: a test failing for its own reason would "kill" every mutant, so use
# it only right after those tests passed with the same databases.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
list=$root/tests/mutations.txt
quick=0 slice="" match="" baseline_tests=1
while [ $# -gt 0 ]; do
  case $1 in
  --quick) quick=1 ;;
  --slice) slice=$2; shift ;;
  --match) match=$2; shift ;;
  --list) list=$2; shift ;;
  --baseline-build-only) baseline_tests=0 ;;
  -h | --help) sed -n '2,38p' "$0"; exit 0 ;;
  *) echo "mutate.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
work=${MUTATE_DIR:-$root/build-mutate}
logs=$work/logs
cores=$(nproc)
lanes=${MUTATE_LANES:-$((cores >= 2 ? 2 : 1))}
if ! [ "$lanes" -ge 1 ] 2>/dev/null; then
  echo "mutate.sh: MUTATE_LANES is a number of lanes, 1 or more" >&2
  exit 2
fi
mkdir -p "$logs"
rm -rf "$work/src" "$work/build" # the one copy of the layout before lanes
rm -f "$logs"/line*.log "$logs"/results.* "$logs"/queue
export LARDER_REQUIRE_DB=1
t0=$(date +%s)

# The copies: files that differ are copied with a new modification time, so
# make rebuilds exactly them (also a file a stopped run left mutated).
copy() { # LANE
  local src=$work/lane$1/src build=$work/lane$1/build
  mkdir -p "$src" "$build"
  rsync -rlp --checksum --delete --exclude '/build*/' --exclude '/.git' --exclude '__pycache__' \
    "$root/" "$src/" || return 2
  # A run that was stopped may have left a mutated file: put it back first.
  find "$src" -name '*.mutate-orig' -print0 | while IFS= read -r -d '' orig; do
    mv "$orig" "${orig%.mutate-orig}" && touch "${orig%.mutate-orig}"
  done
  cmake -S "$src" -B "$build" -DLARDER_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$logs/cmake$1.log" 2>&1 ||
    { cat "$logs/cmake$1.log"; return 2; }
}
# Lane 0's copy first: the selection asks its ctest which tests a regex names.
copy 0 || exit 2
src=$work/lane0/src build=$work/lane0/build

# The list, one mutant per line: file @@ text @@ replacement @@ tests regex @@ why.
mapfile -t mutants < <(python3 - "$list" <<'PY'
import sys
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    parts = line.rstrip("\n").split(" @@ ")
    if len(parts) != 5 or not all(p.strip() for p in (parts[0], parts[1], parts[3])):
        sys.exit("%s:%d: want 'file @@ text @@ replacement @@ tests regex @@ why'" % (sys.argv[1], n))
    # Fields joined by the ASCII unit separator, which no source line holds.
    print("\x1f".join([str(n)] + [p.strip() for p in parts]))
PY
)

# field I of mutant record R
field() { printf '%s' "$1" | python3 -c 'import sys; print(sys.stdin.read().split("\x1f")[int(sys.argv[1])], end="")' "$2"; }

# Tests a regex selects, one name a line.
tests_of() { (cd "$build" && ctest -N -R "$1" | sed -n 's/^ *Test *#[0-9]*: //p'); }

# What a mutant of REGEX needs in build folder B, from one look at ctest's
# plan: first "x" when one of its tests runs alone (RUN_SERIAL: it asserts a
# time bound under load it makes itself), else "s"; then the build targets
# its tests need (the programs they run, and the server for the tests that
# start it). With "x" its lane holds the serial lock exclusively from
# applying the mutant to putting it back, so no other lane builds or tests
# meanwhile; other mutants share the lock.
plan_of() { # B REGEX
  (cd "$1" && ctest --show-only=json-v1 -R "$2") | python3 -c '
import json, os, sys
build = sys.argv[1]
tests = json.load(sys.stdin).get("tests", [])
serial = not tests or any(p.get("name") == "RUN_SERIAL" and p.get("value")
                          for t in tests for p in t.get("properties", []))
out = set()
for t in tests:
    cmd = t.get("command") or []
    inside = [c for c in cmd if c.startswith(build + "/") and os.path.basename(c)]
    if not cmd or not cmd[0].startswith(build + "/"):
        out.add("larder")  # a script that starts the server
    for c in inside:
        out.add(os.path.basename(c))
print(" ".join(["x" if serial else "s"] + sorted(out)))' "$1"
}

# Applies (or, with "restore", undoes) mutant R in the copy SRC; fails unless
# its text is found exactly once.
apply() { # SRC R [restore]
  python3 - "$1" "$2" "${3:-}" <<'PY'
import os, sys
src, rec, mode = sys.argv[1], sys.argv[2].split("\x1f"), sys.argv[3]
path = os.path.join(src, rec[1])
backup = path + ".mutate-orig"
if mode == "restore":
    os.replace(backup, path)
    os.utime(path)  # newer than the mutant's objects: make rebuilds them
    sys.exit(0)
try:
    text = open(path, encoding="utf-8").read()
except OSError as e:
    sys.exit("cannot read %s: %s" % (rec[1], e))
n = text.count(rec[2])
if n != 1:
    sys.exit("%s: the text is found %d times, not once: %s" % (rec[1], n, rec[2]))
with open(backup, "w", encoding="utf-8") as f:
    f.write(text)
with open(path, "w", encoding="utf-8") as f:
    f.write(text.replace(rec[2], rec[3]))
PY
}

# Which mutants run: --slice, --match, --quick.
selected=() errors=0
for i in "${!mutants[@]}"; do
  rec=${mutants[$i]}
  if [ -n "$slice" ] && [ $((i % ${slice#*/})) -ne "${slice%/*}" ]; then continue; fi
  # grep reads all its input (no -q): with pipefail, a grep that quit at its
  # first match could fail printf with SIGPIPE, and the pipeline with it.
  if [ -n "$match" ] && ! printf '%s\n%s\n' "$(field "$rec" 1)" "$(field "$rec" 2)" | grep -E -- "$match" >/dev/null; then
    continue
  fi
  regex=$(field "$rec" 4)
  names=$(tests_of "$regex")
  if [ -z "$names" ]; then
    echo "ERROR    line $(field "$rec" 0): the regex '$regex' selects no test"
    errors=$((errors + 1))
    continue
  fi
  if [ "$quick" = 1 ] && printf '%s\n' "$names" | grep -Ev '^(unit|vectors)\.' >/dev/null; then continue; fi
  selected+=("$rec")
done
total=${#selected[@]}
if [ "$total" -eq 0 ]; then
  echo "mutate.sh: no mutant selected"
  exit $((errors ? 1 : 0))
fi
[ "$lanes" -gt "$total" ] && lanes=$total
jobs=$((cores / lanes > 0 ? cores / lanes : 1)) # make and ctest jobs per lane
for ((lane = 1; lane < lanes; lane++)); do copy "$lane" || exit 2; done

# Baseline: each unmutated copy is built whole (so that ctest knows every
# test program), one after the other with every core; lane 0's must pass
# every test the selected mutants use, or a mutant would be "killed" by a
# test that fails anyway. Each distinct regex runs once (ctest's regular
# expressions allow few groups, so they are not joined).
echo "== mutate: $total mutants in $lanes lanes; baseline build and tests"
for ((lane = 0; lane < lanes; lane++)); do
  if ! cmake --build "$work/lane$lane/build" -j"$cores" >"$logs/baseline-build$lane.log" 2>&1; then
    tail -30 "$logs/baseline-build$lane.log"
    echo "mutate.sh: the unmutated tree does not build" >&2
    exit 2
  fi
done
: >"$logs/baseline-tests.log"
regexes=()
[ "$baseline_tests" = 1 ] &&
  mapfile -t regexes < <(for rec in "${selected[@]}"; do field "$rec" 4; echo; done | sort -u)
for regex in "${regexes[@]+"${regexes[@]}"}"; do
  if ! (cd "$build" && ctest -R "$regex" -j"$cores" --timeout 300 --no-tests=error \
    >>"$logs/baseline-tests.log" 2>&1); then
    grep -E 'Failed|Not Run|\*\*\*|No tests' "$logs/baseline-tests.log" | head -20
    echo "mutate.sh: the unmutated tests of '$regex' fail (databases started? see" \
      "$logs/baseline-tests.log)" >&2
    exit 2
  fi
done
if [ "$baseline_tests" = 1 ]; then
  echo "   baseline passed in $(($(date +%s) - t0)) s"
else
  echo "   baseline built in $(($(date +%s) - t0)) s (its tests ran before, on the same tree)"
fi

# The next mutant of the queue, shared by the lanes: its index, or nothing
# when none is left.
echo 0 >"$logs/queue"
next() {
  flock "$logs/queue" sh -c 'k=$(cat "$1"); if [ "$k" -lt "$2" ]; then echo $((k + 1)) >"$1"; echo "$k"; fi' \
    sh "$logs/queue" "$total"
}

# One lane: runs mutants off the queue in its copy; one result line per
# mutant in results.LANE (VERDICT, then the report line if any).
run_lane() { # LANE
  local src=$work/lane$1/src build=$work/lane$1/build out=$logs/results.$1
  local i k rec line file regex log m0 msg verdict took failing plan targets
  : >"$out"
  exec 9>>"$logs/serial" # the serial lock, on descriptor 9
  while i=$(next) && [ -n "$i" ]; do
    k=$((i + 1)) rec=${selected[$i]}
    line=$(field "$rec" 0) file=$(field "$rec" 1) regex=$(field "$rec" 4)
    log=$logs/line$line.log
    read -r -a plan <<<"$(plan_of "$build" "$regex")"
    targets=("${plan[@]:1}")
    flock -"${plan[0]}" 9
    m0=$(date +%s)
    if ! msg=$(apply "$src" "$rec" 2>&1); then
      flock -u 9
      msg=${msg//$'\n'/ }
      echo "ERROR    [$k/$total] line $line: $msg"
      printf 'ERROR\tERROR    line %s %s: %s\n' "$line" "$file" "$msg" >>"$out"
      continue
    fi
    # The lock's descriptor is closed for what runs under it: a server a test
    # left behind must not hold the lock after the lane lets it go.
    if ! cmake --build "$build" -j"$jobs" --target "${targets[@]}" >"$log" 2>&1 9>&-; then
      apply "$src" "$rec" restore
      flock -u 9
      echo "ERROR    [$k/$total] line $line: $file: the mutant does not build (see $log)"
      printf 'ERROR\tERROR    line %s %s: does not build\n' "$line" "$file" >>"$out"
      continue
    fi
    if (cd "$build" && ctest -R "$regex" -j"$jobs" --timeout 120 --no-tests=error >>"$log" 2>&1 9>&-); then
      verdict=SURVIVED
      printf 'SURVIVED\tSURVIVED line %s %s: %s -> %s (%s)\n' "$line" "$file" "$(field "$rec" 2)" \
        "$(field "$rec" 3)" "$(field "$rec" 5)" >>"$out"
    elif grep -q 'Not Run\|No tests were found' "$log" || ! grep -q 'tests failed out of' "$log"; then
      verdict=ERROR # a test that did not run, or a ctest that did not finish, killed nothing
      printf 'ERROR\tERROR    line %s %s: a test did not run (see %s)\n' "$line" "$file" "$log" >>"$out"
    else
      verdict=KILLED
      printf 'KILLED\t\n' >>"$out"
    fi
    apply "$src" "$rec" restore
    flock -u 9
    took=$(($(date +%s) - m0))
    failing=$(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) .*/\1/p' "$log" | head -3 | tr '\n' ' ')
    printf '%-8s [%d/%d] line %s %s (%d s) %s\n' "$verdict" "$k" "$total" "$line" "$file" "$took" \
      "${failing:+by $failing}"
  done
}

# Each lane in a process group of its own (set -m), so that an interrupted
# run stops the lanes and the tests they started too.
pids=()
trap 'for p in "${pids[@]+"${pids[@]}"}"; do kill -- "-$p" 2>/dev/null || true; done; exit 130' INT TERM
set -m
for ((lane = 0; lane < lanes; lane++)); do
  run_lane "$lane" &
  pids+=($!)
done
set +m
# A lane stopped before its queue ran dry (killed, say) leaves mutants unrun:
# the count below says how many.
for pid in "${pids[@]}"; do wait "$pid" || true; done
trap - INT TERM

killed=0 survived=0 ran=0
report=()
for ((lane = 0; lane < lanes; lane++)); do
  while IFS=$'\t' read -r verdict text; do
    ran=$((ran + 1))
    case $verdict in
    KILLED) killed=$((killed + 1)) ;;
    SURVIVED) survived=$((survived + 1)) report+=("$text") ;;
    *) errors=$((errors + 1)) report+=("$text") ;;
    esac
  done <"$logs/results.$lane"
done
if [ "$ran" -ne "$total" ]; then
  report+=("ERROR    $((total - ran)) of $total mutants did not run")
  errors=$((errors + 1))
fi
echo "== mutate: $killed/$total killed, $survived survived, $errors errors in $(($(date +%s) - t0)) s"
for r in "${report[@]+"${report[@]}"}"; do echo "   $r"; done
[ "$survived" -eq 0 ] && [ "$errors" -eq 0 ]
