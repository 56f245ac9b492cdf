#!/usr/bin/python3
"""The README's Node client (examples/node: @grpc/grpc-js and
@grpc/proto-loader from npm) run as the README shows it against a real larder
with bearer tokens on; its output must be what the README says, and a Python
client must read back what it wrote."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import key, pb  # noqa: E402

if not (shutil.which("node") and shutil.which("npm")):
    if os.environ.get("LARDER_REQUIRE_DB") == "1":
        sys.exit("node and npm are needed (bash scripts/deps.sh --test installs them)")
    print("skipped: no node or npm")
    sys.exit(harness.SKIP)


def readme_example():
    with open(os.path.join(harness.ROOT, "README.md")) as f:
        text = f.read()
    m = re.search(r"<!-- example:node -->\n```sh\n(.*?)```\n<!-- /example:node -->\n\nIt prints:\n\n```\n(.*?)```",
                  text, re.S)
    if m is None:
        raise AssertionError("README.md: the Node example or its output is missing")
    return m.group(1), m.group(2)


class NodeClient(unittest.TestCase):
    def test_readme_node_client(self):
        script, expected = readme_example()
        token = "node-" + os.urandom(12).hex()
        work = tempfile.mkdtemp(prefix="larder-node-")
        self.addCleanup(shutil.rmtree, work, True)
        # The example's folder as a fresh clone has it (no node_modules), beside protos/.
        shutil.copytree(os.path.join(harness.ROOT, "examples", "node"), os.path.join(work, "examples", "node"),
                        ignore=shutil.ignore_patterns("node_modules"))
        os.symlink(os.path.join(harness.ROOT, "protos"), os.path.join(work, "protos"))
        env = dict(os.environ, LARDER_TEST_TOKENS=token)
        with harness.Server(project="demo", env=env, larder={"auth": "{scoped: [{tokens_env: LARDER_TEST_TOKENS, scopes: [read, write, admin]}]}"}) as server:
            self.assertIn("127.0.0.1:6566", script)
            out = subprocess.run(["bash", "-c", script.replace("127.0.0.1:6566", server.addr)], cwd=work,
                                 env=dict(os.environ, LARDER_TOKEN=token), capture_output=True, text=True,
                                 timeout=600)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout.splitlines()[-3:], expected.splitlines())
            # What Node wrote, read by Python.
            reply = server.stub.OnlineRead(pb.OnlineReadRequest(
                feature_view="driver_hourly_stats", entity_keys=[key(driver_id=2001), key(driver_id=2002)]),
                timeout=10, metadata=(("authorization", "Bearer " + token),))
            self.assertEqual([r.features["conv_rate"].double_val for r in reply.results], [0.72, 0.38])
            self.assertEqual([r.features["trips_today"].int64_val for r in reply.results], [11, 12])
            # Without the token the same client is refused.
            out = subprocess.run(["node", os.path.join(work, "examples", "node", "client.js"), server.addr],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 1)
            self.assertIn("UNAUTHENTICATED", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
