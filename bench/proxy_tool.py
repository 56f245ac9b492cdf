#!/usr/bin/python3
"""The pieces of bench/run.sh's delayed-database runs that are easier in
Python: the registry of views g0..g7, the control of build/delay-proxy, one
record per measurement, and the report section with its targets and plot.

    proxy_tool.py registry --stubs DIR --project P --views N --out FILE
    proxy_tool.py ctl --port PORT stats|reset           one JSON line from the proxy
    proxy_tool.py record --db DB --kind gof|read|write --views N --bench LINE --proxy LINE
                                                        one JSON line: the bench's and the proxy's figures
    proxy_tool.py section --data DIR [--plots DIR]      the section, from plots/data/proxy.jsonl

The registry: project P, entity `driver` (join key driver_id, INT64), feature
views g0..g<N-1> of ten features f0..f9 each (even ones DOUBLE, odd ones INT64,
as build/larder-bench writes them).
"""
import argparse
import json
import os
import socket
import subprocess
import sys

FEATURES = 10
INT64, DOUBLE = 4, 5


def cmd_registry(a):
    sys.path.insert(0, a.stubs)
    from feast.core import Registry_pb2 as r
    reg = r.Registry(registry_schema_version="1")
    reg.projects.add().spec.name = a.project
    reg.entities.add().spec.CopyFrom(r.EntitySpecV2(name="driver", join_key="driver_id", value_type=INT64,
                                                    project=a.project))
    feats = [r.FeatureSpecV2(name="f%d" % i, value_type=DOUBLE if i % 2 == 0 else INT64) for i in range(FEATURES)]
    key = [r.FeatureSpecV2(name="driver_id", value_type=INT64)]
    batch = r.DataSource(name="bench_file", type=1, timestamp_field="event_timestamp", project=a.project)
    for v in range(a.views):
        fv = reg.feature_views.add()
        fv.spec.CopyFrom(r.FeatureViewSpec(name="g%d" % v, project=a.project, entities=["driver"], features=feats,
                                           entity_columns=key, online=True, batch_source=batch))
    with open(a.out, "wb") as f:
        f.write(reg.SerializeToString())


