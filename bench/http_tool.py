#!/usr/bin/python3
"""The pieces of bench/http.sh that are easier in Python: the registry and
the request bodies of the HTTP benchmark, the answer check, reading wrk's
output and /proc, and the report.

    http_tool.py registry --stubs DIR --project P --out FILE
    http_tool.py known-row --stubs DIR --db FILE --project P --key K
    http_tool.py check --url URL --key K             the answers of one server (exit 1 if wrong)
    http_tool.py bodies --out DIR --key-space N      request bodies for bench/http.lua
    http_tool.py cpu PID                             CPU seconds of PID and its children so far
    http_tool.py wrk --label L --kind K --concurrency C --cpu-before S --cpu-after S FILE
                                                     one JSON line from wrk's --latency output
    http_tool.py grpc --label L --cpu-before S --cpu-after S FILE
                                                     the same from build/larder-bench's output
    http_tool.py vectors --stubs DIR --vectors FILE  replays feast-compat/http_vectors.json
                                                     against bench/feast_http_baseline.py
    http_tool.py report --data DIR                   the table and targets, from http.jsonl

The benchmark's data: project `bench`, entity `driver` (join key driver_id,
INT64), feature view `f10` (features f0..f9: even ones DOUBLE, odd ones
INT64, as build/larder-bench writes them) read by /get-online-features, and
feature view `p10` (the same features) fed by the push source `p10_push`,
written by /push.
"""
import argparse
import http.client
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = 10
KNOWN_TS = 1700000000  # 2023-11-14T22:13:20Z
INT64, DOUBLE, STRING = 4, 5, 2


def feature_type(i):
    return DOUBLE if i % 2 == 0 else INT64


def stubs(path):
    sys.path.insert(0, path)


# ---- the registry ------------------------------------------------------------------------------

def cmd_registry(a):
    stubs(a.stubs)
    from feast.core import Registry_pb2 as r
    reg = r.Registry(registry_schema_version="1")
    reg.projects.add().spec.name = a.project
    reg.entities.add().spec.CopyFrom(r.EntitySpecV2(name="driver", join_key="driver_id", value_type=INT64,
                                                    project=a.project))
    feats = [r.FeatureSpecV2(name="f%d" % i, value_type=feature_type(i)) for i in range(FEATURES)]
    key = [r.FeatureSpecV2(name="driver_id", value_type=INT64)]
    batch = r.DataSource(name="bench_file", type=1, timestamp_field="event_timestamp", project=a.project)
    v = reg.feature_views.add()
    v.spec.CopyFrom(r.FeatureViewSpec(name="f%d" % FEATURES, project=a.project, entities=["driver"], features=feats,
                                      entity_columns=key, online=True, batch_source=batch))
    push = r.DataSource(name="p%d_push" % FEATURES, type=9, timestamp_field="event_timestamp", project=a.project,
                        batch_source=batch)
    reg.data_sources.add().CopyFrom(push)
    v = reg.feature_views.add()
    v.spec.CopyFrom(r.FeatureViewSpec(name="p%d" % FEATURES, project=a.project, entities=["driver"], features=feats,
                                      entity_columns=key, online=True, batch_source=batch, stream_source=push))
    with open(a.out, "wb") as f:
        f.write(reg.SerializeToString())


# ---- the known row and the check ---------------------------------------------------------------

def entity_key(k):
    import struct
    name = b"driver_id"
    return (struct.pack("<I", 1) + struct.pack("<I", STRING) + struct.pack("<I", len(name)) + name
            + struct.pack("<I", INT64) + struct.pack("<I", 8) + struct.pack("<q", k))


def known_values(i):
    """f<i> of the known row: even features 0.25 + i (DOUBLE), odd ones 100 * i (INT64)."""
    return i + 0.25 if i % 2 == 0 else 100 * i


def cmd_known_row(a):
    stubs(a.stubs)
    from feast.types.Value_pb2 import Value
    db = sqlite3.connect(a.db, timeout=30)
    with db:
        for i in range(FEATURES):
            v = Value(double_val=known_values(i)) if i % 2 == 0 else Value(int64_val=known_values(i))
            db.execute('INSERT OR REPLACE INTO "%s_f%d" (entity_key, feature_name, value, value_text, event_ts, '
                       'created_ts) VALUES (?, ?, ?, ?, ?, NULL)' % (a.project, FEATURES),
                       (entity_key(a.key), "f%d" % i, v.SerializeToString(), str(known_values(i)), KNOWN_TS))
    db.close()


