#!/usr/bin/python3
"""The real larder process driven by a Python grpcio client: round trips of
every Value kind, bad inputs with their statuses, limits, and SIGTERM with
calls in flight. Runs against the backend in LARDER_TEST_BACKEND."""
import concurrent.futures
import os
import signal
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EntityKey_pb2, Value_pb2, grpc, key, pb, raw_call, row  # noqa: E402

Code = grpc.StatusCode


def sample_values():
    """One Value per member of Value's oneof, each with a non-trivial payload."""
    V = Value_pb2
    out = {
        "bytes_val": V.Value(bytes_val=b"\x00\xffraw"),
        "string_val": V.Value(string_val="Zürich 東京 😀"),
        "empty_string_val": V.Value(string_val=""),
        "int32_val": V.Value(int32_val=-42),
        "int64_val": V.Value(int64_val=-(2 ** 63)),
        "double_val": V.Value(double_val=0.1),
        "float_val": V.Value(float_val=0.5),
        "bool_val": V.Value(bool_val=False),
        "unix_timestamp_val": V.Value(unix_timestamp_val=1700000000),
        "bytes_list_val": V.Value(bytes_list_val=V.BytesList(val=[b"a", b""])),
        "string_list_val": V.Value(string_list_val=V.StringList(val=["a", "", "c"])),
        "int32_list_val": V.Value(int32_list_val=V.Int32List(val=[1, -1])),
        "int64_list_val": V.Value(int64_list_val=V.Int64List(val=[1, 2, 300, -1])),
        "double_list_val": V.Value(double_list_val=V.DoubleList(val=[1.0, -2.5])),
        "float_list_val": V.Value(float_list_val=V.FloatList(val=[0.5, 2.0])),
        "bool_list_val": V.Value(bool_list_val=V.BoolList(val=[True, False])),
        "unix_timestamp_list_val": V.Value(unix_timestamp_list_val=V.Int64List(val=[1700000000, 0])),
        "null_val": V.Value(null_val=V.NULL),
        "map_val": V.Value(map_val=V.Map(val={"a": V.Value(string_val="x"), "b": V.Value(int64_val=2)})),
        "map_list_val": V.Value(map_list_val=V.MapList(val=[V.Map(val={"k": V.Value(bool_val=True)})])),
        "bytes_set_val": V.Value(bytes_set_val=V.BytesSet(val=[b"x"])),
        "string_set_val": V.Value(string_set_val=V.StringSet(val=["a", "b"])),
        "int32_set_val": V.Value(int32_set_val=V.Int32Set(val=[3])),
        "int64_set_val": V.Value(int64_set_val=V.Int64Set(val=[4, 5])),
        "double_set_val": V.Value(double_set_val=V.DoubleSet(val=[0.25])),
        "float_set_val": V.Value(float_set_val=V.FloatSet(val=[1.5])),
        "bool_set_val": V.Value(bool_set_val=V.BoolSet(val=[True])),
        "unix_timestamp_set_val": V.Value(unix_timestamp_set_val=V.Int64Set(val=[1])),
        "json_val": V.Value(json_val='{"k": [1, 2]}'),
        "json_list_val": V.Value(json_list_val=V.StringList(val=["{}", "[]"])),
        "struct_val": V.Value(struct_val=V.Map(val={"n": V.Value(double_val=1.5)})),
        "struct_list_val": V.Value(struct_list_val=V.MapList(val=[V.Map()])),
        "uuid_val": V.Value(uuid_val="123e4567-e89b-12d3-a456-426614174000"),
        "time_uuid_val": V.Value(time_uuid_val="c232ab00-9414-11ec-b3c8-9f6bdeced846"),
        "uuid_list_val": V.Value(uuid_list_val=V.StringList(val=["u1", "u2"])),
        "time_uuid_list_val": V.Value(time_uuid_list_val=V.StringList(val=["t1"])),
        "uuid_set_val": V.Value(uuid_set_val=V.StringSet(val=["u"])),
        "time_uuid_set_val": V.Value(time_uuid_set_val=V.StringSet(val=["t"])),
        "list_val": V.Value(list_val=V.RepeatedValue(val=[V.Value(int64_val=1), V.Value(string_val="s")])),
        "set_val": V.Value(set_val=V.RepeatedValue(val=[V.Value(double_val=2.0)])),
        "decimal_val": V.Value(decimal_val="12345.6789"),
        "decimal_list_val": V.Value(decimal_list_val=V.StringList(val=["1.1", "2.2"])),
        "decimal_set_val": V.Value(decimal_set_val=V.StringSet(val=["3.3"])),
        "scalar_map_val": V.Value(scalar_map_val=V.ScalarMap(val=[
            V.ScalarMapEntry(key=V.MapKey(int64_key=7), value=V.Value(string_val="seven"))])),
        "zoned_timestamp_val": V.Value(zoned_timestamp_val=V.ZonedTimestamp(unix_timestamp=1700000000,
                                                                            zone="-07:00")),
        "unset": V.Value(),
    }
    members = {f.name for f in V.Value.DESCRIPTOR.oneofs_by_name["val"].fields}
    covered = {v.WhichOneof("val") for v in out.values()} - {None}
    assert covered == members, "not covered: %s" % (members - covered)
    return out


