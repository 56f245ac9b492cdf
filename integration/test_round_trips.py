#!/usr/bin/python3
"""One database round trip per request (DESIGN §6, issue 17), counted where it
happens: larder reaches PostgreSQL or MariaDB through build/delay-proxy
(bench/delay_proxy.c), which counts, between two readings, the round trips on
the wire (a change from bytes larder sent to bytes the database sent) and the
messages larder sent by kind (PostgreSQL's Parse/Bind/Execute/Sync, MySQL's
COM_* commands).

Each request is made twice, identically, on one connection (so one worker and
one database connection serve both): the first may prepare statements, set
the session's statement time limit, open the connection; the second is
counted, and must be exactly one round trip, with no statement prepared:

- GetOnlineFeatures over 8 views (gRPC ServingService, and Feast's HTTP
  /get-online-features): PostgreSQL one pipeline of 8 statements and one
  Sync; MySQL one statement (COM_STMT_EXECUTE) for all 8 views;
- OnlineRead of 100 keys: one statement;
- OnlineWriteBatch of 100 rows x 10 features: one statement.

On PostgreSQL, also (with pg_stat_statements, which integration/services.sh
loads with PG_STAT_STATEMENTS=1, as scripts/test.sh starts it) how often the
server plans larder's read statement: once for the session, not on every
execution (plan_cache_mode); and which statement a read naming features runs:
by key when it names most of its view's features, naming them when few of
many, also after a read by key failed part-way (backends/sql.c). On MySQL,
which statements run is read from larder's debug log.

Beside the counts (`StatementCache`): a request over more tables than a
connection's statement cache holds (64) is answered, again and again, and a
Teardown that drops statements does not fail the reads after it. And
(`BadReadInABatch`) one bad read among reads served together costs the others
about 2 log2 n round trips more, not one each.

Not timed: the proxy forwards at once (--delay-ms 0); the counts are exact.
Runs against LARDER_TEST_BACKEND postgres or mysql only.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import grpc, key, pb, row  # noqa: E402
import feast_registry as fr  # noqa: E402
from feast.serving import ServingService_pb2 as sv  # noqa: E402
from feast.serving import ServingService_pb2_grpc as sv_rpc  # noqa: E402
from feast.types import Value_pb2 as V  # noqa: E402

if harness.BACKEND not in ("postgres", "mysql"):
    print("skipped: round trips are counted for PostgreSQL and MySQL only")
    sys.exit(harness.SKIP)

PROXY = os.environ.get("LARDER_DELAY_PROXY", os.path.join(harness.ROOT, "build", "delay-proxy"))
VIEWS = ["g%d" % i for i in range(8)]
FEATURES = ["f%d" % i for i in range(10)]
KEYS = list(range(1000, 1100))  # 100 entities, in every view
# A wide view: 135 small features, then 65 of 65,000 bytes (MySQL's BLOB holds 65,535) whose
# values together pass the reply's 4 MiB.
WIDE_SMALL = ["a%03d" % i for i in range(135)]
WIDE_BIG = ["z%02d" % i for i in range(65)]


class Proxy:
    """build/delay-proxy in front of the test database, counting the protocol's messages."""

    def __init__(self, backend, delay_ms=0):
        e = os.environ
        host, port = ((e["TEST_PG_HOST"], e["TEST_PG_PORT"]) if backend == "postgres"
                      else (e["TEST_MYSQL_HOST"], e["TEST_MYSQL_PORT"]))
        if host == "localhost":
            host = "127.0.0.1"
        self.proc = subprocess.Popen(
            [PROXY, "--listen", "127.0.0.1:0", "--target", "%s:%s" % (host, port), "--delay-ms", str(delay_ms),
             "--control", "127.0.0.1:0", "--protocol", "pg" if backend == "postgres" else "mysql"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().split()  # listening HOST:PORT control HOST:PORT
        if len(first) != 4:
            raise RuntimeError("delay-proxy did not start: %r %s" % (first, self.proc.stderr.read()))
        self.port = int(first[1].rsplit(":", 1)[1])
        self.control = int(first[3].rsplit(":", 1)[1])

    def ctl(self, command):
        with socket.create_connection(("127.0.0.1", self.control), timeout=10) as s:
            s.sendall(command.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


def store_section(backend, proxy_port):
    env = dict(os.environ)
    env["TEST_PG_HOST" if backend == "postgres" else "TEST_MYSQL_HOST"] = "127.0.0.1"
    env["TEST_PG_PORT" if backend == "postgres" else "TEST_MYSQL_PORT"] = str(proxy_port)
    return harness.store_yaml(backend, None, env)


def value(i, k):
    return V.Value(double_val=k + i / 10) if i % 2 == 0 else V.Value(int64_val=k * 10 + i)


class RoundTrips(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = Proxy(harness.BACKEND)
        tmp = tempfile.mkdtemp(prefix="larder-rt-")
        reg_path = os.path.join(tmp, "registry.db")
        # One worker: the warm-up and the counted request meet one database connection.
        cls.server = harness.Server(project="rt", store=store_section(harness.BACKEND, cls.proxy.port),
                                    registry=reg_path, larder={"workers": 1, "log_level": "debug"}, http=True)
        driver = fr.Entity("driver", "driver_id", fr.INT64)
        types = [(f, fr.DOUBLE if i % 2 == 0 else fr.INT64) for i, f in enumerate(FEATURES)]
        fr.FileRegistry(reg_path).apply(cls.server.project, driver,
                                        *[fr.FeatureView(v, [driver], types) for v in VIEWS + ["w"]],
                                        fr.FeatureView("wide", [driver], [(f, fr.BYTES) for f in WIDE_SMALL + WIDE_BIG]))
        cls.server.start()
        cls.server.stub.Update(pb.UpdateRequest(tables_to_keep=VIEWS + ["w", "wide"]), timeout=60)
        for v in VIEWS:
            rows = [row(key(driver_id=k), {f: value(i, k) for i, f in enumerate(FEATURES)}) for k in KEYS]
            cls.server.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view=v, rows=rows), timeout=60)
        cls.serving = sv_rpc.ServingServiceStub(cls.server.channel)
        cls.http = harness.Http(cls.server.http_port, timeout=30)
        cls.results = []

    @classmethod
    def tearDownClass(cls):
        cls.http.close()
        try:  # the tables of this run's project, from the shared database
            cls.server.stub.Teardown(pb.TeardownRequest(tables=VIEWS + ["w", "wide"]), timeout=60)
        finally:
            cls.server.stop()
            cls.proxy.stop()
        for line in cls.results:
            print(line)

    def counted(self, what, call):
        """Makes the call twice; returns the proxy's figures for the second."""
        self.proxy.ctl("reset")
        call()
        first = self.proxy.ctl("reset")  # the first call's figures, then zero
        call()
        second = self.proxy.ctl("stats")
        self.results.append("%s: first call %d round trip(s) %s; second call %d round trip(s) %s"
                            % (what, first["round_trips"], json.dumps(first["messages"]),
                               second["round_trips"], json.dumps(second["messages"])))
        return second

    def check_one(self, what, figures, statements):
        """One round trip, `statements` statements executed in one transaction, nothing prepared."""
        m = figures["messages"]
        self.assertEqual(figures["round_trips"], 1, "%s: %d round trips, not 1 (messages %s)"
                         % (what, figures["round_trips"], m))
        if harness.BACKEND == "postgres":
            # Bind/Describe/Execute per statement, one Sync: one pipeline, one transaction.
            self.assertEqual(m.get("E", 0), statements, "%s: %s" % (what, m))
            self.assertEqual(m.get("S", 0), 1, "%s: one Sync, so one transaction: %s" % (what, m))
            self.assertNotIn("P", m, "%s: a statement was parsed again: %s" % (what, m))
            self.assertNotIn("Q", m, "%s: a simple query was sent: %s" % (what, m))
        else:
            self.assertEqual(m, {"COM_STMT_EXECUTE": 1}, "%s: one prepared statement executed: %s" % (what, m))

    def gof_request(self, keys):
        req = sv.GetOnlineFeaturesRequest(full_feature_names=True)
        req.features.val.extend("%s:%s" % (v, f) for v in VIEWS for f in FEATURES)
        req.entities["driver_id"].val.extend(V.Value(int64_val=k) for k in keys)
        return req

    def test_get_online_features_8_views_grpc(self):
        req = self.gof_request([1000, 1001])
        replies = []
        figures = self.counted("GetOnlineFeatures, 8 views x 10 features, 2 entities (gRPC)",
                               lambda: replies.append(self.serving.GetOnlineFeatures(req, timeout=30)))
        resp = replies[-1]
        self.assertEqual(len(resp.results), 1 + len(VIEWS) * len(FEATURES))
        # Every value was found: the reads did their work.
        self.assertTrue(all(s == sv.PRESENT for r in resp.results[1:] for s in r.statuses), resp.results[1])
        self.assertEqual(resp.results[-1].values[1].int64_val, 1001 * 10 + 9)
        self.check_one("GetOnlineFeatures over 8 views", figures, statements=8 if harness.BACKEND == "postgres" else 1)

    def test_get_online_features_8_views_http(self):
        body = {"entities": {"driver_id": [1000, 1001]}, "full_feature_names": True,
                "features": ["%s:%s" % (v, f) for v in VIEWS for f in FEATURES]}
        replies = []
        figures = self.counted("/get-online-features, 8 views x 10 features, 2 entities (HTTP)",
                               lambda: replies.append(self.http.request("POST", "/get-online-features",
                                                                        json_body=body)))
        reply = replies[-1]
        self.assertEqual(reply.status, 200, reply)
        got = reply.json()
        self.assertEqual(len(got["results"]), 1 + len(VIEWS) * len(FEATURES))
        self.assertTrue(all(s == "PRESENT" for r in got["results"][1:] for s in r["statuses"]), got["results"][1])
        self.check_one("HTTP get-online-features over 8 views", figures,
                       statements=8 if harness.BACKEND == "postgres" else 1)

    def test_online_read_100_keys(self):
        req = pb.OnlineReadRequest(feature_view="g3", entity_keys=[key(driver_id=k) for k in KEYS])
        replies = []
        figures = self.counted("OnlineRead, 100 keys x 10 features",
                               lambda: replies.append(self.server.stub.OnlineRead(req, timeout=30)))
        resp = replies[-1]
        self.assertEqual(len(resp.results), 100)
        self.assertTrue(all(r.found and len(r.features) == 10 for r in resp.results))
        self.check_one("OnlineRead of 100 keys", figures, statements=1)

    def test_online_write_batch_100_rows(self):
        rows = [row(key(driver_id=k), {f: value(i, k) for i, f in enumerate(FEATURES)}, ts=1700000000 + k)
                for k in KEYS]
        req = pb.OnlineWriteBatchRequest(feature_view="w", rows=rows)
        replies = []
        figures = self.counted("OnlineWriteBatch, 100 rows x 10 features",
                               lambda: replies.append(self.server.stub.OnlineWriteBatch(req, timeout=30)))
        self.assertEqual(replies[-1].rows_written, 100)
        self.check_one("OnlineWriteBatch of 100 rows", figures, statements=1)
        back = self.server.stub.OnlineRead(pb.OnlineReadRequest(feature_view="w", entity_keys=[key(driver_id=1042)]),
                                           timeout=30)
        self.assertEqual(back.results[0].features["f1"].int64_val, 10421)

    def statements(self):
        """A connection to the test database whose pg_stat_statements counts larder's statements."""
        if harness.BACKEND != "postgres":
            self.skipTest("pg_stat_statements is PostgreSQL's")
        import psycopg
        e = os.environ
        db = psycopg.connect(host=e["TEST_PG_HOST"], port=e["TEST_PG_PORT"], dbname=e["TEST_PG_DB"],
                             user=e["TEST_PG_USER"], password=e["TEST_PG_PASSWORD"], autocommit=True)
        self.addCleanup(db.close)
        if db.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone() is None:
            why = "pg_stat_statements is not in the test database (services.sh PG_STAT_STATEMENTS=1)"
            if e.get("LARDER_REQUIRE_DB") == "1":
                self.fail(why)
            self.skipTest(why)
        return db

    def figures(self, db, view, named):
        """(executions, plannings) of larder's read statement of `view`: by key, or naming features."""
        tail = " AND feature_name = ANY($2)" if named else ""
        pattern = '%%"%s_%s" WHERE entity_key = ANY($1)%s' % (self.server.project, view, tail)
        got = db.execute("SELECT coalesce(sum(calls), 0), coalesce(sum(plans), 0) FROM pg_stat_statements "
                         "WHERE query LIKE 'SELECT entity_key, feature_name, value, event_ts FROM %%' "
                         "AND query LIKE %s", [pattern]).fetchone()
        return int(got[0]), int(got[1])

    def test_read_statement_planned_once(self):
        db = self.statements()
        before = self.figures(db, "g5", False)
        reads = 20  # one at a time: each its own execution of the statement
        for i in range(reads):
            resp = self.server.stub.OnlineRead(
                pb.OnlineReadRequest(feature_view="g5", entity_keys=[key(driver_id=KEYS[i])]), timeout=30)
            self.assertTrue(resp.results[0].found)
        after = self.figures(db, "g5", False)
        calls, plans = after[0] - before[0], after[1] - before[1]
        self.results.append("%d one-key OnlineReads: the read statement executed %d times, planned %d times"
                            % (reads, calls, plans))
        self.assertEqual(calls, reads, "pg_stat_statements did not count larder's reads of g5")
        # Left to choose, PostgreSQL plans a one-key read for its parameters every time.
        self.assertLessEqual(plans, 1, "the read statement was planned %d times in %d executions" % (plans, calls))

    def test_reads_naming_features_by_key_or_by_name(self):
        """A read naming most of a view's features reads its keys' rows and keeps the named ones;
        one naming few of many (once larder has seen how many) asks the database for them.
        PostgreSQL: the executions pg_stat_statements counts; MySQL: the statements larder
        prepared (its debug log), each the SELECT of one view."""
        db = self.statements() if harness.BACKEND == "postgres" else None
        keys = [key(driver_id=k) for k in KEYS[:10]]

        def reads(view, features, times):
            before = db and (self.figures(db, view, False), self.figures(db, view, True))
            for _ in range(times):
                resp = self.server.stub.OnlineRead(
                    pb.OnlineReadRequest(feature_view=view, entity_keys=keys, requested_features=features),
                    timeout=30)
                self.assertEqual([sorted(r.features) for r in resp.results], [sorted(features or FEATURES)] * len(keys))
            if db:
                after = self.figures(db, view, False), self.figures(db, view, True)
                return after[0][0] - before[0][0], after[1][0] - before[1][0]

        all_named = reads("g6", FEATURES, 3)
        reads("g7", [], 1)  # larder sees that g7 holds 10 features per key
        two_named = reads("g7", ["f1", "f2"], 3)
        if db:
            self.results.append("3 reads naming all 10 features: %d by key, %d naming them; 3 naming 2 of 10: "
                                "%d by key, %d naming them" % (all_named + two_named))
            self.assertEqual(all_named, (3, 0))
            self.assertEqual(two_named, (0, 3))
            return
        prepared = re.findall(r"mysql: prepared (SELECT .*)$", self.server.read_log(), re.M)

        def of(view):
            return [q for q in prepared if "UNION" not in q and "%s_%s`" % (self.server.project, view) in q]

        self.results.append("statements prepared for g6: %s; for g7: %s" % (of("g6"), of("g7")))
        self.assertTrue(of("g6") and of("g7"), prepared)
        self.assertFalse([q for q in of("g6") if "feature_name IN" in q], "g6 was read naming its features")
        self.assertTrue([q for q in of("g7") if "feature_name IN" in q], "g7 was never read naming 2 features")
    def test_width_learned_from_a_read_that_failed(self):
        """A read by key that fails part-way (here past the reply's cap) still teaches larder how
        many features its table holds per key: the next read names its features."""
        db = self.statements() if harness.BACKEND == "postgres" else None
        k = key(driver_id=7)
        stub = self.server.stub
        stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="wide", rows=[
            row(k, {f: V.Value(bytes_val=b"s") for f in WIDE_SMALL})]), timeout=60)
        for i in range(0, len(WIDE_BIG), 20):  # each request under 4 MiB
            stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="wide", rows=[
                row(k, {f: V.Value(bytes_val=bytes([65 + i % 26]) * 65000) for f in WIDE_BIG[i:i + 20]})]),
                timeout=60)
        before = db and (self.figures(db, "wide", False), self.figures(db, "wide", True))
        for attempt in range(2):
            with self.assertRaises(grpc.RpcError) as cm:
                stub.OnlineRead(pb.OnlineReadRequest(feature_view="wide", entity_keys=[k],
                                                     requested_features=WIDE_BIG), timeout=30)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, cm.exception.details())
        # 65 named of 200: by key while the width is unknown, then named once the failed read
        # has shown more than 130 rows for the key.
        if db:
            after = self.figures(db, "wide", False), self.figures(db, "wide", True)
            by_key, named = after[0][0] - before[0][0], after[1][0] - before[1][0]
            self.results.append("two reads past the cap: %d by key, %d naming the features" % (by_key, named))
            self.assertEqual((by_key, named), (1, 1))
            return
        prepared = [q for q in re.findall(r"mysql: prepared (SELECT .*)$", self.server.read_log(), re.M)
                    if "%s_wide`" % self.server.project in q]
        self.results.append("statements prepared for the wide view: %d, naming features: %d"
                            % (len(prepared), sum("feature_name IN" in q for q in prepared)))
        self.assertEqual(len(prepared), 2, prepared)
        self.assertEqual(sum("feature_name IN" in q for q in prepared), 1, prepared)


