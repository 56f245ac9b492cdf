#!/usr/bin/python3
"""Serving parity (feast-compat/REGISTRY.md §7): one named test per rule,
each asserting Feast's answer as §7 states it, with its examples.

Every case runs twice, as a subTest per registry kind: against a file
registry and against an SQL registry holding the same objects, written by
integration/feast_registry.py as Feast's registry.py and SqlRegistry write them
(§8). The SQL registry lives in the database server of the online store
(LARDER_TEST_BACKEND): SQLite a second file, PostgreSQL and MariaDB the test
database, whose tables other runs share (each run has projects of its own;
another project with the same object names is in the same tables). The rules
do not depend on the registry kind, so both must give the same answers.

The online rows are written once through larder's OnlineWriteBatch and read by
several larder processes (versioning on and off, enforce_ttl on and off)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import feast_registry as fr  # noqa: E402
from feast_registry import columns, ints, key, request, row, strs  # noqa: E402
from harness import SLOW, grpc  # noqa: E402
from feast.serving import ServingService_pb2 as sv  # noqa: E402
from feast.types import Value_pb2 as V  # noqa: E402
from google.protobuf import timestamp_pb2  # noqa: E402

Code = grpc.StatusCode
PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE = sv.PRESENT, sv.NOT_FOUND, sv.OUTSIDE_MAX_AGE
KINDS = ("file", "sql")
NOW = int(time.time())
DAY = 86400
T = 1700000000  # event times of the views without a TTL
EMPTY = V.Value()

# ---------------------------------------------------------------- the registry (project P)
driver = fr.Entity("driver", "driver_id", fr.INT64)
customer = fr.Entity("customer", "customer_id", fr.STRING)
driver_stats = fr.FeatureView("driver_stats", [driver], [("conv_rate", fr.FLOAT), ("trips", fr.INT64)])
customer_profile = fr.FeatureView("customer_profile", [customer], [("age", fr.INT64)], ttl=DAY)
# `stats`: versions 0, 1, 2 (current 2), each a schema change; tables P_stats, P_stats_v1, P_stats_v2.
stats = [fr.FeatureView("stats", [driver], [("x", fr.INT64)]),
         fr.FeatureView("stats", [driver], [("x", fr.INT64), ("w", fr.INT64)]),
         fr.FeatureView("stats", [driver], [("x", fr.INT64), ("w", fr.INT64), ("y", fr.INT64)])]
# `toggle`: version 0 disabled, version 1 (current) enabled.
toggle = [fr.FeatureView("toggle", [driver], [("x", fr.INT64)], disabled=True),
          fr.FeatureView("toggle", [driver], [("x", fr.INT64), ("w", fr.INT64)])]
disabled_view = fr.FeatureView("disabled_view", [driver], [("x", fr.INT64)], disabled=True)
state_views = {state: fr.FeatureView("%s_view" % state.lower(), [driver], [("x", fr.INT64)], state=number)
               for state, number in (("CREATED", fr.CREATED), ("GENERATED", fr.GENERATED),
                                     ("MATERIALIZING", fr.MATERIALIZING))}
available_view = fr.FeatureView("available_view", [driver], [("x", fr.INT64)], state=fr.AVAILABLE_ONLINE)
clicks = fr.StreamFeatureView("clicks", [driver], [("clicks", fr.INT64)])
disabled_stream = fr.StreamFeatureView("disabled_stream", [driver], [("clicks", fr.INT64)], disabled=True)
driver_labels = fr.LabelView("driver_labels", [driver], [("is_fraud", fr.BOOL)], ttl=DAY)
stored_odfv = fr.OnDemandFeatureView("stored_odfv", [("ratio", fr.DOUBLE)], write_to_online_store=True,
                                     entities=[driver])
computed_odfv = fr.OnDemandFeatureView("computed_odfv", [("plus_one", fr.DOUBLE)], write_to_online_store=False)
disabled_odfv = fr.OnDemandFeatureView("disabled_odfv", [("ratio", fr.DOUBLE)], write_to_online_store=True,
                                       entities=[driver], disabled=True)
materializing_odfv = fr.OnDemandFeatureView("materializing_odfv", [("ratio", fr.DOUBLE)],
                                            write_to_online_store=True, entities=[driver],
                                            state=fr.MATERIALIZING)
P_ = fr.Projection
services = [
    fr.FeatureService("fs_disabled", [P_(driver_stats, ["conv_rate"]), P_(disabled_view, ["x"])]),
    fr.FeatureService("fs_materializing", [P_(state_views["MATERIALIZING"], ["x"])]),
    fr.FeatureService("fs_stats_v1", [P_(stats[2], ["x"], version_tag=1)]),
    fr.FeatureService("fs_stats_v0", [P_(stats[2], ["x"], version_tag=0)]),
    fr.FeatureService("fs_stats_alias_v1", [P_(stats[2], ["x"], alias="s", version_tag=1)]),
    fr.FeatureService("fs_stats_v1_y", [P_(stats[2], ["y"], version_tag=1)]),
    fr.FeatureService("fs_precomputed", [P_(driver_stats, ["conv_rate", "trips"])], precompute_online=True),
    fr.FeatureService("fs_labels", [P_(driver_stats, ["conv_rate"]), P_(driver_labels, ["is_fraud"])]),
    fr.FeatureService("fs_stored_odfv", [P_(stored_odfv, ["ratio"])]),
    fr.FeatureService("fs_computed", [P_(driver_stats, ["conv_rate"]), P_(computed_odfv, ["plus_one"])]),
]
# Another project with the same names in the same tables (and the same file).
other_driver = fr.Entity("driver", "driver_ref", fr.STRING)
other_stats = fr.FeatureView("driver_stats", [other_driver], [("other_feature", fr.INT64)])
OTHER_OBJECTS = [other_driver, other_stats,
                 fr.FeatureService("fs_precomputed", [P_(other_stats, ["other_feature"])])]


def ts(seconds):
    return timestamp_pb2.Timestamp(seconds=seconds)


def cell(col, i):
    """(Value, status, event timestamp) of row i of a column."""
    return col.values[i], col.statuses[i], col.event_timestamps[i]


def names(resp):
    return list(resp.metadata.feature_names.val)


class Parity(unittest.TestCase):
    servers = {}
    sql_loaded = None  # whether an SQL-registry server has loaded its registry yet

    @classmethod
    def setUpClass(cls):
        cls.tmp = fr.tmpdir("larder-parity-")
        suffix = "" if harness.BACKEND == "sqlite" else "_" + os.urandom(4).hex()
        cls.project = "parity" + suffix
        cls.other = "parity_other" + suffix
        cls.store = (fr.sqlite_store(os.path.join(cls.tmp, "online.db")) if harness.BACKEND == "sqlite"
                     else harness.store_yaml(harness.BACKEND, cls.tmp))
        cls.file = fr.FileRegistry(os.path.join(cls.tmp, "registry.pb"))
        cls.url = fr.backend_url(harness.BACKEND, cls.tmp)
        sql = fr.SqlRegistry(cls.url).create_tables()
        for sink in (cls.file, sql):
            sink.apply(cls.project, driver, customer, driver_stats, customer_profile, stats[0], toggle[0],
                       disabled_view, *state_views.values())
            sink.apply(cls.project, available_view, clicks, disabled_stream, driver_labels, stored_odfv,
                       computed_odfv, disabled_odfv, materializing_odfv)
            sink.apply(cls.project, stats[1])
            sink.apply(cls.project, stats[2])
            sink.apply(cls.project, toggle[1])
            sink.apply(cls.project, *services)
            sink.apply(cls.other, *OTHER_OBJECTS)
        cls.write_rows(cls.server("file").stub)

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers.values():
            s.close()

    @classmethod
    def write_rows(cls, stub):
        f = lambda x: V.Value(float_val=x)  # noqa: E731
        i = lambda x: V.Value(int64_val=x)  # noqa: E731
        fr.store_rows(stub, "driver_stats", [
            row(key(driver_id=7), {"conv_rate": f(0.75)}, ts=T + 7),
            row(key(driver_id=1), {"conv_rate": f(0.5), "trips": i(10)}, ts=T + 1),
            row(key(driver_id=2), {"conv_rate": f(0.25), "trips": i(20)}, ts=T + 2),
            row(key(driver_id=3), {"conv_rate": f(0.125)}, ts=T + 3)])
        fr.store_rows(stub, "driver_stats", [row(key(driver_id=3), {"trips": i(30)}, ts=T + 30)])
        fr.store_rows(stub, "customer_profile", [
            row(key(customer_id="c_old"), {"age": i(77)}, ts=NOW - 2 * DAY),
            row(key(customer_id="c_new"), {"age": i(30)}, ts=NOW - 60)])
        fr.store_rows(stub, "stats", [row(key(driver_id=1), {"x": i(100)}, ts=T + 100)])
        fr.store_rows(stub, "stats_v1", [row(key(driver_id=1), {"x": i(101), "w": i(11)}, ts=T + 101)])
        fr.store_rows(stub, "stats_v2", [row(key(driver_id=1), {"x": i(102), "w": i(12), "y": i(22)}, ts=T + 102)])
        fr.store_rows(stub, "toggle", [row(key(driver_id=1), {"x": i(40)}, ts=T + 40)])
        fr.store_rows(stub, "toggle_v1", [row(key(driver_id=1), {"x": i(41), "w": i(42)}, ts=T + 41)])
        for v in [disabled_view, available_view] + list(state_views.values()):
            fr.store_rows(stub, v.name, [row(key(driver_id=1), {"x": i(5)}, ts=T + 5)])
        for v in ("clicks", "disabled_stream"):
            fr.store_rows(stub, v, [row(key(driver_id=1), {"clicks": i(3)}, ts=T + 3)])
        fr.store_rows(stub, "driver_labels", [
            row(key(driver_id=1), {"is_fraud": V.Value(bool_val=True)}, ts=NOW - 60),
            row(key(driver_id=2), {"is_fraud": V.Value(bool_val=False)}, ts=NOW - 2 * DAY)])
        for v in ("stored_odfv", "disabled_odfv", "materializing_odfv"):
            fr.store_rows(stub, v, [row(key(driver_id=1), {"ratio": V.Value(double_val=2.5)}, ts=T + 25)])

    @classmethod
    def server(cls, kind, versioning=True, enforce_ttl=True):
        """The larder (started once) serving the registry of `kind` with these settings."""
        k = (kind, versioning, enforce_ttl)
        if k not in cls.servers:
            where = cls.file.path if kind == "file" else cls.url
            s = fr.make_server(cls.project, fr.registry_yaml(kind, where, versioning=versioning), store=cls.store,
                               larder={"enforce_ttl": enforce_ttl})
            cls.servers[k] = s.start()
            # An SQL registry loads on larder's own thread after start: wait for it
            # (once long; when it never loaded, the tests show why).
            if kind == "file" or cls.sql_loaded is not False:
                loaded = fr.wait_loaded(s.channel, 10 * SLOW) is not None
                if kind == "sql":
                    cls.sql_loaded = loaded
                    if not loaded:
                        sys.stderr.write("the SQL registry did not load within %d s\n" % (10 * SLOW))
        return cls.servers[k]

    # ------------------------------------------------------------ helpers

    def each(self, check, **settings):
        """check(channel) against a file registry and an SQL registry."""
        for kind in KINDS:
            with self.subTest(registry=kind):
                check(self.server(kind, **settings).channel)

    def ok(self, channel, payload):
        code, details, resp = fr.get(channel, payload)
        self.assertEqual(code, Code.OK, details)
        return resp

    def refused(self, channel, payload, code, *words):
        got, details, _ = fr.get(channel, payload)
        self.assertEqual(got, code, details)
        for w in words:
            self.assertIn(w, details)
        return details

    def assert_cells(self, col, expected):
        """expected: [(Value, status, event seconds)] per row."""
        self.assertEqual([cell(col, i) for i in range(len(col.values))],
                         [(v, s, ts(t)) for v, s, t in expected])

    # ------------------------------------------------------------ 7.1

    def test_7_1_missing_feature_gets_entity_timestamp(self):
        """Driver 7 has conv_rate only: its trips are NOT_FOUND, empty, with
        7's timestamp; 9999 is not found: zero timestamps. Driver 3's rows
        carry two event times: both columns get the latest."""
        def check(ch):
            resp = self.ok(ch, request(["driver_stats:conv_rate", "driver_stats:trips"],
                                       entities=[("driver_id", ints(7, 9999, 3))]))
            self.assertEqual(names(resp), ["driver_id", "conv_rate", "trips"])
            c = columns(resp)
            self.assert_cells(c["conv_rate"], [(V.Value(float_val=0.75), PRESENT, T + 7), (EMPTY, NOT_FOUND, 0),
                                               (V.Value(float_val=0.125), PRESENT, T + 30)])
            self.assert_cells(c["trips"], [(EMPTY, NOT_FOUND, T + 7), (EMPTY, NOT_FOUND, 0),
                                           (V.Value(int64_val=30), PRESENT, T + 30)])
        self.each(check)

    # ------------------------------------------------------------ 7.2

    def test_7_2_unknown_columns_and_request_context_not_echoed(self):
        def check(ch):
            resp = self.ok(ch, request(["driver_stats:conv_rate"],
                                       entities=[("driver_id", ints(1)), ("not_a_key", strs("x"))],
                                       context=[("rc_col", ints(5))]))
            self.assertEqual(names(resp), ["driver_id", "conv_rate"])
            c = columns(resp)
            self.assert_cells(c["driver_id"], [(V.Value(int64_val=1), PRESENT, 0)])
            self.assert_cells(c["conv_rate"], [(V.Value(float_val=0.5), PRESENT, T + 1)])
            # The join keys given, in request order, then the features.
            refs = ["driver_stats:conv_rate", "customer_profile:age"]
            resp = self.ok(ch, request(refs, entities=[("customer_id", strs("c_new")), ("not_a_key", ints(0)),
                                                       ("driver_id", ints(1))]))
            self.assertEqual(names(resp), ["customer_id", "driver_id", "conv_rate", "age"])
            resp = self.ok(ch, request(refs, entities=[("driver_id", ints(1)), ("customer_id", strs("c_new"))],
                                       context=[("rc_col", ints(1))]))
            self.assertEqual(names(resp), ["driver_id", "customer_id", "conv_rate", "age"])
            # The join key of a project entity that no requested view uses is echoed (as Python does).
            resp = self.ok(ch, request(["driver_stats:conv_rate"],
                                       entities=[("driver_id", ints(1)), ("customer_id", strs("c_new"))]))
            self.assertEqual(names(resp), ["driver_id", "customer_id", "conv_rate"])
            # Lengths are still checked, for every column.
            self.refused(ch, request(["driver_stats:conv_rate"],
                                     entities=[("driver_id", ints(1)), ("not_a_key", strs("x", "y"))]),
                         Code.INVALID_ARGUMENT, "not_a_key")
            self.refused(ch, request(["driver_stats:conv_rate"], entities=[("driver_id", ints(1))],
                                     context=[("rc_col", ints(1, 2))]),
                         Code.INVALID_ARGUMENT, "rc_col")
        self.each(check)

    # ------------------------------------------------------------ 7.3

    def test_7_3_outside_max_age_keeps_stored_value(self):
        """TTL one day: a customer written 2 days ago is OUTSIDE_MAX_AGE with its
        value 77 and its timestamp; a fresh one PRESENT."""
        def check(ch):
            resp = self.ok(ch, request(["customer_profile:age"],
                                       entities=[("customer_id", strs("c_old", "c_new", "c_none"))]))
            self.assert_cells(columns(resp)["age"], [(V.Value(int64_val=77), OUTSIDE_MAX_AGE, NOW - 2 * DAY),
                                                     (V.Value(int64_val=30), PRESENT, NOW - 60),
                                                     (EMPTY, NOT_FOUND, 0)])
        self.each(check)

    def test_7_3_enforce_ttl_false_is_present(self):
        def check(ch):
            resp = self.ok(ch, request(["customer_profile:age"], entities=[("customer_id", strs("c_old"))]))
            self.assert_cells(columns(resp)["age"], [(V.Value(int64_val=77), PRESENT, NOW - 2 * DAY)])
        self.each(check, enforce_ttl=False)

    # ------------------------------------------------------------ 7.4 (stats: tables hold a=100, b=101, c=102)

    def test_7_4_unversioned_reference_reads_current_version(self):
        """Versioning on: `stats:x` reads P_stats_v2 (current 2) = c; @latest,
        @LATEST and a bare @ are the current version; with full names the
        column is `stats__x`, with no version in it."""
        def check(ch):
            for ref in ("stats:x", "stats@latest:x", "stats@LATEST:x", "stats@:x"):
                resp = self.ok(ch, request([ref], entities=[("driver_id", ints(1))]))
                self.assertEqual(names(resp), ["driver_id", "x"], ref)
                self.assert_cells(columns(resp)["x"], [(V.Value(int64_val=102), PRESENT, T + 102)])
                resp = self.ok(ch, request([ref], entities=[("driver_id", ints(1))], full=True))
                self.assertEqual(names(resp), ["driver_id", "stats__x"], ref)
                self.assertEqual(len(resp.metadata.feature_view_metadata), 0)  # not asked for
        self.each(check)

    def test_7_4_pinned_versions_and_full_feature_names(self):
        def check(ch):
            resp = self.ok(ch, request(["stats@v1:x", "stats@v0:x", "stats@V2:y"],
                                       entities=[("driver_id", ints(1))], full=True))
            self.assertEqual(names(resp), ["driver_id", "stats@v1__x", "stats@v0__x", "stats@v2__y"])
            c = columns(resp)
            self.assert_cells(c["stats@v1__x"], [(V.Value(int64_val=101), PRESENT, T + 101)])
            self.assert_cells(c["stats@v0__x"], [(V.Value(int64_val=100), PRESENT, T + 100)])
            self.assert_cells(c["stats@v2__y"], [(V.Value(int64_val=22), PRESENT, T + 102)])
            resp = self.ok(ch, request(["stats@v1:w"], entities=[("driver_id", ints(1))]))
            self.assertEqual(names(resp), ["driver_id", "w"])
            self.assert_cells(columns(resp)["w"], [(V.Value(int64_val=11), PRESENT, T + 101)])
            # Two versions of one view are two groups: without full names their columns collide.
            self.refused(ch, request(["stats@v1:x", "stats@v2:x"], entities=[("driver_id", ints(1))]),
                         Code.INVALID_ARGUMENT, "x")
        self.each(check)

    def test_7_4_version_metadata(self):
        """include_feature_view_version_metadata: one entry per view name in
        first-seen order, the pinned version, else the current one."""
        def meta(ch, refs, full=False):
            resp = self.ok(ch, request(refs, entities=[("driver_id", ints(1))], full=full, metadata=True))
            return [(m.name, m.version) for m in resp.metadata.feature_view_metadata]

        def check(ch):
            self.assertEqual(meta(ch, ["stats@v1:x"]), [("stats", 1)])
            self.assertEqual(meta(ch, ["stats:x"]), [("stats", 2)])
            self.assertEqual(meta(ch, ["driver_stats:conv_rate", "stats@v1:x", "stats:x"], full=True),
                             [("driver_stats", 0), ("stats", 1)])
            self.assertEqual(meta(ch, ["stats@v0:x", "toggle:x"], full=True), [("stats", 0), ("toggle", 1)])
        self.each(check)

    def test_7_4_unknown_version_is_invalid_argument(self):
        def check(ch):
            details = self.refused(ch, request(["stats@v9:x"], entities=[("driver_id", ints(1))]),
                                   Code.INVALID_ARGUMENT, "stats")
            self.assertRegex(details, r"v9|version 9|9")
        self.each(check)

    def test_7_4_feature_missing_from_snapshot_is_invalid_argument(self):
        """y exists only from version 2, w from version 1: the snapshot decides."""
        def check(ch):
            self.refused(ch, request(["stats@v1:y"], entities=[("driver_id", ints(1))]), Code.INVALID_ARGUMENT, "y")
            self.refused(ch, request(["stats@v0:w"], entities=[("driver_id", ints(1))]), Code.INVALID_ARGUMENT, "w")
        self.each(check)

    def test_7_4_versioning_off(self):
        """Off: `stats:x` reads P_stats = a whatever the current version;
        `stats@v1:x` is FAILED_PRECONDITION naming the reference and the
        setting; the metadata still reports the current version."""
        def check(ch):
            resp = self.ok(ch, request(["stats:x"], entities=[("driver_id", ints(1))], full=True, metadata=True))
            self.assertEqual(names(resp), ["driver_id", "stats__x"])
            self.assert_cells(columns(resp)["stats__x"], [(V.Value(int64_val=100), PRESENT, T + 100)])
            self.assertEqual([(m.name, m.version) for m in resp.metadata.feature_view_metadata], [("stats", 2)])
            self.refused(ch, request(["stats@v1:x"], entities=[("driver_id", ints(1))]), Code.FAILED_PRECONDITION,
                         "stats@v1:x", "enable_online_feature_view_versioning")
        self.each(check, versioning=False)

    def test_7_4_feature_service_version_tag(self):
        """A projection's version_tag reads table _v<tag> with the view's current
        definition (on), the unsuffixed table (off, and for tag 0), and names its
        columns `<alias or view>@v<tag>__<feature>` either way."""
        def fs(ch, name, full=True):
            return self.ok(ch, request(service=name, entities=[("driver_id", ints(1))], full=full))

        def metadata(ch):
            # The view's current version, not the tag: Feast's metadata names
            # current_version_number of the view get_any_feature_view returns
            # (utils._populate_response_from_feature_data).
            for name, listed in (("fs_stats_v1", "stats"), ("fs_stats_alias_v1", "s")):
                resp = self.ok(ch, request(service=name, entities=[("driver_id", ints(1))], metadata=True))
                self.assertEqual([(m.name, m.version) for m in resp.metadata.feature_view_metadata], [(listed, 2)])

        def on(ch):
            metadata(ch)
            resp = fs(ch, "fs_stats_v1")
            self.assertEqual(names(resp), ["driver_id", "stats@v1__x"])
            self.assert_cells(columns(resp)["stats@v1__x"], [(V.Value(int64_val=101), PRESENT, T + 101)])
            resp = fs(ch, "fs_stats_alias_v1")
            self.assertEqual(names(resp), ["driver_id", "s@v1__x"])
            self.assert_cells(columns(resp)["s@v1__x"], [(V.Value(int64_val=101), PRESENT, T + 101)])
            resp = fs(ch, "fs_stats_v0")  # a tag of 0 is there, and is not the current version 2
            self.assertEqual(names(resp), ["driver_id", "stats@v0__x"])
            self.assert_cells(columns(resp)["stats@v0__x"], [(V.Value(int64_val=100), PRESENT, T + 100)])
            resp = fs(ch, "fs_stats_v1", full=False)
            self.assertEqual(names(resp), ["driver_id", "x"])
            # y is in the current definition, not in version 1's snapshot: no error, and P_stats_v1 has no y.
            resp = fs(ch, "fs_stats_v1_y")
            self.assertEqual(names(resp), ["driver_id", "stats@v1__y"])
            self.assert_cells(columns(resp)["stats@v1__y"], [(EMPTY, NOT_FOUND, 0)])

        def off(ch):
            metadata(ch)
            resp = fs(ch, "fs_stats_v1")
            self.assertEqual(names(resp), ["driver_id", "stats@v1__x"])
            self.assert_cells(columns(resp)["stats@v1__x"], [(V.Value(int64_val=100), PRESENT, T + 100)])
        self.each(on)
        self.each(off, versioning=False)

    # ------------------------------------------------------------ 7.5

    def test_7_5_disabled_views_are_refused(self):
        def check(ch):
            one = [("driver_id", ints(1))]
            for refs in (["disabled_view:x"], ["driver_stats:conv_rate", "disabled_view:x"]):
                self.refused(ch, request(refs, entities=one), Code.FAILED_PRECONDITION, "disabled_view", "disabled")
            self.refused(ch, request(service="fs_disabled", entities=one), Code.FAILED_PRECONDITION,
                         "disabled_view", "disabled")
            self.refused(ch, request(["disabled_stream:clicks"], entities=one), Code.FAILED_PRECONDITION,
                         "disabled_stream", "disabled")
            self.refused(ch, request(["disabled_odfv:ratio"], entities=one), Code.FAILED_PRECONDITION,
                         "disabled_odfv", "disabled")
        self.each(check)

    def test_7_5_views_not_yet_online_are_refused(self):
        def check(ch):
            one = [("driver_id", ints(1))]
            for state, view in state_views.items():
                self.refused(ch, request([view.name + ":x"], entities=one), Code.FAILED_PRECONDITION,
                             view.name, state)
            self.refused(ch, request(service="fs_materializing", entities=one), Code.FAILED_PRECONDITION,
                         "materializing_view", "MATERIALIZING")
            self.refused(ch, request(["materializing_odfv:ratio"], entities=one), Code.FAILED_PRECONDITION,
                         "materializing_odfv", "MATERIALIZING")
        self.each(check)

    def test_7_5_available_online_and_unspecified_states_are_served(self):
        def check(ch):
            resp = self.ok(ch, request(["available_view:x", "driver_stats:conv_rate", "clicks:clicks"],
                                       entities=[("driver_id", ints(1))]))
            c = columns(resp)
            self.assert_cells(c["x"], [(V.Value(int64_val=5), PRESENT, T + 5)])
            self.assert_cells(c["conv_rate"], [(V.Value(float_val=0.5), PRESENT, T + 1)])
            self.assert_cells(c["clicks"], [(V.Value(int64_val=3), PRESENT, T + 3)])
        self.each(check)

    def test_7_5_pinned_version_uses_snapshot_flags(self):
        """toggle's version 0 was disabled, version 1 (current) is not."""
        def check(ch):
            one = [("driver_id", ints(1))]
            self.refused(ch, request(["toggle@v0:x"], entities=one), Code.FAILED_PRECONDITION, "toggle", "disabled")
            for ref in ("toggle:x", "toggle@v1:x"):
                resp = self.ok(ch, request([ref], entities=one))
                self.assert_cells(columns(resp)["x"], [(V.Value(int64_val=41), PRESENT, T + 41)])
        self.each(check)

    # ------------------------------------------------------------ 7.6

    def test_7_6_entity_name_column_maps_to_join_key(self):
        def check(ch):
            resp = self.ok(ch, request(["driver_stats:conv_rate"], entities=[("driver", ints(1, 2))]))
            self.assertEqual(names(resp), ["driver_id", "conv_rate"])
            c = columns(resp)
            self.assert_cells(c["driver_id"], [(V.Value(int64_val=1), PRESENT, 0), (V.Value(int64_val=2), PRESENT, 0)])
            self.assert_cells(c["conv_rate"], [(V.Value(float_val=0.5), PRESENT, T + 1),
                                               (V.Value(float_val=0.25), PRESENT, T + 2)])
            # In the request column's place.
            resp = self.ok(ch, request(["driver_stats:conv_rate", "customer_profile:age"],
                                       entities=[("customer", strs("c_new")), ("driver", ints(1))]))
            self.assertEqual(names(resp), ["customer_id", "driver_id", "conv_rate", "age"])
            self.assert_cells(columns(resp)["age"], [(V.Value(int64_val=30), PRESENT, NOW - 60)])
            # The entity name and its join key both given.
            self.refused(ch, request(["driver_stats:conv_rate"],
                                     entities=[("driver", ints(1)), ("driver_id", ints(1))]),
                         Code.INVALID_ARGUMENT)
            # The join key's type rules apply to the values.
            self.refused(ch, request(["driver_stats:conv_rate"],
                                     entities=[("driver", V.RepeatedValue(val=[V.Value(int32_val=1)]))]),
                         Code.INVALID_ARGUMENT)
        self.each(check)

    # ------------------------------------------------------------ 7.7

    def test_7_7_label_views_served_like_feature_views(self):
        """Table P_driver_labels, join keys from its entities, TTL (one day) from spec.ttl."""
        def check(ch):
            resp = self.ok(ch, request(["driver_labels:is_fraud"], entities=[("driver_id", ints(1, 2, 99))]))
            self.assertEqual(names(resp), ["driver_id", "is_fraud"])
            self.assert_cells(columns(resp)["is_fraud"], [(V.Value(bool_val=True), PRESENT, NOW - 60),
                                                          (V.Value(bool_val=False), OUTSIDE_MAX_AGE, NOW - 2 * DAY),
                                                          (EMPTY, NOT_FOUND, 0)])
            resp = self.ok(ch, request(service="fs_labels", entities=[("driver_id", ints(1))], full=True))
            self.assertEqual(names(resp), ["driver_id", "driver_stats__conv_rate", "driver_labels__is_fraud"])
            self.assert_cells(columns(resp)["driver_labels__is_fraud"],
                              [(V.Value(bool_val=True), PRESENT, NOW - 60)])
        self.each(check)

    # ------------------------------------------------------------ 7.8

    def test_7_8_precompute_online_is_ignored(self):
        """No ___precomputed__ table exists: the service answers per view,
        exactly as its views' references do, with the views' event times."""
        def check(ch):
            ents = [("driver_id", ints(1, 7, 9999))]
            via_service = self.ok(ch, request(service="fs_precomputed", entities=ents, full=True))
            via_refs = self.ok(ch, request(["driver_stats:conv_rate", "driver_stats:trips"], entities=ents, full=True))
            self.assertEqual(names(via_service), ["driver_id", "driver_stats__conv_rate", "driver_stats__trips"])
            self.assertEqual(via_service, via_refs)
            self.assert_cells(columns(via_service)["driver_stats__trips"],
                              [(V.Value(int64_val=10), PRESENT, T + 1), (EMPTY, NOT_FOUND, T + 7),
                               (EMPTY, NOT_FOUND, 0)])
        self.each(check)

    # ------------------------------------------------------------ 7.9

    def test_7_9_on_demand_views(self):
        """write_to_online_store true: served from its table; false: UNIMPLEMENTED
        for the whole call, by reference or inside a feature service."""
        def check(ch):
            resp = self.ok(ch, request(["stored_odfv:ratio"], entities=[("driver_id", ints(1, 2))]))
            self.assert_cells(columns(resp)["ratio"], [(V.Value(double_val=2.5), PRESENT, T + 25),
                                                       (EMPTY, NOT_FOUND, 0)])
            resp = self.ok(ch, request(service="fs_stored_odfv", entities=[("driver_id", ints(1))], full=True))
            self.assertEqual(names(resp), ["driver_id", "stored_odfv__ratio"])
            self.refused(ch, request(["computed_odfv:plus_one"], entities=[("driver_id", ints(1))]),
                         Code.UNIMPLEMENTED, "computed_odfv")
            self.refused(ch, request(["driver_stats:conv_rate", "computed_odfv:plus_one"],
                                     entities=[("driver_id", ints(1))], context=[("val_to_add", ints(1))]),
                         Code.UNIMPLEMENTED, "computed_odfv")
            self.refused(ch, request(service="fs_computed", entities=[("driver_id", ints(1))]),
                         Code.UNIMPLEMENTED, "computed_odfv")
        self.each(check)


if __name__ == "__main__":
    unittest.main(verbosity=2)
