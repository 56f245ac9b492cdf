#!/usr/bin/env bash
# "Works on a fresh machine" (DESIGN.md §10), tested: each test unpacks a new
# bare Debian 12 root (mmdebstrap minbase, cached as a tarball for a week),
# copies the repository into it as git sees the working tree, and runs the
# README's commands inside it with chroot, as root:
#   serve  bash scripts/serve.sh, then the README's Python example against it
#          (inside the root, so only what deps.sh installed is there), its
#          output compared with what the README says it prints, then SIGTERM
#          and exit status 0;
#   build  bash scripts/deps.sh (no --test), the README's build command, then
#          build/larder --version, and none of the test-only packages.
# Usage: bash integration/fresh_machine.sh [serve|build|all]   (default all)
# Exit 77 (skipped) without root or mmdebstrap, unless CI=true.
set -euo pipefail
FR_NAME=fresh_machine
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=integration/fresh_root.sh
source "$REPO/integration/fresh_root.sh"

MODE=${1:-all}
case $MODE in
  serve | build | all) ;;
  *)
    echo "usage: bash integration/fresh_machine.sh [serve|build|all]" >&2
    exit 2
    ;;
esac

PORT=6566
IN_ROOT=/root/larder            # where the repository goes inside a root
SERVE_TIMEOUT=${LARDER_FRESH_SERVE_TIMEOUT:-900} # apt + build + start, in seconds
TEST_ONLY_PKGS='^(libcmocka-dev|libjson-c-dev|clang|clang-[0-9]+|mariadb-server|mariadb-server-[0-9.]+|postgresql|postgresql-[0-9]+)$'

fr_need_root mmdebstrap chroot mount umount flock tar python3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/larder-fresh-work.XXXXXX")
SERVER_PID=
LOG=

