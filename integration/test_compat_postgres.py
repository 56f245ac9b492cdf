#!/usr/bin/python3
"""Compatibility with Feast's own PostgreSQL online store (SPEC §4.2).

Rows written with Feast's exact statements through psycopg 3 (Feast's driver)
read back through larder with identical Values and timestamps to the
microsecond; rows written through larder hold byte-identical entity_key, value
and value_text, and the same instants. The read statement larder prepares uses
the primary-key index. Needs the server of integration/services.sh."""
import datetime
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pb, row  # noqa: E402
from test_compat_sqlite import features_for, feast_value_text, vector_keys  # noqa: E402

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

UTC = datetime.timezone.utc


def connect():
    e = os.environ
    return psycopg.connect(host=e["TEST_PG_HOST"], port=e["TEST_PG_PORT"], dbname=e["TEST_PG_DB"],
                           user=e["TEST_PG_USER"], password=e["TEST_PG_PASSWORD"], sslmode="disable",
                           options="-c search_path=public")


def feast_update(conn, table):
    """postgres.py update(): the DDL of Feast's store."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("""
            CREATE TABLE IF NOT EXISTS {}
            (
                entity_key BYTEA,
                feature_name TEXT,
                value BYTEA,
                value_text TEXT NULL,
                vector_value BYTEA NULL,
                event_ts TIMESTAMPTZ,
                created_ts TIMESTAMPTZ,
                PRIMARY KEY(entity_key, feature_name)
            );
            CREATE INDEX IF NOT EXISTS {} ON {} (entity_key);
            """).format(sql.Identifier(table), sql.Identifier(table + "_ek"), sql.Identifier(table)))
    conn.commit()


INSERT = ('INSERT INTO {} ("entity_key", "feature_name", "value", "value_text", "vector_value", "event_ts", '
          '"created_ts") VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (entity_key, feature_name) DO UPDATE SET '
          '"value" = EXCLUDED."value", "value_text" = EXCLUDED."value_text", "vector_value" = '
          'EXCLUDED."vector_value", "event_ts" = EXCLUDED."event_ts", "created_ts" = EXCLUDED."created_ts";')


class FeastPostgresCompat(unittest.TestCase):
    def check_version(self, version):
        keys = vector_keys(version)
        server = harness.Server(project="compat", backend="postgres",
                                extra_yaml="entity_key_serialization_version: %d\n" % version)
        feast_table, larder_table = server.project + "_feast_rows", server.project + "_larder_rows"
        conn = connect()
        feast_update(conn, feast_table)
        # online_write_batch: naive UTC datetimes, one executemany, one commit.
        base = datetime.datetime(2024, 1, 2, 3, 4, 5, 123456)
        values = []
        for i, (_, _, key_bytes) in enumerate(keys):
            for name, val in features_for(i).items():
                values.append((key_bytes, name, val.SerializeToString(), feast_value_text(val), None,
                               base + datetime.timedelta(seconds=i, microseconds=i), datetime.datetime(2024, 1, 3)))
        with conn.cursor() as cur:
            cur.executemany(sql.SQL(INSERT).format(sql.Identifier(feast_table)), values)
        conn.commit()

        with server:
            got = server.stub.OnlineRead(pb.OnlineReadRequest(
                feature_view="feast_rows", entity_keys=[ek for _, ek, _ in keys])).results
            for i, ((name, _, _), res) in enumerate(zip(keys, got)):
                self.assertTrue(res.found, name)
                want = (base + datetime.timedelta(seconds=i, microseconds=i)).replace(tzinfo=UTC)
                self.assertEqual(res.event_ts.ToDatetime(tzinfo=UTC), want, name)
                self.assertEqual(res.event_ts.nanos % 1000, 0)
                self.assertEqual(dict(res.features), features_for(i), name)

            server.stub.Update(pb.UpdateRequest(tables_to_keep=["larder_rows"]))
            rows = []
            for i, (_, ek, _) in enumerate(keys):
                r = row(ek, features_for(i), ts=1704164645 + i, created=1704240000)
                r.event_ts.nanos = 123456789  # kept to the microsecond, truncated
                rows.append(r)
            server.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="larder_rows", rows=rows))

        q = "SELECT entity_key, feature_name, value, value_text, event_ts, created_ts FROM {} ORDER BY 1, 2"
        with conn.cursor() as cur:
            larder_rows = cur.execute(sql.SQL(q).format(sql.Identifier(larder_table))).fetchall()
        by_key = {k: (i, ek) for i, (_, ek, k) in enumerate(keys)}
        expected = []
        for key_bytes, (i, _) in sorted(by_key.items()):
            for name, val in sorted(features_for(i).items()):
                ts = datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC) + datetime.timedelta(seconds=i)
                expected.append((key_bytes, name, val.SerializeToString(), feast_value_text(val), ts,
                                 datetime.datetime(2024, 1, 3, tzinfo=UTC)))
        self.assertEqual(len(larder_rows), len(expected))
        self.assertEqual(larder_rows, expected)
        conn.close()

    def test_key_version_3(self):
        self.check_version(3)

    def test_key_version_2(self):
        self.check_version(2)

    def test_tables_larder_creates_are_feasts(self):
        """Columns, types, nullability, primary key and index as Feast's DDL makes them."""
        server = harness.Server(project="ddl", backend="postgres")
        with server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]))
        conn = connect()
        feast_update(conn, server.project + "_feast")

        def shape(table):
            with conn.cursor() as cur:
                cols = cur.execute("SELECT column_name, data_type, is_nullable, ordinal_position FROM "
                                   "information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                                   (table,)).fetchall()
                idx = cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
                                  (table,)).fetchall()
            return cols, [d.replace(table, "T") for (d,) in idx]

        self.assertEqual(shape(server.project + "_v"), shape(server.project + "_feast"))
        conn.close()

    def test_read_uses_the_primary_key_index(self):
        """EXPLAIN of the statement larder prepared (taken from its debug log)."""
        server = harness.Server(project="plan", backend="postgres", larder={"log_level": "debug"})
        with server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]))
            # A view of the usual shape: many features per entity, a few asked for.
            for start in range(0, 2000, 500):
                rows = [row(harness.key(driver_id=i), {"f%d" % j: harness.Value_pb2.Value(int64_val=j)
                                                       for j in range(30)}) for i in range(start, start + 500)]
                server.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="v", rows=rows))
            keys = [harness.key(driver_id=i) for i in (5, 6, 7)]
            # Every feature first: then larder knows the table holds 30 per key, and asks
            # for the one named (a read naming features of a table it knows nothing of
            # reads by key and keeps the named ones itself).
            server.stub.OnlineRead(pb.OnlineReadRequest(feature_view="v", entity_keys=keys))
            server.stub.OnlineRead(pb.OnlineReadRequest(feature_view="v", entity_keys=keys, requested_features=["f1"]))
        log = server.read_log()
        some = re.search(r"prepared \w+: (SELECT .* AND feature_name = ANY\(\$2\))$", log, re.M).group(1)
        every = re.search(r"prepared \w+: (SELECT .* WHERE entity_key = ANY\(\$1\))$", log, re.M).group(1)
        conn = connect()
        table = server.project + "_v"
        with conn.cursor() as cur:
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
            cur.execute("PREPARE some_q(bytea[], text[]) AS " + some)
            cur.execute("PREPARE every_q(bytea[]) AS " + every)
            arg = "ARRAY[%s]::bytea[]" % ", ".join("'\\x%s'::bytea" % b.hex() for b in
                                                   (serialize_v3(i) for i in (5, 6, 7)))
            plan_some = json.dumps(cur.execute("EXPLAIN (FORMAT JSON) EXECUTE some_q(%s, ARRAY['f1'])" % arg)
                                   .fetchone()[0])
            plan_every = json.dumps(cur.execute("EXPLAIN (FORMAT JSON) EXECUTE every_q(%s)" % arg).fetchone()[0])
        conn.close()
        print("plan with features:", plan_some)
        self.assertIn('"Index Name": "%s_pkey"' % table, plan_some)
        self.assertNotIn("Seq Scan", plan_some)
        self.assertRegex(plan_every, r'"Index Name": "%s_(pkey|ek)"' % table)
        self.assertNotIn("Seq Scan", plan_every)


def serialize_v3(driver_id):
    """serialize_entity_key({driver_id: int64}) in version 3 (SPEC §3.2)."""
    import struct
    name = b"driver_id"
    return (struct.pack("<III", 1, 2, len(name)) + name + struct.pack("<II", 4, 8) + struct.pack("<q", driver_id))


if __name__ == "__main__":
    unittest.main(verbosity=2)
