"""Shared pieces of the integration tests: Python stubs generated from protos/
at test time, and a real larder process on a free loopback port.

Environment (set by ctest): LARDER_BIN (the executable), LARDER_PROTOS (the
protos/ folder), LARDER_TEST_DATA (tests/data), LARDER_TEST_BACKEND (sqlite,
postgres or mysql; default sqlite) and, for the client-server databases, the
TEST_PG_* / TEST_MYSQL_* variables written by integration/services.sh.
"""
import atexit
import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LARDER_BIN = os.path.abspath(os.environ.get("LARDER_BIN", os.path.join(ROOT, "build", "larder")))
PROTOS = os.environ.get("LARDER_PROTOS", os.path.join(ROOT, "protos"))
TEST_DATA = os.environ.get("LARDER_TEST_DATA", os.path.join(ROOT, "tests", "data"))
BACKEND = os.environ.get("LARDER_TEST_BACKEND", "sqlite")
# The stores this build of larder serves (tests/CMakeLists.txt sets it).
BACKENDS_BUILT = os.environ.get("LARDER_BACKENDS", "sqlite,postgres,mysql").split(",")
SKIP = 77  # ctest's SKIP_RETURN_CODE for these tests
# Time bounds in the tests are behaviour bounds; a sanitized build is slower,
# so its tests run with LARDER_SANITIZED=1 (integration/CMakeLists.txt sets it
# when LARDER_SANITIZE is) and they triple.
SLOW = 3 if os.environ.get("LARDER_SANITIZED") == "1" else 1

# A test of a client-server backend needs the server of integration/services.sh.
# Without one it is skipped, unless LARDER_REQUIRE_DB=1 (CI), where that is a failure.
_NEEDS = {"postgres": "TEST_PG_HOST", "mysql": "TEST_MYSQL_HOST"}
if BACKEND in _NEEDS and not os.environ.get(_NEEDS[BACKEND]):
    if os.environ.get("LARDER_REQUIRE_DB") == "1":
        sys.exit("no %s server: %s is not set (start integration/services.sh)" % (BACKEND, _NEEDS[BACKEND]))
    print("skipped: no %s server (start integration/services.sh)" % BACKEND)
    sys.exit(SKIP)


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generate_stubs():
    out = tempfile.mkdtemp(prefix="larder-stubs-")
    atexit.register(shutil.rmtree, out, True)
    protos, grpc_protos = [], []
    for dirpath, _, files in os.walk(PROTOS):
        for f in files:
            if f.endswith(".proto"):
                rel = os.path.relpath(os.path.join(dirpath, f), PROTOS)
                (grpc_protos if rel.startswith("grpc/") else protos).append(rel)
    plugin = shutil.which("grpc_python_plugin") or "/usr/bin/grpc_python_plugin"
    subprocess.run(["protoc", "-I" + PROTOS, "--python_out=" + out, "--grpc_out=" + out,
                    "--plugin=protoc-gen-grpc=" + plugin] + sorted(protos), check=True)
    sys.path.insert(0, out)
    # grpc/health and grpc/reflection would shadow grpcio's own `grpc` package
    # on sys.path: their messages are generated elsewhere and loaded by path.
    other = os.path.join(out, "_grpc_protos")
    os.mkdir(other)
    subprocess.run(["protoc", "-I" + PROTOS, "--python_out=" + other] + sorted(grpc_protos), check=True)
    return {rel: os.path.join(other, rel[:-len(".proto")] + "_pb2.py") for rel in grpc_protos}


_GRPC_PROTOS = _generate_stubs()

import grpc  # noqa: E402
from feast.types import EntityKey_pb2, Value_pb2  # noqa: E402
from larder.v1 import online_store_pb2 as pb  # noqa: E402
from larder.v1 import online_store_pb2_grpc as rpc  # noqa: E402

health_pb2 = _load("health_pb2", _GRPC_PROTOS["grpc/health/v1/health.proto"])
reflection_pb2 = _load("reflection_pb2", _GRPC_PROTOS["grpc/reflection/v1/reflection.proto"])
reflection_v1alpha_pb2 = _load("reflection_v1alpha_pb2", _GRPC_PROTOS["grpc/reflection/v1alpha/reflection.proto"])


NOTHING = object()  # "no JSON body" (None is JSON's null)


_handed_out = set()


