#!/usr/bin/python3
"""Three larder replicas serving one store behind a real load balancer, run
with the files of deploy/ as they are: HAProxy (deploy/haproxy.cfg, HTTP/2 to
each replica) and nginx (deploy/nginx.conf, grpc_pass). Under a steady load of
reads through the balancer: the calls reach all three replicas; SIGTERM of one
loses no call when the replica is first taken out of the balancer (a rolling
restart, as Kubernetes does it), and at most the calls in flight when it is
not; SIGKILL of another loses at most the calls in flight on it, and calls
succeed again within seconds; a replica started again gets calls again.
The replicas share one SQLite file (WAL), which is all this needs: the
database's own failovers are test_pg_failover.py's and test_mysql_replica.py's."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import scaleout  # noqa: E402
from harness import pb  # noqa: E402
from scaleout import Load, counts, report, seconds, wait_for  # noqa: E402

scaleout.need("haproxy", "nginx")
DEPLOY = os.path.join(harness.ROOT, "deploy")
THREADS = 8  # client threads, one call in flight each


def ok_reads(replica):
    return counts(replica.metrics_port, grpc_method="OnlineRead", grpc_code="OK")


class Replicas(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="larder-lb-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.chmod(self.dir, 0o755)  # nginx's workers run as nobody when it starts as root
        self.db = os.path.join(self.dir, "online.db")
        self.procs = []
        self.replicas = [self.replica() for _ in range(3)]
        for r in self.replicas:
            r.start()
        self.replicas[0].stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
        scaleout.write_rows(self.replicas[0].stub, range(100))

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        for r in self.replicas:
            if r.proc is not None and r.proc.poll() is None:
                r.stop()

    def replica(self, addr=None, metrics_port=None):
        """A larder on the shared SQLite file; `addr` and `metrics_port` to start one again in place."""
        metrics_port = metrics_port or harness.free_port()
        settings = {"workers": 2, "grace_period_s": 5, "metrics_listen": "127.0.0.1:%d" % metrics_port}
        if addr:
            settings["listen"] = addr
        r = harness.Server(larder=settings, store="online_store:\n  type: sqlite\n  path: %s\n" % self.db)
        if addr:
            r.addr, r.port = addr, int(addr.rsplit(":", 1)[1])
        r.metrics_port = metrics_port
        return r

    def start_balancer(self, kind):
        """Starts HAProxy or nginx in front of the replicas; returns the address clients call."""
        self.kind = kind
        port = harness.free_port()
        log = open(os.path.join(self.dir, kind + ".log"), "ab")
        if kind == "haproxy":
            self.admin = os.path.join(self.dir, "haproxy.sock")
            env = dict(os.environ, LARDER_LB_BIND="127.0.0.1:%d" % port, LARDER_LB_ADMIN=self.admin,
                       LARDER_LB_STATS="127.0.0.1:%d" % harness.free_port())
            for i, r in enumerate(self.replicas):
                env["LARDER_REPLICA_%d" % (i + 1)] = r.addr
            cmd = [scaleout.program("haproxy"), "-db", "-f", os.path.join(DEPLOY, "haproxy.cfg")]
        else:
            with open(os.path.join(DEPLOY, "nginx.conf")) as f:
                text = f.read()
            # The file's ports, 6566 for clients and 6567-6569 for the replicas, become ours.
            text, n = re.subn(r"127\.0\.0\.1:6566\b", "127.0.0.1:%d" % port, text)
            self.assertEqual(n, 1)
            for i, r in enumerate(self.replicas):
                text, n = re.subn(r"127\.0\.0\.1:%d\b" % (6567 + i), r.addr, text)
                self.assertEqual(n, 1)
            self.nginx_conf, self.nginx_text = os.path.join(self.dir, "nginx.conf"), text
            with open(self.nginx_conf, "w") as f:
                f.write(text)
            cmd = [scaleout.program("nginx"), "-p", self.dir, "-c", self.nginx_conf,
                   "-g", "daemon off; pid %s/nginx.pid;" % self.dir]
            env = None
        self.balancer = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(self.balancer)
        addr = "127.0.0.1:%d" % port
        channel = harness.grpc.insecure_channel(addr)
        stub = harness.rpc.OnlineStoreStub(channel)

        def answers():
            try:
                stub.OnlineRead(pb.OnlineReadRequest(feature_view="v", entity_keys=[harness.key(driver_id=1)]),
                                timeout=1)
                return True
            except harness.grpc.RpcError:
                return self.balancer.poll() is not None
        self.assertTrue(wait_for(answers, seconds(10)), "%s does not answer" % kind)
        self.assertIsNone(self.balancer.poll(), "%s exited" % kind)
        channel.close()
        return addr

    def haproxy(self, command):
        """One command of HAProxy's runtime API (its admin socket)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.admin)
            s.sendall(command.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode()
                out += chunk

    def take_out(self, i, out=True):
        """What an operator (or Kubernetes, taking the pod out of the Service)
        does before stopping a replica: the balancer sends it no new call. HAProxy:
        state drain through the runtime API, then the calls it has in flight end;
        nginx: the server marked down, and a reload."""
        name = "replica%d" % (i + 1)
        if self.kind == "haproxy":
            self.haproxy("set server larder/%s state %s" % (name, "drain" if out else "ready"))

            def idle():
                for line in self.haproxy("show stat").splitlines():
                    f = line.split(",")
                    if len(f) > 4 and f[0] == "larder" and f[1] == name:
                        return int(f[4] or 0) == 0  # scur: its sessions now
                return False
            if out:
                self.assertTrue(wait_for(idle, seconds(5)))
            return
        text = self.nginx_text
        if out:
            text, n = re.subn(r"(server %s max_fails=1 fail_timeout=2s)" % re.escape(self.replicas[i].addr),
                              r"\1 down", text)
            self.assertEqual(n, 1)
        with open(self.nginx_conf, "w") as f:
            f.write(text)
        self.balancer.send_signal(signal.SIGHUP)  # new workers with the file; the old ones finish their calls
        time.sleep(1)

    def restart(self, i):
        """Starts replica i again on its address; returns the seconds until it had its first call."""
        t0 = time.monotonic()
        old = self.replicas[i]
        self.replicas[i] = self.replica(addr=old.addr, metrics_port=old.metrics_port).start()
        self.assertTrue(wait_for(lambda: ok_reads(self.replicas[i]) > 0, seconds(10)),
                        "replica %d started again gets no calls" % (i + 1))
        return time.monotonic() - t0

    def oversized(self, addr):
        """Writes over larder.max_message_bytes (4 MiB) through the balancer:
        RESOURCE_EXHAUSTED as from larder itself, whichever of the two refuses
        it (nginx's client_max_body_size is 413, mapped)."""
        channel = harness.grpc.insecure_channel(addr)
        stub = harness.rpc.OnlineStoreStub(channel)
        codes = {}
        for size in (4 * 2**20 + 100, 9 * 2**20):
            request = pb.OnlineWriteBatchRequest(feature_view="v", rows=[harness.row(
                harness.key(driver_id=1), {"f": harness.Value_pb2.Value(bytes_val=b"x" * size)})])
            with self.assertRaises(harness.grpc.RpcError) as cm:
                stub.OnlineWriteBatch(request, timeout=seconds(10))
            codes[size] = cm.exception.code().name
        channel.close()
        print("%s: writes of 4 MiB + 100 B and 9 MiB: %s" % (self.kind, codes))
        self.assertEqual(set(codes.values()), {"RESOURCE_EXHAUSTED"}, codes)

    def run_balancer(self, kind):
        addr = self.start_balancer(kind)
        self.oversized(addr)
        load = Load(addr, THREADS, scaleout.read_call()).start()
        figures = {}
        try:
            # 1. The calls spread over the three replicas.
            before = [ok_reads(r) for r in self.replicas]
            time.sleep(2)
            spread = [ok_reads(r) - b for r, b in zip(self.replicas, before)]
            total = sum(spread)
            self.assertGreater(total, 0)
            for i, n in enumerate(spread):
                self.assertGreater(n, total * 0.15, "replica %d got %d of %d calls" % (i + 1, n, total))
            figures["spread"] = "/".join(str(int(n)) for n in spread)

            # 2. A rolling restart of replica 1: out of the balancer, SIGTERM
            # (it drains), started again, back in. No call is lost.
            t0 = time.monotonic()
            self.take_out(0)
            first = self.replicas[0]
            self.assertEqual(first.stop(signal.SIGTERM), 0)
            figures["sigterm_drain_s"] = "%.2f" % (time.monotonic() - t0)
            self.take_out(0, out=False)
            figures["restarted_first_call_s"] = "%.2f" % self.restart(0)
            rolling = load.between(t0)
            self.assertEqual(Load.failed(rolling), [], "calls lost in a rolling restart")
            figures["rolling_calls"], figures["rolling_failed"] = len(rolling), 0

            # 3. SIGTERM of replica 2 with no warning to the balancer: what it
            # had sent on as the replica stopped taking calls (at most one per
            # call in flight) may fail; then none.
            t_term = time.monotonic()
            self.assertEqual(self.replicas[1].stop(signal.SIGTERM), 0)
            time.sleep(1.5)
            term_calls = load.between(t_term - 1)
            term_failed = Load.failed(term_calls)
            self.assertLessEqual(len(term_failed), THREADS, term_failed)
            late = [o for o in term_failed if o[0] > t_term + seconds(1)]
            self.assertEqual(late, [], "calls still failed a second after the SIGTERM")
            figures["sigterm_unwarned_calls"], figures["sigterm_unwarned_failed"] = len(term_calls), len(term_failed)
            figures["sigterm_unwarned_codes"] = "+".join(sorted({o[2] for o in term_failed})) or "-"
            self.restart(1)

            # 4. SIGKILL of replica 3: at most the calls in flight on it fail, then none.
            t_kill = time.monotonic()
            self.replicas[2].proc.kill()
            self.replicas[2].proc.wait()
            time.sleep(3)
            kill_calls = load.between(t_kill - 1)
            kill_failed = Load.failed(kill_calls)
            self.assertLessEqual(len(kill_failed), THREADS, kill_failed)
            for o in kill_failed:
                self.assertEqual(o[2], "UNAVAILABLE", o)
            recovery = max([o[1] for o in kill_failed], default=t_kill) - t_kill
            self.assertLess(recovery, seconds(2), "calls still failed %.2f s after the SIGKILL" % recovery)
            after = [o for o in kill_calls if o[0] > t_kill + recovery]
            self.assertTrue(after and not Load.failed(after))
            figures["sigkill_calls"], figures["sigkill_failed"] = len(kill_calls), len(kill_failed)
            figures["sigkill_codes"] = "+".join(sorted({o[2] for o in kill_failed})) or "-"
            figures["sigkill_recovery_s"] = "%.2f" % recovery
        finally:
            load.stop()
        all_calls = load.between(0)
        report(kind, calls=len(all_calls), failed=len(Load.failed(all_calls)), **figures)

    def test_haproxy(self):
        self.run_balancer("haproxy")

    def test_nginx(self):
        self.run_balancer("nginx")


if __name__ == "__main__":
    unittest.main(verbosity=2)
