"""What the scale-out tests share (test_lb.py, test_pg_failover.py,
test_pgbouncer.py, test_mysql_replica.py; docs/scale-out.md quotes what they
print): the programs they need, database servers that follow another one, a
steady load of calls with every outcome kept, and larder's metrics."""
import glob
import os
import shutil
import subprocess
import sys
import threading
import time

import harness
from harness import grpc, key, pb, row, Value_pb2  # noqa: F401
from test_mesh import metric, parse_exposition, scrape

# Under CI a missing program is a failure; elsewhere the test is skipped (77).
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("LARDER_REQUIRE_DB") == "1"
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def program(name):
    """The path of `name` (PATH, /usr/sbin, PostgreSQL's bin folder), or None."""
    found = shutil.which(name, path=SBIN)
    if found is None:
        found = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/" + name), reverse=True)), None)
    return found


def need(*names):
    """Exits 77 (skipped) when a program is missing, or fails under CI. Called
    at the top of a test file: inside a test method unittest would take the
    exit for an error."""
    missing = [n for n in names if program(n) is None]
    if not missing:
        return
    if REQUIRED:
        sys.exit("missing %s, which this test needs under CI" % ", ".join(missing))
    print("skipped: %s not installed" % ", ".join(missing))
    sys.exit(harness.SKIP)


def seconds(s):
    """A time bound of the test, tripled on a sanitized build (harness.SLOW)."""
    return s * harness.SLOW


class Primary(harness.PrivateDatabase):
    """A database server that standbys and replicas can follow (REPLICATION=1)."""

    def __init__(self, name, durable=True):
        super().__init__(name, durable=durable)
        self.env["REPLICATION"] = "1"

    @property
    def port(self):
        return int(self.env["PG_PORT"])

    def sql(self, statement, database="feast"):
        """Runs SQL as the superuser on the server's own socket; returns the output."""
        svc = self.env["SVC_DIR"]
        if self.name == "postgres":
            cmd = [program("psql"), "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-h", svc + "/postgres/sock",
                   "-p", self.env["PG_PORT"], "-U", "postgres", "-d", database, "-c", statement]
        else:
            cmd = ["mariadb", "--no-defaults", "--protocol=socket", "--socket=" + svc + "/mariadb/mysqld.sock",
                   "-uroot", "-N", "-s", database, "-e", statement]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise AssertionError("%s: %s" % (statement, out.stderr))
        return out.stdout.strip()


class Follower(Primary):
    """A streaming standby (PostgreSQL, pg_basebackup -R) or a GTID replica
    (MariaDB) of `primary`, on a port and folder of its own."""

    def __init__(self, primary):
        super().__init__(primary.name)
        self.primary = primary
        self.env.pop("REPLICATION")
        self.env["PRIMARY_PORT"] = primary.env["PG_PORT"]

    def start(self):
        self.run("standby" if self.name == "postgres" else "replica")
        with open(os.path.join(self.env["SVC_DIR"], "env")) as f:
            for line in f:
                for word in line.replace("export ", "").split():
                    k, _, v = word.partition("=")
                    self.env[k] = v
        return self

    def promote(self):
        self.run("promote")

    def catch_up(self, timeout):
        """Waits until this follower has applied all the primary has committed
        (so a table just created on the primary is here too); true if it has."""
        if self.name == "postgres":
            lsn = self.primary.sql("SELECT pg_current_wal_lsn()", database="postgres")
            return wait_for(lambda: self.sql("SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn,
                                             database="postgres") == "t", timeout)
        pos = self.primary.sql("SELECT @@gtid_binlog_pos")
        return self.sql("SELECT MASTER_GTID_WAIT('%s', %d)" % (pos, max(1, int(timeout)))) == "0"


class Load:
    """Calls made by `threads` threads in a loop until stop(), each thread on a
    channel of its own to `target`; every outcome is kept as (start, end,
    status code name, thread). `call(stub, thread, i)` makes one call."""

    def __init__(self, target, threads, call, timeout=5):
        self.target, self.call, self.timeout = target, call, timeout
        self.outcomes = []
        self.lock = threading.Lock()
        self.running = True
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True) for t in range(threads)]

    def run(self, t):
        channel = grpc.insecure_channel(self.target)
        stub = harness.rpc.OnlineStoreStub(channel)
        i = 0
        while self.running:
            t0 = time.monotonic()
            detail = ""
            try:
                self.call(stub, t, i, self.timeout)
                code = "OK"
            except grpc.RpcError as e:
                code, detail = e.code().name, e.details()
            with self.lock:
                self.outcomes.append((t0, time.monotonic(), code, t, detail))
            i += 1
        channel.close()

    def start(self):
        for th in self.threads:
            th.start()
        return self

    def stop(self):
        self.running = False
        for th in self.threads:
            th.join(timeout=30)

    def between(self, t0, t1=None):
        """Outcomes of the calls that started in [t0, t1)."""
        with self.lock:
            return [o for o in self.outcomes if o[0] >= t0 and (t1 is None or o[0] < t1)]

    @staticmethod
    def failed(outcomes):
        return [o for o in outcomes if o[2] != "OK"]


def read_call(view="v", keys=8):
    """A Load call: OnlineRead of `keys` keys of `view`."""
    def call(stub, t, i, timeout):
        stub.OnlineRead(pb.OnlineReadRequest(
            feature_view=view, entity_keys=[key(driver_id=(i * keys + k) % 100) for k in range(keys)]),
            timeout=timeout)
    return call


def counts(metrics_port, name="grpc_server_handled_total", **labels):
    """The sum of a metric's samples matching `labels` on a larder's /metrics."""
    samples, _ = parse_exposition(scrape(metrics_port)[1])
    try:
        return metric(samples, name, **labels)
    except AssertionError:
        return 0


def host_connections(metrics_port):
    """{(role, host): open connections} from larder_backend_host_connections."""
    samples, _ = parse_exposition(scrape(metrics_port)[1])
    out = {}
    for (name, labels), value in samples.items():
        if name == "larder_backend_host_connections":
            d = dict(labels)
            out[(d["role"], d["host"])] = value
    return out


def wait_for(cond, timeout, step=0.1):
    """Polls `cond` until it is true or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def write_rows(stub, ids, value=1, view="v", timeout=10):
    """Writes feature f = value (int64) for driver_id in ids, in one batch."""
    return stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
        feature_view=view, rows=[row(key(driver_id=i), {"f": Value_pb2.Value(int64_val=value)}) for i in ids]),
        timeout=timeout)


def report(title, **figures):
    """One line the closing note and docs/scale-out.md quote."""
    print("scale-out: %s: %s" % (title, ", ".join("%s=%s" % kv for kv in figures.items())), flush=True)
