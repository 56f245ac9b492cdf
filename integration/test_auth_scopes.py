#!/usr/bin/python3
"""Defaults that must not destroy data, and who may do what (issue 10, items 4
and 8e), against the real larder process on SQLite (the transport's behaviour
is the same for every store):

- the admin calls (Update, Teardown) are off unless `larder.admin_rpcs: true`;
- larder warns at start when it listens beyond loopback with neither auth nor TLS;
- plain bearer tokens grant read and write, never admin; `larder.auth.scoped`
  grants exactly the scopes listed; a known token without the scope is
  PERMISSION_DENIED, an unknown or missing one UNAUTHENTICATED; health needs none;
- a verified client certificate gets `larder.tls.client_scopes` ([read, write]
  by default) when `auth` is unset;
- SIGHUP reloads the token files and the TLS certificate without a restart."""
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SLOW, Value_pb2, grpc, key, pb, raw_call, row  # noqa: E402
from harness import health_pb2 as H  # noqa: E402
from harness import reflection_pb2 as R  # noqa: E402
from test_mesh import make_pki, openssl, reflect  # noqa: E402
from feast.serving import ServingService_pb2 as sv  # noqa: E402

Code = grpc.StatusCode
SERVING = H.HealthCheckResponse.SERVING
DENIED = (Code.UNAUTHENTICATED, Code.PERMISSION_DENIED)


def bearer(token):
    return (("authorization", "Bearer " + token),)


def token_file(folder, name, *tokens):
    path = os.path.join(folder, name)
    with open(path + ".tmp", "w") as f:
        f.write("".join(t + "\n" for t in tokens))
    os.replace(path + ".tmp", path)
    return path


def new_token(tag):
    return "%s-%s" % (tag, os.urandom(8).hex())


def relisten(server, host):
    """Rewrites the server's listen address to host:<its port> (before start)."""
    with open(server.config) as f:
        text = f.read()
    with open(server.config, "w") as f:
        f.write(text.replace("listen: 127.0.0.1:%d" % server.port, "listen: %s:%d" % (host, server.port)))


def apply(server, *views):
    """`larder apply`: creates tables locally, whatever admin_rpcs says."""
    out = subprocess.run([harness.LARDER_BIN, "apply", "-c", server.config] + list(views), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def read_req():
    return pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=1)])


def write_req():
    return pb.OnlineWriteBatchRequest(feature_view="v", rows=[row(key(driver_id=1), {"f": Value_pb2.Value(int64_val=7)})])


def calls(channel, metadata):
    """{method: status code} of one call of each kind with `metadata`."""
    out = {}

    def unary(name, path, payload):
        try:
            channel.unary_unary(path)(payload, timeout=10, metadata=metadata)
            out[name] = Code.OK
        except grpc.RpcError as e:
            out[name] = e.code()
    unary("OnlineRead", "/larder.v1.OnlineStore/OnlineRead", read_req().SerializeToString())
    unary("GetOnlineFeatures", "/feast.serving.ServingService/GetOnlineFeatures",
          sv.GetOnlineFeaturesRequest(features=sv.FeatureList(val=["v:f"])).SerializeToString())
    unary("GetFeastServingInfo", "/feast.serving.ServingService/GetFeastServingInfo", b"")
    try:
        reflect(channel, [R.ServerReflectionRequest(list_services="")], metadata=metadata)
        out["reflection"] = Code.OK
    except grpc.RpcError as e:
        out["reflection"] = e.code()
    unary("OnlineWriteBatch", "/larder.v1.OnlineStore/OnlineWriteBatch", write_req().SerializeToString())
    unary("Update", "/larder.v1.OnlineStore/Update", pb.UpdateRequest(tables_to_keep=["v"]).SerializeToString())
    unary("Teardown", "/larder.v1.OnlineStore/Teardown", pb.TeardownRequest(tables=["gone"]).SerializeToString())
    return out


READS = ("OnlineRead", "GetOnlineFeatures", "GetFeastServingInfo", "reflection")
WRITES = ("OnlineWriteBatch",)
ADMIN = ("Update", "Teardown")


def allowed(result, methods):
    """The methods among `methods` that were let through (not refused for auth)."""
    return {m for m in methods if result[m] not in DENIED}


def health_ok(channel):
    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=H.HealthCheckRequest.SerializeToString,
                                response_deserializer=H.HealthCheckResponse.FromString)
    return check(H.HealthCheckRequest(service="larder.v1.OnlineStore"), timeout=10).status == SERVING