class StatementCache(unittest.TestCase):
    """Statements are cached per connection, 64 of them; what the cache evicts is
    deallocated by the connection's next pipeline (PostgreSQL). One worker, so
    one connection serves every call here."""

    N = 140  # views: more than twice the cache, so one request evicts more than it holds

    @classmethod
    def setUpClass(cls):
        tmp = tempfile.mkdtemp(prefix="larder-sc-")
        reg_path = os.path.join(tmp, "registry.db")
        cls.server = harness.Server(project="sc", registry=reg_path, larder={"workers": 1})
        driver = fr.Entity("driver", "driver_id", fr.INT64)
        cls.views = ["m%03d" % i for i in range(cls.N)]
        fr.FileRegistry(reg_path).apply(cls.server.project, driver,
                                        *[fr.FeatureView(v, [driver], [("f", fr.INT64)]) for v in cls.views])
        cls.server.start()
        cls.server.stub.Update(pb.UpdateRequest(tables_to_keep=cls.views), timeout=120)
        for i, v in enumerate(cls.views):
            cls.server.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
                feature_view=v, rows=[row(key(driver_id=1), {"f": V.Value(int64_val=i)})]), timeout=30)
        fr.wait_loaded(cls.server.channel, 30)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stub.Teardown(pb.TeardownRequest(tables=cls.views), timeout=120)
        finally:
            cls.server.stop()

    def read(self, views, what):
        payload = fr.request(["%s:f" % v for v in views], entities=[("driver_id", fr.ints(1))], full=True)
        code, details, resp = fr.get(self.server.channel, payload, timeout=30)
        self.assertEqual(code, grpc.StatusCode.OK, "%s: %s %s" % (what, code, details))
        got = fr.columns(resp)
        for v in views:
            self.assertEqual(got["%s__f" % v].values[0].int64_val, self.views.index(v), "%s: %s" % (what, v))

    def test_1_teardown_after_evictions(self):
        # 70 tables: the second read prepares those the first did not and evicts 6.
        some = self.views[:70]
        self.read(some, "first read of 70 views")
        self.read(some, "second read of 70 views")
        self.server.stub.Teardown(pb.TeardownRequest(tables=[some[-1]]), timeout=60)
        self.server.stub.Update(pb.UpdateRequest(tables_to_keep=[some[-1]]), timeout=60)
        self.server.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
            feature_view=some[-1], rows=[row(key(driver_id=1), {"f": V.Value(int64_val=69)})]), timeout=30)
        self.read(some, "the read after a Teardown")
        # Served on the session it had: no statement of it went missing (which larder would
        # recover from by a new session, logging it).
        self.assertNotIn("a prepared statement vanished", self.server.read_log())

    def test_2_more_tables_than_the_cache(self):
        for i in range(4):
            self.read(self.views, "read %d of %d views" % (i + 1, self.N))
        self.assertIsNone(self.server.proc.poll(), "the server exited")


