#!/usr/bin/python3
"""The bad-input corpus, against the live server on LARDER_TEST_BACKEND: every
case is sent as raw bytes and must get its status and a message starting
with the field it is about. Valid writes are mixed in (names that look like
SQL, duplicate keys, empty batches); afterwards the store holds exactly those
rows — counted with SQL in the database itself — and every value reads back
as written. Nothing crashes: the server answers a final call and exits 0."""
import os
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EntityKey_pb2, Value_pb2, grpc, key, pb, raw_call, row  # noqa: E402
from harness import health_pb2 as H  # noqa: E402
from feast.serving import ServingService_pb2 as sv  # noqa: E402

Code = grpc.StatusCode
V = Value_pb2.Value
VIEW = "corpus"
SQL = ["x'; DROP TABLE itest_corpus; --", 'a" OR "1"="1', "1; DELETE FROM itest_corpus", "Robert'); --",
       "\\'; SELECT pg_sleep(10); --", "` OR 1=1 #", "$$; DROP SCHEMA public CASCADE; $$"]


def raw_key(join_keys, values):
    return EntityKey_pb2.EntityKey(join_keys=join_keys, entity_values=values)


def write(*rows, view=VIEW):
    return "OnlineWriteBatch", pb.OnlineWriteBatchRequest(feature_view=view, rows=list(rows))


def read(*keys, view=VIEW, features=()):
    return "OnlineRead", pb.OnlineReadRequest(feature_view=view, entity_keys=list(keys),
                                              requested_features=list(features))


def ser(call):
    method, message = call
    return method, message if isinstance(message, bytes) else message.SerializeToString()


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def many_join_keys(n):
    """One entity key of n join keys, in descending order (an insertion sort's worst case)."""
    ek = EntityKey_pb2.EntityKey()
    for i in reversed(range(n)):
        ek.join_keys.append("k%06d" % i)
        ek.entity_values.add().int64_val = i
    return ek


def columns(n_entities, n_context=0):
    req = sv.GetOnlineFeaturesRequest(features=sv.FeatureList(val=["corpus:f"]))
    for i in range(n_entities):
        req.entities["e%06d" % i].val.add().int64_val = i
    for i in range(n_context):
        req.request_context["r%06d" % i].val.add().int64_val = i
    return "/feast.serving.ServingService/GetOnlineFeatures", req


