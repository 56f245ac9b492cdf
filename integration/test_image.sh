#!/usr/bin/env bash
# The container image, built and run for real with Debian's podman (no Docker
# engine, no image registry): the base image debian:12-slim is imported from
# the fresh Debian 12 root of integration/fresh_machine.sh (the same cached
# mmdebstrap tarball), the repository's Dockerfile is built, and the image is
# run with its default command. Checked from the host: `larder health` says
# SERVING through the published port, the image's HEALTHCHECK passes, and
# `podman stop` ends it with exit status 0. Every podman setting below was
# needed on this kind of machine (recipes: mixed cgroups, no systemd, no
# CAP_SYS_RESOURCE); storage is private to a temporary folder.
# Usage: LARDER_BIN=build/larder bash integration/test_image.sh
# Exit 77 (skipped) without root, podman, runc or the larder binary, unless CI=true.
set -euo pipefail
FR_NAME=test_image
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=integration/fresh_root.sh
source "$REPO/integration/fresh_root.sh"
cd "$REPO"

LARDER_BIN=${LARDER_BIN:-build/larder}
READY_TIMEOUT=60 # seconds from `podman run` to SERVING

fr_need_root podman runc mmdebstrap flock tar
[ -x "$LARDER_BIN" ] || fr_prerequisite_missing "$LARDER_BIN (the health client) is not built: bash scripts/build.sh build"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/larder-image.XXXXXX")
WORK=$(realpath "$WORK")
FR_ROOTS+=("$WORK") # removed like a root: whatever runs or is mounted under it first
mkdir -p "$WORK/tmp"
PODMAN=(podman --root "$WORK/storage" --runroot "$WORK/run" --tmpdir "$WORK/libpod"
  --runtime runc --cgroup-manager cgroupfs --events-backend file)
hard=$(ulimit -Hn)
ULIMITS=(--ulimit "nofile=$hard:$hard" --ulimit nproc=4096:4096)
IMAGE=localhost/larder-image-test:$$
NAME=larder-image-test-$$
LOG=

on_exit() {
  local status=$?
  set +e
  fr_exit_begin "$status"
  if [ "$status" -ne 0 ] && [ -n "$LOG" ] && [ -s "$LOG" ]; then
    echo "-- $FR_NAME: last lines of $(basename "$LOG"):"
    tail -n 40 "$LOG"
  fi
  if [ -d "$WORK/storage" ]; then
    if [ "$status" -ne 0 ] && "${PODMAN[@]}" container exists "$NAME" 2>/dev/null; then
      echo "-- $FR_NAME: container log:"
      "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -n 20
    fi
    # Not `podman system reset`: it would also prune the host's networks.
    "${PODMAN[@]}" rm -f -v -t 5 "$NAME" >/dev/null 2>&1
    "${PODMAN[@]}" rmi -af >/dev/null 2>&1
  fi
  fr_remove_roots || status=1
  fr_timing_summary "$status"
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# `podman run` complains that it cannot add systemd timers for the health
# check (there is no systemd here): `podman healthcheck run` works without them.
pm() { "${PODMAN[@]}" "$@"; }

free_port() {
  local p
  for ((p = 20000 + RANDOM % 20000; ; p++)); do
    fr_port_listening "$p" || {
      echo "$p"
      return
    }
  done
}

fr_step "mmdebstrap tarball"
fr_tarball

fr_step "import the fresh root as docker.io/library/debian:12-slim"
LOG=$WORK/import.log
pm import "$FR_TARBALL" docker.io/library/debian:12-slim >"$LOG" 2>&1

fr_step "podman build (Dockerfile)"
LOG=$WORK/build.log
if ! TMPDIR=$WORK/tmp pm build --pull=never --format docker --network host "${ULIMITS[@]}" \
  -t "$IMAGE" -f Dockerfile . >"$LOG" 2>&1; then
  echo "$FR_NAME: FAIL: the Dockerfile does not build" >&2
  exit 1
fi
user=$(pm image inspect "$IMAGE" --format '{{.Config.User}}')
health=$(pm image inspect "$IMAGE" --format '{{.HealthCheck}}')
echo "image $IMAGE: user ${user:-(none)}, health check $health"
case ${user%%:*} in
  "" | root | 0)
    echo "$FR_NAME: FAIL: the image runs as root" >&2
    exit 1
    ;;
esac
if [ "$health" = "<nil>" ] || [ -z "$health" ]; then
  echo "$FR_NAME: FAIL: the image has no HEALTHCHECK (built without --format docker?)" >&2
  exit 1
fi

fr_step "podman run -d (default command) until SERVING"
PORT=$(free_port)
LOG=$WORK/run.log
pm run -d --name "$NAME" "${ULIMITS[@]}" -p "127.0.0.1:$PORT:6566" "$IMAGE" >"$LOG" 2>&1
LOG=$WORK/health.log
ok=0
for ((i = 0; i < READY_TIMEOUT * 2; i++)); do
  if [ "$(pm inspect "$NAME" --format '{{.State.Running}}')" != true ]; then
    echo "$FR_NAME: FAIL: the container stopped (exit $(pm inspect "$NAME" --format '{{.State.ExitCode}}'))" >&2
    exit 1
  fi
  if out=$(timeout 10 "$LARDER_BIN" health --listen "127.0.0.1:$PORT" larder.v1.OnlineStore 2>>"$LOG") &&
    [ "$out" = SERVING ]; then
    ok=1
    break
  fi
  sleep 0.5
done
if [ "$ok" != 1 ]; then
  echo "$FR_NAME: FAIL: not SERVING at 127.0.0.1:$PORT within $READY_TIMEOUT s" >&2
  exit 1
fi
echo "$LARDER_BIN health --listen 127.0.0.1:$PORT larder.v1.OnlineStore: $out"

fr_step "podman healthcheck run (the image's HEALTHCHECK)"
LOG=$WORK/healthcheck.log
if ! pm healthcheck run "$NAME" >"$LOG" 2>&1; then
  echo "$FR_NAME: FAIL: podman healthcheck run $NAME failed" >&2
  exit 1
fi
echo "podman healthcheck run $NAME: passed"

fr_step "podman stop: exit status 0"
LOG=$WORK/stop.log
pm stop -t 20 "$NAME" >"$LOG" 2>&1
code=$(pm inspect "$NAME" --format '{{.State.ExitCode}}')
pm logs "$NAME" 2>&1 | tail -n 2
if [ "$code" != 0 ]; then
  echo "$FR_NAME: FAIL: the container exited $code on podman stop (0 expected)" >&2
  exit 1
fi
echo "container exited 0"
fr_step_end
echo "$FR_NAME: passed"
