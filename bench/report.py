#!/usr/bin/python3
"""Turns the raw results of bench/run.sh into bench/RESULTS.md and PNG plots
(gnuplot): the targets of the benchmark as ratios from one run, every
measurement in tables, the machine, and the hand-written analysis in
bench/analysis.md."""
import argparse
import json
import os
import platform
import subprocess
import sys
from collections import defaultdict

SERVERS = ["larder-sqlite", "echo", "python-peer", "larder-postgres", "postgres-c", "postgres-c-pipe", "postgres-c-key",
           "larder-mysql", "mysql-c", "mysql-c-pipe", "mysql-c-key"]
TITLES = {
    "larder-sqlite": "larder (SQLite)", "echo": "echo ceiling (gRPC C core)", "python-peer": "Python peer (grpcio + sqlite3)",
    "larder-postgres": "larder (PostgreSQL)", "postgres-c": "plain C client, naive (PostgreSQL)",
    "postgres-c-pipe": "plain C client, pipelined (PostgreSQL)",
    "postgres-c-key": "plain C client, pipelined, a statement per key (PostgreSQL)",
    "larder-mysql": "larder (MariaDB)", "mysql-c": "plain C client, naive (MariaDB)",
    "mysql-c-pipe": "plain C client, multi-statement (MariaDB)",
    "mysql-c-key": "plain C client, multi-statement, a statement per key (MariaDB)",
}
CPU_TARGET = 1 / 0.7  # server CPU per read (larder + database) / the database's under the plain client


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def machine():
    cpu = sh("awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo")
    return [
        ("CPU", "%s, %s cores" % (cpu or platform.processor(), os.cpu_count())),
        ("memory", sh("awk '/MemTotal/{printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")),
        ("system", "%s, kernel %s" % (sh(". /etc/os-release && echo $PRETTY_NAME"), platform.release())),
        ("gRPC core", sh("pkg-config --modversion grpc") + " (libgrpc %s)" % sh("dpkg-query -W -f='${Version}' libgrpc29 2>/dev/null || dpkg-query -W -f='${Version}' libgrpc-dev")),
        ("SQLite", sh("pkg-config --modversion sqlite3")),
        ("PostgreSQL", sh("ls /usr/lib/postgresql | sort -V | tail -1") + " (libpq %s)" % sh("pkg-config --modversion libpq")),
        ("MariaDB", sh("mariadbd --version 2>/dev/null | awk '{print $3}'") + " (Connector/C %s)" % sh("pkg-config --modversion libmariadb")),
        ("Python", sh("/usr/bin/python3 -c 'import sys, grpc; print(sys.version.split()[0], \"grpcio\", grpc.__version__)'")),
        ("h2load", sh("h2load --version | head -1")),
    ]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def shape_of(r):
    return "write" if r["method"] == "write" else "%dx%d" % (r["keys"], r.get("features") or 0)


def fmt_int(x):
    return "{:,}".format(int(round(x)))


def f1(x):
    return "—" if x is None else "%.1f" % x


