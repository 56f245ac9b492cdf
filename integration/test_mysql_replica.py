#!/usr/bin/python3
"""MariaDB primary and GTID replica on loopback, with larder.read_hosts naming
the replica: writes go to the primary and reads to the replica (a row the
replica alone lacks is not found), and the metrics say so. The replica stops
under a load of reads: they go on from the primary, and return to the
replica once it is back. The primary stops: writes answer UNAVAILABLE while
reads go on and readiness stays SERVING; it comes back: writes succeed again,
without a restart of larder."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaleout  # noqa: E402

scaleout.need("mariadbd", "mariadb-install-db", "mariadb")

import harness  # noqa: E402
from harness import Value_pb2, grpc, key, pb, row  # noqa: E402
from scaleout import Follower, Load, Primary, host_connections, report, seconds, wait_for  # noqa: E402
from test_mesh import SERVING, H, health  # noqa: E402

WORKERS = 2


class Replica(unittest.TestCase):
    def test_reads_on_the_replica(self):
        primary = Primary("mariadb").start()
        self.addCleanup(primary.stop)
        replica = Follower(primary).start()
        self.addCleanup(replica.stop)
        p, r = primary.env["MYSQL_PORT"], replica.env["MYSQL_PORT"]
        hosts = {"primary": "127.0.0.1:%s" % p, "replica": "127.0.0.1:%s" % r}
        store = ("online_store:\n  type: mysql\n  host: 127.0.0.1\n  port: %s\n  database: feast\n"
                 "  user: feast\n  password: feast\n" % p)
        metrics_port = harness.free_port()
        server = harness.Server(backend="mysql", store=store, larder={
            "workers": WORKERS, "read_hosts": '["%s"]' % hosts["replica"],
            "metrics_listen": "127.0.0.1:%d" % metrics_port}).start()
        self.addCleanup(server.stop)
        stub = server.stub
        table = "%s_v" % server.project
        stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
        # Replication is asynchronous: Update returns before the replica has the table.
        self.assertTrue(replica.catch_up(seconds(10)), "the replica did not apply the new table")
        scaleout.write_rows(stub, range(100))

        def found(ids, features=()):
            reply = stub.OnlineRead(pb.OnlineReadRequest(
                feature_view="v", entity_keys=[key(driver_id=i) for i in ids], requested_features=features),
                timeout=10)
            return [x.found for x in reply.results]
        # Reads see the rows once the replica has them.
        self.assertTrue(wait_for(lambda: all(found(range(100))), seconds(10)))
        conns = host_connections(metrics_port)
        self.assertGreaterEqual(conns[("read", hosts["replica"])], WORKERS, conns)
        self.assertEqual(conns[("read", hosts["primary"])], 0, conns)
        self.assertGreaterEqual(conns[("write", hosts["primary"])], 1, conns)
        self.assertEqual(conns[("write", hosts["replica"])], 0, conns)

        # A row the replica alone lacks is not found: reads are the replica's.
        stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="v", rows=[
            row(key(driver_id=900), {"only900": Value_pb2.Value(int64_val=900)})]), timeout=10)
        self.assertTrue(wait_for(lambda: found([900], ["only900"]) == [True], seconds(10)))
        replica.sql("DELETE FROM `%s` WHERE feature_name = 'only900'" % table)
        self.assertEqual(primary.sql("SELECT count(*) FROM `%s` WHERE feature_name = 'only900'" % table), "1")
        for _ in range(4 * WORKERS):
            self.assertEqual(found([900], ["only900"]), [False])

        reads = Load(server.addr, 4, scaleout.read_call(keys=4), timeout=5).start()
        try:
            # The replica stops: reads go on, from the primary.
            time.sleep(0.5)
            t_down = time.monotonic()
            replica.down()
            time.sleep(1)
            down_reads = reads.between(t_down)
            self.assertEqual(Load.failed(down_reads), [], "reads failed while the replica stopped")
            conns = host_connections(metrics_port)
            self.assertGreaterEqual(conns[("read", hosts["primary"])], 1, conns)
            # It comes back: within the fallback period (10 s) the reads are its again.
            t_up = time.monotonic()
            replica.up()
            back = wait_for(lambda: host_connections(metrics_port)[("read", hosts["primary"])] == 0,
                            seconds(20), step=0.25)
            self.assertTrue(back, host_connections(metrics_port))
            reads_back_s = time.monotonic() - t_up
            self.assertEqual(Load.failed(reads.between(t_down)), [])

            # The primary stops: writes fail, reads go on, and the replica stays ready.
            t_primary = time.monotonic()
            primary.down()
            with self.assertRaises(grpc.RpcError) as cm:
                scaleout.write_rows(stub, [1], timeout=3)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            check, _ = health(server.channel)
            time.sleep(1.1)  # past the second a ping's answer stands
            self.assertEqual(check(H.HealthCheckRequest(service="larder.v1.OnlineStore"), timeout=5).status,
                             SERVING)
            primary.up()
            t_up2 = time.monotonic()
            self.assertTrue(wait_for(lambda: self.writes(stub), seconds(10)))
            writes_back_s = time.monotonic() - t_up2
            time.sleep(0.5)
        finally:
            reads.stop()
        primary_reads = reads.between(t_primary)
        self.assertEqual(Load.failed(primary_reads), [], "reads failed while the primary was away")

        # The primary turns read-only (a switchover that keeps it up): writes
        # answer UNAVAILABLE and their connections are closed, so that the next
        # one resolves `host` again; writable again, writes succeed.
        def larder_connections():
            return set(primary.sql("SELECT id FROM information_schema.processlist WHERE user = 'feast'").split())
        for _ in range(2 * WORKERS):
            scaleout.write_rows(stub, [3], timeout=10)
        before = larder_connections()
        primary.sql("SET GLOBAL read_only = 1")
        for _ in range(2 * WORKERS):
            with self.assertRaises(grpc.RpcError) as cm:
                scaleout.write_rows(stub, [3], timeout=5)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        # larder closes them before it answers; MariaDB drops them from its list a moment later.
        deadline = time.monotonic() + 5 * harness.SLOW
        closed = before - larder_connections()
        while not closed and time.monotonic() < deadline:
            time.sleep(0.1)
            closed = before - larder_connections()
        print("read-only primary: %d of %d write connections closed" % (len(closed), len(before)))
        self.assertTrue(closed, "the connections to a read-only primary were kept")
        primary.sql("SET GLOBAL read_only = 0")
        self.assertTrue(wait_for(lambda: self.writes(stub), seconds(10)))
        report("mariadb replica", reads_while_replica_stopped=len(down_reads), reads_failed=0,
               reads_back_on_replica_s="%.2f" % reads_back_s,
               reads_while_primary_away=len(primary_reads), reads_failed_then=0,
               writes_back_after_primary_s="%.2f" % writes_back_s)

    @staticmethod
    def writes(stub):
        try:
            scaleout.write_rows(stub, [2], timeout=2)
            return True
        except grpc.RpcError:
            return False


if __name__ == "__main__":
    unittest.main(verbosity=2)
