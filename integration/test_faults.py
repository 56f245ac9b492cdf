#!/usr/bin/python3
"""The database fails under load (LARDER_TEST_BACKEND: postgres or mysql), on a
server of the test's own with durable commits:

- SIGKILL during a mixed read/write load, then a restart: while it is down
  calls fail fast with UNAVAILABLE; from 2 s after it is back every call
  succeeds; every write acknowledged OK is read back; larder never crashes.
- SIGSTOP (a stalled server): calls end DEADLINE_EXCEEDED at their deadline;
  after SIGCONT calls succeed again.
"""
import os
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import feast_registry as fr  # noqa: E402
from harness import Value_pb2, grpc, key, pb, row  # noqa: E402

DB = {"postgres": "postgres", "mysql": "mariadb"}.get(harness.BACKEND)
Code = grpc.StatusCode
TIMEOUT = 1.0  # each call's deadline


class Load:
    """Client threads writing (each its own keys, values counting up) and
    reading, recording every call: (start, end, method, code)."""

    def __init__(self, stub, threads=4):
        self.stub, self.calls, self.acked = stub, [], {}
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(t,)) for t in range(threads)]

    def run(self, t):
        n = 0
        while not self.stop.is_set():
            n += 1
            k = t * 1000000 + n % 50  # 50 keys per thread, each rewritten with a growing value
            write = n % 2 == 0
            t0 = time.monotonic()
            try:
                if write:
                    self.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="v", rows=[
                        row(key(driver_id=k), {"n": Value_pb2.Value(int64_val=n)})]), timeout=TIMEOUT)
                    with self.lock:
                        self.acked[k] = n  # the latest acknowledged value of this key
                else:
                    self.stub.OnlineRead(pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=k)]),
                                         timeout=TIMEOUT)
                code = Code.OK
            except grpc.RpcError as e:
                code = e.code()
                if code not in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED):
                    print("unexpected: %s %s: %s" % ("write" if write else "read", code.name, e.details()))
            with self.lock:
                self.calls.append((t0, time.monotonic(), "write" if write else "read", code))

    def __enter__(self):
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for th in self.threads:
            th.join()

    def between(self, a, b):
        with self.lock:
            return [c for c in self.calls if a <= c[0] and c[1] <= b]


def summary(calls):
    out = {}
    for _, _, _, code in calls:
        out[code.name] = out.get(code.name, 0) + 1
    return out


@unittest.skipUnless(DB, "only for client-server databases")
class Faults(unittest.TestCase):
    def setUp(self):
        self.db = harness.PrivateDatabase(DB, durable=True).start()
        self.addCleanup(self.db.stop)
        reg_path = os.path.join(tempfile.mkdtemp(prefix="larder-faults-"), "registry.db")
        self.server = harness.Server(env=self.db.env, larder={"workers": 2}, registry=reg_path, http=True)
        driver = fr.Entity("driver", "driver_id", fr.INT64)
        fr.FileRegistry(reg_path).apply(self.server.project, driver, fr.FeatureView("v", [driver], [("n", fr.INT64)]))
        self.server.start()
        self.server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)

    def tearDown(self):
        self.assertIsNone(self.server.proc.poll(), "larder exited:\n" + self.server.read_log())
        self.assertEqual(self.server.stop(), 0)

    def check_acked(self, load):
        """Every acknowledged write is there, with its latest acknowledged value (or a later one
        whose acknowledgement was lost when the database died)."""
        keys = sorted(load.acked)
        self.assertGreater(len(keys), 50)
        for i in range(0, len(keys), 100):
            chunk = keys[i:i + 100]
            reply = self.server.stub.OnlineRead(pb.OnlineReadRequest(
                feature_view="v", entity_keys=[key(driver_id=k) for k in chunk]), timeout=10)
            for k, r in zip(chunk, reply.results):
                self.assertTrue(r.found, "acknowledged write of key %d lost" % k)
                self.assertGreaterEqual(r.features["n"].int64_val, load.acked[k], "key %d went back" % k)

    def test_sigkill_under_load(self):
        with Load(self.server.stub) as load:
            time.sleep(2)
            killed = time.monotonic()
            self.db.kill()
            down = time.monotonic()
            time.sleep(3)
            restart = time.monotonic()
            self.db.up()
            back = time.monotonic()
            time.sleep(4)
        before = load.between(0, killed)
        while_down = load.between(down + 0.2, restart)
        after = load.between(back + 2, float("inf"))
        print("before: %s; while down: %s; from 2 s after the restart: %s; back after %.2f s of restart"
              % (summary(before), summary(while_down), summary(after), back - restart))
        self.assertEqual(set(summary(before)), {"OK"})
        self.assertTrue(while_down)
        self.assertEqual(set(summary(while_down)), {"UNAVAILABLE"})
        slowest = max(end - start for start, end, _, _ in while_down)
        self.assertLess(slowest, 0.5, "calls did not fail fast while the database was down")
        self.assertTrue(after)
        self.assertEqual(set(summary(after)), {"OK"}, "calls still failing 2 s after the database came back")
        self.check_acked(load)

    def test_sigstop_stall(self):
        with Load(self.server.stub) as load:
            time.sleep(1.5)
            self.db.pause()
            paused = time.monotonic()
            time.sleep(1.1)  # past the second a ping's answer is trusted
            # HTTP /health pings the stalled database as gRPC readiness does: briefly.
            t0 = time.monotonic()
            status = self.server.http("GET", "/health", timeout=10).status
            probe = time.monotonic() - t0
            print("HTTP /health with the database stopped: %d in %.2f s" % (status, probe))
            self.assertEqual(status, 503)
            self.assertGreater(probe, 0.2)  # the ping was made: the registry is loaded
            self.assertLess(probe, 1.0 * harness.SLOW)
            time.sleep(max(0.0, 3 - (time.monotonic() - paused)))
            resumed = time.monotonic()
            self.db.resume()
            time.sleep(4)
        stalled = load.between(paused + 0.1, resumed)
        after = load.between(resumed + 2, float("inf"))
        print("stalled: %s; from 2 s after SIGCONT: %s" % (summary(stalled), summary(after)))
        self.assertTrue(stalled)
        self.assertEqual(set(summary(stalled)), {"DEADLINE_EXCEEDED"})
        for start, end, _, _ in stalled:
            self.assertGreater(end - start, TIMEOUT * 0.8)
            self.assertLess(end - start, TIMEOUT + 0.5, "a call outlived its deadline")
        self.assertTrue(after)
        self.assertEqual(set(summary(after)), {"OK"})
        self.check_acked(load)


if __name__ == "__main__":
    unittest.main(verbosity=2)
