#!/usr/bin/python3
"""The call's deadline bounds the database statement (LARDER_TEST_BACKEND):
another session holds a lock on the view's table, a write with a 0.5 s deadline
ends DEADLINE_EXCEEDED near its deadline, counted so by the server itself, and
the only worker is free at once for the next call while the lock is still held."""
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Value_pb2, grpc, key, pb, row  # noqa: E402
from test_mesh import metric, parse_exposition, scrape  # noqa: E402

Code = grpc.StatusCode
DEADLINE = 0.5


class Lock:
    """Another session's transaction holding a lock on `table` until exit.
    reads: whether the lock also blocks readers."""

    def __init__(self, server, table, reads=False):
        self.server, self.table, self.reads = server, table, reads

    def __enter__(self):
        b = self.server.backend
        if b == "sqlite":
            self.conn = sqlite3.connect(os.path.join(self.server.tmpdir, "online.db"), isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")  # WAL: writers wait, readers do not
            self.conn.execute("DELETE FROM %s WHERE 0" % self.table)
        elif b == "postgres":
            from test_compat_postgres import connect
            self.conn = connect()
            self.conn.execute("LOCK TABLE %s IN %s MODE" % (self.table, "ACCESS EXCLUSIVE" if self.reads else "EXCLUSIVE"))
        else:
            from test_compat_mysql import connect
            self.conn = connect()
            cur = self.conn.cursor()
            if self.reads:
                cur.execute("LOCK TABLES %s WRITE" % self.table)
            else:
                cur.execute("START TRANSACTION")
                cur.execute("UPDATE %s SET value = value" % self.table)
        return self

    def __exit__(self, *exc):
        if self.server.backend == "mysql" and self.reads:
            self.conn.cursor().execute("UNLOCK TABLES")
        else:
            self.conn.rollback()
        self.conn.close()


def write(stub, n, timeout):
    return stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
        feature_view="v", rows=[row(key(driver_id=n), {"f": Value_pb2.Value(int64_val=n)})]), timeout=timeout)


def read(stub, n, timeout):
    return stub.OnlineRead(pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=n)]), timeout=timeout)


class Deadline(unittest.TestCase):
    def run_blocked(self, server, call, method, port):
        t0 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            call(DEADLINE)
        took = time.monotonic() - t0
        print("%s under a lock: %s after %.3f s" % (method, cm.exception.code().name, took))
        self.assertEqual(cm.exception.code(), Code.DEADLINE_EXCEEDED)
        self.assertLess(took, DEADLINE + 1.0)
        # The server itself gave up at the deadline (the client's own timer
        # would leave no such count while the statement still waited).
        end = time.monotonic() + 2 * harness.SLOW
        while True:
            samples, _ = parse_exposition(scrape(port)[1])
            try:
                n = metric(samples, "grpc_server_handled_total", grpc_method=method, grpc_code="DeadlineExceeded")
            except AssertionError:
                n = 0
            if n >= 1 or time.monotonic() > end:
                break
            time.sleep(0.05)
        self.assertEqual(n, 1, "the server did not end %s at its deadline" % method)

    def test_slow_statement(self):
        port = harness.free_port()
        with harness.Server(larder={"workers": 1, "metrics_listen": "127.0.0.1:%d" % port}) as server:
            stub = server.stub
            stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
            write(stub, 1, 10)
            table = "%s_v" % server.project
            with Lock(server, table):
                self.run_blocked(server, lambda t: write(stub, 2, t), "OnlineWriteBatch", port)
                # The one worker is free again while the lock is still held.
                t0 = time.monotonic()
                self.assertTrue(read(stub, 1, 5).results[0].found)
                self.assertLess(time.monotonic() - t0, 1.0)
            if server.backend != "sqlite":  # SQLite's readers never wait (WAL)
                with Lock(server, table, reads=True):
                    self.run_blocked(server, lambda t: read(stub, 1, t), "OnlineRead", port)
            # Once the lock is gone everything succeeds; the timed-out write changed nothing.
            self.assertIsNone(server.proc.poll())
            self.assertFalse(read(stub, 2, 10).results[0].found)
            write(stub, 2, 10)
            self.assertTrue(read(stub, 2, 10).results[0].found)
            self.assertIsNone(server.proc.poll())


    def test_update_after_a_short_call(self):
        """A call with a short deadline leaves no short time limit behind: an
        Update next on the same connection, whose DROP waits 0.8 s for
        another session's lock, succeeds within its own 10 s."""
        import threading
        with harness.Server(larder={"workers": 1}) as server:
            stub = server.stub
            stub.Update(pb.UpdateRequest(tables_to_keep=["v", "w"]), timeout=10)
            write(stub, 1, 10)
            for _ in range(3):
                self.assertTrue(read(stub, 1, 0.2 * harness.SLOW).results[0].found)
            outcome = {}

            def update():
                t0 = time.monotonic()
                try:
                    stub.Update(pb.UpdateRequest(tables_to_keep=["v"], tables_to_delete=["w"]), timeout=10)
                    outcome["code"] = "OK"
                except grpc.RpcError as err:
                    outcome["code"] = "%s: %s" % (err.code().name, err.details())
                outcome["took"] = time.monotonic() - t0
            with Lock(server, "%s_w" % server.project):
                t = threading.Thread(target=update)
                t.start()
                time.sleep(0.5 + 0.3 * harness.SLOW)  # longer than the reads' deadlines
            t.join(15)
            print("Update after reads of 0.2 s, waiting for a lock: %s after %.2f s" % (
                outcome.get("code"), outcome.get("took", -1)))
            self.assertEqual(outcome.get("code"), "OK")
            self.assertGreater(outcome["took"], 0.5)

    def test_call_without_a_deadline(self):
        """larder.default_deadline_s bounds the database work of a call that has no deadline."""
        with harness.Server(larder={"workers": 1, "default_deadline_s": 1}) as server:
            stub = server.stub
            stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
            with Lock(server, "%s_v" % server.project):
                t0 = time.monotonic()
                with self.assertRaises(grpc.RpcError) as cm:
                    stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="v", rows=[
                        row(key(driver_id=5), {"f": Value_pb2.Value(int64_val=5)})]))  # no timeout
                took = time.monotonic() - t0
            print("a write without a deadline under a lock: %s after %.2f s" % (cm.exception.code().name, took))
            self.assertEqual(cm.exception.code(), Code.DEADLINE_EXCEEDED)
            # PostgreSQL and MySQL get the limit rounded down a little (docs/backends.md, Failures).
            self.assertGreater(took, 0.8)
            self.assertLess(took, 3)


if __name__ == "__main__":
    unittest.main(verbosity=2)
