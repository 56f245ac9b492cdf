#!/usr/bin/env bash
# Installs what larder needs on Debian 12: to build and serve (no argument),
# or also to test and benchmark (--test), without starting any
# distribution-managed database service. Safe to run again: apt skips what is
# already there. Runs apt through sudo when not root.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libgrpc-dev protobuf-compiler protobuf-c-compiler libprotobuf-c-dev
  libprotobuf-dev protobuf-compiler-grpc
  libyaml-dev libsqlite3-dev libpq-dev libmariadb-dev libmicrohttpd-dev libssl-dev
  python3 python3-grpcio python3-protobuf
)
if [ "${1:-}" = "--test" ]; then
  PKGS+=(
    clang clang-format libclang-rt-14-dev libcmocka-dev libjson-c-dev
    mariadb-server postgresql haproxy nginx pgbouncer
    python3-psycopg python3-pymysql python3-h2 nghttp2-client sqlite3 openssl curl
    gnuplot-nox procps util-linux docker-compose python3-yaml binutils
    mmdebstrap podman runc
    wrk python3-fastapi python3-uvicorn python3-uvloop python3-httptools python3-gunicorn python3-pandas
  )
  # The Node client test needs node and npm; a node from elsewhere (with its
  # own npm) is kept.
  command -v node >/dev/null 2>&1 || PKGS+=(nodejs npm)
  command -v npm >/dev/null 2>&1 || PKGS+=(npm)
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps.sh: run as root or install sudo" >&2; exit 1; }
  SUDO=(sudo)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps.sh: all packages present"
  exit 0
fi
echo "deps.sh: installing ${missing[*]}"

# Package scripts must not start mariadb/postgresql on their default ports: the
# tests start their own throw-away servers. A policy-rc.d that says 101 stops
# invoke-rc.d; remove it afterwards if we created it.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o Acquire::Retries=3 update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  -o DPkg::Lock::Timeout=120 "${missing[@]}"
