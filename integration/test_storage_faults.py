#!/usr/bin/python3
"""Storage faults are shown, not hidden (issue 10, items 7 and 8c):

- SQLite disk full (larder under `prlimit --fsize`) is UNAVAILABLE and logged,
  not "batch too large", and larder survives it (SIGXFSZ ignored);
- a SQLite file or folder larder cannot write stops start-up with exit status
  1 and a log line naming the file, unless `larder.read_only: true`, where
  reads work, writes/Update/Teardown are FAILED_PRECONDITION and readiness
  stays SERVING (larder runs as an unprivileged user: root ignores file modes);
- a database that refuses every connection (a TCP proxy switched to
  accept-and-close) is not stormed: readiness checks and calls share a
  back-off, so connection attempts stay few, and larder recovers when the
  database comes back.

The SQLite tests run with LARDER_TEST_BACKEND=sqlite, the connection storm
with postgres and mysql."""
import concurrent.futures
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SLOW, Value_pb2, grpc, key, pb, raw_call, row  # noqa: E402
from harness import health_pb2 as H  # noqa: E402
from rawnet import FaultProxy  # noqa: E402

Code = grpc.StatusCode
V = Value_pb2.Value
BACKEND = harness.BACKEND
SERVING = H.HealthCheckResponse.SERVING
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def check(channel, service="larder.v1.OnlineStore", timeout=10):
    stub = channel.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=H.HealthCheckRequest.SerializeToString,
                               response_deserializer=H.HealthCheckResponse.FromString)
    return stub(H.HealthCheckRequest(service=service), timeout=timeout).status


def read_req(i=1):
    return pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=i)])


def write_req(i=1, value=7):
    return pb.OnlineWriteBatchRequest(feature_view="v", rows=[row(key(driver_id=i), {"f": V(int64_val=value)})])


def need(backends):
    if BACKEND not in backends:
        raise unittest.SkipTest("runs with LARDER_TEST_BACKEND in %s" % (backends,))


class SqliteFaults(unittest.TestCase):
    def setUp(self):
        need(("sqlite",))

    def test_disk_full_is_unavailable(self):
        """Under a 6 MB file-size limit, 1 MB writes until the store is full: the
        first refused write is UNAVAILABLE (never RESOURCE_EXHAUSTED), a log line
        says why, larder is still alive and still serves reads."""
        limit = 6 << 20
        with harness.Server(wrapper=["prlimit", "--fsize=%d" % limit]) as server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
            blob = os.urandom(64000)
            codes = []
            for i in range(40):
                req = pb.OnlineWriteBatchRequest(feature_view="v", rows=[row(key(driver_id=i), {
                    "f%02d" % j: V(bytes_val=bytes([i, j]) + blob[2:]) for j in range(16)})])
                log_before = server.read_log()
                code, details, _ = raw_call(server.channel, "OnlineWriteBatch", req.SerializeToString(), timeout=30)
                codes.append(code.name)
                if code != Code.OK:
                    break
            try:  # a client sees UNAVAILABLE too when the process dies under it
                status = server.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                status = None
            print("writes of 1 MB under a %d-byte file limit: %s %r; larder %s" % (
                limit, codes, details, "alive" if status is None else "ended with status %s" % status))
            if status is not None:
                server.kill()
                self.fail("larder ended with status %s (%s) at the file-size limit" % (
                    status, "SIGXFSZ" if status == -25 else "not a signal of the limit"))
            self.assertEqual(code, Code.UNAVAILABLE, details)
            self.assertGreater(len(codes), 1)
            self.assertNotIn(server.tmpdir, details)
            new_lines = server.read_log()[len(log_before):]
            print("log:", new_lines.strip()[:300])
            self.assertRegex(new_lines, r"(?i)\b(warn|error)\b", "the refused write left no log line")
            got = server.stub.OnlineRead(pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=0)],
                                                              requested_features=["f03"]), timeout=10)
            self.assertEqual(got.results[0].features["f03"].bytes_val[:2], bytes([0, 3]))

    def readonly_store(self, folder_owner=None, file_owner=None):
        """A store with view v and driver 1 = 7, written by root, then left where
        larder (as nobody) may read it; returns the server (not started)."""
        server = harness.Server()
        with server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
            server.stub.OnlineWriteBatch(write_req(), timeout=10)
        db = os.path.join(server.tmpdir, "online.db")
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        os.chmod(server.tmpdir, 0o755)
        os.chmod(server.config, 0o644)
        os.chmod(db, 0o644)
        if file_owner is not None:
            os.chown(db, file_owner, file_owner)
        if folder_owner is not None:
            os.chown(server.tmpdir, folder_owner, folder_owner)
        server.wrapper = NOBODY
        server.db = db
        return server

    def refused_start(self, server, what):
        """larder must exit 1 naming the file; listening on its port means it started."""
        with open(server.log_path, "wb") as log:
            proc = subprocess.Popen(server.wrapper + [harness.LARDER_BIN, "serve", "-c", server.config],
                                    stdout=log, stderr=subprocess.STDOUT)
        end, code = time.monotonic() + 10 * SLOW, None
        while code is None and time.monotonic() < end:
            code = proc.poll()
            if code is None:
                try:
                    socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                    code = "running and listening"
                except OSError:
                    time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        text = server.read_log()
        print("%s: exit %s; log: %s" % (what, code, text.strip()[-300:]))
        self.assertEqual(code, 1, "larder started on a store it cannot write:\n" + text)
        self.assertIn(server.db, text)

    def test_unwritable_file_stops_start(self):
        """The store file cannot be written by larder (its folder can): exit 1, a log
        line naming the file."""
        self.refused_start(self.readonly_store(folder_owner=65534), "read-only file")

    def test_unwritable_folder_stops_start(self):
        """The file is larder's but its folder is not (no journal can be made there): exit 1."""
        self.refused_start(self.readonly_store(file_owner=65534), "read-only folder")

    def test_read_only_mode(self):
        """larder.read_only: true on a file it cannot write: it starts, reads work,
        OnlineWriteBatch, Update and Teardown are FAILED_PRECONDITION, readiness SERVING."""
        server = self.readonly_store(folder_owner=65534)
        with open(server.config, "a") as f:
            f.write("  read_only: true\n")
        with server:
            got = server.stub.OnlineRead(read_req(), timeout=10).results[0]
            self.assertEqual(got.features["f"].int64_val, 7)
            for method, req in (("OnlineWriteBatch", write_req(2)), ("Update", pb.UpdateRequest(tables_to_keep=["w"])),
                                ("Teardown", pb.TeardownRequest(tables=["v"]))):
                code, details, _ = raw_call(server.channel, method, req.SerializeToString())
                print("%s on a read-only store: %s %r" % (method, code.name, details))
                self.assertEqual(code, Code.FAILED_PRECONDITION, details)
                self.assertNotIn(server.tmpdir, details)
            self.assertEqual(check(server.channel), SERVING)
            self.assertEqual(server.stub.OnlineRead(read_req(), timeout=10).results[0].features["f"].int64_val, 7)


