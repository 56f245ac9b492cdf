#!/usr/bin/python3
"""The README's Python example, run as the README shows it (only the address and
the stub folder changed), against a real larder; its output must be the output
the README says it prints."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def readme_parts():
    with open(os.path.join(harness.ROOT, "README.md")) as f:
        text = f.read()
    block = re.search(r"<!-- example:python -->\n```sh\n(.*?)```\n<!-- /example:python -->", text, re.S)
    prints = re.search(r"<!-- /example:python -->\n\nIt prints:\n\n```\n(.*?)```", text, re.S)
    if not block or not prints:
        raise AssertionError("README.md: example block or its output not found")
    return block.group(1), prints.group(1)


class ReadmeExample(unittest.TestCase):
    def test_example_prints_what_the_readme_says(self):
        script, expected = readme_parts()
        self.assertIn("127.0.0.1:6566", script)
        with harness.Server(project="demo") as server, tempfile.TemporaryDirectory() as stubs:
            script = script.replace("127.0.0.1:6566", server.addr).replace("/tmp/larder-py", stubs)
            out = subprocess.run(["bash", "-c", script], cwd=harness.ROOT, capture_output=True, text=True,
                                 timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout, expected)


if __name__ == "__main__":
    unittest.main(verbosity=2)