class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(larder={"max_batch_rows": 100, "max_message_bytes": 1048576}).start()
        cls.stub = cls.server.stub
        cls.stub.Update(pb.UpdateRequest(tables_to_keep=["drivers", "everything", "bad_inputs"]))

    @classmethod
    def tearDownClass(cls):
        code = cls.server.close()
        if code != 0:
            raise AssertionError("larder exited with %s" % code)

    def read(self, view, keys, features=()):
        return self.stub.OnlineRead(pb.OnlineReadRequest(feature_view=view, entity_keys=keys,
                                                         requested_features=features), timeout=10)

    def test_round_trip_every_value_kind(self):
        values = sample_values()
        ek = key(driver_id=1001)
        reply = self.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
            feature_view="everything", rows=[row(ek, values, ts=1700000123, created=1700000200)]))
        self.assertEqual(reply.rows_written, 1)
        got = self.read("everything", [ek]).results
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].found)
        self.assertEqual(got[0].event_ts.seconds, 1700000123)
        self.assertEqual(set(got[0].features), set(values))
        for name, value in values.items():
            self.assertEqual(got[0].features[name], value, name)
            # Python orders map entries as it likes: compare the deterministic form.
            self.assertEqual(got[0].features[name].SerializeToString(deterministic=True),
                             value.SerializeToString(deterministic=True), name)

    def test_key_kinds_and_multi_key_entities(self):
        keys = [key(driver_id=5), key(user="alice"), key(blob=b"\x00\x01"), key(a=1, b="x"),
                key(b="x", a=1), key(city="Zürich")]
        ek32 = EntityKey_pb2.EntityKey(join_keys=["n"], entity_values=[Value_pb2.Value(int32_val=5)])
        ekts = EntityKey_pb2.EntityKey(join_keys=["t"], entity_values=[Value_pb2.Value(unix_timestamp_val=9)])
        keys += [ek32, ekts]
        rows = [row(k, {"f": Value_pb2.Value(int64_val=i)}) for i, k in enumerate(keys)]
        self.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="drivers", rows=rows[:4] + rows[5:]))
        got = self.read("drivers", keys).results
        for i, r in enumerate(got):
            self.assertTrue(r.found, i)
        # {a, b} and {b, a} are one entity: Feast sorts join keys before serializing.
        self.assertEqual(got[4].features["f"].int64_val, 3)
        # An int32 key is not the int64 key with the same number.
        self.assertNotEqual(got[6].features["f"].int64_val, got[0].features["f"].int64_val)

    def test_order_missing_duplicates_and_filter(self):
        rows = [row(key(driver_id=i), {"trips": Value_pb2.Value(int64_val=i * 10),
                                       "rate": Value_pb2.Value(double_val=i / 4)}, ts=1000 + i)
                for i in range(1, 6)]
        self.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="drivers", rows=rows))
        order = [4, 999, 2, 4]
        got = self.read("drivers", [key(driver_id=i) for i in order]).results
        self.assertEqual([r.found for r in got], [True, False, True, True])
        self.assertEqual(got[0].features["trips"].int64_val, 40)
        self.assertEqual(got[0].event_ts.seconds, 1004)
        self.assertEqual(got[1], pb.ReadResult())
        self.assertEqual(got[2].features["rate"].double_val, 0.5)
        self.assertEqual(got[3], got[0])
        only = self.read("drivers", [key(driver_id=3)], ["rate", "nope"]).results[0]
        self.assertEqual(set(only.features), {"rate"})
        empty = self.read("drivers", [])
        self.assertEqual(len(empty.results), 0)

    def test_concurrent_reads_each_get_their_own_answer(self):
        """Reads waiting together are served together (server.c run_batch): each still gets
        exactly its keys, its features, and its own error."""
        server = harness.Server(larder={"workers": 1, "log_level": "debug"}).start()
        self.addCleanup(server.close)
        stub = server.stub
        stub.Update(pb.UpdateRequest(tables_to_keep=["conc_a", "conc_b"]))
        for view in ("conc_a", "conc_b"):
            rows = [row(key(driver_id=i), {"f%d" % j: Value_pb2.Value(int64_val=i * 100 + j) for j in range(4)},
                        ts=1000 + i) for i in range(50)]
            stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view=view, rows=rows))
        requests = []
        for n in range(300):
            view = ("conc_a", "conc_b", "conc_missing")[n % 3 if n % 10 else 2]
            ids = [(n * 7 + k * 13) % 60 for k in range(1 + n % 5)]  # ids 50..59 do not exist
            features = [] if n % 4 == 0 else ["f%d" % (n % 4), "f0"]
            requests.append((view, ids, features, pb.OnlineReadRequest(
                feature_view=view, entity_keys=[key(driver_id=i) for i in ids], requested_features=features)))
        futures = [stub.OnlineRead.future(r, timeout=30) for _, _, _, r in requests]
        for (view, ids, features, _), fut in zip(requests, futures):
            if view == "conc_missing":
                with self.assertRaises(grpc.RpcError) as cm:
                    fut.result()
                self.assertEqual(cm.exception.code(), Code.NOT_FOUND)
                continue
            results = fut.result().results
            self.assertEqual(len(results), len(ids))
            for i, res in zip(ids, results):
                if i >= 50:
                    self.assertFalse(res.found)
                    continue
                want = {"f%d" % j: Value_pb2.Value(int64_val=i * 100 + j) for j in range(4)
                        if not features or "f%d" % j in features}
                self.assertEqual(dict(res.features), want)
                self.assertEqual(res.event_ts.seconds, 1000 + i)
        self.assertRegex(server.read_log(), r"reads of \w+ served together",
                         "no reads were served together: the test did not test that")

    def test_sql_looking_names_and_values_are_just_data(self):
        tricky = "x'); DROP TABLE itest_drivers; --"
        ek = key(**{"id": tricky})
        self.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
            feature_view="drivers", rows=[row(ek, {tricky: Value_pb2.Value(string_val=tricky)})]))
        got = self.read("drivers", [ek], [tricky]).results[0]
        self.assertEqual(got.features[tricky].string_val, tricky)
        self.assertTrue(self.read("drivers", [key(driver_id=1)]).results is not None)

    def test_update_teardown_idempotent(self):
        self.stub.Update(pb.UpdateRequest(tables_to_keep=["temp_view"]))
        self.stub.Update(pb.UpdateRequest(tables_to_keep=["temp_view"]))  # existing: fine
        self.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
            feature_view="temp_view", rows=[row(key(driver_id=1), {"f": Value_pb2.Value(int64_val=1)})]))
        self.stub.Update(pb.UpdateRequest(tables_to_delete=["temp_view"]))
        with self.assertRaises(grpc.RpcError) as cm:
            self.read("temp_view", [key(driver_id=1)])
        self.assertEqual(cm.exception.code(), Code.NOT_FOUND)
        self.stub.Teardown(pb.TeardownRequest(tables=["temp_view", "never_existed"]))  # missing: fine

    def test_unknown_method(self):
        code, details, _ = raw_call(self.server.channel, "/larder.v1.OnlineStore/Nope", b"")
        self.assertEqual(code, Code.UNIMPLEMENTED)
        self.assertIn("/larder.v1.OnlineStore/Nope", details)

    def test_bad_inputs(self):
        """Each bad request gets its status and a message naming the field; nothing is written."""
        ok = key(driver_id=77)
        okrow = row(ok, {"f": Value_pb2.Value(int64_val=1)})

        def write(*rows, view="bad_inputs"):
            return ("OnlineWriteBatch", pb.OnlineWriteBatchRequest(feature_view=view, rows=list(rows)))

        def read(*keys, view="bad_inputs", features=()):
            return ("OnlineRead", pb.OnlineReadRequest(feature_view=view, entity_keys=list(keys),
                                                       requested_features=list(features)))

        def raw_key(join_keys, values):
            return EntityKey_pb2.EntityKey(join_keys=join_keys, entity_values=values)

        V = Value_pb2.Value
        nul_row = row(ok, {"f": V(int64_val=1)})
        nested = V(int64_val=1)
        for _ in range(120):
            nested = V(list_val=Value_pb2.RepeatedValue(val=[nested]))
        big = row(ok, {"blob": V(bytes_val=b"x" * (1100 * 1024))})
        # Bytes Python's protobuf refuses to build: invalid UTF-8 and NUL in strings.
        bad_utf8_view = b"\x0a\x02\xc3\x28"
        nul_view = b"\x0a\x03a\x00b"
        ser = pb.OnlineWriteBatchRequest(feature_view="bad_inputs", rows=[nul_row]).SerializeToString()
        nul_feature = ser.replace(b"\x0a\x01f", b"\x0a\x01\x00")
        str_row = row(ok, {"s": V(string_val="abc")})
        ser = pb.OnlineWriteBatchRequest(feature_view="bad_inputs", rows=[okrow, str_row]).SerializeToString()
        nul_value = ser.replace(b"abc", b"a\x00c")
        ser = pb.OnlineReadRequest(feature_view="bad_inputs", entity_keys=[key(driver=1)]).SerializeToString()
        nul_join_key = ser.replace(b"driver", b"dri\x00er")
        no_ts = row(ok, {"f": V(int64_val=1)}, ts=None)
        bad_nanos = row(ok, {"f": V(int64_val=1)})
        bad_nanos.event_ts.nanos = -1
        far = row(ok, {"f": V(int64_val=1)}, ts=253402300800)
        ancient = row(ok, {"f": V(int64_val=1)}, created=-62135596801)
        no_key = pb.WriteRow(features={"f": V(int64_val=1)})
        no_key.event_ts.seconds = 1
        too_many_keys = [key(driver_id=i) for i in range(101)]

        cases = [
            # (name, (method, message or bytes), code, start of the message)
            ("empty view", read(ok, view=""), Code.INVALID_ARGUMENT, "feature_view: empty"),
            ("dash in view", read(ok, view="bad-name"), Code.INVALID_ARGUMENT, "feature_view:"),
            ("SQL in view", read(ok, view='x"; DROP TABLE itest_drivers; --'), Code.INVALID_ARGUMENT,
             "feature_view:"),
            ("long view", read(ok, view="v" * 60), Code.INVALID_ARGUMENT, "feature_view: table name"),
            ("missing view read", read(ok, view="missing_view"), Code.NOT_FOUND, "feature_view: table"),
            ("missing view write", write(okrow, view="missing_view"), Code.NOT_FOUND, "feature_view: table"),
            ("missing view empty read", read(view="missing_view"), Code.NOT_FOUND, "feature_view:"),
            ("no join keys", read(raw_key([], [])), Code.INVALID_ARGUMENT, "entity_keys[0].join_keys"),
            ("count mismatch", read(raw_key(["a", "b"], [V(int64_val=1)])), Code.INVALID_ARGUMENT,
             "entity_keys[0].join_keys"),
            ("double key", read(ok, raw_key(["x"], [V(double_val=1.5)])), Code.INVALID_ARGUMENT,
             "entity_keys[1].entity_values[0]: double_val"),
            ("bool key", read(raw_key(["x"], [V(bool_val=True)])), Code.INVALID_ARGUMENT,
             "entity_keys[0].entity_values[0]: bool_val"),
            ("unset key value", read(raw_key(["x"], [V()])), Code.INVALID_ARGUMENT,
             "entity_keys[0].entity_values[0]: unset"),
            ("list key value", read(raw_key(["x"], [V(int64_list_val=Value_pb2.Int64List(val=[1]))])),
             Code.INVALID_ARGUMENT, "entity_keys[0].entity_values[0]: int64_list_val"),
            ("repeated join key", read(raw_key(["a", "a"], [V(int64_val=1), V(int64_val=2)])),
             Code.INVALID_ARGUMENT, "entity_keys[0].join_keys[1]"),
            ("garbage bytes", ("OnlineRead", b"\xff\xff\xff"), Code.INVALID_ARGUMENT, "request:"),
            ("truncated", ("OnlineWriteBatch", write(okrow)[1].SerializeToString()[:-3]),
             Code.INVALID_ARGUMENT, "request:"),
            ("invalid UTF-8 view", ("OnlineRead", bad_utf8_view), Code.INVALID_ARGUMENT,
             "feature_view: is not valid UTF-8"),
            ("NUL in view", ("OnlineRead", nul_view), Code.INVALID_ARGUMENT, "feature_view: contains a NUL"),
            ("NUL in join key", ("OnlineRead", nul_join_key), Code.INVALID_ARGUMENT,
             "entity_keys[0].join_keys[0]: contains a NUL"),
            ("NUL in requested feature", read(ok, features=["a\x00b"]), Code.INVALID_ARGUMENT,
             "requested_features[0]: contains a NUL"),
            ("NUL in feature name", ("OnlineWriteBatch", nul_feature), Code.INVALID_ARGUMENT,
             "rows[0].features[0].key: contains a NUL"),
            ("NUL in string value", ("OnlineWriteBatch", nul_value), Code.INVALID_ARGUMENT,
             "rows[1].features[0].value.string_val: contains a NUL"),
            ("no event_ts", write(okrow, no_ts), Code.INVALID_ARGUMENT, "rows[1].event_ts: required"),
            ("no entity_key", write(okrow, no_key), Code.INVALID_ARGUMENT, "rows[1].entity_key: required"),
            ("negative nanos", write(okrow, bad_nanos), Code.INVALID_ARGUMENT, "rows[1].event_ts.nanos"),
            ("year 10000", write(okrow, far), Code.INVALID_ARGUMENT, "rows[1].event_ts.seconds"),
            ("created before year 1", write(okrow, ancient), Code.INVALID_ARGUMENT,
             "rows[1].created_ts.seconds"),
            ("empty feature name", write(okrow, row(ok, {"": V(int64_val=1)})), Code.INVALID_ARGUMENT,
             "rows[1].features[0]: empty feature name"),
            ("bad key in a write", write(okrow, row(raw_key(["x"], [V(double_val=1.0)]), {"f": V()})),
             Code.INVALID_ARGUMENT, "rows[1].entity_key.entity_values[0]"),
            ("too many rows", write(*[okrow] * 101), Code.RESOURCE_EXHAUSTED, "rows: 101 rows"),
            ("too many keys", read(*too_many_keys), Code.RESOURCE_EXHAUSTED, "entity_keys: 101 keys"),
            ("limits before validity", read(*too_many_keys, view="bad-name"), Code.RESOURCE_EXHAUSTED,
             "entity_keys"),
            ("message too large", write(big), Code.RESOURCE_EXHAUSTED, ""),
            ("deep nesting", write(okrow, row(ok, {"deep": nested})), Code.INVALID_ARGUMENT,
             "request: messages nest deeper"),
            ("update bad name", ("Update", pb.UpdateRequest(tables_to_keep=["ok", "bad name"])),
             Code.INVALID_ARGUMENT, "tables_to_keep[1]"),
            ("teardown bad name", ("Teardown", pb.TeardownRequest(tables=["a;b"])), Code.INVALID_ARGUMENT,
             "tables[0]"),
            ("unknown method", ("/larder.v1.OnlineStore/Delete", b""), Code.UNIMPLEMENTED, "method"),
        ]
        self.assertGreaterEqual(len(cases), 20)
        db_before = self.read("bad_inputs", [ok]).results[0]
        self.assertFalse(db_before.found)
        for name, (method, message), code, prefix in cases:
            payload = message if isinstance(message, bytes) else message.SerializeToString()
            got, details, _ = raw_call(self.server.channel, method, payload)
            self.assertEqual(got, code, "%s: %s %r" % (name, got, details))
            self.assertTrue(details.startswith(prefix), "%s: %r does not start with %r" % (name, details, prefix))
        # Every failed write carried a valid row for key 77: none of them landed.
        self.assertFalse(self.read("bad_inputs", [ok]).results[0].found)
        self.assertEqual(self.server.proc.poll(), None)