class ConnectionStorm(unittest.TestCase):
    def setUp(self):
        need(("postgres", "mysql"))

    def test_refused_database_is_not_stormed(self):
        """The database's port starts to accept and close every connection. 200
        readiness Checks and 200 OnlineReads within 2 s reach it with few
        connection attempts (at most workers x 4 a second); the reads are
        UNAVAILABLE, readiness NOT_SERVING; when the database is back, larder
        serves again without a restart, and readiness says so within 3 s."""
        port_var, host_var = ("TEST_PG_PORT", "TEST_PG_HOST") if BACKEND == "postgres" else \
            ("TEST_MYSQL_PORT", "TEST_MYSQL_HOST")
        workers = 2
        with FaultProxy((os.environ[host_var], int(os.environ[port_var]))) as proxy:
            env = dict(os.environ, **{port_var: str(proxy.port)})
            with harness.Server(env=env, larder={"wait_for_backend_s": 0, "workers": workers}) as server:
                server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
                server.stub.OnlineWriteBatch(write_req(), timeout=10)
                self.assertEqual(check(server.channel), SERVING)
                proxy.set_mode("close")
                t0 = time.monotonic()
                codes = {}

                def one(i):
                    try:
                        if i % 2:
                            r = check(server.channel, timeout=2 * SLOW)
                            return "check " + H.HealthCheckResponse.ServingStatus.Name(r)
                        server.stub.OnlineRead(read_req(), timeout=2 * SLOW)
                        return "read OK"
                    except grpc.RpcError as e:
                        return ("check " if i % 2 else "read ") + e.code().name
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    futures = []
                    for i in range(400):
                        futures.append(pool.submit(one, i))
                        time.sleep(max(0, t0 + (i + 1) * 2.0 / 400 - time.monotonic()))
                    for f in futures:
                        codes[f.result()] = codes.get(f.result(), 0) + 1
                took = time.monotonic() - t0
                attempts = proxy.accepts
                bound = workers * 4 * max(took, 1.0) + 2
                print("database refusing: %d connection attempts in %.1f s (bound %.0f); results %s"
                      % (attempts, took, bound, codes))
                self.assertLessEqual(attempts, bound, "every call and every check reconnects")
                self.assertEqual({k for k in codes if k.startswith("read")} - {"read UNAVAILABLE"}, set(), codes)
                # Readiness may say SERVING for up to a second after the last good ping.
                self.assertEqual({k for k in codes if k.startswith("check")} - {"check NOT_SERVING", "check SERVING"},
                                 set(), codes)
                self.assertEqual(check(server.channel), H.HealthCheckResponse.NOT_SERVING)
                proxy.set_mode("forward")

                def serves():
                    try:
                        return server.stub.OnlineRead(read_req(), timeout=2).results[0].features["f"].int64_val == 7
                    except grpc.RpcError:
                        time.sleep(0.2)
                        return False
                end = time.monotonic() + 10 * SLOW
                while not serves() and time.monotonic() < end:
                    pass
                self.assertTrue(serves(), "larder did not recover once the database was back")
                # Readiness is the health thread's own ping, remembered for a second, on a
                # connection that reconnects with back-off: it follows within 3 s.
                end = time.monotonic() + 3 * SLOW
                while check(server.channel) != SERVING and time.monotonic() < end:
                    time.sleep(0.1)
                self.assertEqual(check(server.channel), SERVING, "readiness did not follow the reads back")


if __name__ == "__main__":
    unittest.main(verbosity=2)
