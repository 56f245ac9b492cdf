#!/usr/bin/python3
"""The database goes away while larder runs (LARDER_TEST_BACKEND: postgres or
mysql), on a server of the test's own: calls answer UNAVAILABLE within their
deadline (over HTTP 503), without the database's address or the driver's words,
which go to the log; and once the database is back calls succeed again without
a restart of larder."""
import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import feast_registry as fr  # noqa: E402
from harness import Value_pb2, grpc, key, pb, row  # noqa: E402
from test_mesh import NOT_SERVING, SERVING, H, health  # noqa: E402

DB = {"postgres": "postgres", "mysql": "mariadb"}.get(harness.BACKEND)


def tcp_ports(pid):
    """The local ports of the TCP sockets process `pid` holds (from /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[9] in inodes:
                    ports.append(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@unittest.skipUnless(DB, "only for client-server databases")
class Outage(unittest.TestCase):
    def test_database_down_then_back(self):
        reg_path = os.path.join(tempfile.mkdtemp(prefix="larder-outage-"), "registry.db")
        with harness.PrivateDatabase(DB) as db:
            server = harness.Server(env=db.env, larder={"workers": 2}, registry=reg_path, http=True)
            driver = fr.Entity("driver", "driver_id", fr.INT64)
            fr.FileRegistry(reg_path).apply(server.project, driver, fr.FeatureView("v", [driver], [("f", fr.INT64)]))
            with server:
                stub = server.stub
                stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
                stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
                    feature_view="v", rows=[row(key(driver_id=1), {"f": Value_pb2.Value(int64_val=1)})]), timeout=10)
                read = pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=1)])
                self.assertTrue(stub.OnlineRead(read, timeout=10).results[0].found)

                check, _ = health(server.channel)
                ready = H.HealthCheckRequest(service="larder.v1.OnlineStore")
                self.assertEqual(check(ready, timeout=5).status, SERVING)
                db.down()
                # Liveness ("") never touches the database; readiness pings it.
                time.sleep(1.1)  # past the one second a ping's answer is trusted
                self.assertEqual(check(H.HealthCheckRequest(service=""), timeout=5).status, SERVING)
                self.assertEqual(check(ready, timeout=5).status, NOT_SERVING)
                # Enough calls that both workers meet the broken connection.
                for i in range(6):
                    t0 = time.monotonic()
                    with self.assertRaises(grpc.RpcError) as cm:
                        stub.OnlineRead(read, timeout=3)
                    took = time.monotonic() - t0
                    self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE, cm.exception.details())
                    self.assertLess(took, 3.0)
                    self.assertNotIn(db.env["PG_PORT"], cm.exception.details())  # the address stays in the log
                    print("call %d while down: %s in %.3f s: %s" % (i, cm.exception.code().name, took,
                                                                     cm.exception.details()))
                with self.assertRaises(grpc.RpcError) as cm:
                    stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
                        feature_view="v", rows=[row(key(driver_id=2), {"f": Value_pb2.Value(int64_val=2)})]), timeout=3)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
                # HTTP: 503, Feast's error body, and what the driver said stays in the log too.
                port = db.env["PG_PORT"] if DB == "postgres" else db.env["MYSQL_PORT"]
                for path, body in (("/get-online-features", {"features": ["v:f"], "entities": {"driver_id": [1]}}),
                                   ("/write-to-online-store", {"feature_view_name": "v",
                                                               "df": {"driver_id": [3], "f": [3],
                                                                      "event_timestamp": ["2024-01-01T00:00:00"]}})):
                    reply = server.http("POST", path, json_body=body, timeout=10)
                    self.assertEqual(reply.status, 503, "%s: %r" % (path, reply))
                    message = json.loads(reply.json())["message"]
                    self.assertIn("unavailable; the server log has the cause", message, path)
                    for secret in (port, "127.0.0.1", "feast"):  # the database's port, host, user and name
                        self.assertNotIn(secret, message, "%s: %r" % (path, reply))
                    print("HTTP %s while down: %d %s" % (path, reply.status, message))

                db.up()
                t0 = time.monotonic()
                while check(ready, timeout=5).status != SERVING and time.monotonic() - t0 < 10:
                    time.sleep(0.1)
                self.assertEqual(check(ready, timeout=5).status, SERVING)
                print("ready again %.2f s after the database came back" % (time.monotonic() - t0))
                # Each worker reopens its connection within the next call: no failures now.
                for i in range(6):
                    self.assertTrue(stub.OnlineRead(read, timeout=10).results[0].found)
                stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
                    feature_view="v", rows=[row(key(driver_id=2), {"f": Value_pb2.Value(int64_val=2)})]), timeout=10)
                self.assertTrue(stub.OnlineRead(pb.OnlineReadRequest(
                    feature_view="v", entity_keys=[key(driver_id=2)]), timeout=10).results[0].found)
                self.assertIsNone(server.proc.poll())
        log = server.read_log()
        self.assertRegex(log, r"warn worker \d: OnlineRead: unavailable: .*%s" % harness.BACKEND)
        self.assertRegex(log, r"warn http: /get-online-features: unavailable: .*%s" % harness.BACKEND)

    def silent_host(self, silent_first, larder, wait_past_quiet):
        """larder on a `host` list of a server that accepts and never answers
        (a stalled or vanished machine) and the real one, in either order; it
        starts within the 2 s a host is given, not after libpq's wait on the
        silent one. Then the database closes larder's connections and reads
        with 1.5 s deadlines reconnect: at most one fails per worker (the
        silent host met again once its 10 s are over), then all succeed."""
        import socket
        import psycopg
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes handshakes; nothing ever replies
        pg = harness.PrivateDatabase(DB)
        ports = [str(silent.getsockname()[1]), pg.env["PG_PORT"]]
        if not silent_first:
            ports.reverse()
        env = dict(pg.env)
        env.update({"TEST_PG_HOST": "127.0.0.1,127.0.0.1", "TEST_PG_DB": "feast", "TEST_PG_USER": "feast",
                    "TEST_PG_PORT": ",".join(ports), "TEST_PG_PASSWORD": "feast"})
        server = harness.Server(env=env, larder=dict({"workers": 2}, **larder))
        pg.start()
        t0 = time.monotonic()
        try:
            server.start()
            started = time.monotonic() - t0
            print("ports %s, %s: started in %.2f s" % (",".join(ports), larder, started))
            self.assertLess(started, 2 + 2 * harness.SLOW)
            stub = server.stub
            stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
            read = pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=1)])
            for i in range(10):
                t0 = time.monotonic()
                stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
                    feature_view="v", rows=[row(key(driver_id=1), {"f": Value_pb2.Value(int64_val=i)})]), timeout=5)
                self.assertEqual(stub.OnlineRead(read, timeout=5).results[0].features["f"].int64_val, i)
                self.assertLess(time.monotonic() - t0, 1.0 * harness.SLOW)
            self.assertIn("sent nothing in", server.read_log())
            if wait_past_quiet:
                time.sleep(10.5)  # the silent host is tried first again
            with psycopg.connect(host="127.0.0.1", port=pg.env["PG_PORT"], dbname="feast", user="feast",
                                 password="feast", autocommit=True) as db:
                ended = db.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE client_port = ANY(%s)", (tcp_ports(server.proc.pid),)).fetchone()[0]
            self.assertGreaterEqual(ended, 1)
            codes = []
            for i in range(8):
                try:
                    stub.OnlineRead(read, timeout=1.5)
                    codes.append("OK")
                except grpc.RpcError as err:
                    codes.append(err.code().name)
            print("after the database closed %d connections: %s" % (ended, codes))
            if os.environ.get("DEBUG_SILENT"):
                print(server.read_log()[-6000:])
            self.assertLessEqual(len([c for c in codes if c != "OK"]), 2, codes)
            self.assertEqual(codes[-4:], ["OK"] * 4, codes)
        finally:
            server.close()
            silent.close()
            pg.stop()

    @unittest.skipUnless(DB == "postgres", "a list of hosts is PostgreSQL's (MySQL's replicas: read_hosts)")
    def test_silent_host_first(self):
        self.silent_host(True, {}, wait_past_quiet=True)

    @unittest.skipUnless(DB == "postgres", "a list of hosts is PostgreSQL's (MySQL's replicas: read_hosts)")
    def test_silent_standby_last(self):
        """Reads that prefer a standby, the silent host last: no standby answers
        within its 2 s, so reads go to the primary (the second pass)."""
        self.silent_host(False, {"read_from": "standby"}, wait_past_quiet=False)

    def test_unreachable_at_start(self):
        """Start-up names the host and port; with wait_for_backend_s larder waits for it."""
        import subprocess
        db = harness.PrivateDatabase(DB)
        env = dict(db.env)
        env.update({"TEST_PG_HOST": "127.0.0.1", "TEST_PG_PORT": db.env["PG_PORT"], "TEST_PG_DB": "feast",
                    "TEST_PG_USER": "feast", "TEST_PG_PASSWORD": "feast",
                    "TEST_MYSQL_HOST": "127.0.0.1", "TEST_MYSQL_PORT": db.env["MYSQL_PORT"], "TEST_MYSQL_DB": "feast",
                    "TEST_MYSQL_USER": "feast", "TEST_MYSQL_PASSWORD": "feast"})
        server = harness.Server(env=env)
        out = subprocess.run([harness.LARDER_BIN, "serve", "-c", server.config], env=env, capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 1)
        self.assertIn("127.0.0.1:%s" % db.env["PG_PORT"], out.stderr)
        # Now wait for it: start the database a moment after larder.
        waiting = harness.Server(env=env, larder={"wait_for_backend_s": 60})
        proc = subprocess.Popen([harness.LARDER_BIN, "serve", "-c", waiting.config], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        self.assertIsNone(proc.poll(), "larder gave up instead of waiting")
        # A stop while it waits is taken at once, not after wait_for_backend_s (60 s).
        stopped = subprocess.Popen([harness.LARDER_BIN, "serve", "-c", waiting.config], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        self.assertIsNone(stopped.poll(), "larder gave up instead of waiting")
        t0 = time.monotonic()
        stopped.terminate()
        try:
            _, err = stopped.communicate(timeout=10 * harness.SLOW)
        except subprocess.TimeoutExpired:
            stopped.kill()
            stopped.communicate()
            self.fail("SIGTERM while waiting for the database was not taken within %d s" % (10 * harness.SLOW))
        took = time.monotonic() - t0
        print("SIGTERM while waiting for the database: exit %d after %.2f s" % (stopped.returncode, took))
        self.assertEqual(stopped.returncode, 0, err[-2000:])
        self.assertLess(took, 3.0 * harness.SLOW)
        self.assertIn("stopped before serving", err)
        with db:
            channel = grpc.insecure_channel(waiting.addr)
            grpc.channel_ready_future(channel).result(timeout=60)
            proc.terminate()
            self.assertEqual(proc.wait(timeout=30), 0)
            channel.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