def cases(project="itest", backend=harness.BACKEND):
    """(name, (method, message or bytes), code, start of the details); OK cases are valid writes or reads.
    `project` sizes the longest view names: <project>_<view> may have 60 bytes."""
    ok = key(driver_id=77)
    okrow = row(ok, {"f": V(int64_val=1)})
    nested = V(int64_val=1)
    for _ in range(120):
        nested = V(list_val=Value_pb2.RepeatedValue(val=[nested]))
    good = pb.OnlineWriteBatchRequest(feature_view=VIEW, rows=[okrow]).SerializeToString()
    strrow = pb.OnlineWriteBatchRequest(feature_view=VIEW, rows=[okrow, row(ok, {"s": V(string_val="abc")})])
    strrow = strrow.SerializeToString()
    rd = pb.OnlineReadRequest(feature_view=VIEW, entity_keys=[key(driver=1)]).SerializeToString()
    # Well-formed protobuf, a known field of another wire type: a string as a varint, a
    # timestamp's seconds length-delimited (each the same length as what it replaces).
    wrong_string = pb.OnlineWriteBatchRequest(feature_view=VIEW, rows=[row(ok, {"f": V(string_val="abc")})])
    wrong_string = wrong_string.SerializeToString().replace(b"\x12\x03abc", b"\x10\xff\xff\xff\x0f")
    wrong_seconds = pb.OnlineWriteBatchRequest(feature_view=VIEW, rows=[row(ok, {"f": V(int64_val=1)}, ts=123456)])
    wrong_seconds = wrong_seconds.SerializeToString().replace(b"\x08\xc0\xc4\x07", b"\x0a\x02\x00\x00")
    # ... and the same among more rows than max_batch_rows: the limit is said first (DESIGN §9).
    many_wrong = pb.OnlineWriteBatchRequest(feature_view=VIEW, rows=[okrow] * 10000 + [
        row(ok, {"f": V(int64_val=1)}, ts=123456)]).SerializeToString()
    many_wrong = many_wrong.replace(b"\x08\xc0\xc4\x07", b"\x0a\x02\x00\x00")
    no_ts = row(ok, {"f": V(int64_val=1)}, ts=None)
    bad_nanos = row(ok, {"f": V(int64_val=1)})
    bad_nanos.event_ts.nanos = -1
    big_nanos = row(ok, {"f": V(int64_val=1)})
    big_nanos.event_ts.nanos = 1000000000
    no_key = pb.WriteRow(features={"f": V(int64_val=1)})
    no_key.event_ts.seconds = 1
    million = pb.OnlineReadRequest(feature_view=VIEW, entity_keys=[key(driver_id=1)]).SerializeToString()
    one_key = million[len(varint(len(VIEW))) + 1 + len(VIEW):]  # the entity_keys field alone
    million = b"\x0a" + varint(len(VIEW)) + VIEW.encode() + one_key * 1000000
    a_few_too_many = [key(driver_id=i) for i in range(10001)]
    room = 60 - len(project) - 1  # the longest view name: a table name of 60 bytes
    longest = [("v%03d" % i + "_" * room)[:room] for i in range(100)]
    far = row(key(driver_id=5), {"far": V(int64_val=9999)}, ts=253402300799, created=253402300799)
    far.event_ts.nanos = 999999999
    far_min = row(key(driver_id=5), {"far": V(int64_val=1)}, ts=-2 ** 63)

    out = [
        # Not protobuf, or not this message.
        ("garbage", ("OnlineRead", b"\xff\xff\xff"), Code.INVALID_ARGUMENT, "request:"),
        ("truncated write", ("OnlineWriteBatch", good[:-3]), Code.INVALID_ARGUMENT, "request:"),
        ("truncated by one byte", ("OnlineWriteBatch", good[:-1]), Code.INVALID_ARGUMENT, "request:"),
        ("length past the end", ("OnlineRead", b"\x0a\x7fabc"), Code.INVALID_ARGUMENT, "request:"),
        ("varint of 11 bytes", ("OnlineRead", b"\x10" + b"\xff" * 10 + b"\x01"), Code.INVALID_ARGUMENT, "request:"),
        ("field number 0", ("OnlineRead", b"\x02\x01a"), Code.INVALID_ARGUMENT, "request:"),
        ("group wire type", ("OnlineRead", b"\x0b\x0c"), Code.INVALID_ARGUMENT, "request:"),
        ("view as a varint", ("OnlineRead", b"\x08\x01"), Code.INVALID_ARGUMENT,
         "feature_view: wire type 0 does not carry"),
        ("a nested field of another wire type", ("OnlineWriteBatch", wrong_string), Code.INVALID_ARGUMENT,
         "rows[0].features[0].value.string_val: wire type 0"),
        ("a timestamp's seconds length-delimited", ("OnlineWriteBatch", wrong_seconds), Code.INVALID_ARGUMENT,
         "rows[0].event_ts.seconds: wire type 2"),
        ("too many rows, one of another wire type", ("OnlineWriteBatch", many_wrong), Code.RESOURCE_EXHAUSTED,
         "rows: 10001 rows exceed"),
        ("a read sent as a write", ("OnlineWriteBatch", rd), Code.INVALID_ARGUMENT, ""),
        ("nested 120 deep", write(okrow, row(ok, {"deep": nested})), Code.INVALID_ARGUMENT,
         "request: messages nest deeper"),
        ("empty bytes", ("OnlineRead", b""), Code.INVALID_ARGUMENT, "feature_view: empty"),
        # Names.
        ("empty view", read(ok, view=""), Code.INVALID_ARGUMENT, "feature_view: empty"),
        ("dash in view", read(ok, view="bad-name"), Code.INVALID_ARGUMENT, "feature_view:"),
        ("space in view", read(ok, view="a b"), Code.INVALID_ARGUMENT, "feature_view:"),
        ("view of 60 bytes", read(ok, view="v" * 60), Code.INVALID_ARGUMENT, "feature_view: table name"),
        ("unicode view", read(ok, view="caf\u00e9"), Code.INVALID_ARGUMENT, "feature_view:"),
        ("invalid UTF-8 view", ("OnlineRead", b"\x0a\x02\xc3\x28"), Code.INVALID_ARGUMENT,
         "feature_view: is not valid UTF-8"),
        ("overlong UTF-8 view", ("OnlineRead", b"\x0a\x02\xc0\xaf"), Code.INVALID_ARGUMENT,
         "feature_view: is not valid UTF-8"),
        ("surrogate in UTF-8", ("OnlineRead", b"\x0a\x03\xed\xa0\x80"), Code.INVALID_ARGUMENT,
         "feature_view: is not valid UTF-8"),
        ("NUL in view", ("OnlineRead", b"\x0a\x03a\x00b"), Code.INVALID_ARGUMENT, "feature_view: contains a NUL"),
        ("NUL in join key", ("OnlineRead", rd.replace(b"driver", b"dri\x00er")), Code.INVALID_ARGUMENT,
         "entity_keys[0].join_keys[0]: contains a NUL"),
        ("invalid UTF-8 join key", ("OnlineRead", rd.replace(b"driver", b"driv\xffr")), Code.INVALID_ARGUMENT,
         "entity_keys[0].join_keys[0]: is not valid UTF-8"),
        ("NUL in requested feature", read(ok, features=["a\x00b"]), Code.INVALID_ARGUMENT,
         "requested_features[0]: contains a NUL"),
        ("NUL in feature name", ("OnlineWriteBatch", good.replace(b"\x0a\x01f", b"\x0a\x01\x00")),
         Code.INVALID_ARGUMENT, "rows[0].features[0].key: contains a NUL"),
        ("invalid UTF-8 feature name", ("OnlineWriteBatch", good.replace(b"\x0a\x01f", b"\x0a\x01\xfe")),
         Code.INVALID_ARGUMENT, "rows[0].features[0].key: is not valid UTF-8"),
        ("NUL in string value", ("OnlineWriteBatch", strrow.replace(b"abc", b"a\x00c")), Code.INVALID_ARGUMENT,
         "rows[1].features[0].value.string_val: contains a NUL"),
        ("empty feature name", write(okrow, row(ok, {"": V(int64_val=1)})), Code.INVALID_ARGUMENT,
         "rows[1].features[0]: empty feature name"),
        ("missing view read", read(ok, view="missing_view"), Code.NOT_FOUND, "feature_view: table"),
        ("missing view write", write(okrow, view="missing_view"), Code.NOT_FOUND, "feature_view: table"),
        ("missing view, empty read", read(view="missing_view"), Code.NOT_FOUND, "feature_view:"),
        ("missing view, empty write", write(view="missing_view"), Code.NOT_FOUND, "feature_view:"),
        # Entity keys.
        ("no join keys", read(raw_key([], [])), Code.INVALID_ARGUMENT, "entity_keys[0].join_keys"),
        ("join keys without values", read(raw_key(["a", "b"], [])), Code.INVALID_ARGUMENT, "entity_keys[0].join_keys"),
        ("values without join keys", read(raw_key([], [V(int64_val=1)])), Code.INVALID_ARGUMENT,
         "entity_keys[0].join_keys"),
        ("fewer values", read(raw_key(["a", "b"], [V(int64_val=1)])), Code.INVALID_ARGUMENT,
         "entity_keys[0].join_keys"),
        ("repeated join key", read(raw_key(["a", "a"], [V(int64_val=1), V(int64_val=2)])), Code.INVALID_ARGUMENT,
         "entity_keys[0].join_keys[1]"),
        ("double key", read(ok, raw_key(["x"], [V(double_val=1.5)])), Code.INVALID_ARGUMENT,
         "entity_keys[1].entity_values[0]: double_val"),
        ("float key", read(raw_key(["x"], [V(float_val=1.5)])), Code.INVALID_ARGUMENT,
         "entity_keys[0].entity_values[0]: float_val"),
        ("bool key", read(raw_key(["x"], [V(bool_val=True)])), Code.INVALID_ARGUMENT,
         "entity_keys[0].entity_values[0]: bool_val"),
        ("unset key value", read(raw_key(["x"], [V()])), Code.INVALID_ARGUMENT, "entity_keys[0].entity_values[0]: unset"),
        ("list key value", read(raw_key(["x"], [V(int64_list_val=Value_pb2.Int64List(val=[1]))])),
         Code.INVALID_ARGUMENT, "entity_keys[0].entity_values[0]: int64_list_val"),
        ("map key value", read(raw_key(["x"], [V(map_val=Value_pb2.Map())])), Code.INVALID_ARGUMENT,
         "entity_keys[0].entity_values[0]: map_val"),
        ("bad key in a write", write(okrow, row(raw_key(["x"], [V(double_val=1.0)]), {"f": V()})),
         Code.INVALID_ARGUMENT, "rows[1].entity_key.entity_values[0]"),
        ("no entity_key", write(okrow, no_key), Code.INVALID_ARGUMENT, "rows[1].entity_key: required"),
        # Timestamps.
        ("no event_ts", write(okrow, no_ts), Code.INVALID_ARGUMENT, "rows[1].event_ts: required"),
        ("negative nanos", write(okrow, bad_nanos), Code.INVALID_ARGUMENT, "rows[1].event_ts.nanos"),
        ("nanos of a whole second", write(okrow, big_nanos), Code.INVALID_ARGUMENT, "rows[1].event_ts.nanos"),
        ("year 10000", write(okrow, row(ok, {"f": V(int64_val=1)}, ts=253402300800)), Code.INVALID_ARGUMENT,
         "rows[1].event_ts.seconds"),
        ("int64 max seconds", write(okrow, row(ok, {"f": V(int64_val=1)}, ts=2 ** 63 - 1)), Code.INVALID_ARGUMENT,
         "rows[1].event_ts.seconds"),
        ("created before year 1", write(okrow, row(ok, {"f": V(int64_val=1)}, created=-62135596801)),
         Code.INVALID_ARGUMENT, "rows[1].created_ts.seconds"),
        # Sizes.
        ("10,001 rows", write(*[okrow] * 10001), Code.RESOURCE_EXHAUSTED, "rows: 10001 rows"),
        ("10,001 keys", read(*a_few_too_many), Code.RESOURCE_EXHAUSTED, "entity_keys: 10001 keys"),
        ("limits before validity", read(*a_few_too_many, view="bad-name"), Code.RESOURCE_EXHAUSTED, "entity_keys"),
        ("1,000,000 keys", ("OnlineRead", million), Code.RESOURCE_EXHAUSTED, ""),
        ("message over 4 MiB", write(row(ok, {"blob": V(bytes_val=b"x" * (4200 * 1024))})),
         Code.RESOURCE_EXHAUSTED, ""),
        # Administration.
        ("update bad name", ("Update", pb.UpdateRequest(tables_to_keep=["ok", "bad name"])), Code.INVALID_ARGUMENT,
         "tables_to_keep[1]"),
        ("update SQL name", ("Update", pb.UpdateRequest(tables_to_delete=[SQL[0]])), Code.INVALID_ARGUMENT,
         "tables_to_delete[0]"),
        ("teardown bad name", ("Teardown", pb.TeardownRequest(tables=["a;b"])), Code.INVALID_ARGUMENT, "tables[0]"),
        # Names of the longest tables allowed (PostgreSQL's DDL text is built for them), and one byte more.
        ("update 3 views of 60-byte tables", ("Update", pb.UpdateRequest(tables_to_keep=longest[:3])), Code.OK, ""),
        ("teardown 3 views of 60-byte tables", ("Teardown", pb.TeardownRequest(tables=longest[:3])), Code.OK, ""),
        ("update 100 views of 60-byte tables", ("Update", pb.UpdateRequest(tables_to_keep=longest)), Code.OK, ""),
        ("delete 100 views of 60-byte tables", ("Update", pb.UpdateRequest(tables_to_delete=longest)), Code.OK, ""),
        ("update a 61-byte table", ("Update", pb.UpdateRequest(tables_to_keep=[longest[0] + "x"])),
         Code.INVALID_ARGUMENT, "tables_to_keep[0]"),
        ("teardown a 61-byte table", ("Teardown", pb.TeardownRequest(tables=["ok", longest[1] + "x"])),
         Code.INVALID_ARGUMENT, "tables[1]"),
        # A view named like another view's index.
        ("update x and x_ek", ("Update", pb.UpdateRequest(tables_to_keep=["x", "x_ek"])), Code.INVALID_ARGUMENT,
         "tables_to_keep[1]"),
        # Join keys and columns beyond max_join_keys (64) and max_columns (256).
        # (MySQL's entity_key column holds 256 bytes, fewer than 64 join keys need: DESIGN §9.)
        ("64 join keys", read(many_join_keys(64)), Code.INVALID_ARGUMENT if backend == "mysql" else Code.OK,
         "entity_keys[0]" if backend == "mysql" else ""),
        ("65 join keys", read(key(a=1), many_join_keys(65)), Code.INVALID_ARGUMENT, "entity_keys[1].join_keys"),
        ("65 join keys in a write", write(row(many_join_keys(65), {"f": V(int64_val=1)})), Code.INVALID_ARGUMENT,
         "rows[0].entity_key.join_keys"),
        ("100,000 join keys", read(many_join_keys(100000)), Code.INVALID_ARGUMENT, "entity_keys[0].join_keys"),
        ("257 entity columns", columns(257), Code.INVALID_ARGUMENT, "entities"),
        ("200 entity and 100 request columns", columns(200, 100), Code.INVALID_ARGUMENT, ""),
        ("100,000 entity columns", columns(100000), Code.INVALID_ARGUMENT, "entities"),
        # Timestamps at the ends of their range.
        ("event_ts in year 9999", write(far), Code.INVALID_ARGUMENT if backend == "mysql" else Code.OK,
         "rows[0].event_ts" if backend == "mysql" else ""),
        ("int64 min seconds", write(okrow, far_min), Code.INVALID_ARGUMENT, "rows[1].event_ts.seconds"),
        ("teardown garbage", ("Teardown", b"\x0a"), Code.INVALID_ARGUMENT, "request:"),
        ("unknown method", ("/larder.v1.OnlineStore/Delete", b""), Code.UNIMPLEMENTED, "method"),
        ("unknown service", ("/larder.v2.OnlineStore/OnlineRead", b""), Code.UNIMPLEMENTED, "method"),
        # Other services.
        ("health garbage", ("/grpc.health.v1.Health/Check", b"\x0a\x05ab"), Code.INVALID_ARGUMENT, "request:"),
        ("health unknown service", ("/grpc.health.v1.Health/Check",
                                    H.HealthCheckRequest(service=SQL[0]).SerializeToString()),
         Code.NOT_FOUND, "service:"),
        ("serving without a registry", ("/feast.serving.ServingService/GetOnlineFeatures",
                                        sv.GetOnlineFeaturesRequest(features=sv.FeatureList(val=["a:b"]))),
         Code.FAILED_PRECONDITION, "the feature registry has not loaded"),
        ("serving garbage", ("/feast.serving.ServingService/GetOnlineFeatures", b"\xff\xff"), Code.INVALID_ARGUMENT,
         "request:"),
        # SQL-looking names are data, not SQL: these writes are valid and stored as sent.
        ("SQL as feature names", write(row(key(driver_id=1), {s: V(string_val=s) for s in SQL})), Code.OK, ""),
        ("SQL as join key names", write(*[row(raw_key([s], [V(string_val=s)]), {"f": V(int64_val=i)})
                                          for i, s in enumerate(SQL)]), Code.OK, ""),
        ("SQL as key values", write(row(key(driver=SQL[1]), {"f": V(string_val=SQL[2])})), Code.OK, ""),
        ("SQL as requested features", read(key(driver_id=1), features=SQL), Code.OK, ""),
        ("duplicate keys in a write", write(row(key(driver_id=2), {"f": V(int64_val=1)}),
                                            row(key(driver_id=2), {"f": V(int64_val=2)})), Code.OK, ""),
        ("duplicate keys in a read", read(key(driver_id=2), key(driver_id=2)), Code.OK, ""),
        ("empty write", write(), Code.OK, ""),
        ("empty read", read(), Code.OK, ""),
        ("empty join key name (Feast serializes it too)", read(raw_key([""], [V(int64_val=1)])), Code.OK, ""),
        ("row without features", write(row(key(driver_id=3), {})), Code.OK, ""),
    ]
    return out


