#!/usr/bin/python3
"""Status messages never carry a database address, port, user, file path,
driver text or the registry's location (issue 10, item 6; DESIGN §3): those go
to the log only.

- A database that stalls (a TCP proxy in front of the test database switched
  to accept-and-never-answer) or refuses: DEADLINE_EXCEEDED / UNAVAILABLE
  whose messages name neither host, port nor user (LARDER_TEST_BACKEND
  postgres or mysql);
- a mistyped SQL registry URL and an s3:// registry: GetOnlineFeatures is
  FAILED_PRECONDITION naming `registry.path`, never the URL, host, password
  or path (any backend; registered on SQLite)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SLOW, Value_pb2, grpc, key, pb, raw_call, row  # noqa: E402
from rawnet import FaultProxy  # noqa: E402
from feast.serving import ServingService_pb2 as sv  # noqa: E402

Code = grpc.StatusCode
BACKEND = harness.BACKEND
# Words of libpq's and MariaDB Connector/C's messages.
DRIVER_WORDS = ["could not", "server closed", "Lost connection", "Can't connect", "MySQL server", "timeout expired",
                "Connection refused", "connection to server", "errno"]


def read_req():
    return pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=1)])


class DatabaseAddress(unittest.TestCase):
    def setUp(self):
        if BACKEND not in ("postgres", "mysql"):
            self.skipTest("runs with LARDER_TEST_BACKEND postgres or mysql")

    def assert_clean(self, what, details, proxy, user):
        print("%s: %r" % (what, details))
        for word in ["127.0.0.1", "localhost", str(proxy.port), user] + DRIVER_WORDS:
            self.assertNotIn(word, details, "%s: the status names %r" % (what, word))

    def test_stalled_and_refusing_database(self):
        """The database stalls: a call with a 0.5 s deadline, a call with none (the
        server's default_deadline_s: 1 ends it) and an Update are DEADLINE_EXCEEDED
        without the address; then it refuses: UNAVAILABLE without it either."""
        prefix = "TEST_PG_" if BACKEND == "postgres" else "TEST_MYSQL_"
        e = os.environ
        user = e[prefix + "USER"]
        with FaultProxy((e[prefix + "HOST"], int(e[prefix + "PORT"]))) as proxy:
            env = dict(os.environ, **{prefix + "PORT": str(proxy.port)})
            with harness.Server(env=env, larder={"default_deadline_s": 1}) as server:
                stub = server.stub
                stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
                stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="v", rows=[
                    row(key(driver_id=1), {"f": Value_pb2.Value(int64_val=7)})]), timeout=10)
                proxy.set_mode("hang")
                code, details, _ = raw_call(server.channel, "OnlineRead", read_req().SerializeToString(), timeout=0.5)
                self.assertEqual(code, Code.DEADLINE_EXCEEDED, details)
                self.assert_clean("read with a 0.5 s deadline", details, proxy, user)
                for method, req in (("OnlineRead", read_req()), ("Update", pb.UpdateRequest(tables_to_keep=["v"]))):
                    t0 = time.monotonic()
                    code, details, _ = raw_call(server.channel, method, req.SerializeToString(), timeout=None)
                    self.assertEqual(code, Code.DEADLINE_EXCEEDED, details)
                    self.assertLess(time.monotonic() - t0, 1 + 5 * SLOW)
                    self.assert_clean("%s with no deadline (default_deadline_s: 1)" % method, details, proxy, user)
                proxy.set_mode("close")
                for method, req in (("OnlineRead", read_req()), ("Update", pb.UpdateRequest(tables_to_keep=["v"]))):
                    code, details, _ = raw_call(server.channel, method, req.SerializeToString(), timeout=10)
                    self.assertEqual(code, Code.UNAVAILABLE, details)
                    self.assert_clean("%s, database refusing" % method, details, proxy, user)
                proxy.set_mode("forward")
            log = server.read_log()
            self.assertIn(str(proxy.port), log, "the address belongs in the log")


class RegistryLocation(unittest.TestCase):
    def serving_answer(self, registry):
        with harness.Server(registry=registry) as server:
            req = sv.GetOnlineFeaturesRequest(features=sv.FeatureList(val=["v:f"]))
            req.entities["driver_id"].val.add().int64_val = 1
            out = [raw_call(server.channel, "/feast.serving.ServingService/GetOnlineFeatures", req.SerializeToString())
                   for _ in range(2)]
        return out, server.read_log()

    def test_registry_location_not_echoed(self):
        """A mistyped SQL registry URL and an s3:// registry: every GetOnlineFeatures is
        FAILED_PRECONDITION naming registry.path, never the URL or its parts."""
        problems = []
        for registry, secrets in (
                ('{registry_type: sql, path: "postgresq://u:hunter2@db.example:5432/reg"}',
                 ["postgresq://", "hunter2", "db.example", "u:", "5432", "/reg"]),
                ("s3://bucket/secret-path/registry.pb", ["s3://bucket", "bucket/", "secret-path", "registry.pb"])):
            answers, log = self.serving_answer(registry)
            for code, details, _ in answers:
                print("registry %s: %s %r" % (registry, code.name, details))
                if code != Code.FAILED_PRECONDITION:
                    problems.append("%s: %s, not FAILED_PRECONDITION" % (registry, code.name))
                if "registry.path" not in details:
                    problems.append("%s: %r does not name registry.path" % (registry, details))
                problems += ["%s: %r shows %r" % (registry, details, s) for s in secrets if s in details]
            if "hunter2" in log:
                problems.append("%s: the password is in the log" % registry)
        self.assertEqual(problems, [], "\n".join(problems))


if __name__ == "__main__":
    unittest.main(verbosity=2)