def free_port():
    """A loopback port free now and not handed out before by this process: the
    kernel can give two binds in a row the same port, and a test that asks for
    a metrics port and then starts a Server would get one port for both."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def store_yaml(backend, tmpdir, env=None, schema=None):
    """The online_store section for `backend`, pointing at the test databases
    (the TEST_* variables of integration/services.sh, from `env` or the
    environment). Passwords go through ${VAR} substitution, as users would."""
    e = env or os.environ
    if backend == "sqlite":
        return "online_store:\n  type: sqlite\n  path: %s\n" % os.path.join(tmpdir, "online.db")
    if backend == "postgres":
        return ("online_store:\n  type: postgres\n  host: %s\n  port: %s\n  database: %s\n"
                "  user: %s\n  password: ${TEST_PG_PASSWORD}\n  sslmode: disable\n%s"
                % (e["TEST_PG_HOST"], e["TEST_PG_PORT"], e["TEST_PG_DB"], e["TEST_PG_USER"],
                   "  db_schema: %s\n" % schema if schema else ""))
    if backend == "mysql":
        return ("online_store:\n  type: mysql\n  host: %s\n  port: %s\n  database: %s\n"
                "  user: %s\n  password: ${TEST_MYSQL_PASSWORD}\n"
                % (e["TEST_MYSQL_HOST"], e["TEST_MYSQL_PORT"], e["TEST_MYSQL_DB"], e["TEST_MYSQL_USER"]))
    raise ValueError(backend)


class PrivateDatabase:
    """A throw-away database server of one test's own (integration/services.sh
    with its own folder and port), which the test may stop and start."""

    def __init__(self, name, durable=False):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="larder-db-")
        os.chmod(self.dir, 0o755)  # the server runs as its own user, which must reach its folder
        atexit.register(shutil.rmtree, self.dir, True)
        self.script = os.path.join(HERE, "services.sh")
        port = free_port()
        self.env = dict(os.environ, SVC_DIR=os.path.join(self.dir, "svc"), SERVICES=name,
                        PG_PORT=str(port), MYSQL_PORT=str(port), DB_DURABLE="1" if durable else "0")

    def run(self, *args):
        r = subprocess.run(["bash", self.script] + list(args), env=self.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError("services.sh %s (%s): exit %d: %s" % (
                " ".join(args), self.name, r.returncode, r.stderr.decode(errors="replace")[-2000:]))

    def start(self):
        # Tests run side by side: the free port may be taken before the server binds it.
        # A start that fails says why and tries another port, three tries in all.
        for attempt in range(3):
            try:
                self.run("start")
                break
            except RuntimeError as e:
                if attempt == 2:
                    raise
                sys.stderr.write("%s; trying another port\n" % e)
                try:
                    self.run("stop")
                except RuntimeError:
                    pass
                port = str(free_port())
                self.env.update(PG_PORT=port, MYSQL_PORT=port)
        with open(os.path.join(self.env["SVC_DIR"], "env")) as f:
            for line in f:
                for word in line.replace("export ", "").split():
                    k, _, v = word.partition("=")
                    self.env[k] = v
        return self

    def down(self):
        self.run("down", self.name)

    def up(self):
        self.run("up", self.name)

    def kill(self):
        """SIGKILL: a crash, no shutdown work."""
        self.run("kill", self.name)

    def pause(self):
        """SIGSTOP of the server and its processes: a stall, connections stay open."""
        self.run("pause", self.name)

    def resume(self):
        self.run("resume", self.name)

    def stop(self):
        self.run("stop")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Server:
    """A larder process serving a fresh project on a free port."""

    def __init__(self, project="itest", larder=None, backend=None, extra_yaml="", env=None,
                 registry="registry.db", credentials=None, wrapper=(), store=None, http=False):
        """`larder` overrides the `larder:` settings (a value of None leaves the key out);
        `wrapper` is a command prefix the server runs under (prlimit, setpriv: each execs
        larder, so the pid is larder's); `store` replaces the online_store section;
        `http` adds `http_listen` on a free port of its own (`http_port`, `http_addr`)."""
        self.backend = backend or BACKEND
        self.wrapper = list(wrapper)
        self.credentials = credentials  # grpc.ssl_channel_credentials for a TLS server
        self.env = env  # the database's TEST_* variables, when not the environment's
        self.tmpdir = tempfile.mkdtemp(prefix="larder-it-")
        atexit.register(shutil.rmtree, self.tmpdir, True)
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.http_port = free_port() if http else None
        self.http_addr = "127.0.0.1:%d" % self.http_port if http else None
        # Client-server databases outlive a test run: each server gets its own
        # project, so its tables never meet those of another run.
        self.project = project if self.backend == "sqlite" else "%s_%s" % (project, os.urandom(4).hex())
        # The admin calls are off by default (DESIGN §5); the tests create their tables with them.
        settings = {"listen": self.addr, "workers": 2, "admin_rpcs": True}
        if http:
            settings["http_listen"] = self.http_addr
        settings.update(larder or {})
        self.logs_info = settings.get("log_level") in (None, "debug", "info")
        lines = ["project: %s" % self.project]
        if registry is not None:
            lines.append("registry: %s" % registry)
        lines += ["provider: local", (store or store_yaml(self.backend, self.tmpdir, env)).rstrip("\n"), "larder:"]
        lines += ["  %s: %s" % (k, str(v).lower() if isinstance(v, bool) else v) for k, v in settings.items()
                  if v is not None]
        self.config = os.path.join(self.tmpdir, "feature_store.yaml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n" + extra_yaml)
        self.log_path = os.path.join(self.tmpdir, "larder.log")
        self.proc = None
        self.channel = None

    def _launch(self):
        """Starts larder and waits until it serves gRPC; returns a port of its
        own that another process took first, or None once it serves."""
        self.log = open(self.log_path, "ab")
        start = self._log_start = self.log.tell()
        self.proc = subprocess.Popen(self.wrapper + [LARDER_BIN, "serve", "-c", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env)
        # Plain connects first: a gRPC channel that meets a closed port backs off for a second.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        self.channel = None
        if self.proc.poll() is None:
            self.channel = (grpc.secure_channel(self.addr, self.credentials) if self.credentials
                            else grpc.insecure_channel(self.addr))
            ready = grpc.channel_ready_future(self.channel)
            deadline = time.monotonic() + 20
            while self.proc.poll() is None:  # the port may answer for another process
                try:
                    ready.result(timeout=0.1)
                    return None
                except grpc.FutureTimeoutError:
                    if time.monotonic() > deadline:
                        self.kill()
                        raise RuntimeError("larder did not start:\n" + self.read_log())
            self.channel.close()
            self.channel = None
        code = self.proc.wait()  # exited at start: a config error, say
        self.log.close()
        self.proc = None
        log = self.read_log()
        this_run = log[start:]
        for port in (self.port, self.http_port):
            if port is not None and "cannot listen on 127.0.0.1:%d:" % port in this_run:
                return port
        raise RuntimeError("larder did not start (exit status %s):\n%s" % (code, log))

    def _move_port(self, old):
        """Points the config's listener on port `old` at a new free port."""
        new = free_port()
        with open(self.config) as f:
            text = f.read()
        with open(self.config, "w") as f:
            f.write(text.replace("127.0.0.1:%d" % old, "127.0.0.1:%d" % new))
        if old == self.port:
            self.port, self.addr = new, "127.0.0.1:%d" % new
        else:
            self.http_port, self.http_addr = new, "127.0.0.1:%d" % new
        print("larder: port %d was taken; trying %d" % (old, new), file=sys.stderr)

    def start(self):
        # A port free when __init__ chose it can be taken before larder binds
        # it (by a test running beside this one): larder then exits saying so,
        # and starts again on another port, three tries in all.
        for attempt in range(3):
            taken = self._launch()
            if taken is None:
                break
            if attempt == 2:
                raise RuntimeError("larder did not start: port %d taken three times:\n%s" % (taken, self.read_log()))
            self._move_port(taken)
        self.stub = rpc.OnlineStoreStub(self.channel)
        if self.http_port is not None:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        self.kill()
                        raise RuntimeError("larder serves gRPC but its HTTP listener (http_listen %s) accepts "
                                           "no connection:\n%s" % (self.http_addr, self.read_log()))
                    time.sleep(0.02)
        self._wait_started()
        return self

    def _wait_started(self):
        """Waits for the lines larder logs at info once it serves: its ports accept connections
        a moment before they are written, and tests read them (workers, threads, warnings)."""
        if not self.logs_info:
            return
        want = [b"listening on"] + ([b"Feast's HTTP API at"] if self.http_port is not None else [])
        deadline = time.monotonic() + 10 * SLOW
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                this_run = f.read()
            if all(w in this_run for w in want):
                return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                raise RuntimeError("larder serves but never logged %s:\n%s" % (want, this_run.decode("utf-8", "replace")))
            time.sleep(0.01)

    def http(self, method, path, body=None, json_body=NOTHING, headers=None, timeout=10):
        """One request on a connection of its own (see Http); returns an HttpReply."""
        client = Http(self.http_port, timeout=timeout)
        try:
            return client.request(method, path, body=body, json_body=json_body, headers=headers)
        finally:
            client.close()

    def status(self, field):
        """A field of /proc/PID/status in KiB (VmRSS, VmHWM, ...)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def rss_back_to(self, rss0, margin_kib):
        """VmRSS once it is within `margin_kib` of `rss0`, or after 5 s (x SLOW) of waiting for it."""
        deadline = time.monotonic() + 5 * SLOW
        rss = self.status("VmRSS")
        while rss - rss0 >= margin_kib and time.monotonic() < deadline:
            time.sleep(0.2)
            rss = self.status("VmRSS")
        return rss

    def kill(self):
        """SIGKILL, for a server a test gave up on (a worker stuck in a loop ends no other way)."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.log.close()
            self.proc = None

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the server and returns its exit status."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("larder did not stop within %d s:\n%s" % (timeout, self.read_log()))
        self.log.close()
        self.proc = None
        return code

    def close(self):
        """Stops the server; its folder goes when the test process ends."""
        return self.stop()

    def __enter__(self):
        # A server a test started already is kept: `with` then only stops it at the end.
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc):
        code = self.stop()
        if exc[0] is None and code not in (0, None):
            raise AssertionError("larder exited with %s:\n%s" % (code, self.read_log()))
        if code not in (0, None):  # the test failed too: show why larder ended (a sanitizer's report, say)
            sys.stderr.write("larder exited with %s; the end of its log:\n%s\n" % (code, self.read_log()[-6000:]))