def post(url, path, body, timeout=30):
    m = re.match(r"http://([^:/]+):(\d+)", url)
    c = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=timeout)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    c.request("POST", path, body=data, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    out = (r.status, r.getheader("Content-Type"), r.read())
    c.close()
    return out


def same(a, b):
    """Equal after JSON parsing, with strict types: 1 and 1.0 differ, as do true and 1."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def columns(body):
    """name -> result: Feast orders the features of one view as a Python set, so the columns are
    compared by name; the echoed join key must still come first (HTTP.md 4.3)."""
    names = body["metadata"]["feature_names"]
    return dict(zip(names, body["results"])), names[0] if names else None


def expected_gof(key, ts, values):
    zero = "1970-01-01T00:00:00Z"
    return {"metadata": {"feature_names": ["driver_id"] + ["f%d" % i for i in range(FEATURES)]},
            "results": [{"values": [key], "statuses": ["PRESENT"], "event_timestamps": [zero]}]
            + [{"values": [values(i)], "statuses": ["PRESENT"], "event_timestamps": [ts]} for i in range(FEATURES)]}


def check_gof(url, view, key, expect):
    body = {"entities": {"driver_id": [key]}, "features": ["%s:f%d" % (view, i) for i in range(FEATURES)]}
    st, ctype, raw = post(url, "/get-online-features", body)
    if st != 200:
        return "POST /get-online-features answered %d: %s" % (st, raw[:300])
    if not (ctype or "").startswith("application/json"):
        return "Content-Type is %r, not application/json" % ctype
    got = json.loads(raw)
    if set(got) != {"metadata", "results"} or set(got["metadata"]) != {"feature_names"}:
        return "top-level keys %s / metadata keys %s, not HTTP.md 4.3's" % (sorted(got), sorted(got.get("metadata", {})))
    gc, gfirst = columns(got)
    ec, _ = columns(expect)
    if gfirst != "driver_id" or len(got["results"]) != len(got["metadata"]["feature_names"]) or not same(gc, ec):
        return "answer differs:\n  got      %s\n  expected %s" % (raw.decode()[:2000], json.dumps(expect))
    return None


def cmd_check(a):
    fails = []
    e = check_gof(a.url, "f%d" % FEATURES, a.key,
                  expected_gof(a.key, "2023-11-14T22:13:20Z", known_values))
    if e:
        fails.append("get-online-features, a stored row: " + e)
    # A push of one row, read back.
    pk = a.key + 1
    pv = lambda i: i + 0.5 if i % 2 == 0 else 1000 * i  # noqa: E731
    df = {"driver_id": [pk], "event_timestamp": ["2024-05-01T12:00:00Z"]}
    df.update({"f%d" % i: [pv(i)] for i in range(FEATURES)})
    st, _, raw = post(a.url, "/push", {"push_source_name": "p%d_push" % FEATURES, "df": df, "to": "online"})
    if st != 200 or raw != b"":
        fails.append("push: answered %d %r, not 200 with an empty body" % (st, raw[:300]))
    else:
        e = check_gof(a.url, "p%d" % FEATURES, pk, expected_gof(pk, "2024-05-01T12:00:00Z", pv))
        if e:
            fails.append("push, then get-online-features: " + e)
    for f in fails:
        print("check %s: %s" % (a.url, f), file=sys.stderr)
    if not fails:
        print("check %s: get-online-features and push answer as HTTP.md 4.3 and 6.4 say" % a.url, file=sys.stderr)
    sys.exit(1 if fails else 0)


# ---- request bodies ----------------------------------------------------------------------------

def cmd_bodies(a):
    rng = random.Random(7)
    with open(os.path.join(a.out, "gof.bodies"), "w") as f:
        for _ in range(512):
            body = {"entities": {"driver_id": [rng.randrange(a.key_space)]},
                    "features": ["f%d:f%d" % (FEATURES, i) for i in range(FEATURES)]}
            f.write(json.dumps(body, separators=(",", ":")) + "\n")
    with open(os.path.join(a.out, "push.bodies"), "w") as f:
        for n in range(64):
            rows = a.rows
            df = {"driver_id": [rng.randrange(a.key_space) for _ in range(rows)]}
            for i in range(FEATURES):
                df["f%d" % i] = ([round(rng.random() * 100, 3) for _ in range(rows)] if i % 2 == 0
                                 else [rng.randrange(100000) for _ in range(rows)])
            df["event_timestamp"] = ["2024-05-01T12:%02d:%02dZ" % (n % 60, r % 60) for r in range(rows)]
            body = {"push_source_name": "p%d_push" % FEATURES, "df": df, "to": "online"}
            f.write(json.dumps(body, separators=(",", ":")) + "\n")


# ---- /proc and wrk -----------------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of PID and of its live descendants, plus what its reaped children used
    (cutime + cstime): a gunicorn worker restarted during the run is still counted."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    s = f.read()
            except OSError:
                continue
            rest = s[s.rindex(")") + 2:].split()
            procs[int(d)] = (int(rest[1]), [int(x) for x in rest[11:15]])  # ppid; utime stime cutime cstime
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen or p not in procs:
            continue
        seen.add(p)
        u, s_, cu, cs = procs[p][1]
        total += u + s_ + (cu + cs if p == pid else 0)
        todo.extend(q for q, (pp, _) in procs.items() if pp == p)
    return total / tick


def cmd_cpu(a):
    print("%.2f" % cpu_seconds(a.pid))


UNITS = {"us": 1, "ms": 1000, "s": 1000000, "m": 60000000}


def to_us(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def cmd_wrk(a):
    out = open(a.file).read()
    pct = {m.group(1): to_us(m.group(2)) for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", out, re.M)
    requests = int(m.group(1)) if m else 0
    secs = to_us(m.group(2) + m.group(3)) / 1e6 if m else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    ok = requests - (int(non2xx.group(1)) if non2xx else 0)
    cpu = float(a.cpu_after) - float(a.cpu_before)
    r = {"label": a.label, "kind": a.kind, "concurrency": a.concurrency, "client": "wrk",
         "rps": ok / secs if secs else 0, "requests": requests, "seconds": secs, "errors": errors,
         "p50_us": pct.get("50"), "p90_us": pct.get("90"), "p99_us": pct.get("99"),
         "cpu_s": round(cpu, 2), "cpu_us_per_request": cpu * 1e6 / ok if ok else None}
    if a.rows:
        r["values_per_s"] = r["rps"] * a.rows * FEATURES
    print(json.dumps(r))


def cmd_grpc(a):
    """One JSON line from build/larder-bench's: requests/s, percentiles, server CPU per request."""
    r = json.loads(open(a.file).read().strip().splitlines()[-1])
    cpu = float(a.cpu_after) - float(a.cpu_before)
    calls = r["qps"] * r["duration_s"]
    errors = sum(r["errors"].values())
    print(json.dumps({"label": a.label, "kind": "gof", "concurrency": r["concurrency"], "client": "larder-bench",
                      "rps": r["qps"], "requests": int(calls), "seconds": r["duration_s"], "errors": errors,
                      "p50_us": r["p50_us"], "p90_us": r["p90_us"], "p99_us": r["p99_us"], "cpu_s": round(cpu, 2),
                      "cpu_us_per_request": cpu * 1e6 / calls if calls else None}))


# ---- the feast-compat vectors ------------------------------------------------------------------

# Cases the vectors give as Feast's answers where Feast's own push path, carried over whole into the
# baseline, answers otherwise (the vectors checked its conversions, not the write): name -> (status, why).
FEAST_DIFFERS = {
    "push_three_rows": (500, "a null `created` becomes pandas' NaT, which Feast's sqlite3 upsert cannot bind "
                             "(sqlite3 adapts by exact type; NaTType has no adapter)"),
    "push_conversions": (500, "the batch source names created_timestamp_column `created`, absent from the frame: "
                              "Feast's _convert_arrow_fv_to_proto reads table.column('created') unconditionally"),
    "push_read_back": (200, "reads the rows of push_three_rows, which Feast did not write"),
}


def cmd_vectors(a):
    """Replays the cases of feast-compat/http_vectors.json that say what Feast answers
    (larder_only cases and /write-to-online-store are left out) against the baseline."""
    stubs(a.stubs)
    v = json.load(open(a.vectors))
    from feast.core import Registry_pb2
    work = tempfile.mkdtemp(prefix="feast-http-vectors-")
    reg_path, db_path = os.path.join(work, "registry.db"), os.path.join(work, "online.db")
    with open(reg_path, "wb") as f:
        f.write(bytes.fromhex(v["registry_hex"]))
    reg = Registry_pb2.Registry()
    reg.ParseFromString(bytes.fromhex(v["registry_hex"]))
    project = v["project"]
    db = sqlite3.connect(db_path)
    views = [x.spec.name for x in list(reg.feature_views) + list(reg.stream_feature_views)]
    for name in views:  # Feast's DDL (sqlite.py update)
        db.execute('CREATE TABLE IF NOT EXISTS "%s_%s" (entity_key BLOB, feature_name TEXT, value BLOB, value_text '
                   'TEXT,  vector_value BLOB, event_ts timestamp, created_ts timestamp,  PRIMARY KEY(entity_key, '
                   'feature_name))' % (project, name))
        db.execute('CREATE INDEX IF NOT EXISTS "%s_%s_ek" ON "%s_%s" (entity_key);' % (project, name, project, name))
    for row in v["stored_rows"]:
        for feat, hexval in row["features"].items():
            db.execute('INSERT OR REPLACE INTO "%s_%s" (entity_key, feature_name, value, event_ts, created_ts) '
                       'VALUES (?, ?, ?, ?, ?)' % (project, row["feature_view"]),
                       (bytes.fromhex(row["entity_key_hex"]), feat, bytes.fromhex(hexval), row["event_ts"],
                        row.get("created_ts")))
    db.commit()
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(os.path.join(work, "baseline.log"), "w")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "feast_http_baseline.py"), "--registry", reg_path,
                             "--db", db_path, "--project", project, "--stubs", a.stubs, "--port", str(port),
                             "--no-access-log"], stdout=log, stderr=log)
    url = "http://127.0.0.1:%d" % port
    passed, failed, skipped, differs = 0, [], [], []
    try:
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        for case in v["http_cases"]:
            req, exp = case["request"], case["expect"]
            if case.get("larder_only") or req["path"] == "/write-to-online-store" or case["name"].startswith("write_"):
                skipped.append(case["name"])
                continue
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            body = req.get("raw_body", "").encode() if "raw_body" in req else (
                json.dumps(req["body"]).encode() if "body" in req else None)
            c.request(req["method"], req["path"], body=body,
                      headers={"Content-Type": "application/json"} if body is not None else {})
            r = c.getresponse()
            raw = r.read()
            why = None
            if case["name"] in FEAST_DIFFERS:
                st, reason = FEAST_DIFFERS[case["name"]]
                if r.status == st:
                    differs.append("%s (%d: %s)" % (case["name"], st, reason))
                    continue
                why = "status %d; expected Feast's %d (%s)" % (r.status, st, reason)
            elif r.status != exp["status"]:
                why = "status %d, expected %d: %s" % (r.status, exp["status"], raw[:300])
            elif "body" in exp:
                got = json.loads(raw)
                gc, gfirst = columns(got)
                ec, efirst = columns(exp["body"])
                if set(got) != set(exp["body"]) or gfirst != efirst or not same(gc, ec):
                    why = "body differs:\n    got      %s\n    expected %s" % (raw.decode()[:1500],
                                                                           json.dumps(exp["body"])[:1500])
            elif exp.get("body_empty") and raw != b"":
                why = "body not empty: %r" % raw[:300]
            elif "error" in exp:
                detail = json.loads(json.loads(raw))
                if (detail.get("module"), detail.get("class")) != (exp["error"]["module"], exp["error"]["class"]):
                    why = "error %s, expected %s" % (detail, exp["error"])
            elif "detail" in exp and "detail" not in json.loads(raw):
                why = "no 'detail' in %r" % raw[:300]
            if why is None:
                for row in case.get("expect_rows", []):
                    got = db.execute('SELECT value, event_ts, created_ts FROM "%s" WHERE entity_key = ? AND '
                                     'feature_name = ?' % row["table"],
                                     (bytes.fromhex(row["entity_key_hex"]), row["feature_name"])).fetchone()
                    want = (row["value_hex"], row["event_ts"], row["created_ts"])
                    if got is None or (got[0].hex(), got[1], got[2]) != want:
                        why = "row %s %s: %s, expected %s" % (row["entity_key_hex"], row["feature_name"],
                                                              got and (got[0].hex(), got[1], got[2]), want)
                        break
            if why:
                failed.append((case["name"], why))
            else:
                passed += 1
    finally:
        proc.terminate()
        proc.wait()
    for name, why in failed:
        print("FAIL %s: %s" % (name, why))
    print("skipped (larder's answers, or /write-to-online-store): %s" % ", ".join(skipped))
    for d in differs:
        print("answered as Feast's own code does, not as the vectors say: %s" % d)
    print("%d passed, %d failed" % (passed, len(failed)))
    sys.exit(1 if failed else 0)


