#!/usr/bin/python3
"""Compatibility with Feast's own SQLite online store (SPEC §4.1).

Rows written with Feast's exact statements, through Python's sqlite3 module and
Feast's timestamp adapter, are read through larder with identical Values and
timestamps; rows written through larder are byte-identical to what Feast's
statements store. Entity keys come from vectors.json (Feast's own bytes)."""
import datetime
import json
import os
import sqlite3
import sys
import unittest

os.environ["TZ"] = "UTC"  # Feast's adapter uses local time; on UTC hosts it is the epoch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EntityKey_pb2, Value_pb2, pb, row  # noqa: E402

# sqlite.py: the last adapter registered for datetime wins, and it is this one.
sqlite3.register_adapter(datetime.datetime, lambda dt: int(dt.timestamp()))

DDL = ('CREATE TABLE IF NOT EXISTS "{t}" (entity_key BLOB, feature_name TEXT, value BLOB, value_text TEXT,  '
       'vector_value BLOB, event_ts timestamp, created_ts timestamp,  PRIMARY KEY(entity_key, feature_name))')
INDEX = 'CREATE INDEX IF NOT EXISTS "{t}_ek" ON "{t}" (entity_key);'
INSERT = ('INSERT INTO "{t}" (entity_key, feature_name, value, value_text, event_ts, created_ts)\n'
          'VALUES (?, ?, ?, ?, ?, ?)\n'
          'ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, '
          'value_text = excluded.value_text, event_ts = excluded.event_ts, created_ts = excluded.created_ts;')


def feast_value_text(v):
    """sqlite.py / postgres.py: str() of scalar numbers, bools and strings; NULL otherwise."""
    kind = v.WhichOneof("val")
    if kind == "string_val":
        return v.string_val
    if kind in ("int32_val", "int64_val", "double_val", "float_val", "bool_val"):
        return str(getattr(v, kind))
    return None


def vector_keys(version):
    with open(os.path.join(harness.TEST_DATA, "vectors.json")) as f:
        cases = json.load(f)["entity_key_cases"]
    out = []
    for c in cases:
        if c["version"] != version or "error" in c or not c["join_keys"]:
            continue
        ek = EntityKey_pb2.EntityKey(join_keys=c["join_keys"])
        for spec in c["values"]:
            v = ek.entity_values.add()
            t, x = spec["type"], spec["value"]
            if t == "bytes":
                v.bytes_val = bytes.fromhex(x)
            elif t == "string":
                v.string_val = x
            elif t == "unix_timestamp":
                v.unix_timestamp_val = x
            else:
                setattr(v, t + "_val", x)
        out.append((c["name"], ek, bytes.fromhex(c["serialized_hex"])))
    return out


def features_for(i):
    V = Value_pb2.Value
    return {
        "trips": V(int64_val=1000 + i),
        "rate": V(double_val=i / 3),
        "ratio32": V(float_val=0.1),
        "small": V(int32_val=-i),
        "name": V(string_val="driver %d ü" % i),
        "active": V(bool_val=i % 2 == 0),
        "tags": V(string_list_val=Value_pb2.StringList(val=["a", str(i)])),
        "missing": V(),
    }


class FeastSqliteCompat(unittest.TestCase):
    def check_version(self, version):
        keys = vector_keys(version)
        self.assertGreaterEqual(len(keys), 19)
        extra = "entity_key_serialization_version: %d\n" % version
        server = harness.Server(project="compat", extra_yaml=extra)
        db_path = os.path.join(server.tmpdir, "online.db")
        feast_table, larder_table = "compat_feast_rows", "compat_larder_rows"
        conn = sqlite3.connect(db_path, detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES)
        for t in (feast_table, larder_table):
            conn.execute(DDL.format(t=t))
            conn.execute(INDEX.format(t=t))
        # Feast's online_write_batch: one transaction, one execute per (entity, feature).
        with conn:
            for i, (_, _, key_bytes) in enumerate(keys):
                ts = datetime.datetime(2024, 1, 2, 3, 4, 5) + datetime.timedelta(seconds=i)
                created = datetime.datetime(2024, 1, 3)
                for name, val in features_for(i).items():
                    conn.execute(INSERT.format(t=feast_table),
                                 (key_bytes, name, val.SerializeToString(), feast_value_text(val), ts, created))
        conn.close()

        with server:
            # 1. Feast's rows read through larder.
            got = server.stub.OnlineRead(pb.OnlineReadRequest(
                feature_view="feast_rows", entity_keys=[ek for _, ek, _ in keys])).results
            self.assertEqual(len(got), len(keys))
            for i, ((name, _, _), res) in enumerate(zip(keys, got)):
                self.assertTrue(res.found, name)
                want_ts = int((datetime.datetime(2024, 1, 2, 3, 4, 5) + datetime.timedelta(seconds=i)).timestamp())
                self.assertEqual(res.event_ts.seconds, want_ts, name)
                self.assertEqual(dict(res.features), features_for(i), name)

            # 2. larder's rows, as Feast's statements would have stored them.
            rows = []
            for i, (_, ek, _) in enumerate(keys):
                r = row(ek, features_for(i), ts=1704164645 + i, created=1704240000)
                r.event_ts.nanos = 999000000  # truncated to whole seconds, as int(dt.timestamp())
                rows.append(r)
            server.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="larder_rows", rows=rows))

        conn = sqlite3.connect(db_path)
        q = ("SELECT entity_key, feature_name, value, value_text, event_ts, created_ts, typeof(event_ts) "
             "FROM {t} ORDER BY entity_key, feature_name")
        feast_rows = conn.execute(q.format(t=feast_table)).fetchall()
        larder_rows = conn.execute(q.format(t=larder_table)).fetchall()
        conn.close()
        self.assertEqual(len(larder_rows), len(keys) * len(features_for(0)))
        self.assertEqual(larder_rows, feast_rows)
        for r in larder_rows:
            self.assertEqual(r[6], "integer")

    def test_key_version_3(self):
        self.check_version(3)

    def test_key_version_2(self):
        self.check_version(2)

    def test_tables_larder_creates_are_feasts(self):
        """larder's Update issues Feast's DDL: sqlite_master holds the same text."""
        server = harness.Server(project="ddl")
        with server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]))
        conn = sqlite3.connect(os.path.join(server.tmpdir, "online.db"))
        sql = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'ddl_v'").fetchall())
        conn.close()
        self.assertEqual(sql["ddl_v"], DDL.format(t="ddl_v").replace("IF NOT EXISTS ", ""))
        self.assertEqual(sql["ddl_v_ek"], 'CREATE INDEX "ddl_v_ek" ON "ddl_v" (entity_key)')


if __name__ == "__main__":
    unittest.main(verbosity=2)
