#!/usr/bin/python3
"""ServingService served from Feast's SQL registry (feast-compat/REGISTRY.md
§1-6), written by integration/feast_registry.py exactly as Feast's SqlRegistry
writes it, in the database server of the online store of LARDER_TEST_BACKEND
(SQLite: a second file, registry.db; PostgreSQL and MariaDB: the test
database, whose registry tables every run shares, each with projects of its
own). Config: registry: {registry_type: sql, path: <URL>, cache_ttl_seconds: 1}.

- values, statuses and timestamps served from it; only the configured project;
- changes while clients call without a pause (a view added, a feature added, a
  new version through Feast's three transactions with C seconds after A): no
  call fails and the change is served within 5 s + cache_ttl_seconds;
- the registry's database stopped under load (a PostgreSQL or MariaDB server of
  the test's own, the online store on SQLite; SQLite: a table the load needs is
  renamed away and back), unreachable at start, mistyped URLs, and the
  password, which never reaches the log.

Time bounds triple when LARDER_SANITIZED=1."""
import os
import re
import sqlite3
import sys
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import feast_registry as fr  # noqa: E402
from feast_registry import columns, ints, key, request, row, strs  # noqa: E402
from harness import SLOW, grpc  # noqa: E402
from harness import health_pb2 as H  # noqa: E402
from feast.serving import ServingService_pb2 as sv  # noqa: E402
from feast.types import Value_pb2 as V  # noqa: E402
from google.protobuf import timestamp_pb2  # noqa: E402

Code = grpc.StatusCode
PRESENT, NOT_FOUND = sv.PRESENT, sv.NOT_FOUND
SERVING, NOT_SERVING = H.HealthCheckResponse.SERVING, H.HealthCheckResponse.NOT_SERVING
BACKEND = harness.BACKEND
DB = {"postgres": "postgres", "mysql": "mariadb"}.get(BACKEND)   # a PrivateDatabase of this kind
SCHEME = {"postgres": "postgresql", "mysql": "mysql"}.get(BACKEND, "postgresql")
# For the URL of a database that is never there: one this build of larder can read from.
REMOTE_SCHEME = SCHEME if DB else ("postgresql" if "postgres" in harness.BACKENDS_BUILT
                                   else "mysql" if "mysql" in harness.BACKENDS_BUILT else None)
T = 1700000000
# REGISTRY.md §5: a change is served within 5 s + cache_ttl_seconds (1 s here) of its last write;
# §6: once the database is back, within the reconnect backoff cap (5 s) + cache_ttl_seconds + a load.
CHANGE_LIMIT = (6 + 1.5) * SLOW
BACK_LIMIT = (10 + 2) * SLOW
LOAD_LIMIT = 10 * SLOW  # first load after start

driver = fr.Entity("driver", "driver_id", fr.INT64)
driver_stats = fr.FeatureView("driver_stats", [driver], [("conv_rate", fr.FLOAT), ("trips", fr.INT64)])
clicks = fr.StreamFeatureView("clicks", [driver], [("clicks", fr.INT64)])
global_stats = fr.FeatureView("global_stats", [fr.DUMMY], [("total_rides", fr.INT64)])
BASE = [driver, driver_stats, clicks, global_stats,
        fr.FeatureService("fs_activity", [fr.Projection(driver_stats, ["conv_rate"]),
                                          fr.Projection(global_stats, ["total_rides"], alias="g")]),
        fr.FeatureService("fs_renamed", [fr.Projection(driver_stats, ["trips"], alias="other",
                                                       join_key_map={"driver_id": "other_driver"})])]
STEADY = request(["driver_stats:conv_rate", "driver_stats:trips"], entities=[("driver_id", ints(1, 2, 3))])


def ts(seconds):
    return timestamp_pb2.Timestamp(seconds=seconds)


def cells(col):
    return [(col.values[i], col.statuses[i], col.event_timestamps[i]) for i in range(len(col.values))]