def wait_until(cond, timeout):
    end = time.monotonic() + timeout
    while True:
        ok = cond()
        if ok or time.monotonic() > end:
            return ok
        time.sleep(0.1)


class AdminAndWarnings(unittest.TestCase):
    def test_admin_rpcs_off_by_default(self):
        """Without `admin_rpcs`, Update and Teardown are PERMISSION_DENIED naming admin_rpcs."""
        with harness.Server(larder={"admin_rpcs": None}) as server:
            for method, req in (("Update", pb.UpdateRequest(tables_to_keep=["v"])),
                                ("Teardown", pb.TeardownRequest(tables=["v"]))):
                code, details, _ = raw_call(server.channel, method, req.SerializeToString())
                print("%s with the default config: %s %r" % (method, code.name, details))
                self.assertEqual(code, Code.PERMISSION_DENIED, details)
                self.assertIn("admin_rpcs", details)

    def test_warns_when_open_beyond_loopback(self):
        """Listening on 0.0.0.0 with neither auth nor TLS: a warn line that mentions
        larder.auth and larder.tls, for gRPC and for the HTTP API. None on
        127.0.0.1, none with auth."""
        def warnings(host, larder=None):
            server = harness.Server(larder=larder)
            relisten(server, host)
            with server:
                pass
            return [line for line in server.read_log().splitlines()
                    if re.search(r"\bwarn(ing)?\b", line, re.I) and "larder.auth" in line and "larder.tls" in line]
        open_lines = warnings("0.0.0.0")
        print("0.0.0.0, no auth, no TLS:", open_lines)
        self.assertEqual(len(open_lines), 1, "no warning that the port is open to anyone")
        self.assertEqual(warnings("127.0.0.1"), [])
        # The HTTP API takes the same tokens: open beyond loopback, it is warned about too.
        http_open = warnings("127.0.0.1", {"http_listen": "0.0.0.0:%d" % harness.free_port()})
        print("gRPC on 127.0.0.1, HTTP on 0.0.0.0:", http_open)
        self.assertEqual(len(http_open), 1, "no warning that the HTTP port is open to anyone")
        self.assertIn("HTTP", http_open[0])
        folder = tempfile.mkdtemp(prefix="larder-tok-")
        self.assertEqual(warnings("0.0.0.0", {"auth": "{tokens_file: %s}" % token_file(folder, "t", new_token("t"))}),
                         [])


