#!/usr/bin/python3
"""The command line of the real binary: exit statuses 0/1/2, --version,
--help, config errors as file:line:column, apply/teardown, the config file
from FEAST_FS_YAML_FILE_PATH, --listen, and a port already in use."""
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BIN = harness.LARDER_BIN


def run(*args, env=None, cwd=None, timeout=30):
    e = dict(os.environ)
    e.pop("FEAST_FS_YAML_FILE_PATH", None)
    e.update(env or {})
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, env=e, cwd=cwd, timeout=timeout)


class Cli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="larder-cli-")
        self.yaml = os.path.join(self.dir, "feature_store.yaml")
        self.write("project: cli\nonline_store:\n  path: store/online.db\n")

    def write(self, text):
        with open(self.yaml, "w") as f:
            f.write(text)

    def tables(self):
        conn = sqlite3.connect(os.path.join(self.dir, "store", "online.db"))
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        conn.close()
        return names

    def test_version_and_help(self):
        out = run("--version")
        self.assertEqual(out.returncode, 0)
        self.assertRegex(out.stdout, r"^larder \d+\.\d+\.\d+\n$")
        out = run("--help")
        self.assertEqual(out.returncode, 0)
        self.assertIn("larder serve", out.stdout)

    def test_usage_errors_exit_2(self):
        for args in ((), ("frobnicate",), ("apply", "-c", self.yaml), ("serve", "extra"),
                     ("serve", "-c", self.yaml, "--listen", "nope"), ("--bogus",)):
            out = run(*args)
            self.assertEqual(out.returncode, 2, args)
            self.assertIn("usage:", out.stderr + out.stdout, args)

    def test_config_errors_exit_2_with_position(self):
        self.write("project: cli\nlarder:\n  workers: lots\n")
        out = run("serve", "-c", self.yaml)
        self.assertEqual(out.returncode, 2)
        self.assertEqual(out.stderr, "%s:3:12: larder.workers: expected an integer, not 'lots'\n" % self.yaml)
        out = run("serve", "-c", os.path.join(self.dir, "absent.yaml"))
        self.assertEqual(out.returncode, 2)
        self.assertIn("absent.yaml: No such file or directory", out.stderr)

    def test_apply_and_teardown(self):
        out = run("apply", "-c", self.yaml, "drivers", "riders")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue({"cli_drivers", "cli_drivers_ek", "cli_riders", "cli_riders_ek"} <= self.tables())
        self.assertRegex(out.stderr, r"Z info created or kept table cli_drivers\n")
        out = run("teardown", "-c", self.yaml, "drivers")
        self.assertEqual(out.returncode, 0, out.stderr)
        names = self.tables()
        self.assertNotIn("cli_drivers", names)
        self.assertIn("cli_riders", names)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "store", "online.db")))
        out = run("apply", "-c", self.yaml, "bad-view")
        self.assertEqual(out.returncode, 2)
        self.assertIn("bad-view", out.stderr)

    def test_config_from_environment_and_cwd(self):
        out = run("apply", "env_view", env={"FEAST_FS_YAML_FILE_PATH": self.yaml})
        self.assertEqual(out.returncode, 0, out.stderr)
        out = run("apply", "cwd_view", cwd=self.dir)  # ./feature_store.yaml
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue({"cli_env_view", "cli_cwd_view"} <= self.tables())

    def test_store_that_cannot_open_exits_1(self):
        blocker = os.path.join(self.dir, "file")
        open(blocker, "w").close()
        self.write("project: cli\nonline_store:\n  path: file/online.db\n")
        out = run("serve", "-c", self.yaml)
        self.assertEqual(out.returncode, 1)
        self.assertIn("error cannot open the sqlite store", out.stderr)

    def test_second_larder_on_the_same_port_exits_1(self):
        """gRPC's default SO_REUSEPORT is off: two servers never share a port unknowingly."""
        with harness.Server() as first:
            out = run("serve", "-c", self.yaml, "--listen", first.addr, timeout=30)
            self.assertEqual(out.returncode, 1)
            self.assertIn("cannot listen on " + first.addr, out.stderr)

    def test_port_in_use_exits_1_and_listen_overrides(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            out = run("serve", "-c", self.yaml, "--listen", "127.0.0.1:%d" % port)
            self.assertEqual(out.returncode, 1)
            self.assertIn("cannot listen on 127.0.0.1:%d" % port, out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
