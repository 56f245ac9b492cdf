#!/usr/bin/env bash
# The first set-up command: installs what is missing, builds, and serves the
# example feature_store.yaml (SQLite in examples/data/) on port 6566.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
TARGET=larder bash scripts/build.sh build
exec build/larder serve -c examples/feature_store.yaml "$@"