class AdminDisabled(unittest.TestCase):
    def test_update_and_teardown_are_refused(self):
        with harness.Server(larder={"admin_rpcs": False}) as server:
            for method, msg in (("Update", pb.UpdateRequest(tables_to_keep=["x"])),
                                ("Teardown", pb.TeardownRequest(tables=["x"]))):
                code, details, _ = raw_call(server.channel, method, msg.SerializeToString())
                self.assertEqual(code, Code.PERMISSION_DENIED)
                self.assertIn("admin_rpcs", details)
            # Reads still work (and say the view is missing).
            code, _, _ = raw_call(server.channel, "OnlineRead",
                                  pb.OnlineReadRequest(feature_view="x", entity_keys=[key(a=1)]).SerializeToString())
            self.assertEqual(code, Code.NOT_FOUND)


class Shutdown(unittest.TestCase):
    def test_sigterm_with_50_calls_in_flight(self):
        """Every accepted call is answered OK, then larder exits 0."""
        # A grace period far longer than the drain takes, even on a loaded machine.
        server = harness.Server(larder={"grace_period_s": 300}).start()
        try:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["busy"]))
            # Batches big enough that 50 of them take a while to get through.
            rows = [row(key(driver_id=i), {"f%d" % j: Value_pb2.Value(int64_val=j) for j in range(20)})
                    for i in range(1000)]
            req = pb.OnlineWriteBatchRequest(feature_view="busy", rows=rows)
            futures = [server.stub.OnlineWriteBatch.future(req, timeout=300) for _ in range(50)]
            time.sleep(0.2)
            pending = sum(1 for f in futures if not f.done())
            server.proc.send_signal(signal.SIGTERM)
            codes = []
            for f in futures:
                try:
                    codes.append((f.result().rows_written, grpc.StatusCode.OK))
                except grpc.RpcError as e:
                    codes.append((0, e.code()))
            self.assertGreater(pending, 0, "no call was in flight at SIGTERM: the test proves nothing")
            self.assertEqual(codes, [(1000, grpc.StatusCode.OK)] * 50)
            code = server.proc.wait(timeout=300)
            self.assertEqual(code, 0, server.read_log())
            log = server.read_log()
            self.assertIn("draining", log)
            self.assertIn("stopped after", log)
            print("calls pending at SIGTERM: %d of 50" % pending)
        finally:
            server.close()

    def test_sigint_when_idle(self):
        server = harness.Server().start()
        self.assertEqual(server.stop(signal.SIGINT), 0)
        server.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
