#!/usr/bin/python3
"""Feast's HTTP API over HTTPS (larder.tls on http_listen, HTTP.md §1), on
SQLite: requests over TLS on one persistent connection, a reply of many TLS
records; a plaintext request to the HTTPS port and an unknown CA refused, not
hung; with client_ca, a client certificate required and tls.client_scopes
applied (a read-only certificate gets 403 on /push); a request whose client
closes without close_notify is still served; SIGHUP replaces the
certificate for new connections while an open one keeps working."""
import http.client
import json
import os
import signal
import socket
import ssl
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import grpc, pb  # noqa: E402
import http_common as hc  # noqa: E402
from test_mesh import make_pki, openssl  # noqa: E402

GET = "/get-online-features"
REGISTRY_SETTING = "{path: registry.db, cache_ttl_seconds: 1}"


def start(tls, credentials):
    server = harness.Server(registry=REGISTRY_SETTING, http=True, larder={"tls": tls}, credentials=credentials)
    hc.write_registry(server)
    server.start()
    server.stub.Update(pb.UpdateRequest(tables_to_keep=hc.VIEWS), timeout=30)
    hc.store_rows(server)
    return server


class HttpsBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if harness.BACKEND != "sqlite":
            raise unittest.SkipTest("HTTPS is the transport's, the same for every store")
        cls.dir = tempfile.mkdtemp(prefix="larder-https-")
        cls.pem = staticmethod(make_pki(cls.dir))

    def path(self, name):
        return os.path.join(self.dir, name)

    def context(self, client=None, ca="ca.pem"):
        ctx = ssl.create_default_context(cafile=self.path(ca))
        if client:
            ctx.load_cert_chain(self.path(client + ".pem"), self.path(client + ".key"))
        return ctx

    def https(self, server, ctx, timeout=10):
        return http.client.HTTPSConnection("127.0.0.1", server.http_port, context=ctx, timeout=timeout)

    def request(self, conn, method, path, body=None):
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"} if body is not None else {})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp

    def refused(self, server, ctx=None, plaintext=False):
        """The connection fails (TLS alert or close) within a few seconds; never a hang."""
        t0 = time.monotonic()
        try:
            if plaintext:
                conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=5)
            else:
                conn = self.https(server, ctx, timeout=5)
            status, _, _ = self.request(conn, "GET", "/health")
            conn.close()
            outcome = "answered %d" % status
        except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError) as e:
            outcome = "refused (%s)" % type(e).__name__
        took = time.monotonic() - t0
        self.assertTrue(outcome.startswith("refused"), outcome)
        self.assertLess(took, 4 * harness.SLOW)
        return outcome


