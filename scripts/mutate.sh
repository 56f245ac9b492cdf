#!/usr/bin/env bash
# Mutation testing (STYLE 19): each line of tests/mutations.txt breaks one
# behaviour with a one-line change; the tests that cover it must fail.
#
#   bash scripts/mutate.sh [--quick] [--slice K/N] [--match REGEX] [--list FILE]
#                          [--baseline-build-only]
#
# A copy of the tree lives in build-mutate/src and is built in
# build-mutate/build (incrementally: after the first run only the mutated
# file and what links it are rebuilt); the worktree is never touched. For each
# mutant the script applies it to the copy, builds the test programs its
# tests need, runs `ctest -R <regex>` and puts the file back. It reports
# KILLED or SURVIVED per mutant, and exits non-zero when any mutant survives,
# does not build, or has a text not found exactly once in its file.
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
  -h | --help) sed -n '2,32p' "$0"; exit 0 ;;
  *) echo "mutate.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
work=${MUTATE_DIR:-$root/build-mutate}
src=$work/src build=$work/build logs=$work/logs
mkdir -p "$src" "$build" "$logs"
jobs=$(nproc)
export LARDER_REQUIRE_DB=1
t0=$(date +%s)

# The copy: files that differ are copied with a new modification time, so
# make rebuilds exactly them (also a file a stopped run left mutated).
rsync -rlp --checksum --delete --exclude '/build*/' --exclude '/.git' --exclude '__pycache__' \
  "$root/" "$src/"
# A run that was stopped may have left a mutated file: put it back first.
find "$src" -name '*.mutate-orig' -print0 | while IFS= read -r -d '' orig; do
  mv "$orig" "${orig%.mutate-orig}" && touch "${orig%.mutate-orig}"
done
cmake -S "$src" -B "$build" -DLARDER_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$logs/cmake.log" 2>&1 ||
  { cat "$logs/cmake.log"; exit 2; }

# The list, one mutant per line: file @@ text @@ replacement @@ tests regex @@ why.
mapfile -t mutants < <(python3 - "$list" <<'EOF'
import sys
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    parts = line.rstrip("\n").split(" @@ ")
    if len(parts) != 5 or not all(p.strip() for p in (parts[0], parts[1], parts[3])):
        sys.exit("%s:%d: want 'file @@ text @@ replacement @@ tests regex @@ why'" % (sys.argv[1], n))
    # Fields joined by the ASCII unit separator, which no source line holds.
    print("\x1f".join([str(n)] + [p.strip() if i != 2 else p.strip() for i, p in enumerate(parts)]))
EOF
)

# field I of mutant record R
field() { printf '%s' "$1" | python3 -c 'import sys; print(sys.stdin.read().split("\x1f")[int(sys.argv[1])], end="")' "$2"; }

# Tests a regex selects, one name a line.
tests_of() { (cd "$build" && ctest -N -R "$1" | sed -n 's/^ *Test *#[0-9]*: //p'); }

# The build targets the tests of a regex need: the programs they run, and the
# server for the tests that start it.
targets_of() {
  (cd "$build" && ctest --show-only=json-v1 -R "$1") | python3 -c '
import json, os, sys
build = sys.argv[1]
out = set()
for t in json.load(sys.stdin).get("tests", []):
    cmd = t.get("command") or []
    inside = [c for c in cmd if c.startswith(build + "/") and os.path.basename(c)]
    if not cmd or not cmd[0].startswith(build + "/"):
        out.add("larder")  # a script that starts the server
    for c in inside:
        out.add(os.path.basename(c))
print(" ".join(sorted(out)))' "$build"
}

# Applies (or, with "restore", undoes) mutant R in the copy; fails unless its
# text is found exactly once.
apply() {
  python3 - "$src" "$1" "${2:-}" <<'EOF'
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
EOF
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

# Baseline: the unmutated copy is built whole (so that ctest knows every test
# program) and must pass every test the selected mutants use, or a mutant
# would be "killed" by a test that fails anyway. Each distinct regex runs
# once (ctest's regular expressions allow few groups, so they are not joined).
echo "== mutate: $total mutants; baseline build and tests"
if ! cmake --build "$build" -j"$jobs" >"$logs/baseline-build.log" 2>&1; then
  tail -30 "$logs/baseline-build.log"
  echo "mutate.sh: the unmutated tree does not build" >&2
  exit 2
fi
: >"$logs/baseline-tests.log"
regexes=()
[ "$baseline_tests" = 1 ] &&
  mapfile -t regexes < <(for rec in "${selected[@]}"; do field "$rec" 4; echo; done | sort -u)
for regex in "${regexes[@]+"${regexes[@]}"}"; do
  if ! (cd "$build" && ctest -R "$regex" -j"$jobs" --timeout 300 --no-tests=error \
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

killed=0 survived=0 k=0
report=()
for rec in "${selected[@]}"; do
  k=$((k + 1))
  line=$(field "$rec" 0) file=$(field "$rec" 1) regex=$(field "$rec" 4)
  log=$logs/line$line.log
  m0=$(date +%s)
  if ! msg=$(apply "$rec" 2>&1); then
    echo "ERROR    [$k/$total] line $line: $msg"
    report+=("ERROR    line $line $file: $msg")
    errors=$((errors + 1))
    continue
  fi
  read -r -a targets <<<"$(targets_of "$regex")"
  if ! cmake --build "$build" -j"$jobs" --target "${targets[@]}" >"$log" 2>&1; then
    apply "$rec" restore
    echo "ERROR    [$k/$total] line $line: $file: the mutant does not build (see $log)"
    report+=("ERROR    line $line $file: does not build")
    errors=$((errors + 1))
    continue
  fi
  if (cd "$build" && ctest -R "$regex" -j"$jobs" --timeout 120 --no-tests=error >>"$log" 2>&1); then
    verdict=SURVIVED
    survived=$((survived + 1))
  elif grep -q 'Not Run\|No tests were found' "$log"; then
    verdict=ERROR # a test that did not run killed nothing
    errors=$((errors + 1))
    report+=("ERROR    line $line $file: a test did not run (see $log)")
  else
    verdict=KILLED
    killed=$((killed + 1))
  fi
  apply "$rec" restore
  took=$(($(date +%s) - m0))
  failing=$(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) .*/\1/p' "$log" | head -3 | tr '\n' ' ')
  printf '%-8s [%d/%d] line %s %s (%d s) %s\n' "$verdict" "$k" "$total" "$line" "$file" "$took" \
    "${failing:+by $failing}"
  [ "$verdict" = SURVIVED ] && report+=("SURVIVED line $line $file: $(field "$rec" 2) -> $(field "$rec" 3) ($(field "$rec" 5))")
done
echo "== mutate: $killed/$total killed, $survived survived, $errors errors in $(($(date +%s) - t0)) s"
for r in "${report[@]}"; do echo "   $r"; done
[ "$survived" -eq 0 ] && [ "$errors" -eq 0 ]