# ---- the report ---------------------------------------------------------------------------------

TITLES = {"larder-http": "larder, HTTP (`http_listen`)", "larder-grpc": "larder, gRPC GetOnlineFeatures",
          "feast-serve": "FastAPI baseline, `feast serve` defaults (uvicorn, 1 worker, access log)",
          "feast-serve-nolog": "FastAPI baseline, `--no-access-log`",
          "feast-gunicorn": "FastAPI baseline, gunicorn (Feast's Linux default)"}


def met(ok):
    """A target's state: met, not met, or not measured (None: larder's HTTP listener is missing)."""
    return "not measured" if ok is None else "yes" if ok else "**no**"


def fmt(x, spec="{:,.0f}"):
    return "—" if x is None else spec.format(x)


def http_section(data_dir):
    """The HTTP section of RESULTS.md (and the rows it adds to the Targets table), from
    plots/data/http.jsonl and http_params.json written by bench/http.sh."""
    path = os.path.join(data_dir, "http.jsonl")
    if not os.path.exists(path):
        return [], []
    rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    params = json.load(open(os.path.join(data_dir, "http_params.json")))
    # Repeated measurements of one (server, kind, concurrency): the run with the median requests/s.
    runs = {}
    for r in rows:
        runs.setdefault((r["label"], r["kind"], r["concurrency"]), []).append(r)
    get = {k: sorted(v, key=lambda r: r["rps"])[len(v) // 2] for k, v in runs.items()}
    repeated = {k: [r["rps"] for r in v] for k, v in runs.items() if len(v) > 1}
    concs = sorted({r["concurrency"] for r in rows if r["kind"] == "gof"})
    baselines = [l for l in ("feast-serve", "feast-serve-nolog", "feast-gunicorn")
                 if any(k[0] == l for k in get)]
    http_ok = params.get("larder_http") == "available"

    def best_baseline(kind, c, key="rps", low=False):
        vals = [(get[(l, kind, c)][key], l) for l in baselines if (l, kind, c) in get and get[(l, kind, c)][key]]
        if not vals:
            return None, None
        return (min(vals) if low else max(vals))

    targets = []
    for c in (16, 64):
        b, bl = best_baseline("gof", c)
        lh = get.get(("larder-http", "gof", c))
        if lh and b:
            r = lh["rps"] / b
            targets.append(("HTTP get-online-features 1x10 at concurrency %d: at least 10 x the FastAPI baseline's "
                            "requests/s" % c, r >= 10, "%.1f x (%s vs %s req/s, %s)" % (r, fmt(lh["rps"]), fmt(b),
                                                                                   TITLES[bl].split(", ", 1)[1])))
        else:
            targets.append(("HTTP get-online-features 1x10 at concurrency %d: at least 10 x the FastAPI baseline's "
                            "requests/s" % c, None, "larder HTTP: not available (baseline %s req/s)" % fmt(b)))
    p99s = []
    for c in concs:
        b, _ = best_baseline("gof", c, "p99_us", low=True)
        lh = get.get(("larder-http", "gof", c))
        p99s.append(lh is not None and b is not None and lh["p99_us"] < b)
    targets.append(("HTTP get-online-features: lower p99 than the baseline at every concurrency",
                    (all(p99s) and bool(p99s)) if http_ok else None,
                    "lower at %s" % ("all" if all(p99s) else "not all") if http_ok else "larder HTTP: not available"))
    for c in concs:
        lh, lg = get.get(("larder-http", "gof", c)), get.get(("larder-grpc", "gof", c))
        if lh and lg and lh["cpu_us_per_request"] and lg["cpu_us_per_request"]:
            r = lh["cpu_us_per_request"] / lg["cpu_us_per_request"]
            targets.append(("server CPU per request, HTTP vs gRPC GetOnlineFeatures, 1x10, concurrency %d: at most 2 x"
                            % c, r <= 2, "%.2f x (%.1f vs %.1f us)" % (r, lh["cpu_us_per_request"],
                                                                     lg["cpu_us_per_request"])))
        else:
            targets.append(("server CPU per request, HTTP vs gRPC GetOnlineFeatures, 1x10, concurrency %d: at most 2 x"
                            % c, None, "larder HTTP: not available (gRPC %s us)" %
                            fmt(lg and lg["cpu_us_per_request"], "{:.1f}")))
    lp = [r for r in rows if r["label"] == "larder-http" and r["kind"] == "push"]
    if lp:
        best = max(r["values_per_s"] for r in lp)
        targets.append(("HTTP push on SQLite: at least 50,000 feature values/s", best >= 50000,
                        "%s values/s" % fmt(best)))
    else:
        targets.append(("HTTP push on SQLite: at least 50,000 feature values/s", None, "larder HTTP: not available"))

    w = []
    w.append("## HTTP: Feast's feature-server API against `feast serve`\n")
    w.append("`bench/http.sh`, run on %s: %s. Every figure of this section comes from that one run; the "
             "sections above are `bench/run.sh`'s. larder's HTTP listener: **%s**.\n"
             % (params["date"], params["machine"], params["larder_http"]))
    w.append("- Servers on CPU 0, the load generator on CPU 1 (`taskset`); every server is started once and "
             "they are measured back to back, the others paused (SIGSTOP) meanwhile.")
    w.append("- HTTP load: `wrk -t1 -c C -d %ss --latency -s bench/http.lua` after a %s s warm-up, POSTing one of "
             "512 bodies of 1 entity (random of %s) x %d features (`f10:f0` ... `f10:f9`); pushes: 64 bodies of "
             "%s rows x %d features to the push source `p10_push` (upserts of random entities)."
             % (params["duration"], params["warmup"], fmt(params["key_space"]), FEATURES, params["push_rows"],
                FEATURES))
    if repeated:
        w.append("- Reads were measured in %d rounds, the servers alternating; the tables show each server's run "
                 "with the median requests/s. All runs (requests/s): %s." % (params.get("rounds", 1), "; ".join(
                     "%s c=%d: %s" % (k[0], k[2], ", ".join(fmt(x) for x in v)) for k, v in sorted(repeated.items()))))
    w.append("- gRPC load: `build/larder-bench --method gof`, the same shape through "
             "`ServingService/GetOnlineFeatures`, up to 4 channels. The two load generators differ, so HTTP and gRPC "
             "are compared by the server's CPU per request, not by throughput: CPU seconds (utime + stime of the "
             "server and its children, from `/proc/PID/stat`) over the measured run, divided by the requests "
             "answered in it.")
    w.append("- The baseline: `bench/feast_http_baseline.py`, Feast's feature-server code path for "
             "`/get-online-features` and `/push` on SQLite (request models, registry resolution and its cache, "
             "entity key serialization, `online_read`'s SELECT and `ParseFromString`, "
             "`convert_response_to_dict`, `JSONResponse`; the push path through pandas and the upserts of "
             "`online_write_batch` in one transaction), run as `feast serve` runs it: %s. "
             "Ratios are taken against the best baseline variant at each concurrency."
             % params["baseline"])
    w.append("- Versions: %s.\n" % params["versions"])
    w.append("| target | met | measured |")
    w.append("|---|---|---|")
    for name, ok, what in targets:
        w.append("| %s | %s | %s |" % (name, met(ok), what))
    w.append("")
    w.append("### get-online-features, 1 entity x 10 features\n")
    w.append("| server | concurrency | requests/s | p50 us | p90 us | p99 us | server CPU us/request | errors |")
    w.append("|---|---|---|---|---|---|---|---|")
    for label in ("larder-http", "larder-grpc") + tuple(baselines):
        for c in concs:
            r = get.get((label, "gof", c))
            if r:
                w.append("| %s | %d | %s | %s | %s | %s | %s | %d |" % (
                    TITLES[label], c, fmt(r["rps"]), fmt(r["p50_us"]), fmt(r["p90_us"]), fmt(r["p99_us"]),
                    fmt(r["cpu_us_per_request"], "{:,.1f}"), r["errors"]))
    w.append("")
    w.append("| ratio | " + " | ".join("c=%d" % c for c in concs) + " |")
    w.append("|---|" + "---|" * len(concs))
    for name, f in (("larder HTTP / best baseline, requests/s",
                     lambda c: (get[("larder-http", "gof", c)]["rps"] / best_baseline("gof", c)[0])
                     if ("larder-http", "gof", c) in get and best_baseline("gof", c)[0] else None),
                    ("larder HTTP / larder gRPC, server CPU per request",
                     lambda c: (get[("larder-http", "gof", c)]["cpu_us_per_request"]
                                / get[("larder-grpc", "gof", c)]["cpu_us_per_request"])
                     if ("larder-http", "gof", c) in get and ("larder-grpc", "gof", c) in get else None),
                    ("best baseline / larder gRPC, server CPU per request",
                     lambda c: (min(get[(l, "gof", c)]["cpu_us_per_request"] for l in baselines if (l, "gof", c) in get)
                                / get[("larder-grpc", "gof", c)]["cpu_us_per_request"])
                     if ("larder-grpc", "gof", c) in get and baselines else None)):
        w.append("| %s | %s |" % (name, " | ".join(fmt(f(c), "{:.2f}") for c in concs)))
    w.append("")
    push = [r for k, r in sorted(get.items()) if k[1] == "push"]
    if push:
        w.append("### push, %s rows x %d features per request\n" % (params["push_rows"], FEATURES))
        w.append("| server | concurrency | requests/s | feature values/s | p50 us | p99 us | server CPU us/request "
                 "| errors |")
        w.append("|---|---|---|---|---|---|---|---|")
        for label in ("larder-http",) + tuple(baselines):
            for r in push:
                if r["label"] == label:
                    w.append("| %s | %d | %s | %s | %s | %s | %s | %d |" % (
                        TITLES[label], r["concurrency"], fmt(r["rps"], "{:,.1f}"), fmt(r["values_per_s"]),
                        fmt(r["p50_us"]), fmt(r["p99_us"]), fmt(r["cpu_us_per_request"], "{:,.0f}"), r["errors"]))
        w.append("")
    notes = os.path.join(HERE, "http-analysis.md")
    if os.path.exists(notes):
        w.append(open(notes).read().strip() + "\n")
    return targets, w


def cmd_report(a):
    targets, lines = http_section(a.data)
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("registry")
    p.add_argument("--stubs", required=True)
    p.add_argument("--project", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("known-row")
    p.add_argument("--stubs", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--project", required=True)
    p.add_argument("--key", type=int, required=True)
    p = sub.add_parser("check")
    p.add_argument("--url", required=True)
    p.add_argument("--key", type=int, required=True)
    p = sub.add_parser("bodies")
    p.add_argument("--out", required=True)
    p.add_argument("--key-space", type=int, required=True)
    p.add_argument("--rows", type=int, default=100)
    p = sub.add_parser("cpu")
    p.add_argument("pid", type=int)
    p = sub.add_parser("wrk")
    p.add_argument("--label", required=True)
    p.add_argument("--kind", required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--cpu-before", required=True)
    p.add_argument("--cpu-after", required=True)
    p.add_argument("--rows", type=int, default=0)
    p.add_argument("file")
    p = sub.add_parser("grpc")
    p.add_argument("--label", required=True)
    p.add_argument("--cpu-before", required=True)
    p.add_argument("--cpu-after", required=True)
    p.add_argument("file")
    p = sub.add_parser("vectors")
    p.add_argument("--stubs", required=True)
    p.add_argument("--vectors", required=True)
    p = sub.add_parser("report")
    p.add_argument("--data", required=True)
    a = ap.parse_args()
    {"registry": cmd_registry, "known-row": cmd_known_row, "check": cmd_check, "bodies": cmd_bodies,
     "cpu": cmd_cpu, "wrk": cmd_wrk, "grpc": cmd_grpc, "vectors": cmd_vectors, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