class BadReadInABatch(unittest.TestCase):
    """Reads that wait together are served together; when that shared read fails
    (here one of them names a view without a table: NOT_FOUND), it is done again
    in halves down to the bad call (service/batch.c). The proxy delays 20 ms each
    way, so while one worker's first read is away the others queue behind it and
    meet in one batch; it counts the round trips."""

    GOOD = 30

    def start(self, project):
        """One worker behind the delaying proxy, and a table "b"."""
        proxy = Proxy(harness.BACKEND, delay_ms=20)
        self.addCleanup(proxy.stop)
        server = harness.Server(project=project, store=store_section(harness.BACKEND, proxy.port),
                                larder={"workers": 1, "log_level": "debug"})
        server.start()
        self.addCleanup(server.stop)
        stub = server.stub
        stub.Update(pb.UpdateRequest(tables_to_keep=["b"]), timeout=60)
        self.addCleanup(stub.Teardown, pb.TeardownRequest(tables=["b"]), timeout=60)
        return proxy, server, stub

    def test_one_bad_read_among_many(self):
        proxy, server, stub = self.start("bb")
        stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
            feature_view="b", rows=[row(key(driver_id=1), {"f": V.Value(int64_val=5)})]), timeout=30)
        good = pb.OnlineReadRequest(feature_view="b", entity_keys=[key(driver_id=1)])
        bad = pb.OnlineReadRequest(feature_view="b_has_no_table", entity_keys=[key(driver_id=1)])
        stub.OnlineRead(good, timeout=30)  # the connection and statement ready
        proxy.ctl("reset")
        first = stub.OnlineRead.future(good, timeout=30)
        time.sleep(0.01)  # the worker has it and waits 40 ms for the database
        reads = [stub.OnlineRead.future(good, timeout=30) for _ in range(self.GOOD // 2)]
        reads.append(stub.OnlineRead.future(bad, timeout=30))
        reads += [stub.OnlineRead.future(good, timeout=30) for _ in range(self.GOOD - self.GOOD // 2)]
        self.assertTrue(first.result().results[0].found)
        for i, f in enumerate(reads):
            if i == self.GOOD // 2:
                with self.assertRaises(grpc.RpcError) as cm:
                    f.result()
                self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND, cm.exception.details())
            else:
                self.assertEqual(f.result().results[0].features["f"].int64_val, 5)
        figures = proxy.ctl("stats")
        log = server.read_log()
        halves = len(re.findall(r"\d+ reads served together: ", log))
        print("%d good reads and a bad one behind a first: %d round trips, %d shared reads failed"
              % (self.GOOD, figures["round_trips"], halves))
        self.assertGreater(halves, 0, "the reads were not served together: the test did not test that")
        # The first read, the batch, and two per halving of its 31 calls (5): 12. One per call
        # would be 33; up to 16 leaves room for a batch that arrived in parts.
        self.assertLessEqual(figures["round_trips"], 16, figures)

    def test_reads_of_a_missing_table(self):
        """Reads of one view without a table, served together, fail together: the answer is
        the table's. Halving them down to each call would cost 2n - 1 reads."""
        proxy, server, stub = self.start("bm")
        good = pb.OnlineReadRequest(feature_view="b", entity_keys=[key(driver_id=1)])
        stub.OnlineRead(good, timeout=30)
        proxy.ctl("reset")
        first = stub.OnlineRead.future(good, timeout=30)
        time.sleep(0.01)
        bad = [stub.OnlineRead.future(pb.OnlineReadRequest(feature_view="b_has_no_table",
                                                           entity_keys=[key(driver_id=i)]), timeout=30)
               for i in range(16)]
        first.result()
        for f in bad:
            with self.assertRaises(grpc.RpcError) as cm:
                f.result()
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND, cm.exception.details())
        figures = proxy.ctl("stats")
        together = re.findall(r"(\d+) reads of \w+_b_has_no_table served together", server.read_log())
        print("16 reads of a missing table behind a first: %d round trips; served together: %s"
              % (figures["round_trips"], together))
        self.assertTrue(together, "the reads were not served together: the test did not test that")
        self.assertLessEqual(figures["round_trips"], 4, figures)  # the first, the batch (in parts)


if __name__ == "__main__":
    unittest.main(verbosity=2)