class Tokens(unittest.TestCase):
    def test_plain_tokens_grant_read_and_write_only(self):
        """A token of plain tokens_file/tokens_env may read and write, not Update or
        Teardown (PERMISSION_DENIED) even with admin_rpcs: true."""
        folder = tempfile.mkdtemp(prefix="larder-tok-")
        tok, env_tok = new_token("plain"), new_token("env")
        env = dict(os.environ, LARDER_TEST_PLAIN=env_tok)
        server = harness.Server(env=env, larder={"admin_rpcs": True, "auth": "{tokens_file: %s, tokens_env: LARDER_TEST_PLAIN}"
                                                 % token_file(folder, "plain", tok)})
        apply(server, "v")
        with server:
            for t in (tok, env_tok):
                result = calls(server.channel, bearer(t))
                print("plain token:", {m: c.name for m, c in result.items()})
                self.assertEqual(allowed(result, READS + WRITES), set(READS + WRITES), result)
                self.assertEqual({m: result[m] for m in ADMIN}, {m: Code.PERMISSION_DENIED for m in ADMIN})
            self.assertTrue(health_ok(server.channel))

    def test_scoped_tokens(self):
        """larder.auth.scoped: each token gets exactly its scopes. Unknown and missing
        tokens are UNAUTHENTICATED; health needs no token."""
        folder = tempfile.mkdtemp(prefix="larder-tok-")
        toks = {s: new_token(s) for s in ("plain", "read", "write", "admin", "all")}
        env = dict(os.environ, LARDER_TEST_WRITE=toks["write"])
        auth = ("{tokens_file: %s, scoped: [{tokens_file: %s, scopes: [read]}, {tokens_env: LARDER_TEST_WRITE, "
                "scopes: [write]}, {tokens_file: %s, scopes: [admin]}, {tokens_file: %s, scopes: [read, write, admin]}]}"
                % (token_file(folder, "plain", toks["plain"]), token_file(folder, "read", toks["read"]),
                   token_file(folder, "admin", toks["admin"]), token_file(folder, "all", toks["all"])))
        want = {"plain": set(READS + WRITES), "read": set(READS), "write": set(WRITES), "admin": set(ADMIN),
                "all": set(READS + WRITES + ADMIN)}
        with harness.Server(env=env, larder={"admin_rpcs": True, "auth": auth}) as server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10, metadata=bearer(toks["all"]))
            for name, t in toks.items():
                result = calls(server.channel, bearer(t))
                print("%-5s token:" % name, {m: c.name for m, c in result.items()})
                self.assertEqual(allowed(result, READS + WRITES + ADMIN), want[name], result)
                for m in set(READS + WRITES + ADMIN) - want[name]:
                    self.assertEqual(result[m], Code.PERMISSION_DENIED, (name, m))
            for md in (None, bearer("unknown-" + toks["all"])):
                result = calls(server.channel, md)
                self.assertEqual(set(result.values()), {Code.UNAUTHENTICATED}, result)
            self.assertTrue(health_ok(server.channel))
        # An admin token is still refused while admin_rpcs is off.
        with harness.Server(env=env, larder={"admin_rpcs": False, "auth": auth}) as server:
            md = bearer(toks["all"])
            try:
                server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10, metadata=md)
                self.fail("Update with an admin token while admin_rpcs is false was served")
            except grpc.RpcError as e:
                self.assertEqual(e.code(), Code.PERMISSION_DENIED)
                self.assertIn("admin_rpcs", e.details())

    def test_sighup_reloads_tokens(self):
        """The tokens file changes and SIGHUP comes: the new token works, the old one is
        UNAUTHENTICATED, and it is the same process (no restart)."""
        folder = tempfile.mkdtemp(prefix="larder-tok-")
        old, new = new_token("old"), new_token("new")
        path = token_file(folder, "tokens", old)
        # Scoped with admin, so that the test can create its table with the same token.
        with harness.Server(larder={"auth": "{scoped: [{tokens_file: %s, scopes: [read, write, admin]}]}" % path}) as server:
            pid = server.proc.pid
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10, metadata=bearer(old))
            self.assertFalse(server.stub.OnlineRead(read_req(), timeout=10, metadata=bearer(old)).results[0].found)
            token_file(folder, "tokens", new)
            server.proc.send_signal(signal.SIGHUP)

            def new_works():
                self.assertIsNone(server.proc.poll(), "larder exited on SIGHUP (status %s)" % server.proc.poll())
                try:
                    server.stub.OnlineRead(read_req(), timeout=5, metadata=bearer(new))
                    return True
                except grpc.RpcError as e:
                    if e.code() not in (Code.UNAUTHENTICATED, Code.UNAVAILABLE):  # not yet; or look at the process
                        raise
                    return False
            self.assertTrue(wait_until(new_works, 5 * SLOW), "the new token is not accepted after SIGHUP")
            with self.assertRaises(grpc.RpcError) as cm:
                server.stub.OnlineRead(read_req(), timeout=5, metadata=bearer(old))
            self.assertEqual(cm.exception.code(), Code.UNAUTHENTICATED)
            self.assertEqual(server.proc.pid, pid)
            self.assertIsNone(server.proc.poll())
        self.assertNotIn(new, server.read_log())


