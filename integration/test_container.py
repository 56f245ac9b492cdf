#!/usr/bin/python3
"""The container files, checked without a Docker engine: docker-compose.yml
validated by Debian's docker-compose (`config -q`) with its health checks and
start order, the Dockerfile's runtime packages against the libraries the
binary links, and each docker/feature_store.*.yaml served for real by larder
(on the test databases) until `larder health`, the image's probe, says SERVING."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import yaml  # noqa: E402

ROOT = harness.ROOT
REQUIRED = os.environ.get("LARDER_REQUIRE_DB") == "1"


def need(condition, what):
    if condition:
        return
    if REQUIRED:
        raise AssertionError(what + " is needed here")
    raise unittest.SkipTest(what)


class Compose(unittest.TestCase):
    def test_config_is_valid(self):
        need(shutil.which("docker-compose"), "docker-compose (Debian's package)")
        out = subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        out = subprocess.run(["docker-compose", "config"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, MYSQL_PASSWORD="m", POSTGRES_PASSWORD="p"))
        services = yaml.safe_load(out.stdout)["services"]
        replicas = ["larder-postgres-%d" % i for i in (1, 2, 3)]
        self.assertEqual(set(services), {"mariadb", "postgres", "larder-mysql", "lb"} | set(replicas))
        for db in ("mariadb", "postgres"):
            self.assertIn("healthcheck", services[db], db)
        # The PostgreSQL replicas behind HAProxy, run with deploy/haproxy.cfg (integration/test_lb.py's).
        lb = services["lb"]
        self.assertIn("%s/deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" % ROOT, lb["volumes"])
        self.assertEqual(lb["depends_on"], {r: {"condition": "service_healthy"} for r in replicas})
        self.assertEqual(sorted(v for k, v in lb["environment"].items() if k.startswith("LARDER_REPLICA_")),
                         ["%s:6566" % r for r in replicas])
        self.assertIn({"published": 6576, "target": 6566}, lb["ports"])
        for name, db, config, password in [("larder-mysql", "mariadb", "mysql", "MYSQL_PASSWORD")] + [
                (r, "postgres", "postgres", "POSTGRES_PASSWORD") for r in replicas]:
            s = services[name]
            self.assertEqual(s["depends_on"], {db: {"condition": "service_healthy"}})
            self.assertEqual(s["healthcheck"]["test"], ["CMD", "larder", "health", "larder.v1.OnlineStore"])
            self.assertEqual(s["build"]["context"], ROOT)
            self.assertIn("%s/docker/feature_store.%s.yaml:/etc/larder/feature_store.yaml:ro" % (ROOT, config),
                          s["volumes"])
            self.assertEqual(s["environment"][password], password[0].lower())


class Dockerfile(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ROOT, "Dockerfile")) as f:
            self.text = f.read()
        self.stages = re.split(r"^FROM ", self.text, flags=re.M)[1:]

    def test_stages_and_user(self):
        self.assertEqual(len(self.stages), 2)
        self.assertTrue(all(s.startswith("debian:12") for s in self.stages))
        self.assertRegex(self.stages[1], r"\nUSER 10001:10001\n")
        self.assertIn('CMD ["larder", "health", "larder.v1.OnlineStore"]', self.stages[1])
        for path in re.findall(r"^COPY (?!--from)(\S+)", self.text, re.M):
            if path != ".":
                self.assertTrue(os.path.exists(os.path.join(ROOT, path)), path)

    def test_runtime_packages_cover_the_binary(self):
        """Each library larder links directly comes from a package the runtime stage installs."""
        need(shutil.which("readelf") and shutil.which("dpkg"), "readelf and dpkg")
        installed = set(re.search(r"apt-get install[^\\]*\\\n((?:.*\\\n)+)", self.stages[1]).group(1)
                        .replace("\\", " ").split())
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                            subprocess.run(["readelf", "-d", harness.LARDER_BIN], capture_output=True,
                                           text=True, check=True).stdout)
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
            ["ldd", harness.LARDER_BIN], capture_output=True, text=True, check=True).stdout, re.M))
        base = {"libc6", "libgcc-s1", "libstdc++6"}  # in debian:12-slim already
        # A package those pull in is there too (a debug build links some of them directly).
        todo, pulled = list(installed), set()
        while todo:
            p = todo.pop()
            if p in pulled:
                continue
            pulled.add(p)
            out = subprocess.run(["dpkg-query", "-W", "-f", "${Depends}", p], capture_output=True, text=True)
            todo += [d.split()[0].split(":")[0] for alt in out.stdout.split(",") if alt.strip()
                     for d in [alt.strip().split("|")[0]]]
        installed |= pulled
        self.assertGreaterEqual(len(needed), 8)
        if any(re.match(r"lib[atlu]+san\.", lib) for lib in needed):
            self.skipTest("a sanitizer build links other runtime libraries than the image's build")
        for lib in needed:
            real = os.path.realpath(paths[lib])
            owner = None
            # Debian 12 merged /lib into /usr/lib, but dpkg knows each file by one of the two names.
            for candidate in (paths[lib], real, re.sub(r"^/usr/lib/", "/lib/", real), re.sub(r"^/lib/", "/usr/lib/", real)):
                out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
                if out.returncode == 0:
                    owner = out.stdout.split(":")[0]
                    break
            self.assertIsNotNone(owner, lib)
            self.assertTrue(owner in installed or owner in base, "%s (%s) is not installed by the image" % (lib, owner))


class ImageConfigs(unittest.TestCase):
    """docker/feature_store.*.yaml, with the compose host names pointed at the test databases."""

    def serve(self, name, rewrite, env):
        with open(os.path.join(ROOT, "docker", "feature_store.%s.yaml" % name)) as f:
            text = f.read()
        tmp = tempfile.mkdtemp(prefix="larder-image-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port, mport = harness.free_port(), harness.free_port()
        text = text.replace("/var/lib/larder", tmp).replace("0.0.0.0:6566", "127.0.0.1:%d" % port)
        text = text.replace("0.0.0.0:9090", "127.0.0.1:%d" % mport)
        for old, new in rewrite:
            self.assertIn(old, text)
            text = text.replace(old, new)
        path = os.path.join(tmp, "feature_store.yaml")
        with open(path, "w") as f:
            f.write(text)
        env = dict(os.environ, **env)
        log = open(os.path.join(tmp, "larder.log"), "w+")
        self.addCleanup(log.close)
        proc = subprocess.Popen([harness.LARDER_BIN, "serve", "-c", path], env=env, stdout=log, stderr=log)
        try:
            deadline, out = time.monotonic() + 30, None
            while time.monotonic() < deadline and proc.poll() is None:
                out = subprocess.run([harness.LARDER_BIN, "health", "-c", path, "larder.v1.OnlineStore"], env=env,
                                     capture_output=True, text=True, timeout=30)
                if out.returncode == 0:
                    break
                time.sleep(0.2)
            log.seek(0)
            self.assertIsNone(proc.poll(), log.read())
            self.assertEqual((out.returncode, out.stdout), (0, "SERVING\n"), out.stderr)
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10) as r:
                self.assertIn('larder_build_info{version="', r.read().decode())
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(timeout=30), 0)

    def test_sqlite(self):
        self.serve("sqlite", [], {})

    def test_postgres(self):
        if "postgres" not in harness.BACKENDS_BUILT:
            self.skipTest("this build has no PostgreSQL store")
        need(os.environ.get("TEST_PG_HOST"), "the PostgreSQL server of integration/services.sh")
        e = os.environ
        self.serve("postgres", [("host: postgres", "host: " + e["TEST_PG_HOST"]), ("port: 5432", "port: " + e["TEST_PG_PORT"]),
                                ("database: feast", "database: " + e["TEST_PG_DB"]), ("user: feast", "user: " + e["TEST_PG_USER"])],
                   {"POSTGRES_PASSWORD": e["TEST_PG_PASSWORD"]})

    def test_mysql(self):
        if "mysql" not in harness.BACKENDS_BUILT:
            self.skipTest("this build has no MySQL store")
        need(os.environ.get("TEST_MYSQL_HOST"), "the MariaDB server of integration/services.sh")
        e = os.environ
        self.serve("mysql", [("host: mariadb", "host: " + e["TEST_MYSQL_HOST"]), ("port: 3306", "port: " + e["TEST_MYSQL_PORT"]),
                             ("database: feast", "database: " + e["TEST_MYSQL_DB"]), ("user: feast", "user: " + e["TEST_MYSQL_USER"])],
                   {"MYSQL_PASSWORD": e["TEST_MYSQL_PASSWORD"]})


if __name__ == "__main__":
    unittest.main(verbosity=2)