class ConnectionDropped(AssertionError):
    """The server closed a persistent connection without saying so (no `Connection: close`)."""


class HttpReply:
    """What an HTTP request got: status, reason, headers (an http.client.HTTPMessage:
    case-insensitive, repeated headers kept) and the body bytes, as sent."""

    def __init__(self, status, reason, headers, body, will_close):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body
        self.will_close = will_close  # the server said Connection: close (or it is HTTP/1.0)

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<HTTP %d %s, %d bytes: %r>" % (self.status, self.reason, len(self.body), self.body[:300])


class Http:
    """An HTTP/1.1 client on one persistent connection (http.client), as Feast's
    pooled requests.Session keeps one. A connection the server announced it would
    close (`Connection: close`) is replaced before the next request; one closed
    without warning raises ConnectionDropped. `opened` counts connections made."""

    def __init__(self, port, host="127.0.0.1", timeout=10, headers=None):
        self.host, self.port, self.timeout = host, port, timeout
        self.default_headers = dict(headers or {})
        self.conn = None
        self.opened = 0

    def connect(self):
        self.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.conn.connect()
        self.opened += 1
        self.fresh = True

    def request(self, method, path, body=None, json_body=NOTHING, headers=None):
        """`json_body`: a value sent as JSON (Content-Type: application/json), as requests'
        `json=` does; `body`: bytes or text sent as they are."""
        h = dict(self.default_headers)
        if json_body is not NOTHING:
            body = json.dumps(json_body).encode("utf-8")
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        h.update(headers or {})
        if self.conn is None:
            self.connect()
        fresh, self.fresh = self.fresh, False
        try:
            self.conn.request(method, path, body=body, headers=h)
            resp = self.conn.getresponse()
            data = resp.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            self.close()
            if fresh:
                raise
            raise ConnectionDropped("%s %s: the server closed a persistent connection without "
                                    "Connection: close (%s)" % (method, path, e)) from e
        reply = HttpReply(resp.status, resp.reason, resp.headers, data, resp.will_close)
        if resp.will_close:
            self.close()
        return reply

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def key(**kv):
    """EntityKey from join key=value pairs: ints are int64, str string, bytes bytes."""
    ek = EntityKey_pb2.EntityKey()
    for name, value in kv.items():
        ek.join_keys.append(name)
        v = ek.entity_values.add()
        if isinstance(value, bool):
            v.bool_val = value
        elif isinstance(value, int):
            v.int64_val = value
        elif isinstance(value, bytes):
            v.bytes_val = value
        elif isinstance(value, float):
            v.double_val = value
        else:
            v.string_val = value
    return ek


def row(ek, features, ts=1700000000, created=None):
    r = pb.WriteRow(entity_key=ek)
    for name, value in features.items():
        r.features[name].CopyFrom(value)
    if ts is not None:
        r.event_ts.seconds = ts
    if created is not None:
        r.created_ts.seconds = created
    return r


def raw_call(channel, method, payload, timeout=10):
    """Sends bytes as they are and returns (code, details, reply bytes)."""
    call = channel.unary_unary("/larder.v1.OnlineStore/" + method if "/" not in method else method)
    try:
        reply = call(payload, timeout=timeout)
        return grpc.StatusCode.OK, "", reply
    except grpc.RpcError as e:
        return e.code(), e.details(), None
