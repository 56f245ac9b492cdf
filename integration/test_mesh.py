#!/usr/bin/python3
"""What a service mesh and its operators see of the real larder process:
grpc.health.v1 probes and their transitions, server reflection as grpcurl uses
it, the Prometheus endpoint scraped and parsed, TLS and mutual TLS handshakes,
bearer tokens, idle connections closed, and the log in text and JSON."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Value_pb2, grpc, key, pb, raw_call, row  # noqa: E402
from harness import health_pb2 as H  # noqa: E402
from harness import reflection_pb2 as R  # noqa: E402
from harness import reflection_v1alpha_pb2 as RA  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402

Code = grpc.StatusCode
SERVING, NOT_SERVING = H.HealthCheckResponse.SERVING, H.HealthCheckResponse.NOT_SERVING
SERVED = {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection", "larder.v1.OnlineStore",
          "feast.serving.ServingService", "GrpcFeatureServer"}


def health(channel):
    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=H.HealthCheckRequest.SerializeToString,
                                response_deserializer=H.HealthCheckResponse.FromString)
    watch = channel.unary_stream("/grpc.health.v1.Health/Watch",
                                 request_serializer=H.HealthCheckRequest.SerializeToString,
                                 response_deserializer=H.HealthCheckResponse.FromString)
    return check, watch


def reflect(channel, requests, module=R, metadata=None):
    """Sends reflection requests on one stream and returns the responses."""
    service = "grpc.reflection.v1alpha" if module is RA else "grpc.reflection.v1"
    info = channel.stream_stream("/%s.ServerReflection/ServerReflectionInfo" % service,
                                 request_serializer=module.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=module.ServerReflectionResponse.FromString)
    return list(info(iter(requests), timeout=10, metadata=metadata))


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.headers.get("Content-Type"), r.read().decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse_exposition(text):
    """Prometheus text format: {(name, frozenset(labels)): value}, and the TYPE of each family."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m is None:
            raise AssertionError("not a sample line: %r" % line)
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        if (m.group(1), labels) in samples:
            raise AssertionError("sample given twice: %r" % line)
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types