on_exit() {
  local status=$?
  set +e
  fr_exit_begin "$status"
  if [ "$status" -ne 0 ] && [ -n "$LOG" ] && [ -s "$LOG" ]; then
    echo "-- $FR_NAME: last lines of $(basename "$LOG"):"
    tail -n 40 "$LOG"
  fi
  # A client that failed needs the server's side too (its log, and who listened on the port).
  if [ "$status" -ne 0 ] && [ "$LOG" = "$WORK/example.log" ] && [ -s "$WORK/serve.log" ]; then
    echo "-- $FR_NAME: last lines of serve.log:"
    tail -n 20 "$WORK/serve.log"
    ss -ltnp 2>/dev/null | grep ":$PORT " || true
  fi
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
  fi
  fr_remove_roots || status=1
  rm -rf "$WORK"
  fr_timing_summary "$status"
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# readme_part NAME: the fenced sh block between <!-- NAME --> and <!-- /NAME -->
# (the regexes of integration/test_readme_example.py), written to
# $WORK/NAME.sh; for an example, what the README says it prints goes to
# $WORK/NAME.expected.
readme_part() {
  /usr/bin/python3 - "$REPO/README.md" "$1" "$WORK" <<'EOF'
import re, sys
readme, name, work = sys.argv[1:]
text = open(readme).read()
block = re.search(r"<!-- %s -->\n```sh\n(.*?)```\n<!-- /%s -->" % (name, name), text, re.S)
if not block:
    sys.exit("README.md: no sh block between <!-- %s --> and <!-- /%s -->" % (name, name))
open("%s/%s.sh" % (work, name), "w").write(block.group(1))
if name.startswith("example:"):
    prints = re.search(r"<!-- /%s -->\n\nIt prints:\n\n```\n(.*?)```" % name, text, re.S)
    if not prints:
        sys.exit("README.md: no 'It prints:' block after <!-- /%s -->" % name)
    open("%s/%s.expected" % (work, name), "w").write(prints.group(1))
EOF
}

# run_logged LOGNAME COMMAND...: output to $WORK/LOGNAME.log (its tail is
# shown if the test fails there).
run_logged() {
  LOG=$WORK/$1.log
  shift
  "$@" >"$LOG" 2>&1
}

fresh_root() { # fresh_root VAR: a new root with the repository in it
  fr_new_root "$1"
  fr_copy_repo "$REPO" "${!1}" "$IN_ROOT"
}

test_serve() {
  local root rc i
  fr_step "serve: README example and expected output"
  readme_part example:python
  if fr_port_listening "$PORT"; then
    echo "$FR_NAME: FAIL: something already listens on port $PORT on this machine; stop it first" \
      "(this test must reach the server it starts, not another one)" >&2
    return 1
  fi

  fr_step "serve: fresh root"
  fresh_root root

  fr_step "serve: bash scripts/serve.sh until 127.0.0.1:$PORT listens (apt, build, start)"
  LOG=$WORK/serve.log
  (exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    bash -c "cd $IN_ROOT && exec bash scripts/serve.sh") >"$LOG" 2>&1 &
  SERVER_PID=$!
  for ((i = 0; ; i++)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      rc=0
      wait "$SERVER_PID" || rc=$?
      SERVER_PID=
      echo "$FR_NAME: FAIL: bash scripts/serve.sh exited ($rc) before listening on $PORT" >&2
      return 1
    fi
    if fr_port_listening "$PORT"; then break; fi
    if [ "$i" -ge "$SERVE_TIMEOUT" ]; then
      echo "$FR_NAME: FAIL: nothing listens on 127.0.0.1:$PORT after $SERVE_TIMEOUT s" >&2
      return 1
    fi
    sleep 1
  done
  grep -m1 'listening on' "$LOG" || true

  fr_step "serve: the README's Python example, inside the root"
  cp "$WORK/example:python.sh" "$root/tmp/readme-example.sh"
  LOG=$WORK/example.log
  rc=0
  timeout 300 chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    bash -c "cd $IN_ROOT && bash /tmp/readme-example.sh" >"$WORK/example.out" 2>"$LOG" || rc=$?
  echo "-- output of the README's Python example:"
  cat "$WORK/example.out"
  if [ "$rc" -ne 0 ]; then
    echo "$FR_NAME: FAIL: the README's Python example exited $rc" >&2
    return 1
  fi
  if ! diff -u "$WORK/example:python.expected" "$WORK/example.out" >"$WORK/example.diff"; then
    echo "$FR_NAME: FAIL: the example's output is not what README.md says it prints:" >&2
    cat "$WORK/example.diff" >&2
    return 1
  fi
  echo "(as README.md says)"

  fr_step "serve: SIGTERM, exit status 0"
  LOG=$WORK/serve.log
  kill -TERM "$SERVER_PID"
  for ((i = 0; i < 300; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "$FR_NAME: FAIL: the server still runs 30 s after SIGTERM" >&2
    return 1
  fi
  rc=0
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=
  tail -n 2 "$LOG"
  if [ "$rc" -ne 0 ]; then
    echo "$FR_NAME: FAIL: the server exited $rc after SIGTERM (0 expected)" >&2
    return 1
  fi
  echo "server exited 0"

  fr_step "serve: remove the root"
  fr_remove_roots
}

test_build() {
  local root cmd installed
  fr_step "build: README build command"
  readme_part build-command
  cmd=$(cat "$WORK/build-command.sh")
  echo "$cmd"

  fr_step "build: fresh root"
  fresh_root root

  fr_step "build: bash scripts/deps.sh"
  run_logged deps fr_run "$root" "cd $IN_ROOT && bash scripts/deps.sh"

  fr_step "build: $cmd"
  run_logged build fr_run "$root" "cd $IN_ROOT && $cmd"

  fr_step "build: build/larder --version; no test-only packages"
  LOG=
  fr_run "$root" "cd $IN_ROOT && build/larder --version"
  installed=$(fr_run "$root" "dpkg-query -W -f='\${db:Status-Abbrev} \${Package}\n'" |
    awk '$1 == "ii" { print $2 }' | grep -E "$TEST_ONLY_PKGS" || true)
  if [ -n "$installed" ]; then
    echo "$FR_NAME: FAIL: scripts/deps.sh without --test installed test-only packages: ${installed//$'\n'/ }" >&2
    return 1
  fi
  echo "none of cmocka, json-c, clang, mariadb-server, postgresql installed"

  fr_step "build: remove the root"
  fr_remove_roots
}

fr_step "mmdebstrap tarball"
fr_tarball
case $MODE in
  serve) test_serve ;;
  build) test_build ;;
  all)
    test_serve
    test_build
    ;;
esac
fr_step_end
echo "$FR_NAME: $MODE passed"