def median_of(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def server_cpu(r):
    """larder's CPU per read plus the database's under it, or None when a run lacks either."""
    cpu = r.get("cpu_us_per_call") or {}
    return cpu["larder"] + cpu["db"] if cpu.get("larder") is not None and cpu.get("db") is not None else None


def cpu_table(table, runs, shapes, concs):
    """Per database, shape and concurrency: larder's and the database's CPU per read under larder,
    the database's under the naive and the pipelined plain client, and the ratio of the target.
    Where a cell was measured several times (alternating), each figure is the median of its runs:
    larder's run with the median server CPU (larder + database), the plain client's median."""
    out = []
    for db in ("postgres", "mysql"):
        for shape in shapes:
            for c in concs:
                lr = table.get(("larder-" + db, shape, c))
                served = sorted((r for r in runs.get(("larder-" + db, shape, c), []) if server_cpu(r) is not None),
                                key=server_cpu)
                cpu = served[len(served) // 2]["cpu_us_per_call"] if served else {}
                naive = median_of(r.get("db_cpu_us_per_read") for r in runs.get((db + "-c", shape, c), []))
                pipe_row = table.get((db + "-c-pipe", shape, c)) or {}
                pipe = median_of(r.get("db_cpu_us_per_read") for r in runs.get((db + "-c-pipe", shape, c), []))
                if not cpu and naive is None and pipe is None:
                    continue
                refs = [x for x in (naive, pipe) if x is not None and x > 0]
                ref = min(refs) if refs else None
                larder_us, db_us = cpu.get("larder"), cpu.get("db")
                ok = larder_us is not None and db_us is not None and larder_us >= 0 and db_us >= 0
                pipe_qps = pipe_row.get("qps") or (table.get((db + "-c", shape, c)) or {}).get("qps")
                out.append({"db": db, "shape": shape, "c": c, "larder_us": larder_us, "db_us": db_us,
                            "naive_us": naive, "pipe_us": pipe, "ref_us": ref,
                            "ratio": (larder_us + db_us) / ref if ok and ref else None,
                            "qps": lr["qps"] if lr else None, "pipe_qps": pipe_qps,
                            "qps_ratio": lr["qps"] / pipe_qps if lr and pipe_qps else None,
                            "runs": len(served)})
    return out


def soak_section(path):
    """The Soak section: resident memory and p99 over the run of bench/soak.sh."""
    with open(path) as f:
        rows = [[float(x) for x in l.split("\t")] for l in f if l.strip() and not l.startswith("#")]
    if not rows:
        return []
    t = [r[0] for r in rows]
    rss = [r[1] / 1024 for r in rows]
    # Least-squares slope of VmRSS after the first minute (warm-up: caches and pools filling).
    pts = [(x, y) for x, y in zip(t, rss) if x > 60] or list(zip(t, rss))
    n = len(pts)
    mx, my = sum(x for x, _ in pts) / n, sum(y for _, y in pts) / n
    var = sum((x - mx) ** 2 for x, _ in pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / var * 3600 if var else 0.0
    after = [y for x, y in pts]
    rp99 = sorted(r[4] for r in rows)
    wp99 = sorted(r[6] for r in rows)
    errors = int(sum(r[7] for r in rows))
    reads = sum(r[3] for r in rows) / len(rows)
    writes = sum(r[5] for r in rows) / len(rows)
    w = []
    w.append("## Soak: %d minutes of mixed load\n" % round(t[-1] / 60))
    w.append("`bench/soak.sh`: larder on SQLite (CPU 0) serving reads of one key and ten features at "
             "concurrency 16 and writes of ten rows at concurrency 2 (CPU 1), over 10,000 entities, sampled "
             "every %d s; the raw record is `plots/data/soak.tsv`.\n" % (t[1] - t[0] if len(t) > 1 else t[0]))
    w.append("| | |")
    w.append("|---|---|")
    w.append("| VmRSS at the first sample, after the first minute, at the end | %.1f / %.1f / %.1f MiB |"
             % (rss[0], after[0], rss[-1]))
    w.append("| VmRSS after the first minute: lowest, highest | %.1f / %.1f MiB |" % (min(after), max(after)))
    w.append("| VmRSS trend after the first minute (least squares) | %+.2f MiB per hour |" % slope)
    w.append("| read p99 per interval: median, worst | %d / %d us |" % (rp99[len(rp99) // 2], rp99[-1]))
    w.append("| write p99 per interval: median, worst | %d / %d us |" % (wp99[len(wp99) // 2], wp99[-1]))
    w.append("| mean throughput | %.0f reads/s, %.0f writes/s (each of 10 rows) |" % (reads, writes))
    w.append("| failed calls | %d |" % errors)
    calls = sum((r[3] + r[5]) * (t[1] - t[0] if len(t) > 1 else t[0]) for r in rows)
    w.append("| calls served; VmRSS change from the first to the last sample | %.1f million; %+.1f MiB (%.1f bytes per thousand calls) |"
             % (calls / 1e6, rss[-1] - rss[0], (rss[-1] - rss[0]) * 1048576 / (calls / 1000) if calls else 0))
    w.append("")
    w.append("![soak](plots/soak.png)\n")
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "soak-analysis.md")
    if os.path.exists(notes):
        with open(notes) as f:
            w.append(f.read().strip() + "\n")
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--memory", required=True)
    ap.add_argument("--h2load", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--smoke", type=int, default=0)
    ap.add_argument("--duration")
    ap.add_argument("--warmup")
    ap.add_argument("--db-workers")
    ap.add_argument("--soak", help="the record of bench/soak.sh (plots/data/soak.tsv)")
    a = ap.parse_args()
    # The run's settings: given, else as recorded beside the raw data (plots/data/params.json).
    params = {"duration": "3", "warmup": "1", "db_workers": "2"}
    recorded = os.path.join(os.path.dirname(os.path.abspath(a.results)), "params.json")
    if os.path.exists(recorded):
        with open(recorded) as f:
            params.update(json.load(f))
    for k, v in params.items():
        if k != "machine" and getattr(a, k, "") is None:
            setattr(a, k, v)
    # The machine the measurements were taken on: recorded beside them the first time, so that
    # writing the report again later (soak.sh, http.sh) does not describe another machine.
    machine_facts = params.get("machine")
    if machine_facts is None:
        machine_facts = machine()
        if os.path.exists(recorded) and not a.smoke:
            with open(recorded) as f:
                kept = json.load(f)
            kept["machine"] = machine_facts
            with open(recorded, "w") as f:
                f.write(json.dumps(kept) + "\n")
    rows = load(a.results)
    here = os.path.dirname(os.path.abspath(__file__))

    # Repeated measurements of one (server, shape, concurrency): the run with the median QPS.
    runs = defaultdict(list)
    for r in rows:
        runs[(r["label"], shape_of(r), r["concurrency"])].append(r)
    table = {k: sorted(v, key=lambda r: r["qps"])[len(v) // 2] for k, v in runs.items()}
    repeated = {k: [r["qps"] for r in v] for k, v in runs.items()
                if len(v) > 1 and k[0] in ("larder-sqlite", "echo")}

    shapes = [s for s in ["1x10", "1x50", "10x50", "100x50"] if any(k[1] == s for k in table)]
    concs = sorted({k[2] for k in table if k[1] != "write"})
    writes = sorted({k[2] for k in table if k[1] == "write"})
    mem = []
    if os.path.exists(a.memory):
        with open(a.memory) as f:
            mem = [l.split() for l in f if l.strip()]
    h2 = []
    if os.path.exists(a.h2load):
        with open(a.h2load) as f:
            h2 = [l.split() for l in f if l.strip()]

    def get(label, shape, c, key="qps"):
        r = table.get((label, shape, c))
        return r[key] if r else None

    def ratio(x, y):
        return x / y if x and y else None

    # ---- targets ---------------------------------------------------------------
    targets = []
    hi = max(concs) if concs else 64
    mid = 16 if 16 in concs else (concs[0] if concs else 16)
    r = ratio(get("larder-sqlite", "1x10", hi), get("echo", "1x10", hi))
    targets.append(("SQLite read 1x10 at concurrency %d: at least 0.6 x the echo ceiling's QPS" % hi,
                    r is not None and r >= 0.6, "%.2f x (%s vs %s QPS)" % (r or 0, fmt_int(get("larder-sqlite", "1x10", hi) or 0),
                                                                       fmt_int(get("echo", "1x10", hi) or 0))))
    r = ratio(get("larder-sqlite", "1x10", mid, "p99_us"), get("echo", "1x10", mid, "p99_us"))
    targets.append(("p99 of larder within 2 x the echo ceiling's p99 at concurrency %d, 1x10" % mid,
                    r is not None and r <= 2.0, "%.2f x (%s vs %s us)" % (r or 0, get("larder-sqlite", "1x10", mid, "p99_us"),
                                                                      get("echo", "1x10", mid, "p99_us"))))
    for shape in ("1x10", "100x50"):
        if shape not in shapes:
            continue
        q = ratio(get("larder-sqlite", shape, hi), get("python-peer", shape, hi))
        p99_ok = all((get("larder-sqlite", shape, c, "p99_us") or 1e12) < (get("python-peer", shape, c, "p99_us") or 0)
                     for c in concs)
        targets.append(("%s: at least 5 x the Python peer's QPS (concurrency %d), and lower p99 at every concurrency" % (shape, hi),
                        q is not None and q >= 5 and p99_ok,
                        "%.1f x QPS; p99 lower at %s" % (q or 0, "all" if p99_ok else "not all")))
    # Server CPU per read on the network databases: larder's and the database's, against the
    # database's own under the plain client at its best (the lower of naive and pipelined).
    cpu_rows = cpu_table(table, runs, shapes, concs)
    for db, label in (("postgres", "PostgreSQL"), ("mysql", "MariaDB")):
        rows_db = [r for r in cpu_rows if r["db"] == db and r["shape"] in ("1x10", "10x50", "100x50")
                   and r["c"] >= mid and r["ratio"] is not None]
        if not rows_db:
            continue
        worst = max(rows_db, key=lambda r: r["ratio"])
        qps = [r["qps_ratio"] for r in rows_db if r["qps_ratio"]]
        targets.append(("%s OnlineRead, shapes %s at concurrency %s: server CPU per read (larder + database) at most "
                        "1/0.7 = %.2f x the database's CPU per read under the plain client (pipelined or naive, "
                        "the lower; each figure the median of three alternating runs)" % (label, ", ".join(sorted({r["shape"] for r in rows_db}, key=shapes.index)),
                                        " and ".join(str(c) for c in sorted({r["c"] for r in rows_db})), CPU_TARGET),
                        all(r["ratio"] <= CPU_TARGET for r in rows_db),
                        "worst %.2f x (%s, concurrency %d: %.1f + %.1f us vs %.1f us); %d of %d met; reads/s %.2f-%.2f "
                        "x the pipelined client's" % (worst["ratio"], worst["shape"], worst["c"], worst["larder_us"],
                                                      worst["db_us"], worst["ref_us"],
                                                      sum(r["ratio"] <= CPU_TARGET for r in rows_db), len(rows_db),
                                                      min(qps) if qps else 0, max(qps) if qps else 0)))
    best_w = max([get("larder-sqlite", "write", c) or 0 for c in writes] or [0])
    targets.append(("SQLite writes: at least 50,000 feature values/s (100 rows x 10 features)", best_w * 1000 >= 50000,
                    "%s values/s" % fmt_int(best_w * 1000)))
    if mem:
        one = [m for m in mem if m[0] == "sqlite" and m[1] == "1x10"]
        if one:
            targets.append(("resident memory of larder on SQLite under 1x10 reads at concurrency %d: at most 64 MiB" % hi,
                            int(one[0][2]) / 1024 <= 64, "peak VmRSS %.1f MiB (of it anonymous memory %.1f MiB)"
                            % (int(one[0][2]) / 1024, int(one[0][3]) / 1024)))
        worst = max(mem, key=lambda m: int(m[2]))
        peak, anon = int(worst[2]) / 1024, int(worst[3]) / 1024
        targets.append(("resident memory under load at concurrency %d, every store and shape: at most 64 MiB" % hi,
                        peak <= 64, "peak VmRSS %.1f MiB (of it anonymous memory %.1f MiB), %s %s"
                        % (peak, anon, worst[0], worst[1])))

    # The delayed-database runs (proxy.jsonl beside results.jsonl): targets and section.
    sys.path.insert(0, here)
    import proxy_tool
    plots = os.path.join(a.out, "plots")
    os.makedirs(plots, exist_ok=True)
    proxy_targets, proxy_lines, _ = proxy_tool.section(os.path.dirname(os.path.abspath(a.results)), plots)
    targets[2:2] = proxy_targets

    # bench/http.sh's record, when there is one: its targets join the table, its section follows.
    import http_tool
    http_targets, http_lines = http_tool.http_section(os.path.dirname(os.path.abspath(a.results)))
    targets.extend(http_targets)

    # Issue 17's targets first (one round trip; server CPU per read; SQLite and memory kept), then the rest.
    first = ("GetOnlineFeatures over", "PostgreSQL OnlineRead", "MariaDB OnlineRead", "SQLite read 1x10",
             "resident memory of larder on SQLite", "OnlineWriteBatch", "resident memory under load")
    targets.sort(key=lambda t: next((i for i, k in enumerate(first) if t[0].startswith(k)), len(first)))

    # ---- plots -----------------------------------------------------------------------
    data = os.path.join(plots, "data")
    os.makedirs(data, exist_ok=True)
    images = []
    for shape in shapes:
        lines = []
        for label in SERVERS:
            pts = [(c, get(label, shape, c)) for c in concs if get(label, shape, c)]
            if not pts:
                continue
            fn = os.path.join(data, "qps_%s_%s.dat" % (shape, label))
            with open(fn, "w") as f:
                f.writelines("%d %f\n" % p for p in pts)
            lines.append("'%s' using 1:2 with linespoints lw 2 title '%s'" % (fn, TITLES[label]))
        png = "qps_%s.png" % shape
        gp = ("set terminal png size 900,520 font ',10'; set output '%s'; set title 'Reads of %s (keys x features): QPS by concurrency';"
              "set xlabel 'concurrent calls'; set ylabel 'calls per second'; set logscale x 2; set logscale y 10;"
              "set key outside right; set grid; plot %s" % (os.path.join(plots, png), shape, ", ".join(lines)))
        subprocess.run(["gnuplot", "-e", gp], check=True)
        images.append(("QPS, %s" % shape, "plots/" + png))
        # latency percentiles at the middle concurrency
        fn = os.path.join(data, "lat_%s.dat" % shape)
        labels = [l for l in SERVERS if get(l, shape, mid)]
        with open(fn, "w") as f:
            for l in labels:
                t = table[(l, shape, mid)]
                f.write('"%s" %d %d %d %d\n' % (TITLES[l], t["p50_us"], t["p90_us"], t["p99_us"], t["p999_us"]))
        png = "latency_%s.png" % shape
        gp = ("set terminal png size 900,520 font ',10'; set output '%s'; set title 'Reads of %s: latency percentiles at concurrency %d';"
              "set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1;"
              "set ylabel 'microseconds'; set logscale y 10; set xtics rotate by -25; set key top left; set grid y;"
              "plot '%s' using 2:xtic(1) title 'p50', '' using 3 title 'p90', '' using 4 title 'p99', '' using 5 title 'p99.9'"
              % (os.path.join(plots, png), shape, mid, fn))
        subprocess.run(["gnuplot", "-e", gp], check=True)
        images.append(("latency, %s" % shape, "plots/" + png))

    # ---- RESULTS.md ---------------------------------------------------------------------
    out = []
    w = out.append
    w("# larder benchmark results\n")
    if a.smoke:
        w("**Smoke run: one second per measurement, for checking the script only. These numbers mean nothing.**\n")
    w("Produced by `bench/run.sh` (which wrote this file). Every figure below comes from one run on one "
      "machine; the targets are ratios between servers measured back to back in that run." +
      (" The HTTP targets and section come from `bench/http.sh`'s own run (its date and machine are given "
       "there)." if http_lines else "") + "\n")
    w("## Targets\n")
    w("| target | met | measured |")
    w("|---|---|---|")
    for name, ok, what in targets:
        w("| %s | %s | %s |" % (name, http_tool.met(ok), what))
    w("")
    if os.path.exists(os.path.join(here, "analysis.md")):
        with open(os.path.join(here, "analysis.md")) as f:
            w(f.read().strip() + "\n")
    w("## How it was measured\n")
    w("- Each server runs pinned to CPU 0 and each load generator to CPU 1 (`taskset`); every server "
      "compared is started once and they are measured back to back, shape by shape.")
    w("- Load: `build/larder-bench`, a closed-loop client on the gRPC C core, %s s warm-up then %s s measured, "
      "up to 4 channels (TCP connections), requests encoded before the run. A read of KxF asks for K random "
      "keys (of 10,000 entities) of a view whose entities have F features, all features returned." % (a.warmup, a.duration))
    w("- `larder (SQLite)`: `build/larder serve`, default settings (one worker, as the process is pinned to one "
      "CPU). `larder (PostgreSQL)` and `larder (MariaDB)`: `workers: %s`, since a worker waits for its database "
      "round trip." % a.db_workers)
    w("- `echo ceiling`: `build/larder-echo`, larder's threading and call sequence on the same gRPC core, "
      "answering with larder's own reply bytes for the shape, doing nothing else.")
    w("- `Python peer`: `bench/py_peer.py`, Python grpcio (asyncio) over sqlite3 with Feast's SQLite read code, on the same database file.")
    w("- `plain C client`: `build/db-ceiling`, the identical SELECT larder prepares with the same binary "
      "parameters and, on PostgreSQL, the same session setting (`plan_cache_mode = force_generic_plan`: "
      "a prepared read planned once), no gRPC. *Naive*: one thread and connection per concurrent read, each waiting for its "
      "statement's answer. *Pipelined*: as many connections as larder has workers (%s), each keeping its share "
      "of the concurrent reads in flight — PostgreSQL in libpq's pipeline mode (a statement and a Sync per read, "
      "sent without waiting); MariaDB as far as Connector/C allows, a multi-statement query of the connection's "
      "reads (Connector/C has one command in flight per connection, so prepared statements cannot be pipelined; "
      "the text protocol's multi-statements are its one way to several statements per round trip). *A "
      "statement per key*: the pipelined client with one statement for each key, as Feast's MySQL store reads."
      % a.db_workers)
    w("- CPU per read: utime + stime from `/proc/PID/stat` of larder and of the database (mariadbd; "
      "PostgreSQL's postmaster with every backend and helper it started), read by the load generator at the "
      "start and the end of the measured seconds, divided by the reads answered in them. The load generators' "
      "own CPU is not counted: on two shared cores a gRPC client costs about three times a libpq client per "
      "read, which reads per second would charge to larder.")
    if repeated:
        w("- Measured three times, alternating, where the first target's ratio comes from (the run with the "
          "median QPS is shown): " + "; ".join("%s %s c=%d: %s QPS" % (TITLES[k[0]], k[1], k[2], ", ".join(fmt_int(q) for q in v))
                                              for k, v in sorted(repeated.items())) + ".")
    cpu_rep = [r for r in cpu_rows if r.get("runs", 0) > 1]
    if cpu_rep:
        def cpu_runs(label, shape, c, fn):
            return ", ".join(f1(fn(r)) for r in runs.get((label, shape, c), []))
        w("- Measured %d times, alternating (larder, the naive client, the pipelined client), where the server CPU "
          "targets come from; each figure in them is the median of its runs, for one run of a busy shared "
          "machine can be far off. Server CPU per read (larder + database) and the pipelined client's database "
          "CPU per read, in us: " % max(r["runs"] for r in cpu_rep) + "; ".join(
              "%s %s c=%d: larder %s, pipelined %s" % (
                  "PostgreSQL" if r["db"] == "postgres" else "MariaDB", r["shape"], r["c"],
                  cpu_runs("larder-" + r["db"], r["shape"], r["c"], server_cpu),
                  cpu_runs(r["db"] + "-c-pipe", r["shape"], r["c"], lambda x: x.get("db_cpu_us_per_read")))
              for r in cpu_rep) + ".")
    w("- The raw measurements, one JSON line per run, are in `plots/data/results.jsonl` (memory and h2load "
      "beside it); `bench/report.py` writes this file and the plots again from them.")
    w("- Commands, as run by `bench/run.sh` (ports vary):\n")
    w("```sh")
    w("taskset -c 0 build/larder serve -c feature_store.yaml")
    w("taskset -c 1 build/larder-bench --target 127.0.0.1:PORT --view f10 --features 10 --keys 1 --concurrency 64 --warmup %s --duration %s" % (a.warmup, a.duration))
    w("taskset -c 0 build/larder-echo --listen 127.0.0.1:PORT --reply reply_1x10.bin")
    w("taskset -c 0 /usr/bin/python3 bench/py_peer.py --db online.db --project bench --listen 127.0.0.1:PORT --stubs STUBS")
    w("taskset -c 1 build/db-ceiling --backend postgres --table bench_f10 --keys 1 --concurrency 64 --warmup %s --duration %s --db-pid PID" % (a.warmup, a.duration))
    w("taskset -c 1 build/db-ceiling --backend postgres --table bench_f10 --keys 1 --concurrency 64 --connections %s --warmup %s --duration %s --db-pid PID" % (a.db_workers, a.warmup, a.duration))
    w("taskset -c 1 build/larder-bench --target 127.0.0.1:PORT --view f10 --features 10 --keys 1 --concurrency 64 --cpu-pid larder=PID --cpu-pid db=PID")
    w("taskset -c 1 build/delay-proxy --listen 127.0.0.1:0 --target 127.0.0.1:DBPORT --delay-ms 2.5 --control 127.0.0.1:0 --protocol pg")
    w("taskset -c 1 build/larder-bench --target 127.0.0.1:PORT --method gof --view g0,g1,g2,g3,g4,g5,g6,g7 --features 10 --keys 1 --concurrency 1 --warmup 0 --duration 3")
    w("taskset -c 1 h2load -n 200000 -c 4 -m 16 -d request_1x10.grpc -H 'content-type: application/grpc' -H 'te: trailers' http://127.0.0.1:PORT/larder.v1.OnlineStore/OnlineRead")
    w("```\n")
    w("## Machine\n")
    w("| | |")
    w("|---|---|")
    for k, v in machine_facts:
        w("| %s | %s |" % (k, v))
    w("")
    w("## Reads\n")
    for shape in shapes:
        w("### %s (keys x features)\n" % shape)
        w("| server | concurrency | QPS | p50 us | p90 us | p99 us | p99.9 us | max us | errors |")
        w("|---|---|---|---|---|---|---|---|---|")
        for label in SERVERS:
            for c in concs:
                t = table.get((label, shape, c))
                if not t:
                    continue
                errs = sum(t["errors"].values()) if t.get("errors") else 0
                w("| %s | %d | %s | %d | %d | %d | %d | %d | %d |" % (TITLES[label], c, fmt_int(t["qps"]), t["p50_us"], t["p90_us"],
                                                                  t["p99_us"], t["p999_us"], t["max_us"], errs))
        w("")
        w("| ratio | " + " | ".join("c=%d" % c for c in concs) + " |")
        w("|---|" + "---|" * len(concs))
        for num, den, name in (("larder-sqlite", "echo", "larder (SQLite) / echo ceiling, QPS"),
                               ("larder-sqlite", "python-peer", "larder (SQLite) / Python peer, QPS"),
                               ("larder-postgres", "postgres-c", "larder / naive plain client, PostgreSQL, QPS"),
                               ("larder-postgres", "postgres-c-pipe", "larder / pipelined plain client, PostgreSQL, QPS"),
                               ("larder-mysql", "mysql-c", "larder / naive plain client, MariaDB, QPS"),
                               ("larder-mysql", "mysql-c-pipe", "larder / multi-statement plain client, MariaDB, QPS")):
            vals = [ratio(get(num, shape, c), get(den, shape, c)) for c in concs]
            w("| %s | %s |" % (name, " | ".join("%.2f" % v if v else "-" for v in vals)))
        w("")
    for title, png in images:
        w("![%s](%s)\n" % (title, png))
    if cpu_rows:
        w("## Server CPU per read: PostgreSQL and MariaDB\n")
        w("CPU microseconds per read answered, from `/proc` over the measured seconds of the runs above: larder's "
          "and the database's while larder served the reads, and the database's alone under the plain client "
          "(naive, pipelined), each the median of its runs where a cell was measured more than once. The ratio is "
          "(larder + database) / the plain client's lower database figure; the "
          "target is at most 1/0.7 = %.2f. Reads per second stand beside it: larder's, and the pipelined plain "
          "client's.\n" % CPU_TARGET)
        w("| database | shape | concurrency | larder us | database us (larder) | database us (naive client) | "
          "database us (pipelined client) | ratio | larder reads/s | pipelined client reads/s |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for r in cpu_rows:
            w("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                "PostgreSQL" if r["db"] == "postgres" else "MariaDB", r["shape"], r["c"], f1(r["larder_us"]),
                f1(r["db_us"]), f1(r["naive_us"]), f1(r["pipe_us"]),
                "—" if r["ratio"] is None else ("%.2f" % r["ratio"]) + ("" if r["ratio"] <= CPU_TARGET else " **"),
                fmt_int(r["qps"]) if r["qps"] else "—", fmt_int(r["pipe_qps"]) if r["pipe_qps"] else "—"))
        w("")
        w("\\*\\* above the target.\n")
    out.extend(proxy_lines)
    w("## Writes: 100 rows x 10 features\n")
    w("| server | concurrency | calls/s | feature values/s | p50 us | p99 us | errors |")
    w("|---|---|---|---|---|---|---|")
    for label in ("larder-sqlite", "larder-postgres", "larder-mysql", "echo"):
        for c in writes:
            t = table.get((label, "write", c))
            if t:
                # The echo answers the same bytes but stores nothing: no values/s.
                values = "—" if label == "echo" else fmt_int(t["qps"] * 1000)
                w("| %s | %d | %s | %s | %d | %d | %d |" % (TITLES[label], c, fmt_int(t["qps"]), values,
                                                            t["p50_us"], t["p99_us"], sum(t["errors"].values())))
    w("")
    if h2:
        w("## h2load, a second and independent client\n")
        w("Pre-encoded request frames, `-c 4 -m 16` (64 streams). h2load counts HTTP answers; the script checks "
          "with nghttp that the gRPC status of these frames is 0. Every frame asks for the same key, so reads "
          "that larder serves together become one lookup of one key: these figures show the transport path, "
          "not the reads; `larder-bench`, which spreads its keys over the whole key space, is the measurement "
          "of record.\n")
        w("| server | shape | requests/s | mean latency |")
        w("|---|---|---|---|")
        for label, shape, _, rps, mean in h2:
            w("| %s | %s | %s | %s |" % (TITLES.get("larder-sqlite" if label == "larder-sqlite" else label, label), shape, rps, mean))
        w("")
    if mem:
        w("## Memory under load (concurrency %d)\n" % hi)
        w("Sampled every 0.2 s from `/proc/PID/status` while the run lasted. VmRSS is every resident page, "
          "shared libraries included; RssAnon is what larder itself allocated (heap, SQLite's page caches, "
          "gRPC's buffers).\n")
        w("| larder on | shape | peak VmRSS MiB | peak RssAnon MiB |")
        w("|---|---|---|---|")
        for backend, shape, rss, anon in mem:
            w("| %s | %s | %.1f | %.1f |" % (backend, shape, int(rss) / 1024, int(anon) / 1024))
        w("")
    out.extend(http_lines)
    soak = a.soak or os.path.join(a.out, "plots", "data", "soak.tsv")
    if os.path.exists(soak):
        out.extend(soak_section(soak))
    with open(os.path.join(a.out, "RESULTS.md"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