def ctl(port, command):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall((command + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def cmd_ctl(a):
    print(json.dumps(ctl(a.port, " ".join(a.command))))


def cmd_record(a):
    b = json.loads(a.bench)
    p = json.loads(a.proxy)
    calls = b.get("ok_all") or 0
    out = {"db": a.db, "kind": a.kind, "views": a.views, "keys": b["keys"], "features": b["features"],
           "rows": b.get("rows", 0), "concurrency": b["concurrency"], "qps": b["qps"], "p50_us": b["p50_us"],
           "p90_us": b["p90_us"], "p99_us": b["p99_us"], "max_us": b["max_us"], "calls": calls,
           "errors": sum(b["errors"].values()), "delay_ms": p["delay_ms"], "round_trips": p["round_trips"],
           "bytes_c2s": p["bytes_c2s"], "bytes_s2c": p["bytes_s2c"],
           "round_trips_per_call": p["round_trips"] / calls if calls else None}
    print(json.dumps(out))


# ---- the report ----------------------------------------------------------------------------------

TITLE = {"postgres": "PostgreSQL", "mysql": "MariaDB"}


def met(ok):
    return "not measured" if ok is None else "yes" if ok else "**no**"


def section(data_dir, plots_dir=None):
    """(targets, lines, images) of the delayed-database section, from proxy.jsonl."""
    path = os.path.join(data_dir, "proxy.jsonl")
    if not os.path.exists(path):
        return [], [], []
    with open(path) as f:
        rows = [json.loads(l) for l in f if l.strip().startswith("{")]
    if not rows:
        return [], [], []
    delay = rows[0]["delay_ms"]
    rtt_us = 2 * delay * 1000
    gof = {(r["db"], r["views"]): r for r in rows if r["kind"] == "gof"}
    other = [r for r in rows if r["kind"] != "gof"]
    dbs = [d for d in ("postgres", "mysql") if any(k[0] == d for k in gof)]
    views = sorted({k[1] for k in gof})
    targets = []
    for db in dbs:
        one, most = gof.get((db, 1)), gof.get((db, max(views)))
        if one is None or most is None or most is one:
            continue
        ok = most["p50_us"] <= one["p50_us"] + rtt_us
        targets.append(("GetOnlineFeatures over %d views through a proxy delaying %.1f ms each way, %s: median "
                        "latency at most 1 view's plus one proxy round trip (%.0f us)"
                        % (most["views"], delay, TITLE[db], rtt_us), ok,
                        "%s us vs %s us for 1 view (+%s us); %.2f round trips per request at the proxy"
                        % (fmt(most["p50_us"]), fmt(one["p50_us"]), fmt(most["p50_us"] - one["p50_us"]),
                           most["round_trips_per_call"] or 0)))
    for r in other:
        if r["kind"] == "write":
            targets.append(("OnlineWriteBatch of %d rows x %d features, %s: one round trip per batch (proxy's count)"
                            % (r["rows"], r["features"], TITLE[r["db"]]),
                            r["round_trips_per_call"] is not None and r["round_trips_per_call"] <= 1.0,
                            "%.2f round trips per batch (%d batches)" % (r["round_trips_per_call"] or 0, r["calls"])))
    w = []
    w.append("## One round trip per request: a database %.1f ms away\n" % delay)
    w.append("`build/delay-proxy` (`bench/delay_proxy.c`) sits between larder and the database and holds every "
             "chunk it forwards for %.1f ms in each direction, as the network to a database in another zone does "
             "(one round trip: %.0f us). It also counts round trips — on each connection, the changes from bytes "
             "larder sent to bytes the database sent — and bytes. A larder of its own (`workers: 2`, a file "
             "registry of eight views g0..g7 of ten features, tables filled through the undelayed larder) reads "
             "through it; `build/larder-bench` at concurrency 1 (latency is the point), after a warm-up (statements "
             "prepared), with the proxy's counters zeroed just before the measured run. Feast's Python server "
             "reads one view after another: each view would cost one round trip more (the dashed lines).\n"
             % (delay, rtt_us))
    w.append("| database | request | views | calls | p50 us | p90 us | p99 us | round trips per call | bytes to / from the database per call |")
    w.append("|---|---|---|---|---|---|---|---|---|")
    order = sorted(rows, key=lambda r: (dbs.index(r["db"]) if r["db"] in dbs else 9,
                                         {"gof": 0, "read": 1, "write": 2}[r["kind"]], r["views"]))
    for r in order:
        what = {"gof": "GetOnlineFeatures, 1 entity", "read": "OnlineRead, %d keys x %d features" % (r["keys"], r["features"]),
                "write": "OnlineWriteBatch, %d rows x %d features" % (r["rows"], r["features"])}[r["kind"]]
        calls = r["calls"] or 1
        w.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
            TITLE[r["db"]], what, r["views"], fmt(r["calls"]), fmt(r["p50_us"]), fmt(r["p90_us"]), fmt(r["p99_us"]),
            "%.2f" % r["round_trips_per_call"] if r["round_trips_per_call"] is not None else "—",
            fmt(r["bytes_c2s"] / calls), fmt(r["bytes_s2c"] / calls)))
    w.append("")
    images = []
    if plots_dir and dbs:
        data = os.path.join(plots_dir, "data")
        os.makedirs(data, exist_ok=True)
        lines = []
        colors = {"postgres": "#7b2d8e", "mysql": "#1a8a6e"}
        for db in dbs:
            fn = os.path.join(data, "gof_views_%s.dat" % db)
            with open(fn, "w") as f:
                for v in views:
                    r = gof.get((db, v))
                    if r:
                        f.write("%d %f %f\n" % (v, r["p50_us"] / 1000, r["p99_us"] / 1000))
            col = colors[db]
            lines.append("'%s' using 1:2 with linespoints lw 3 lc rgb '%s' pt 7 ps 1.2 title '%s, median'"
                         % (fn, col, TITLE[db]))
            lines.append("'%s' using 1:3 with linespoints lw 1 lc rgb '%s' pt 6 title '%s, p99'" % (fn, col, TITLE[db]))
            one = gof.get((db, 1))
            if one:
                base, rtt = one["p50_us"] / 1000, rtt_us / 1000
                lines.append("%f + %f * x with lines lw 1.5 lc rgb '%s' dt 2 title '%s: a round trip per view, "
                             "as Feast reads'" % (base - rtt, rtt, col, TITLE[db]))
                lines.append("%f with lines lw 1 lc rgb '%s' dt 3 title '%s target: 1 view + one round trip'"
                             % (base + rtt, col, TITLE[db]))
        png = os.path.join(plots_dir, "gof_views.png")
        gp = ("set terminal pngcairo size 900,560 font ',10'; set output '%s'; "
              "set title 'GetOnlineFeatures, 1 entity x 10 features per view, through a proxy delaying %.1f ms each "
              "way (concurrency 1)'; set xlabel 'feature views in the request'; set ylabel 'latency, ms'; "
              "set xrange [0.5:%d.5]; set xtics (%s); set yrange [0:*]; set key top left box opaque font ',9'; "
              "set grid; set samples 200; plot %s"
              % (png, delay, max(views), ", ".join(str(v) for v in views), ", ".join(lines)))
        subprocess.run(["gnuplot", "-e", gp], check=True)
        images.append(("GetOnlineFeatures latency by views, delayed database", "plots/gof_views.png"))
        w.append("![GetOnlineFeatures latency by views](plots/gof_views.png)\n")
    return targets, w, images


def fmt(x, spec="{:,.0f}"):
    return "—" if x is None else spec.format(x)


def cmd_section(a):
    targets, lines, _ = section(a.data, a.plots)
    for name, ok, what in targets:
        print("| %s | %s | %s |" % (name, met(ok), what))
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("registry")
    p.add_argument("--stubs", required=True)
    p.add_argument("--project", required=True)
    p.add_argument("--views", type=int, default=8)
    p.add_argument("--out", required=True)
    p = sub.add_parser("ctl")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("command", nargs="+")
    p = sub.add_parser("record")
    p.add_argument("--db", required=True)
    p.add_argument("--kind", required=True, choices=["gof", "read", "write"])
    p.add_argument("--views", type=int, default=1)
    p.add_argument("--bench", required=True)
    p.add_argument("--proxy", required=True)
    p = sub.add_parser("section")
    p.add_argument("--data", required=True)
    p.add_argument("--plots")
    a = ap.parse_args()
    {"registry": cmd_registry, "ctl": cmd_ctl, "record": cmd_record, "section": cmd_section}[a.cmd](a)


if __name__ == "__main__":
    main()