def health(channel, service):
    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=H.HealthCheckRequest.SerializeToString,
                                response_deserializer=H.HealthCheckResponse.FromString)
    return check(H.HealthCheckRequest(service=service), timeout=5).status


def base_rows(stub):
    f = lambda x: V.Value(float_val=x)  # noqa: E731
    fr.store_rows(stub, "driver_stats", [
        row(key(driver_id=1), {"conv_rate": f(0.5), "trips": V.Value(int64_val=10)}, ts=T + 1),
        row(key(driver_id=2), {"conv_rate": f(0.25), "trips": V.Value(int64_val=20)}, ts=T + 2),
        row(key(driver_id=7), {"conv_rate": f(0.75)}, ts=T + 7)])
    fr.store_rows(stub, "clicks", [row(key(driver_id=1), {"clicks": V.Value(int64_val=3)}, ts=T + 3)])
    fr.store_rows(stub, "global_stats", [row(key(__dummy_id=""), {"total_rides": V.Value(int64_val=123)}, ts=T + 5)])


def project_names(prefix):
    suffix = "" if BACKEND == "sqlite" else "_" + os.urandom(4).hex()
    return prefix + suffix


def first_line(text, pattern, start=0):
    """Offset of the first line at or after `start` matching `pattern`, or -1."""
    m = re.compile(pattern, re.M).search(text, start)
    return m.start() if m else -1



def beside(tmp):
    """The online store of a test about the registry alone: a SQLite file in
    `tmp` when this build serves SQLite, else the test backend's (make_server's
    default)."""
    if "sqlite" in harness.BACKENDS_BUILT:
        return fr.sqlite_store(os.path.join(tmp, "online.db"))
    return None