def metric(samples, name, **labels):
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and want <= set(ls)]
    if not found:
        raise AssertionError("no sample %s %s" % (name, labels))
    return sum(found)


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_pki(folder):
    """A CA, a server certificate for 127.0.0.1, a client certificate of that CA,
    and a client certificate of another CA."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "rogue-ca"):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                "-subj", "/CN=larder test " + ca, cwd=folder)
    for name, ca, ext in (("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                           "extendedKeyUsage=serverAuth\n"),
                          ("client", "ca", "extendedKeyUsage=clientAuth\n"),
                          ("rogue-client", "rogue-ca", "extendedKeyUsage=clientAuth\n")):
        with open(os.path.join(folder, name + ".ext"), "w") as f:
            f.write(ext)
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name,
                cwd=folder)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext",
                cwd=folder)

    def read(name):
        with open(os.path.join(folder, name), "rb") as f:
            return f.read()
    return read


def read_request():
    return pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=1)])


def write_one(stub, metadata=None):
    stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10, metadata=metadata)
    stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
        feature_view="v", rows=[row(key(driver_id=1), {"f": Value_pb2.Value(int64_val=7)})]),
        timeout=10, metadata=metadata)


class Health(unittest.TestCase):
    def test_check(self):
        with harness.Server() as server:
            check, _ = health(server.channel)
            self.assertEqual(check(H.HealthCheckRequest(service=""), timeout=5).status, SERVING)
            self.assertEqual(check(H.HealthCheckRequest(service="larder.v1.OnlineStore"),
                                   timeout=5).status, SERVING)
            # ServingService needs the registry, and this project has none.
            self.assertEqual(check(H.HealthCheckRequest(service="feast.serving.ServingService"),
                                   timeout=5).status, NOT_SERVING)
            with self.assertRaises(grpc.RpcError) as cm:
                check(H.HealthCheckRequest(service="no.such.Service"), timeout=5)
            self.assertEqual(cm.exception.code(), Code.NOT_FOUND)
            self.assertIn("no.such.Service", cm.exception.details())
            # The raw bytes of a request no decoder accepts.
            code, details, _ = raw_call(server.channel, "/grpc.health.v1.Health/Check", b"\x0a\x05ab")
            self.assertEqual(code, Code.INVALID_ARGUMENT, details)

    def test_cli_probe(self):
        """`larder health`, the probe of the container image: exit 0 only when SERVING."""
        def probe(*args):
            out = subprocess.run([harness.LARDER_BIN, "health"] + list(args), capture_output=True, text=True,
                                 timeout=30)
            return out.returncode, out.stdout.strip(), out.stderr
        with harness.Server() as server:
            self.assertEqual(probe("--listen", server.addr)[:2], (0, "SERVING"))
            self.assertEqual(probe("-c", server.config, "larder.v1.OnlineStore")[:2], (0, "SERVING"))
            self.assertEqual(probe("--listen", server.addr, "feast.serving.ServingService")[:2], (1, "NOT_SERVING"))
            code, _, err = probe("--listen", server.addr, "no.such.Service")
            self.assertEqual(code, 1)
            self.assertIn("no.such.Service", err)
        code, _, err = probe("--listen", server.addr)
        self.assertEqual(code, 1)
        self.assertIn("status 14", err)  # UNAVAILABLE: nothing listens any more
        self.assertEqual(probe("--listen", "nonsense")[0], 2)

    def test_watch_through_sigterm(self):
        """Watch sends SERVING, then NOT_SERVING when the drain starts, then the
        stream ends UNAVAILABLE; larder exits 0."""
        server = harness.Server(larder={"grace_period_s": 5}).start()
        _, watch = health(server.channel)
        stream = watch(H.HealthCheckRequest(service="larder.v1.OnlineStore"), timeout=30)
        other = watch(H.HealthCheckRequest(service=""), timeout=30)
        self.assertEqual(next(stream).status, SERVING)
        self.assertEqual(next(other).status, SERVING)
        unknown = watch(H.HealthCheckRequest(service="no.such.Service"), timeout=30)
        self.assertEqual(next(unknown).status, H.HealthCheckResponse.SERVICE_UNKNOWN)
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(next(stream).status, NOT_SERVING)
        self.assertEqual(next(other).status, NOT_SERVING)
        with self.assertRaises(grpc.RpcError) as cm:
            next(stream)
        self.assertEqual(cm.exception.code(), Code.UNAVAILABLE)
        self.assertIn("shutting down", cm.exception.details())
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(server.proc.wait(timeout=30), 0)
        server.stop()


class Reflection(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server().start()
        write_one(cls.server.stub)

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def test_list_services(self):
        for module in (R, RA):
            out = reflect(self.server.channel, [module.ServerReflectionRequest(list_services="*")], module)
            self.assertEqual(len(out), 1)
            self.assertEqual({s.name for s in out[0].list_services_response.service}, SERVED)

    def pool_for(self, symbol, module=R):
        """grpcurl describe: the file of `symbol` and every file it imports, in a pool."""
        out = reflect(self.server.channel, [module.ServerReflectionRequest(file_containing_symbol=symbol)],
                      module)
        self.assertEqual(out[0].WhichOneof("message_response"), "file_descriptor_response", out[0])
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in out[0].file_descriptor_response.file_descriptor_proto]
        pool, added = descriptor_pool.DescriptorPool(), set()
        while len(added) < len(files):
            ready = [f for f in files if f.name not in added and set(f.dependency) <= added]
            self.assertTrue(ready, "a dependency is missing from %s" % [f.name for f in files])
            for f in ready:
                pool.Add(f)
                added.add(f.name)
        return pool, added

    @staticmethod
    def finds(finder, symbol):
        try:
            return finder(symbol) is not None
        except KeyError:
            return False

    def test_describe_and_call_from_the_descriptors_alone(self):
        pool, names = self.pool_for("larder.v1.OnlineStore")
        self.assertIn("larder/v1/online_store.proto", names)
        self.assertIn("feast/types/EntityKey.proto", names)
        service = pool.FindServiceByName("larder.v1.OnlineStore")
        self.assertEqual({m.name for m in service.methods},
                         {"OnlineWriteBatch", "OnlineRead", "Update", "Teardown"})
        method = service.methods_by_name["OnlineRead"]
        # A call built only from what reflection returned, as grpcurl does it.
        request_class = message_factory.MessageFactory(pool).GetPrototype(method.input_type)
        reply_class = message_factory.MessageFactory(pool).GetPrototype(method.output_type)
        request = request_class.FromString(read_request().SerializeToString())
        call = self.server.channel.unary_unary("/larder.v1.OnlineStore/OnlineRead",
                                               request_serializer=request_class.SerializeToString,
                                               response_deserializer=reply_class.FromString)
        reply = call(request, timeout=10)
        self.assertTrue(reply.results[0].found)
        self.assertEqual(reply.results[0].features["f"].int64_val, 7)

    def test_symbols_files_and_errors(self):
        for module in (R, RA):
            for symbol in ("feast.serving.ServingService", "feast.serving.ServingService.GetOnlineFeatures",
                           "larder.v1.OnlineReadRequest", "feast.types.Value", "grpc.health.v1.Health"):
                pool, _ = self.pool_for(symbol, module)
                finders = (pool.FindServiceByName, pool.FindMessageTypeByName, pool.FindMethodByName)
                self.assertTrue(any(self.finds(f, symbol) for f in finders), symbol)
            reqs = [module.ServerReflectionRequest(file_by_filename="feast/types/Value.proto"),
                    module.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
                    module.ServerReflectionRequest(file_by_filename="no/such.proto"),
                    module.ServerReflectionRequest(all_extension_numbers_of_type="feast.types.Value"),
                    module.ServerReflectionRequest(file_containing_extension=module.ExtensionRequest(
                        containing_type="feast.types.Value", extension_number=100))]
            out = reflect(self.server.channel, reqs, module)
            self.assertEqual(len(out), len(reqs))
            first = descriptor_pb2.FileDescriptorProto.FromString(out[0].file_descriptor_response.file_descriptor_proto[0])
            self.assertEqual(first.name, "feast/types/Value.proto")
            for r in out[1:3] + out[4:]:
                self.assertEqual(r.WhichOneof("message_response"), "error_response")
                self.assertEqual(r.error_response.error_code, 5)  # NOT_FOUND
            self.assertEqual(list(out[3].all_extension_numbers_response.extension_number), [])
            self.assertEqual(out[1].original_request.file_containing_symbol, "no.such.Symbol")


class Metrics(unittest.TestCase):
    def test_scrape(self):
        port = harness.free_port()
        with harness.Server(larder={"metrics_listen": "127.0.0.1:%d" % port}) as server:
            write_one(server.stub)
            for _ in range(5):
                server.stub.OnlineRead(read_request(), timeout=10)
            with self.assertRaises(grpc.RpcError):
                server.stub.OnlineRead(pb.OnlineReadRequest(feature_view=""), timeout=10)
            code, _, _ = raw_call(server.channel, "/larder.v1.OnlineStore/NoSuchMethod", b"")
            self.assertEqual(code, Code.UNIMPLEMENTED)
            kind, text = scrape(port)
            self.assertTrue(kind.startswith("text/plain; version=0.0.4"), kind)
            samples, types = parse_exposition(text)
            read = {"grpc_service": "larder.v1.OnlineStore", "grpc_method": "OnlineRead"}
            self.assertEqual(metric(samples, "grpc_server_started_total", grpc_type="unary", **read), 6)
            self.assertEqual(metric(samples, "grpc_server_handled_total", grpc_code="OK", **read), 5)
            self.assertEqual(metric(samples, "grpc_server_handled_total", grpc_code="InvalidArgument", **read), 1)
            self.assertEqual(metric(samples, "grpc_server_handled_total", grpc_service="unknown",
                                    grpc_code="Unimplemented"), 1)
            # The histogram: cumulative buckets, +Inf equal to the count, a positive sum.
            self.assertEqual(types["grpc_server_handling_seconds"], "histogram")
            for family, labels in (("grpc_server_handling_seconds", read),
                                   ("larder_backend_statement_seconds", {"store": "sqlite"})):
                buckets = sorted(((float(dict(ls)["le"]), v) for (n, ls), v in samples.items()
                                  if n == family + "_bucket" and set(labels.items()) <= set(ls)))
                counts = [v for _, v in buckets]
                self.assertEqual(counts, sorted(counts))
                self.assertEqual(buckets[-1][0], float("inf"))
                self.assertEqual(buckets[-1][1], metric(samples, family + "_count", **labels))
                self.assertGreater(metric(samples, family + "_sum", **labels), 0)
            self.assertEqual(metric(samples, "grpc_server_handling_seconds_count", **read), 6)
            # Update, one write and five reads went to the store.
            self.assertEqual(metric(samples, "larder_backend_statement_seconds_count"), 7)
            self.assertEqual(metric(samples, "larder_rows_written_total"), 1)
            self.assertEqual(metric(samples, "larder_rows_read_total"), 5)
            self.assertGreaterEqual(metric(samples, "larder_backend_connections"), 1)
            self.assertEqual(metric(samples, "larder_build_info", store="sqlite"), 1)
            for name, kind in (("grpc_server_started_total", "counter"), ("grpc_server_handled_total", "counter"),
                               ("larder_backend_connections", "gauge"), ("larder_rows_read_total", "counter")):
                self.assertEqual(types[name], kind)
            # Counters only grow.
            server.stub.OnlineRead(read_request(), timeout=10)
            again, _ = parse_exposition(scrape(port)[1])
            self.assertEqual(metric(again, "grpc_server_handled_total", grpc_code="OK", **read), 6)
            with self.assertRaises(urllib.error.HTTPError) as cm:
                scrape(port, "/other")
            self.assertEqual(cm.exception.code, 404)

    def test_bad_requests_do_not_fill_the_log(self):
        """libmicrohttpd logs each request it cannot parse: a client sending
        them as fast as it connects must not fill larder's log. A line a
        second at most, saying how many more there were."""
        import socket
        port = harness.free_port()

        def bad_requests(n):
            for _ in range(n):
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
                    while s.recv(4096):
                        pass
        with harness.Server(larder={"metrics_listen": "127.0.0.1:%d" % port}) as server:
            t0 = time.monotonic()
            bad_requests(200)
            first_burst = time.monotonic() - t0
            time.sleep(1.1)
            bad_requests(1)
            lines = [line for line in server.read_log().splitlines() if " metrics: " in line]
            print("200 bad requests in %.2f s, then one more: %d lines: %s" % (first_burst, len(lines), lines[-1:]))
            self.assertIn("Content-Length", lines[0])
            self.assertLessEqual(len(lines), 2 + int(first_burst) + 1)
            self.assertRegex(lines[-1], r"and \d+ more messages since the last line")
            self.assertEqual(scrape(port)[0].split(";")[0], "text/plain")  # still serving

    def test_any_address_and_many_descriptors(self):
        """metrics_listen "[::]:PORT" answers on IPv4 as well (it listened on IPv6 only),
        and a process holding more than 1,024 descriptors is still scraped (select()
        refused every descriptor past FD_SETSIZE: /metrics went silent on busy servers)."""
        import resource
        import socket
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 2500:
            self.skipTest("needs 2,500 descriptors (the hard limit is %d)" % hard)
        if soft != resource.RLIM_INFINITY and soft < 2500:
            resource.setrlimit(resource.RLIMIT_NOFILE, (2500, hard))  # for larder (inherited) and for us
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        port = harness.free_port()
        with harness.Server(larder={"metrics_listen": "'[::]:%d'" % port}) as server:
            self.assertEqual(scrape(port)[0].split(";")[0], "text/plain")  # IPv4, on [::]
            held = []
            try:
                for _ in range(1100):
                    held.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
                # gRPC's pollers accept what the kernel queued a moment later.
                deadline = time.monotonic() + 10 * harness.SLOW
                fds = len(os.listdir("/proc/%d/fd" % server.proc.pid))
                while fds <= 1100 and time.monotonic() < deadline:
                    time.sleep(0.1)
                    fds = len(os.listdir("/proc/%d/fd" % server.proc.pid))
                self.assertGreater(fds, 1100)
                kind, text = scrape(port)
                print("scraped with %d descriptors open in larder" % fds)
                self.assertIn("grpc_server_started_total", text)
            finally:
                for s in held:
                    s.close()

    def test_long_bracketed_host(self):
        """A bracketed metrics_listen host longer than an address can be is a start-up
        error, not a stack overflow."""
        server = harness.Server(larder={"metrics_listen": "'[%s]:9091'" % ("a" * 400)})
        out = subprocess.run([harness.LARDER_BIN, "serve", "-c", server.config], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 1, out.stderr[-2000:])
        self.assertIn("metrics_listen", out.stderr)

    def test_port_in_use(self):
        import socket
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            server = harness.Server(larder={"metrics_listen": "127.0.0.1:%d" % taken.getsockname()[1]})
            out = subprocess.run([harness.LARDER_BIN, "serve", "-c", server.config], capture_output=True,
                                 text=True, timeout=30)
            self.assertEqual(out.returncode, 1, out.stderr)
            self.assertIn("metrics", out.stderr)


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="larder-pki-")
        cls.pem = staticmethod(make_pki(cls.dir))

    def tls_yaml(self, client_ca=False):
        d = self.dir
        # A verified client certificate may also create tables here (larder.tls.client_scopes).
        return "{cert: %s/server.pem, key: %s/server.key%s}" % (
            d, d, ", client_ca: %s/ca.pem, client_scopes: [read, write, admin]" % d if client_ca else "")

    def assert_refused(self, addr, credentials=None):
        channel = grpc.secure_channel(addr, credentials) if credentials else grpc.insecure_channel(addr)
        with self.assertRaises(grpc.RpcError) as cm:
            harness.rpc.OnlineStoreStub(channel).OnlineRead(read_request(), timeout=3)
        channel.close()
        self.assertEqual(cm.exception.code(), Code.UNAVAILABLE, cm.exception.details())

    def test_tls(self):
        creds = grpc.ssl_channel_credentials(root_certificates=self.pem("ca.pem"))
        with harness.Server(larder={"tls": self.tls_yaml()}, credentials=creds) as server:
            write_one(server.stub)
            self.assertTrue(server.stub.OnlineRead(read_request(), timeout=10).results[0].found)
            self.assertRegex(server.read_log(), r"listening on .*\(port \d+, TLS\)")
            self.assert_refused(server.addr)  # plaintext
            self.assert_refused(server.addr, grpc.ssl_channel_credentials(self.pem("rogue-ca.pem")))

    def test_mutual_tls(self):
        good = grpc.ssl_channel_credentials(self.pem("ca.pem"), self.pem("client.key"), self.pem("client.pem"))
        with harness.Server(larder={"tls": self.tls_yaml(client_ca=True)}, credentials=good) as server:
            write_one(server.stub)
            self.assertTrue(server.stub.OnlineRead(read_request(), timeout=10).results[0].found)
            self.assertRegex(server.read_log(), r"\(port \d+, mutual TLS\)")
            self.assert_refused(server.addr, grpc.ssl_channel_credentials(self.pem("ca.pem")))
            self.assert_refused(server.addr, grpc.ssl_channel_credentials(
                self.pem("ca.pem"), self.pem("rogue-client.key"), self.pem("rogue-client.pem")))
            self.assert_refused(server.addr)

    def test_unusable_files(self):
        for tls, needle in (("{cert: missing.pem, key: missing.key}", "missing.pem"),
                            ("{cert: %s/server.pem, key: %s/client.key}" % (self.dir, self.dir), "key")):
            server = harness.Server(larder={"tls": tls})
            out = subprocess.run([harness.LARDER_BIN, "serve", "-c", server.config], capture_output=True,
                                 text=True, timeout=30)
            self.assertEqual(out.returncode, 1)
            self.assertIn(needle, out.stderr)
            self.assertNotIn("BEGIN", out.stderr)  # no key material in the log


class Auth(unittest.TestCase):
    FILE_TOKENS = ["tok-file-1-" + os.urandom(8).hex(), "tok-file-2-" + os.urandom(8).hex()]
    ENV_TOKEN = "tok-env-" + os.urandom(8).hex()

    def server(self, admin=True):
        folder = tempfile.mkdtemp(prefix="larder-auth-")
        path = os.path.join(folder, "tokens")
        with open(path, "w") as f:
            f.write("# one token per line\n%s\n\n  %s  \n" % tuple(self.FILE_TOKENS))
        env = dict(os.environ, LARDER_TEST_TOKENS="unused-%s, %s" % (os.urandom(4).hex(), self.ENV_TOKEN))
        # Scoped with admin: the tests create their tables with these tokens.
        return harness.Server(env=env, larder={"auth": "{scoped: [{tokens_file: %s, tokens_env: LARDER_TEST_TOKENS, "
                                                       "scopes: [read, write, admin]}]}" % path,
                                               "log_level": "debug", "admin_rpcs": admin})

    @staticmethod
    def bearer(token):
        return (("authorization", "Bearer " + token),)

    def test_tokens(self):
        with self.server() as server:
            stub = server.stub
            for md in (None, self.bearer("wrong"), self.bearer(self.FILE_TOKENS[0][:-1]),
                       self.bearer(self.FILE_TOKENS[0] + "x"), (("authorization", "Basic " + self.ENV_TOKEN),),
                       (("authorization", self.ENV_TOKEN),), self.bearer("")):
                with self.assertRaises(grpc.RpcError) as cm:
                    stub.OnlineRead(read_request(), timeout=5, metadata=md)
                self.assertEqual(cm.exception.code(), Code.UNAUTHENTICATED, md)
            for token in self.FILE_TOKENS + [self.ENV_TOKEN]:
                write_one(stub, self.bearer(token))
                self.assertTrue(stub.OnlineRead(read_request(), timeout=5, metadata=self.bearer(token)).results[0].found)
            # Unknown methods and reflection need a token too; probes do not.
            code, _, _ = raw_call(server.channel, "/larder.v1.OnlineStore/NoSuchMethod", b"")
            self.assertEqual(code, Code.UNAUTHENTICATED)
            with self.assertRaises(grpc.RpcError) as cm:
                reflect(server.channel, [R.ServerReflectionRequest(list_services="")])
            self.assertEqual(cm.exception.code(), Code.UNAUTHENTICATED)
            out = reflect(server.channel, [R.ServerReflectionRequest(list_services="")],
                          metadata=self.bearer(self.ENV_TOKEN))
            self.assertEqual({s.name for s in out[0].list_services_response.service}, SERVED)
            check, _ = health(server.channel)
            self.assertEqual(check(H.HealthCheckRequest(service=""), timeout=5).status, SERVING)
        log = server.read_log()
        self.assertRegex(log, r"listening on .*, bearer tokens required")
        for token in self.FILE_TOKENS + [self.ENV_TOKEN]:
            self.assertNotIn(token, log)
        self.assertIn("status=Unauthenticated", log)

    def test_authenticated_before_permission(self):
        """DESIGN §3's order: no token is UNAUTHENTICATED even where the call is refused anyway."""
        with self.server(admin=False) as server:
            with self.assertRaises(grpc.RpcError) as cm:
                server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=5)
            self.assertEqual(cm.exception.code(), Code.UNAUTHENTICATED)
            with self.assertRaises(grpc.RpcError) as cm:
                server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=5,
                                   metadata=self.bearer(self.ENV_TOKEN))
            self.assertEqual(cm.exception.code(), Code.PERMISSION_DENIED)

    def test_no_tokens_is_an_error(self):
        folder = tempfile.mkdtemp(prefix="larder-auth-")
        path = os.path.join(folder, "tokens")
        with open(path, "w") as f:
            f.write("# nothing here\n\n")
        server = harness.Server(larder={"auth": "{tokens_file: %s}" % path})
        out = subprocess.run([harness.LARDER_BIN, "serve", "-c", server.config], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 1)
        self.assertIn("no tokens", out.stderr)
        missing = harness.Server(larder={"auth": "{tokens_file: %s/absent}" % folder})
        out = subprocess.run([harness.LARDER_BIN, "serve", "-c", missing.config], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 1)
        self.assertIn("absent: No such file or directory", out.stderr)
        unset = harness.Server(larder={"auth": "{tokens_env: LARDER_TEST_NOT_SET_%s}" % os.urandom(3).hex()})
        out = subprocess.run([harness.LARDER_BIN, "serve", "-c", unset.config], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 1)
        self.assertRegex(out.stderr, r"\$LARDER_TEST_NOT_SET_\w+ is not set")