class Https(HttpsBase):
    def test_https_requests_and_refusals(self):
        tls = "{cert: %s, key: %s}" % (self.path("server.pem"), self.path("server.key"))
        creds = grpc.ssl_channel_credentials(root_certificates=self.pem("ca.pem"))
        server = start(tls, creds)
        with server:
            conn = self.https(server, self.context())
            self.assertEqual(self.request(conn, "GET", "/health")[0], 200)
            # Many requests on the one TLS connection.
            for i in range(50):
                status, body, _ = self.request(conn, "POST", GET, {"entities": {"driver_id": [1001, 1002]},
                                                                   "features": ["driver_stats:conv_rate"]})
                self.assertEqual(status, 200, body)
            # A reply of many TLS records (16 KiB each): 2000 rows.
            ids = list(range(1, 2001))
            status, body, resp = self.request(conn, "POST", GET, {"entities": {"driver_id": ids},
                                                                  "features": ["driver_stats:conv_rate",
                                                                               "driver_stats:tag"]})
            self.assertEqual(status, 200, body[:200])
            reply = json.loads(body)
            self.assertEqual(reply["results"][0]["values"], ids)
            self.assertGreater(len(body), 64 * 1024)
            conn.close()
            # A whole request, then the TCP connection closed without TLS's
            # close_notify, both in one segment: served, as over plain TCP.
            push = json.dumps({"push_source_name": "driver_push", "df": {
                "driver_id": [777], "conv_rate": [0.625], "trips": [1], "rating": [1.0], "active": [True],
                "tag": ["t"], "speed": [1.0], "event_timestamp": ["2024-05-01T00:00:00"]}}).encode()
            raw = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
            tls_sock = self.context().wrap_socket(raw, server_hostname="127.0.0.1")
            tls_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            tls_sock.sendall(b"POST /push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(push), push))
            tls_sock.shutdown(socket.SHUT_WR)  # drops the TLS state: no close_notify goes out
            tls_sock.close()
            conn = self.https(server, self.context())
            def pushed():
                status, body, _ = self.request(conn, "POST", GET, {"entities": {"driver_id": [777]},
                                                                   "features": ["driver_stats:conv_rate"]})
                return status == 200 and json.loads(body)["results"][1]["values"] == [0.625]
            t0 = time.monotonic()
            while not pushed() and time.monotonic() - t0 < 5 * harness.SLOW:
                time.sleep(0.05)
            self.assertTrue(pushed(), "a request followed by a close without close_notify was dropped")
            conn.close()
            plain = self.refused(server, plaintext=True)
            rogue = self.refused(server, self.context(ca="rogue-ca.pem"))
            print("HTTPS: 52 requests on one connection, a reply of %d bytes; plaintext %s; unknown CA %s"
                  % (len(body), plain, rogue))

    def test_client_certificates_and_scopes(self):
        tls = "{cert: %s, key: %s, client_ca: %s, client_scopes: [read]}" % (
            self.path("server.pem"), self.path("server.key"), self.path("ca.pem"))
        creds = grpc.ssl_channel_credentials(self.pem("ca.pem"), self.pem("client.key"), self.pem("client.pem"))
        server = harness.Server(registry=REGISTRY_SETTING, http=True, larder={"tls": tls}, credentials=creds)
        hc.write_registry(server)
        harness.subprocess.run([harness.LARDER_BIN, "apply", "-c", server.config] + hc.VIEWS, check=True,
                               capture_output=True)
        with server:
            conn = self.https(server, self.context(client="client"))
            status, body, _ = self.request(conn, "POST", GET, {"entities": {"driver_id": [1]},
                                                               "features": ["driver_stats:conv_rate"]})
            self.assertEqual(status, 200, body)
            status, body, _ = self.request(conn, "POST", "/push", {
                "push_source_name": "driver_push", "df": {"driver_id": [1], "conv_rate": [0.5], "trips": [1],
                                                          "rating": [1.0], "active": [True], "tag": ["t"],
                                                          "speed": [1.0], "event_timestamp": ["2024-05-01T00:00:00"]}})
            self.assertEqual(status, 403, body)
            self.assertEqual(json.loads(json.loads(body))["class"], "FeastPermissionError")
            conn.close()
            none = self.refused(server, self.context())
            rogue = self.refused(server, self.context(client="rogue-client"))
            print("mutual TLS: read 200, push 403 FeastPermissionError; no certificate %s; other CA's %s"
                  % (none, rogue))


class Rotation(HttpsBase):
    def test_sighup_reloads_the_certificate(self):
        folder = tempfile.mkdtemp(prefix="larder-https-rot-")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        with open(os.path.join(self.dir, "server2.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        openssl("req", *ec, "-keyout", "server2.key", "-out", "server2.csr", "-subj", "/CN=server2", cwd=self.dir)
        openssl("x509", "-req", "-in", "server2.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server2.pem", "-days", "2", "-extfile", "server2.ext", cwd=self.dir)
        for name in ("server.pem", "server.key"):
            with open(self.path(name), "rb") as src, open(os.path.join(folder, name), "wb") as dst:
                dst.write(src.read())
        tls = "{cert: %s/server.pem, key: %s/server.key}" % (folder, folder)
        server = start(tls, grpc.ssl_channel_credentials(root_certificates=self.pem("ca.pem")))
        with server:
            def subject():
                with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as raw:
                    with self.context().wrap_socket(raw, server_hostname="127.0.0.1") as s:
                        return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
            before = subject()
            kept = self.https(server, self.context())
            self.assertEqual(self.request(kept, "GET", "/health")[0], 200)
            for name in ("server.pem", "server.key"):
                with open(self.path(name.replace("server", "server2")), "rb") as src, \
                        open(os.path.join(folder, name), "wb") as dst:
                    dst.write(src.read())
            server.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5 * harness.SLOW
            after = subject()
            while after == before and time.monotonic() < deadline:
                time.sleep(0.1)
                after = subject()
            self.assertEqual(self.request(kept, "GET", "/health")[0], 200)  # the old connection still serves
            kept.close()
            print("SIGHUP: a new HTTPS connection sees %s (was %s); the open one kept working" % (after, before))
            self.assertEqual((before, after), ("server", "server2"))
            self.assertIsNone(server.proc.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