class Served(unittest.TestCase):
    """One registry in the backend's database server, two larders on it
    (versioning off and on), the backend's online store."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = fr.tmpdir("larder-sqlreg-")
        cls.project = project_names("sqlreg")
        cls.other = cls.project + "_other"
        cls.url = fr.backend_url(BACKEND, cls.tmp)
        cls.sql = fr.SqlRegistry(cls.url).create_tables()
        cls.sql.apply(cls.project, *BASE)
        cls.sql.apply(cls.project, fr.FeatureView("growing", [driver], [("a", fr.INT64)]),
                      fr.FeatureView("evolving", [driver], [("x", fr.INT64)]))
        # Another project in the same tables: the same names, other join keys and features.
        other_driver = fr.Entity("driver", "driver_ref", fr.STRING)
        other_stats = fr.FeatureView("driver_stats", [other_driver], [("other_feature", fr.INT64)])
        only_other = fr.FeatureView("only_other", [other_driver], [("x", fr.INT64)])
        cls.sql.apply(cls.other, other_driver, other_stats, only_other,
                      fr.FeatureService("fs_activity", [fr.Projection(only_other, ["x"])]),
                      fr.FeatureService("fs_other", [fr.Projection(other_stats, ["other_feature"])]))
        # A project whose name differs in case only (MySQL's collation compares them equal).
        cls.case = cls.project.upper()
        cls.sql.apply(cls.case, fr.Entity("case_entity", "driver_id", fr.INT64),
                      fr.FeatureView("case_only_view", [fr.Entity("case_entity", "driver_id", fr.INT64)],
                                     [("x", fr.INT64)]))
        cls.store = (fr.sqlite_store(os.path.join(cls.tmp, "online.db")) if BACKEND == "sqlite"
                     else harness.store_yaml(BACKEND, cls.tmp))
        cls.off = fr.make_server(cls.project, fr.registry_yaml("sql", cls.url, versioning=False),
                                 store=cls.store).start()
        cls.on = fr.make_server(cls.project, fr.registry_yaml("sql", cls.url, versioning=True),
                                store=cls.store).start()
        stub = cls.off.stub
        base_rows(stub)
        fr.store_rows(stub, "growing", [row(key(driver_id=1), {"a": V.Value(int64_val=1),
                                                               "b": V.Value(int64_val=2)}, ts=T + 10)])
        fr.store_rows(stub, "evolving", [row(key(driver_id=1), {"x": V.Value(int64_val=1)}, ts=T + 20)])
        fr.store_rows(stub, "evolving_v1", [row(key(driver_id=1), {"x": V.Value(int64_val=2),
                                                                   "z": V.Value(int64_val=3)}, ts=T + 21)])
        fr.store_rows(stub, "new_view", [row(key(driver_id=1), {"fresh": V.Value(int64_val=42)}, ts=T + 30)])
        cls.loaded = {}
        for name, s in (("off", cls.off), ("on", cls.on)):
            cls.loaded[name] = fr.wait_loaded(s.channel, LOAD_LIMIT)

    @classmethod
    def tearDownClass(cls):
        cls.off.close()
        cls.on.close()

    def ok(self, channel, payload):
        code, details, resp = fr.get(channel, payload)
        self.assertEqual(code, Code.OK, details)
        return resp

    def refused(self, channel, payload, code, *words):
        got, details, _ = fr.get(channel, payload)
        self.assertEqual(got, code, details)
        for w in words:
            self.assertIn(w, details)

    def test_served_from_sql_registry(self):
        self.assertIsNotNone(self.loaded["off"], "the SQL registry did not load within %d s" % LOAD_LIMIT)
        ch = self.off.channel
        resp = self.ok(ch, request(["driver_stats:conv_rate", "driver_stats:trips", "clicks:clicks",
                                    "global_stats:total_rides"], entities=[("driver_id", ints(1, 7, 9999))]))
        self.assertEqual(list(resp.metadata.feature_names.val),
                         ["driver_id", "conv_rate", "trips", "clicks", "total_rides"])
        c = columns(resp)
        self.assertEqual(cells(c["driver_id"]), [(V.Value(int64_val=d), PRESENT, ts(0)) for d in (1, 7, 9999)])
        self.assertEqual(cells(c["conv_rate"]), [(V.Value(float_val=0.5), PRESENT, ts(T + 1)),
                                                 (V.Value(float_val=0.75), PRESENT, ts(T + 7)),
                                                 (V.Value(), NOT_FOUND, ts(0))])
        self.assertEqual(cells(c["trips"]), [(V.Value(int64_val=10), PRESENT, ts(T + 1)),
                                             (V.Value(), NOT_FOUND, ts(T + 7)),
                                             (V.Value(), NOT_FOUND, ts(0))])
        self.assertEqual(cells(c["clicks"]), [(V.Value(int64_val=3), PRESENT, ts(T + 3)),
                                              (V.Value(), NOT_FOUND, ts(0)), (V.Value(), NOT_FOUND, ts(0))])
        self.assertEqual(cells(c["total_rides"]), [(V.Value(int64_val=123), PRESENT, ts(T + 5))] * 3)
        # Feature services (stored without spec.project): aliases and join_key_map.
        resp = self.ok(ch, request(service="fs_activity", entities=[("driver_id", ints(2))], full=True))
        self.assertEqual(list(resp.metadata.feature_names.val),
                         ["driver_id", "driver_stats__conv_rate", "g__total_rides"])
        self.assertEqual(cells(columns(resp)["driver_stats__conv_rate"]),
                         [(V.Value(float_val=0.25), PRESENT, ts(T + 2))])
        resp = self.ok(ch, request(service="fs_renamed", entities=[("other_driver", ints(2))], full=True))
        self.assertEqual(list(resp.metadata.feature_names.val), ["other_driver", "other__trips"])
        self.assertEqual(cells(columns(resp)["other__trips"]), [(V.Value(int64_val=20), PRESENT, ts(T + 2))])
        self.assertEqual(health(ch, "feast.serving.ServingService"), SERVING)

    def test_only_the_configured_project(self):
        """Scoping is by the project_id column: another project's rows in the same
        tables, with the same names, are not served; nor are the rows of a
        project whose name differs in case only."""
        self.assertIsNotNone(self.loaded["off"], "the SQL registry did not load within %d s" % LOAD_LIMIT)
        ch = self.off.channel
        one = [("driver_id", ints(1))]
        self.refused(ch, request(["driver_stats:other_feature"], entities=one), Code.INVALID_ARGUMENT,
                     "other_feature")
        self.refused(ch, request(["only_other:x"], entities=[("driver_ref", strs("a"))]), Code.INVALID_ARGUMENT,
                     "only_other")
        self.refused(ch, request(service="fs_other", entities=one), Code.INVALID_ARGUMENT, "fs_other")
        self.refused(ch, request(["case_only_view:x"], entities=one), Code.INVALID_ARGUMENT, "case_only_view")
        # The project's own driver_stats, entity (join key driver_id, INT64) and feature service.
        resp = self.ok(ch, request(["driver_stats:conv_rate"], entities=one))
        self.assertEqual(cells(columns(resp)["conv_rate"]), [(V.Value(float_val=0.5), PRESENT, ts(T + 1))])
        resp = self.ok(ch, request(service="fs_activity", entities=one))
        self.assertEqual(list(resp.metadata.feature_names.val), ["driver_id", "conv_rate", "total_rides"])

    def test_larder_never_writes_to_the_registry(self):
        """No DDL, no feast_metadata or projects rows: two polls change nothing."""
        def snapshot():
            c = self.sql.connect()
            try:
                out = {}
                for t in fr.TABLE_NAMES:
                    out[t] = sorted(c.q("SELECT * FROM %s WHERE project_id IN (%%s, %%s)" % t,
                                        (self.project, self.other)), key=repr)
                if c.dialect == "sqlite":
                    out["tables"] = c.q("SELECT name FROM sqlite_master ORDER BY name")
                return out
            finally:
                c.close()
        before = snapshot()
        time.sleep(2.5)
        self.assertEqual(snapshot(), before)

    def test_read_path_is_what_larder_reads(self):
        """read_path set: larder connects to it, not to path."""
        bogus = fr.Url.make(SCHEME, "nobody", "nothing", "127.0.0.1", harness.free_port(), "nowhere")
        with fr.make_server(self.project, fr.registry_yaml("sql", bogus, read_path=self.url.text),
                            store=self.store) as s:
            fr.wait_served(s.channel, request(["driver_stats:conv_rate"], entities=[("driver_id", ints(1))]),
                           LOAD_LIMIT)

    # ---------------------------------------------------------------- changes under load

    def change_under_load(self, server, apply, probe, accept, extra_load=()):
        """Runs `apply` while threads call without a pause; returns the seconds
        from its last committed transaction to `probe` answering as `accept` wants."""
        fr.wait_served(server.channel, STEADY, LOAD_LIMIT)
        late = None
        with fr.Load([(server.channel, STEADY)] + list(extra_load)) as load:
            time.sleep(0.5)
            apply()
            done = self.sql.last_commit
            try:
                fr.wait_served(server.channel, probe, CHANGE_LIMIT + 5, accept=accept)
            except AssertionError as e:
                late = str(e)
            took = time.monotonic() - done
        print("served %.2f s after the last write; %d calls, slowest %.3f s" % (took, load.calls, load.slowest))
        self.assertEqual(load.failures[:5], [])
        self.assertGreater(load.calls, 20)
        self.assertIsNone(late)
        self.assertLessEqual(took, CHANGE_LIMIT)
        return took

    def test_change_under_load_view_added(self):
        view = fr.FeatureView("new_view", [driver], [("fresh", fr.INT64)])
        self.change_under_load(
            self.off, lambda: self.sql.apply(self.project, view),
            request(["new_view:fresh"], entities=[("driver_id", ints(1))]),
            lambda r: columns(r)["fresh"].values[0] == V.Value(int64_val=42))

    def test_change_under_load_feature_added(self):
        """`growing` gains feature b (a schema change: A, B (version 1), C 2 s
        later); versioning is off, so it is still read from P_growing."""
        view = fr.FeatureView("growing", [driver], [("a", fr.INT64), ("b", fr.INT64)])
        sql = fr.SqlRegistry(self.url, pause=lambda step: time.sleep(2) if step == "C" else None)

        def apply():
            sql.apply(self.project, view)
            self.sql.last_commit = sql.last_commit
        self.change_under_load(
            self.off, apply, request(["growing:b"], entities=[("driver_id", ints(1))]),
            lambda r: columns(r)["b"].values[0] == V.Value(int64_val=2))

    def test_change_under_load_new_version(self):
        """`evolving` gets version 1 through Feast's three transactions, C 2 s
        after B: C moves no timestamp. Versioning on: `evolving:x` moves from
        P_evolving (1) to P_evolving_v1 (2), never failing on the way."""
        view = fr.FeatureView("evolving", [driver], [("x", fr.INT64), ("z", fr.INT64)])
        sql = fr.SqlRegistry(self.url, pause=lambda step: time.sleep(2) if step == "C" else None)
        probe = request(["evolving:x"], entities=[("driver_id", ints(1))])

        def x_is_1_or_2(resp):
            v = columns(resp)["x"].values[0]
            return None if v in (V.Value(int64_val=1), V.Value(int64_val=2)) else "evolving:x = %s" % v

        def apply():
            sql.apply(self.project, view)
            self.sql.last_commit = sql.last_commit
        resp = self.ok(self.on.channel, probe)
        self.assertEqual(columns(resp)["x"].values[0], V.Value(int64_val=1))
        self.change_under_load(self.on, apply, probe, lambda r: columns(r)["x"].values[0] == V.Value(int64_val=2),
                               extra_load=[(self.on.channel, probe, x_is_1_or_2)])
        resp = self.ok(self.on.channel, request(["evolving:z", "evolving@v0:x"],
                                                entities=[("driver_id", ints(1))], full=True))
        self.assertEqual(cells(columns(resp)["evolving__z"]), [(V.Value(int64_val=3), PRESENT, ts(T + 21))])
        self.assertEqual(cells(columns(resp)["evolving@v0__x"]), [(V.Value(int64_val=1), PRESENT, ts(T + 20))])

    def test_change_detected_without_feast_metadata(self):
        """purge_feast_metadata: true keeps no feast_metadata rows; changes are
        still noticed (REGISTRY.md §1, §5)."""
        project = self.project + "_purged"
        sql = fr.SqlRegistry(self.url, purge_feast_metadata=True)
        sql.apply(project, driver, driver_stats)
        with fr.make_server(project, fr.registry_yaml("sql", self.url), store=self.store) as s:
            base_rows(s.stub)
            fr.store_rows(s.stub, "late_view", [row(key(driver_id=1), {"y": V.Value(int64_val=9)}, ts=T)])
            fr.wait_served(s.channel, STEADY, LOAD_LIMIT)
            with fr.Load([(s.channel, STEADY)], threads_per_target=1) as load:
                sql.apply(project, fr.FeatureView("late_view", [driver], [("y", fr.INT64)]))
                done = sql.last_commit
                fr.wait_served(s.channel, request(["late_view:y"], entities=[("driver_id", ints(1))]),
                               CHANGE_LIMIT + 5)
                took = time.monotonic() - done
            self.assertEqual(load.failures[:5], [])
            self.assertLessEqual(took, CHANGE_LIMIT)


    def test_a_row_without_its_proto_refuses_the_load(self):
        """A row whose proto is empty decodes, to an object without a spec: the
        load that reads it is refused whole and the registry before it keeps
        serving (REGISTRY.md §6), rather than one without that entity."""
        project = self.project + "_blank"
        sql = fr.SqlRegistry(self.url)
        sql.apply(project, driver, driver_stats)
        with fr.make_server(project, fr.registry_yaml("sql", self.url), store=self.store) as s:
            base_rows(s.stub)
            fr.wait_served(s.channel, STEADY, LOAD_LIMIT)
            c = sql.connect()
            try:
                with c.tx():
                    c.q("UPDATE entities SET entity_proto = %s, last_updated_timestamp = last_updated_timestamp + 1 "
                        "WHERE project_id = %s AND entity_name = %s", (b"", project, "driver"))
            finally:
                c.close()
            refused = "table entities: the row of 'driver' does not decode"
            t0 = time.monotonic()
            while refused not in s.read_log() and time.monotonic() - t0 < CHANGE_LIMIT:
                self.ok(s.channel, STEADY)
                time.sleep(0.1)
            self.assertIn(refused, s.read_log())
            resp = self.ok(s.channel, STEADY)
            self.assertEqual(cells(columns(resp)["conv_rate"])[0], (V.Value(float_val=0.5), PRESENT, ts(T + 1)))


class Outage(unittest.TestCase):
    """The registry's database goes away under load and comes back. PostgreSQL
    and MariaDB: a server of the test's own, stopped and started, with a
    password that needs percent-encoding; the online store is SQLite, so only
    the registry's database goes away. SQLite: a table every load needs is
    renamed away and back (a missing table fails a load as a lost connection
    does, REGISTRY.md §6)."""

    PASSWORD = "Reg@Pw:" + os.urandom(4).hex()

    def test_registry_database_down_under_load(self):
        tmp = fr.tmpdir("larder-sqlreg-")
        db = None
        if DB:
            db = harness.PrivateDatabase(DB)
            db.env["DB_PASS"] = self.PASSWORD
            db.start()
            prefix = "TEST_PG_" if DB == "postgres" else "TEST_MYSQL_"
            url = fr.Url.make(SCHEME, db.env[prefix + "USER"], self.PASSWORD, db.env[prefix + "HOST"],
                              db.env[prefix + "PORT"], db.env[prefix + "DB"])
            down, up = db.down, db.up
        else:
            url = fr.Url.sqlite(os.path.join(tmp, "registry.db"))

            def rename(a, b):
                c = sqlite3.connect(url.path, timeout=30)
                c.execute("ALTER TABLE %s RENAME TO %s" % (a, b))
                c.commit()
                c.close()
            down = lambda: rename("feature_services", "feature_services_away")  # noqa: E731
            up = lambda: rename("feature_services_away", "feature_services")  # noqa: E731
        try:
            self.run_outage(tmp, url, down, up)
        finally:
            if db is not None:
                db.stop()

    def run_outage(self, tmp, url, down, up):
        project = "outage"
        sql = fr.SqlRegistry(url).create_tables()
        sql.apply(project, *BASE)
        metrics_port = harness.free_port()
        server = fr.make_server(project, fr.registry_yaml("sql", url),
                                store=beside(tmp),
                                larder={"metrics_listen": "127.0.0.1:%d" % metrics_port})
        with server:
            base_rows(server.stub)
            fr.store_rows(server.stub, "after_outage", [row(key(driver_id=1), {"fresh": V.Value(int64_val=5)}, ts=T)])
            fr.wait_served(server.channel, STEADY, LOAD_LIMIT)
            log_before = len(server.read_log())
            with fr.Load([(server.channel, STEADY)]) as load:
                time.sleep(0.5)
                down()
                t_down = time.monotonic()
                calls_at_down = load.calls
                time.sleep(4 * SLOW)
                # A registry is held: readiness depends on the online store only.
                self.assertEqual(health(server.channel, "feast.serving.ServingService"), SERVING)
                calls_while_down = load.calls - calls_at_down
                down_for = time.monotonic() - t_down
                log_down = len(server.read_log())
                up()
                sql.apply(project, fr.FeatureView("after_outage", [driver], [("fresh", fr.INT64)]))
                done = sql.last_commit
                try:
                    fr.wait_served(server.channel, request(["after_outage:fresh"], entities=[("driver_id", ints(1))]),
                                   BACK_LIMIT + 5)
                    took = time.monotonic() - done
                except AssertionError as e:
                    took = None
                    late = str(e)
            log = server.read_log()
            _, metrics = self.scrape(metrics_port)
        print("%d calls in %.1f s while the registry's database was down; slowest call %.3f s; "
              "a view added after it came back served %s s after its last write"
              % (calls_while_down, down_for, load.slowest, took and "%.2f" % took))
        self.assertEqual(load.failures[:5], [], "calls failed while the registry's database was down")
        self.assertGreater(calls_while_down, 20)
        self.assertLess(load.slowest, 2 * SLOW, "a call waited for the registry's database")
        self.assertIsNotNone(took, late if took is None else "")
        self.assertLessEqual(took, BACK_LIMIT)
        # One warning when the failures start, one line when a load succeeds again.
        warned = first_line(log, r"^\S+ warn .*registry", log_before)
        self.assertGreaterEqual(warned, 0, "no warning about the registry after its database went away:\n"
                                + log[log_before:][-3000:])
        self.assertLess(warned, log_down, "the warning came only after the database was back")
        self.assertGreaterEqual(first_line(log, r"^\S+ info .*registry", warned), 0,
                                "no info line when the registry loaded again:\n" + log[warned:][-3000:])
        if DB:
            self.assertIn("***", log[log_before:])
            self.assert_no_password(log, self.PASSWORD)
        self.assertRegex(metrics, re.compile(r"^[a-zA-Z_:]*registry[a-zA-Z0-9_:]*[ {]", re.M),
                         "no registry metric on /metrics")

    def assert_no_password(self, text, password):
        for form in (password, urllib.parse.quote(password, safe="")):
            self.assertNotIn(form, text)

    @staticmethod
    def scrape(port):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            return r.headers.get("Content-Type"), r.read().decode()


class Unreachable(unittest.TestCase):
    def test_unreachable_at_start(self):
        """larder starts; OnlineStore serves; ServingService says the registry has
        not loaded and is NOT_SERVING; once the database is there, it serves
        within the reconnect backoff plus cache_ttl_seconds."""
        tmp = fr.tmpdir("larder-sqlreg-")
        db = None
        if DB:
            db = harness.PrivateDatabase(DB)  # not started yet
            port = db.env["PG_PORT"]
            url = fr.Url.make(SCHEME, "feast", "feast", "127.0.0.1", port, "feast")
        else:
            url = fr.Url.sqlite(os.path.join(tmp, "registry.db"))
        server = fr.make_server("early", fr.registry_yaml("sql", url),
                                store=beside(tmp))
        try:
            with server:
                ch = server.channel
                base_rows(server.stub)
                got = server.stub.OnlineRead(harness.pb.OnlineReadRequest(feature_view="driver_stats",
                                                                          entity_keys=[key(driver_id=1)]), timeout=10)
                self.assertTrue(got.results[0].found)
                time.sleep(2)
                code, details, _ = fr.get(ch, STEADY)
                self.assertEqual(code, Code.FAILED_PRECONDITION, details)
                self.assertIn("registry", details)
                self.assertEqual(health(ch, "larder.v1.OnlineStore"), SERVING)
                self.assertEqual(health(ch, "feast.serving.ServingService"), NOT_SERVING)
                if DB:
                    db.start()
                else:
                    self.assertFalse(os.path.exists(url.path), "larder created the SQLite registry")
                sql = fr.SqlRegistry(url).create_tables()
                sql.apply("early", *BASE)
                done = sql.last_commit
                fr.wait_served(ch, STEADY, BACK_LIMIT + 5)
                took = time.monotonic() - done
                print("served %.2f s after the registry was written" % took)
                self.assertLessEqual(took, BACK_LIMIT)
                self.assertEqual(health(ch, "feast.serving.ServingService"), SERVING)
        finally:
            if db is not None:
                db.stop()


class BadUrl(unittest.TestCase):
    """A registry URL larder cannot use: larder starts, and ServingService
    answers FAILED_PRECONDITION naming `registry.path`, never the URL or its
    parts."""

    SECRET = "Pw-" + os.urandom(4).hex()

    def test_bad_url_is_failed_precondition(self):
        user, host = "reg_user_q7", "db-host-q7.example"
        urls = [
            "mssql://%s:%s@%s:1433/feast" % (user, self.SECRET, host),        # a database larder does not read
            "snowflake://%s:%s@%s/feast" % (user, self.SECRET, host),
            "postgres://%s:%s@%s:5432/feast" % (user, self.SECRET, host),     # SQLAlchemy has no such scheme
            "postgresql://%s:%s@%s:5432" % (user, self.SECRET, host),         # no database
            "postgresql://%s:%s@%s:5432/" % (user, self.SECRET, host),
            "mysql://%s:%s@%s:3306" % (user, self.SECRET, host),
            "sqlite://",                                                        # in-memory: always empty
            "%s:%s@%s:5432/feast" % (user, self.SECRET, host),                # no scheme
        ]
        for url in urls:
            with self.subTest(url=url):
                server = fr.make_server("badurl", fr.registry_yaml("sql", url),
                                        store=beside(fr.tmpdir()))
                with server:
                    code, details, _ = fr.get(server.channel, STEADY)
                    self.assertEqual(code, Code.FAILED_PRECONDITION, details)
                    self.assertIn("registry.path", details)
                    for part in (url, self.SECRET, user, host):
                        if len(part) > 8:
                            self.assertNotIn(part, details)
                    # OnlineStore is unaffected.
                    fr.store_rows(server.stub, "driver_stats", [])
                self.assertNotIn(self.SECRET, server.read_log())


class Secrets(unittest.TestCase):
    @unittest.skipUnless(REMOTE_SCHEME, "this larder is built with SQLite only: no URL holds a password")
    def test_password_never_logged(self):
        """An unreachable registry database is retried and logged: the URL shows
        `***` for the password, in either of its forms."""
        password = "S3cr@t/" + os.urandom(4).hex()
        url = fr.Url.make(REMOTE_SCHEME, "reg_user", password, "127.0.0.1", harness.free_port(), "feast")
        server = fr.make_server("secrets", fr.registry_yaml("sql", url),
                                store=beside(fr.tmpdir()))
        with server:
            time.sleep(3 * SLOW)  # a failure streak starts and is logged
            code, details, _ = fr.get(server.channel, STEADY)
            self.assertEqual(code, Code.FAILED_PRECONDITION, details)
            for part in (password, urllib.parse.quote(password, safe=""), url.text):
                self.assertNotIn(part, details)
        log = server.read_log()
        for form in (password, urllib.parse.quote(password, safe="")):
            self.assertNotIn(form, log)
        self.assertIn("***", log, "the registry URL is not in the log (with *** for the password):\n" + log)
        self.assertIn("reg_user", log)  # the rest of the URL is there to help an operator


@unittest.skipUnless(BACKEND == "sqlite", "one SQLite file of its own is enough")
class OlderRegistry(unittest.TestCase):
    def test_without_optional_tables(self):
        """A registry made by an older Feast: no stream, on-demand or label view
        tables, no version history, no projects, no feast_metadata. Absent
        tables are empty (REGISTRY.md §3); scoping is by project_id alone."""
        tmp = fr.tmpdir("larder-sqlreg-")
        url = fr.Url.sqlite(os.path.join(tmp, "registry.db"))
        sql = fr.SqlRegistry(url).create_tables([t for t in fr.TABLE_NAMES if t not in fr.OPTIONAL_TABLES])
        sql.apply("old", driver, driver_stats, global_stats)
        with fr.make_server("old", fr.registry_yaml("sql", url),
                            store=beside(tmp)) as s:
            base_rows(s.stub)
            resp, _ = fr.wait_served(s.channel, request(["driver_stats:conv_rate", "global_stats:total_rides"],
                                                        entities=[("driver_id", ints(1))]), LOAD_LIMIT)
            self.assertEqual(cells(columns(resp)["conv_rate"]), [(V.Value(float_val=0.5), PRESENT, ts(T + 1))])


if __name__ == "__main__":
    unittest.main(verbosity=2)