class Connections(unittest.TestCase):
    def test_idle_connection_closed(self):
        """max_connection_idle_s: the server sends GOAWAY; the client's channel goes IDLE."""
        with harness.Server(larder={"max_connection_idle_s": 1}) as server:
            states = []
            server.channel.subscribe(states.append, try_to_connect=False)
            write_one(server.stub)
            deadline = time.monotonic() + 10
            while grpc.ChannelConnectivity.IDLE not in states[1:] and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertIn(grpc.ChannelConnectivity.IDLE, states[1:], states)
            # The next call reconnects.
            self.assertTrue(server.stub.OnlineRead(read_request(), timeout=10).results[0].found)

    def test_message_size(self):
        with harness.Server(larder={"max_message_bytes": 1024}) as server:
            big = pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=i) for i in range(200)])
            with self.assertRaises(grpc.RpcError) as cm:
                server.stub.OnlineRead(big, timeout=10)
            self.assertEqual(cm.exception.code(), Code.RESOURCE_EXHAUSTED)


class Logs(unittest.TestCase):
    def test_json_lines_and_access_log(self):
        with harness.Server(larder={"log_format": "json", "log_level": "debug"}) as server:
            write_one(server.stub)
            with self.assertRaises(grpc.RpcError):
                server.stub.OnlineRead(pb.OnlineReadRequest(feature_view="a\nb"), timeout=5)
        lines = server.read_log().splitlines()
        events = [json.loads(line) for line in lines]  # every line is one JSON object
        self.assertTrue(all({"time", "level", "msg"} <= set(e) for e in events))
        self.assertTrue(any(e["level"] == "info" and "listening" in e["msg"] for e in events))
        access = [e["msg"] for e in events if e["msg"].startswith("access:")]
        self.assertEqual(len(access), 3, access)
        self.assertRegex(access[0], r"^access: worker=\d+ method=/larder.v1.OnlineStore/Update status=OK "
                                    r"duration_us=\d+ peer=ipv4:127.0.0.1:\d+$")
        self.assertIn("method=/larder.v1.OnlineStore/OnlineRead status=InvalidArgument", access[2])

    def test_text_lines(self):
        with harness.Server(larder={"log_level": "info"}) as server:
            write_one(server.stub)
        lines = server.read_log().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) \S")
        self.assertFalse([line for line in lines if "access:" in line])  # debug only


if __name__ == "__main__":
    unittest.main(verbosity=2)
