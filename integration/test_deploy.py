#!/usr/bin/python3
"""deploy/ checked without a cluster: the Kubernetes manifests parse, reference
each other (selectors, the autoscaler's target, the kustomization's list), and
agree with larder: the ConfigMap's feature_store.yaml is a configuration
larder accepts once the Deployment's environment fills it, its listen and
metrics ports are the container's ports, the probes ask grpc.health.v1 for
what larder serves, the grace periods add up, and every larder: key it sets is
documented. deploy/haproxy.cfg and deploy/nginx.conf pass their own checkers
(integration/test_lb.py runs them)."""
import glob
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import scaleout  # noqa: E402
import yaml  # noqa: E402

DEPLOY = os.path.join(harness.ROOT, "deploy")
K8S = os.path.join(DEPLOY, "kubernetes")
SERVED = {"", "larder.v1.OnlineStore", "feast.serving.ServingService", "GrpcFeatureServer",
          "grpc.health.v1.Health"}


def port_of(listen):
    return int(listen.rsplit(":", 1)[1])


class Kubernetes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = {}
        for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
            with open(path) as f:
                for doc in yaml.safe_load_all(f):
                    if doc is not None:
                        cls.docs.setdefault(doc["kind"], []).append(doc)
        cls.deployment = cls.docs["Deployment"][0]
        cls.pod = cls.deployment["spec"]["template"]
        cls.container = cls.pod["spec"]["containers"][0]
        cls.config_text = cls.docs["ConfigMap"][0]["data"]["feature_store.yaml"]
        cls.config = yaml.safe_load(cls.config_text)

    def test_kustomization_lists_every_file(self):
        listed = set(self.docs["Kustomization"][0]["resources"])
        files = {os.path.basename(p) for p in glob.glob(os.path.join(K8S, "*.yaml"))} - {"kustomization.yaml"}
        self.assertEqual(listed, files)

    def test_selectors_and_targets(self):
        labels = self.pod["metadata"]["labels"]
        self.assertEqual(self.deployment["spec"]["selector"]["matchLabels"].items() - labels.items(), set())
        for s in self.docs["Service"]:
            self.assertEqual(s["spec"]["selector"].items() - labels.items(), set(), s["metadata"]["name"])
        pdb = self.docs["PodDisruptionBudget"][0]["spec"]
        self.assertEqual(pdb["selector"]["matchLabels"].items() - labels.items(), set())
        self.assertLess(pdb.get("maxUnavailable", 0), self.deployment["spec"]["replicas"])
        hpa = self.docs["HorizontalPodAutoscaler"][0]["spec"]
        self.assertEqual((hpa["scaleTargetRef"]["kind"], hpa["scaleTargetRef"]["name"]),
                         ("Deployment", self.deployment["metadata"]["name"]))
        self.assertLessEqual(hpa["minReplicas"], self.deployment["spec"]["replicas"])
        # The autoscaler works on CPU, which needs a CPU request.
        self.assertIn("cpu", self.container["resources"]["requests"])
        volumes = {v["name"]: v for v in self.pod["spec"]["volumes"]}
        self.assertEqual(volumes["config"]["configMap"]["name"], self.docs["ConfigMap"][0]["metadata"]["name"])

    def test_ports_and_probes_match_the_config(self):
        larder = self.config["larder"]
        ports = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        self.assertEqual(ports["grpc"], port_of(larder["listen"]))
        self.assertEqual(ports["metrics"], port_of(larder["metrics_listen"]))
        self.assertEqual(self.pod["metadata"]["annotations"]["prometheus.io/port"], str(ports["metrics"]))
        for s in self.docs["Service"]:
            for p in s["spec"]["ports"]:
                self.assertIn(p["targetPort"], ports)
        probes = {k: self.container[k]["grpc"] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        for kind, probe in probes.items():
            self.assertEqual(probe["port"], ports["grpc"], kind)
            self.assertIn(probe.get("service", ""), SERVED, kind)
        # Liveness never touches the database; readiness does.
        self.assertEqual(probes["livenessProbe"].get("service", ""), "")
        self.assertEqual(probes["readinessProbe"]["service"], "larder.v1.OnlineStore")

    def test_grace_periods_add_up(self):
        sleep = int(self.container["lifecycle"]["preStop"]["exec"]["command"][-1])
        grace = self.config["larder"]["grace_period_s"]
        self.assertGreater(self.pod["spec"]["terminationGracePeriodSeconds"], sleep + grace)

    def test_resources_hold_the_measured_memory(self):
        """bench/RESULTS.md's peak resident memory under load fits the request."""
        with open(os.path.join(harness.ROOT, "bench", "RESULTS.md")) as f:
            peak = float(re.search(r"peak VmRSS ([0-9.]+) MiB", f.read()).group(1))
        res = self.container["resources"]
        request = int(res["requests"]["memory"].rstrip("Mi"))
        limit = int(res["limits"]["memory"].rstrip("Mi"))
        self.assertGreater(request, peak)
        self.assertGreaterEqual(limit, request)

    def test_config_is_accepted_by_larder(self):
        """The ConfigMap with the Deployment's environment: larder reads it (exit 2
        would be a configuration error); every ${VAR} is set by the Deployment."""
        env = {e["name"]: e.get("value", "from-a-secret") for e in self.container["env"]}
        for var in re.findall(r"\$\{(\w+)\}", self.config_text):
            self.assertIn(var, env)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "feature_store.yaml")
            with open(path, "w") as f:
                f.write(self.config_text)
            out = subprocess.run([harness.LARDER_BIN, "health", "-c", path], env=dict(os.environ, **env),
                                 capture_output=True, text=True, timeout=30)
        self.assertIn(out.returncode, (0, 1), out.stderr)  # 1: no larder answers there; 2 would be the config
        self.assertNotIn("feature_store.yaml:", out.stderr)
        # The same check sees a key larder does not know.
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "feature_store.yaml")
            with open(path, "w") as f:
                f.write(re.sub(r"^(\s*)read_from:", r"\1reed_from:", self.config_text, flags=re.M))
            out = subprocess.run([harness.LARDER_BIN, "health", "-c", path], env=dict(os.environ, **env),
                                 capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("unknown key 'reed_from'", out.stderr)

    def test_every_key_is_documented(self):
        with open(os.path.join(harness.ROOT, "docs", "configuration.md")) as f:
            documented = set(re.findall(r"^\| `(\w+)`", f.read(), re.M))
        for k in self.config["larder"]:
            self.assertIn(k, documented)
        for k in self.config["online_store"]:
            self.assertIn(k, documented | {"type"})


class Balancers(unittest.TestCase):
    def test_haproxy_cfg(self):
        if scaleout.program("haproxy") is None:
            scaleout.need("haproxy")  # fails under CI
        env = dict(os.environ, LARDER_LB_BIND="127.0.0.1:1", LARDER_LB_STATS="127.0.0.1:2",
                   LARDER_LB_ADMIN="/tmp/x.sock", LARDER_REPLICA_1="127.0.0.1:3", LARDER_REPLICA_2="127.0.0.1:4",
                   LARDER_REPLICA_3="127.0.0.1:5")
        out = subprocess.run([scaleout.program("haproxy"), "-c", "-f", os.path.join(DEPLOY, "haproxy.cfg")],
                             env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_nginx_conf(self):
        if scaleout.program("nginx") is None:
            scaleout.need("nginx")
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run([scaleout.program("nginx"), "-t", "-p", d, "-c", os.path.join(DEPLOY, "nginx.conf"),
                                  "-g", "pid %s/nginx.pid;" % d], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
