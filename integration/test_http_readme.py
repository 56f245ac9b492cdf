#!/usr/bin/python3
"""examples/http.sh, the README's curl example of Feast's HTTP API, run as a user
runs it: after the README's two Python examples (the table of
driver_hourly_stats made and two drivers written; the registry written), against
a larder configured like examples/feature_store.yaml with `http_listen`. Its
output must be the write's `null` and the read's JSON with the values written."""
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import http_common as hc  # noqa: E402
from harness import pb  # noqa: E402
from test_readme_example import readme_parts  # noqa: E402

SCRIPT = os.path.join(harness.ROOT, "examples", "http.sh")
EPOCH = "1970-01-01T00:00:00Z"


def seconds(text):
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text):
        raise AssertionError("not a timestamp in whole seconds: %r" % text)
    return int(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
               .timestamp())


class HttpReadmeExample(unittest.TestCase):
    def test_http_example(self):
        with open(SCRIPT) as f:
            self.assertIn("127.0.0.1:6567", f.read())  # the address examples/feature_store.yaml gives http_listen
        with open(os.path.join(harness.ROOT, "examples", "feature_store.yaml")) as f:
            example = f.read()
        m = re.search(r"^\s*http_listen:\s*(\S+)", example, re.M)
        if m:
            self.assertEqual(m.group(1), "127.0.0.1:6567")
        start = int(time.time())
        with harness.Server(project="demo", registry="{path: registry.db, cache_ttl_seconds: 5}",
                            http=True) as server, tempfile.TemporaryDirectory() as stubs:
            # The README's Python examples first, as test_readme_example runs them.
            for name in ("python", "serving"):
                script, expected = readme_parts(name)
                script = (script.replace("127.0.0.1:6566", server.addr).replace("/tmp/larder-py", stubs)
                          .replace("examples/data/registry.db", os.path.join(server.tmpdir, "registry.db")))
                out = subprocess.run(["bash", "-c", script], cwd=harness.ROOT, capture_output=True, text=True,
                                     timeout=120)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(out.stdout, expected, name)
            hc.wait_healthy(server)
            t0 = int(time.time())
            out = subprocess.run(["sh", SCRIPT], cwd=harness.ROOT, capture_output=True, text=True, timeout=60,
                                 env=dict(os.environ, LARDER_HTTP=server.http_addr))
            t1 = int(time.time()) + 1
            print(out.stdout, end="")
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertEqual(out.stderr, "")
            lines = out.stdout.split("\n")
            self.assertEqual(len(lines), 3, out.stdout)
            self.assertEqual(lines[2], "")
            self.assertEqual(lines[0], "null")
            got = hc.loads_strict(lines[1])
            # driver 1001 was written by the README's Python example, at its own time.
            r = server.stub.OnlineRead(pb.OnlineReadRequest(feature_view="driver_hourly_stats",
                                                            entity_keys=[harness.key(driver_id=1001)]), timeout=10)
            t1001 = r.results[0].event_ts.seconds
            self.assertTrue(start <= t1001 <= t1)
            t1003 = seconds(got["results"][1]["event_timestamps"][1])
            self.assertTrue(t0 - 1 <= t1003 <= t1, (t0, t1003, t1))
            text = {t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                    for t in (t1001, t1003)}
            stamps = [text[t1001], text[t1003], EPOCH]
            want = {"metadata": {"feature_names": ["driver_id", "conv_rate", "trips_today"]},
                    "results": [{"values": [1001, 1003, 9999], "statuses": ["PRESENT"] * 3,
                                 "event_timestamps": [EPOCH] * 3},
                                {"values": [0.85, 0.42, None], "statuses": ["PRESENT", "PRESENT", "NOT_FOUND"],
                                 "event_timestamps": stamps},
                                {"values": [11, 7, None], "statuses": ["PRESENT", "PRESENT", "NOT_FOUND"],
                                 "event_timestamps": stamps}]}
            self.assertIsNone(hc.json_diff(want, got))


if __name__ == "__main__":
    unittest.main(verbosity=2)
