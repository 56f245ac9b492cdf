#!/usr/bin/python3
"""The README's Python examples, run as the README shows them (only the
address, the stub folder and the registry's path changed), against a real
larder; their output must be the output the README says they print."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def readme_parts(name):
    with open(os.path.join(harness.ROOT, "README.md")) as f:
        text = f.read()
    block = re.search(r"<!-- example:%s -->\n```sh\n(.*?)```\n<!-- /example:%s -->" % (name, name), text, re.S)
    prints = re.search(r"<!-- /example:%s -->\n\nIt prints:\n\n```\n(.*?)```" % name, text, re.S)
    if not block or not prints:
        raise AssertionError("README.md: example %s or its output not found" % name)
    return block.group(1), prints.group(1)


class ReadmeExample(unittest.TestCase):
    def test_examples_print_what_the_readme_says(self):
        # The example's feature_store.yaml names its registry the same way.
        with open(os.path.join(harness.ROOT, "examples", "feature_store.yaml")) as f:
            self.assertIn("cache_ttl_seconds: 5", f.read())
        with harness.Server(project="demo", registry="{path: registry.db, cache_ttl_seconds: 5}") as server, \
                tempfile.TemporaryDirectory() as stubs:
            for name in ("python", "serving"):
                script, expected = readme_parts(name)
                self.assertIn("127.0.0.1:6566", script)
                script = (script.replace("127.0.0.1:6566", server.addr).replace("/tmp/larder-py", stubs)
                          .replace("examples/data/registry.db", os.path.join(server.tmpdir, "registry.db")))
                out = subprocess.run(["bash", "-c", script], cwd=harness.ROOT, capture_output=True, text=True,
                                     timeout=120)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(out.stdout, expected, name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