class ClientCertificates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="larder-pki-")
        cls.pem = staticmethod(make_pki(cls.dir))
        # A second server certificate of the same CA, for rotation.
        with open(os.path.join(cls.dir, "server2.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl("req", *ec, "-keyout", "server2.key", "-out", "server2.csr", "-subj", "/CN=server2", cwd=cls.dir)
        openssl("x509", "-req", "-in", "server2.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server2.pem", "-days", "2", "-extfile", "server2.ext", cwd=cls.dir)

    def tls(self, scopes=None, folder=None):
        d = folder or self.dir
        return "{cert: %s/server.pem, key: %s/server.key, client_ca: %s/ca.pem%s}" % (
            d, d, d, ", client_scopes: [%s]" % ", ".join(scopes) if scopes is not None else "")

    def client(self):
        return grpc.ssl_channel_credentials(self.pem("ca.pem"), self.pem("client.key"), self.pem("client.pem"))

    def test_client_certificate_default_scopes(self):
        """mTLS without auth: a verified client certificate may read and write; with
        admin_rpcs: true it still may not Update (PERMISSION_DENIED)."""
        server = harness.Server(larder={"tls": self.tls(), "admin_rpcs": True}, credentials=self.client())
        apply(server, "v")
        with server:
            result = calls(server.channel, None)
            print("client certificate, default scopes:", {m: c.name for m, c in result.items()})
            self.assertEqual(allowed(result, READS + WRITES), set(READS + WRITES), result)
            self.assertEqual({m: result[m] for m in ADMIN}, {m: Code.PERMISSION_DENIED for m in ADMIN})

    def test_client_scopes_read_only(self):
        """tls.client_scopes: [read]: OnlineRead OK, OnlineWriteBatch PERMISSION_DENIED."""
        server = harness.Server(larder={"tls": self.tls(["read"]), "admin_rpcs": True}, credentials=self.client())
        apply(server, "v")
        with server:
            self.assertFalse(server.stub.OnlineRead(read_req(), timeout=10).results[0].found)
            with self.assertRaises(grpc.RpcError) as cm:
                server.stub.OnlineWriteBatch(write_req(), timeout=10)
            self.assertEqual(cm.exception.code(), Code.PERMISSION_DENIED)
            result = calls(server.channel, None)
            self.assertEqual(allowed(result, READS + WRITES + ADMIN), set(READS), result)
            self.assertTrue(health_ok(server.channel))

    def peer_certificate(self, port):
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.pem"))
        ctx.load_cert_chain(os.path.join(self.dir, "client.pem"), os.path.join(self.dir, "client.key"))
        ctx.set_alpn_protocols(["h2"])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                cert = s.getpeercert()
        return dict(x[0] for x in cert["subject"])["commonName"], cert["serialNumber"]

    def test_sighup_reloads_certificates(self):
        """The certificate and key files are replaced and SIGHUP comes: a new connection
        sees the new certificate; a channel opened before keeps working; same process."""
        folder = tempfile.mkdtemp(prefix="larder-rot-")
        for name in ("server.pem", "server.key", "ca.pem"):
            with open(os.path.join(folder, name), "wb") as f:
                f.write(self.pem(name))
        server = harness.Server(larder={"tls": self.tls(folder=folder)}, credentials=self.client())
        apply(server, "v")
        with server:
            pid = server.proc.pid
            self.assertFalse(server.stub.OnlineRead(read_req(), timeout=10).results[0].found)
            before = self.peer_certificate(server.port)

            def replace(pairs):
                for src, dst in pairs:
                    with open(os.path.join(folder, dst + ".tmp"), "wb") as f:
                        f.write(self.pem(src))
                    os.replace(os.path.join(folder, dst + ".tmp"), os.path.join(folder, dst))
            # A new certificate beside the old key: gRPC could not use the pair,
            # so the reload says it keeps the old one, and new connections see it.
            replace((("server2.pem", "server.pem"),))
            server.proc.send_signal(signal.SIGHUP)
            refused = "SIGHUP: keeping the TLS certificate loaded before: " \
                "larder.tls.key: the private key does not match larder.tls.cert"
            self.assertTrue(wait_until(lambda: refused in server.read_log(), 5 * SLOW), server.read_log()[-2000:])
            self.assertNotIn("TLS certificate reloaded", server.read_log())
            self.assertEqual(self.peer_certificate(server.port), before)
            self.assertFalse(server.stub.OnlineRead(read_req(), timeout=10).results[0].found)
            replace((("server2.pem", "server.pem"), ("server2.key", "server.key")))
            server.proc.send_signal(signal.SIGHUP)

            def rotated():
                self.assertIsNone(server.proc.poll(), "larder exited on SIGHUP (status %s)" % server.proc.poll())
                try:
                    return self.peer_certificate(server.port)[0] == "server2"
                except OSError:  # refused or reset: look again (and at the process)
                    return False
            self.assertTrue(wait_until(rotated, 5 * SLOW), "new connections still see the old certificate")
            after = self.peer_certificate(server.port)
            print("certificate before SIGHUP %s, after %s" % (before, after))
            self.assertNotEqual(before[1], after[1])
            # The channel opened before the rotation still works, and so does a new one.
            self.assertFalse(server.stub.OnlineRead(read_req(), timeout=10).results[0].found)
            fresh = grpc.secure_channel(server.addr, self.client())
            self.assertFalse(harness.rpc.OnlineStoreStub(fresh).OnlineRead(read_req(), timeout=10).results[0].found)
            fresh.close()
            self.assertEqual(server.proc.pid, pid)


if __name__ == "__main__":
    unittest.main(verbosity=2)
