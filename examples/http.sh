#!/bin/sh
# Feast's feature-server HTTP API, served by larder: writes driver 1003 the way Feast's
# `online_store: type: remote` does (POST /write-to-online-store), then reads drivers 1001,
# 1003 and 9999 back with POST /get-online-features, and prints both answers.
#
# Needs curl (Debian: apt-get install curl) and a running `bash scripts/serve.sh`, whose
# examples/feature_store.yaml serves HTTP on 127.0.0.1:6567 (`larder.http_listen`), after the
# README's two Python examples: they create the table of driver_hourly_stats and write its
# registry. LARDER_HTTP=host:port points it at another server.
set -eu

HTTP=${LARDER_HTTP:-127.0.0.1:6567}
NOW=$(date -u +%Y-%m-%dT%H:%M:%S)   # naive times are UTC, as in Feast

post() {  # post PATH JSON: prints the answer's body; curl exits non-zero on an HTTP error
  curl --silent --show-error --fail-with-body -H 'Content-Type: application/json' \
    --data-binary "$2" "http://$HTTP$1"
  echo
}

post /write-to-online-store '{"feature_view_name": "driver_hourly_stats",
  "df": {"driver_id": [1003], "conv_rate": [0.42], "trips_today": [7],
         "event_timestamp": ["'"$NOW"'"]}}'

post /get-online-features '{"entities": {"driver_id": [1001, 1003, 9999]},
  "features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:trips_today"]}'