def count_rows(server, table):
    b = server.backend
    if b == "sqlite":
        conn = sqlite3.connect(os.path.join(server.tmpdir, "online.db"))
        n = conn.execute("SELECT COUNT(*) FROM %s" % table).fetchone()[0]
    elif b == "postgres":
        from test_compat_postgres import connect
        conn = connect()
        n = conn.execute("SELECT COUNT(*) FROM %s" % table).fetchone()[0]
    else:
        from test_compat_mysql import connect
        conn = connect()
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM %s" % table)
        n = cur.fetchone()[0]
    conn.close()
    return n


class BadInput(unittest.TestCase):
    def test_corpus(self):
        with harness.Server() as server:
            corpus = cases(server.project, server.backend)
            self.assertGreaterEqual(len([c for c in corpus if c[2] != Code.OK]), 50)
            server.stub.Update(pb.UpdateRequest(tables_to_keep=[VIEW]), timeout=10)
            table = "%s_%s" % (server.project, VIEW)
            self.assertEqual(count_rows(server, table), 0)
            wrong = []
            for name, call, code, prefix in corpus:
                method, payload = ser(call)
                got, details, _ = raw_call(server.channel, method, payload, timeout=60)
                if got != code or not details.startswith(prefix):
                    wrong.append("%s: got %s %r, want %s %r" % (name, got.name, details, code.name, prefix))
            self.assertEqual(wrong, [], "\n".join(wrong))
            # Exactly the valid writes are stored: 7 SQL-named features of driver 1, 7 keys with
            # SQL join key names, 1 SQL key value, driver 2's one feature (its last value).
            # And driver 5's value of year 9999 where the store holds it.
            self.assertEqual(count_rows(server, table), len(SQL) + len(SQL) + 1 + 1 + (server.backend != "mysql"))
            stub = server.stub
            got = stub.OnlineRead(pb.OnlineReadRequest(feature_view=VIEW, entity_keys=[key(driver_id=1)]),
                                  timeout=10).results[0]
            self.assertEqual({k: v.string_val for k, v in got.features.items()}, {s: s for s in SQL})
            for i, s in enumerate(SQL):
                got = stub.OnlineRead(pb.OnlineReadRequest(feature_view=VIEW, entity_keys=[
                    raw_key([s], [V(string_val=s)])]), timeout=10).results[0]
                self.assertEqual(got.features["f"].int64_val, i)
            got = stub.OnlineRead(pb.OnlineReadRequest(feature_view=VIEW, entity_keys=[key(driver=SQL[1])]),
                                  timeout=10).results[0]
            self.assertEqual(got.features["f"].string_val, SQL[2])
            got = stub.OnlineRead(pb.OnlineReadRequest(feature_view=VIEW, entity_keys=[key(driver_id=2)]),
                                  timeout=10).results[0]
            self.assertEqual(got.features["f"].int64_val, 2)
            self.assertFalse(stub.OnlineRead(pb.OnlineReadRequest(feature_view=VIEW, entity_keys=[key(driver_id=77)]),
                                             timeout=10).results[0].found)
            self.assertIsNone(server.proc.poll())
            print("%d cases, %d of them bad; %d rows stored" % (len(corpus), len([c for c in corpus if c[2] != Code.OK]),
                                                               count_rows(server, table)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
