#!/usr/bin/python3
"""Compatibility with Feast's own MySQL online store (SPEC §4.3).

Rows written with Feast's exact statements through PyMySQL (Feast's driver),
one statement per (entity, feature) and a commit per entity, read back through
larder with identical Values and timestamps; rows written through larder hold
what Feast's statements store: the lowercase hex of the version-3 key (even
when the config says version 2, as Feast does), the value bytes, the instants.
Needs the server of integration/services.sh."""
import datetime
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pb, row  # noqa: E402
from test_compat_sqlite import features_for, vector_keys  # noqa: E402

import pymysql  # noqa: E402

DDL = """CREATE TABLE IF NOT EXISTS {t} (entity_key VARCHAR(512),
                feature_name VARCHAR(256),
                value BLOB,
                event_ts timestamp NULL DEFAULT NULL,
                created_ts timestamp NULL DEFAULT NULL,
                PRIMARY KEY(entity_key, feature_name))"""
INSERT = """
                    INSERT INTO {t}
                    (entity_key, feature_name, value, event_ts, created_ts)
                    values (%s, %s, %s, %s, %s)
                    ON DUPLICATE KEY UPDATE
                    value = %s,
                    event_ts = %s,
                    created_ts = %s;
                    """


def connect():
    e = os.environ
    return pymysql.connect(host=e["TEST_MYSQL_HOST"], port=int(e["TEST_MYSQL_PORT"]), user=e["TEST_MYSQL_USER"],
                           password=e["TEST_MYSQL_PASSWORD"], database=e["TEST_MYSQL_DB"], autocommit=True)


def feast_update(conn, table):
    """mysql.py update(): the table, then the _ek index when information_schema lacks it."""
    with conn.cursor() as cur:
        cur.execute(DDL.format(t=table))
        cur.execute("SELECT COUNT(1) FROM information_schema.STATISTICS WHERE table_name = %s AND "
                    "index_name = %s AND table_schema = DATABASE()", (table, table + "_ek"))
        if cur.fetchone()[0] == 0:
            cur.execute("ALTER TABLE {t} ADD INDEX {t}_ek (entity_key);".format(t=table))


class FeastMysqlCompat(unittest.TestCase):
    def check_version(self, version):
        v3 = {name: key_bytes for name, _, key_bytes in vector_keys(3)}
        keys = vector_keys(version)
        server = harness.Server(project="compat", backend="mysql",
                                extra_yaml="entity_key_serialization_version: %d\n" % version)
        feast_table, larder_table = server.project + "_feast_rows", server.project + "_larder_rows"
        conn = connect()
        conn.autocommit(False)
        feast_update(conn, feast_table)
        base = datetime.datetime(2024, 1, 2, 3, 4, 5)
        # online_write_batch (batch_write off, the default): a statement per feature, a commit per entity.
        for i, (name, _, _) in enumerate(keys):
            hexkey = v3[name].hex()
            ts, created = base + datetime.timedelta(seconds=i), datetime.datetime(2024, 1, 3)
            with conn.cursor() as cur:
                for fname, val in features_for(i).items():
                    b = val.SerializeToString()
                    cur.execute(INSERT.format(t=feast_table), (hexkey, fname, b, ts, created, b, ts, created))
            conn.commit()

        with server:
            got = server.stub.OnlineRead(pb.OnlineReadRequest(
                feature_view="feast_rows", entity_keys=[ek for _, ek, _ in keys])).results
            for i, ((name, _, _), res) in enumerate(zip(keys, got)):
                self.assertTrue(res.found, name)
                want = int((base + datetime.timedelta(seconds=i)).replace(tzinfo=datetime.timezone.utc).timestamp())
                self.assertEqual((res.event_ts.seconds, res.event_ts.nanos), (want, 0), name)
                self.assertEqual(dict(res.features), features_for(i), name)

            server.stub.Update(pb.UpdateRequest(tables_to_keep=["larder_rows"]))
            rows = []
            for i, (_, ek, _) in enumerate(keys):
                r = row(ek, features_for(i), ts=1704164645 + i, created=1704240000)
                r.event_ts.nanos = 123456789  # whole seconds are stored
                rows.append(r)
            server.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="larder_rows", rows=rows))

        with conn.cursor() as cur:
            cur.execute("SELECT entity_key, feature_name, value, UNIX_TIMESTAMP(event_ts), UNIX_TIMESTAMP(created_ts) "
                        "FROM {t} ORDER BY entity_key, feature_name".format(t=larder_table))
            larder_rows = [tuple(r) for r in cur.fetchall()]
        conn.close()
        expected = []
        for i, (name, _, _) in enumerate(keys):
            for fname, val in features_for(i).items():
                expected.append((v3[name].hex(), fname, val.SerializeToString(), 1704164645 + i, 1704240000))
        self.assertEqual(larder_rows, sorted(expected))

    def test_key_version_3(self):
        self.check_version(3)

    def test_key_version_2_still_stores_version_3(self):
        self.check_version(2)

    def test_tables_larder_creates_are_feasts(self):
        server = harness.Server(project="ddl", backend="mysql")
        with server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]))
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]))  # the index is not added twice
        conn = connect()
        feast_update(conn, server.project + "_feast")
        shapes = []
        for t in (server.project + "_v", server.project + "_feast"):
            with conn.cursor() as cur:
                cur.execute("SHOW CREATE TABLE `%s`" % t)
                shapes.append(cur.fetchone()[1].replace(t, "T"))
        conn.close()
        self.assertEqual(shapes[0], shapes[1])
        self.assertIn("KEY `T_ek` (`entity_key`)", shapes[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
