"""Shared pieces of the integration tests: Python stubs generated from protos/
at test time, and a real larder process on a free loopback port.

Environment (set by ctest): LARDER_BIN (the executable), LARDER_PROTOS (the
protos/ folder), LARDER_TEST_DATA (tests/data), LARDER_TEST_BACKEND (sqlite,
postgres or mysql; default sqlite) and, for the client-server databases, the
TEST_PG_* / TEST_MYSQL_* variables written by integration/services.sh.
"""
import atexit
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
LARDER_BIN = os.environ.get("LARDER_BIN", os.path.join(ROOT, "build", "larder"))
PROTOS = os.environ.get("LARDER_PROTOS", os.path.join(ROOT, "protos"))
TEST_DATA = os.environ.get("LARDER_TEST_DATA", os.path.join(ROOT, "tests", "data"))
BACKEND = os.environ.get("LARDER_TEST_BACKEND", "sqlite")


def _generate_stubs():
    out = tempfile.mkdtemp(prefix="larder-stubs-")
    atexit.register(shutil.rmtree, out, True)
    protos = []
    for dirpath, _, files in os.walk(PROTOS):
        protos += [os.path.relpath(os.path.join(dirpath, f), PROTOS) for f in files if f.endswith(".proto")]
    plugin = shutil.which("grpc_python_plugin") or "/usr/bin/grpc_python_plugin"
    subprocess.run(["protoc", "-I" + PROTOS, "--python_out=" + out, "--grpc_out=" + out,
                    "--plugin=protoc-gen-grpc=" + plugin] + sorted(protos), check=True)
    sys.path.insert(0, out)


_generate_stubs()

import grpc  # noqa: E402
from feast.types import EntityKey_pb2, Value_pb2  # noqa: E402
from larder.v1 import online_store_pb2 as pb  # noqa: E402
from larder.v1 import online_store_pb2_grpc as rpc  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def store_yaml(backend, tmpdir, schema=None):
    """The online_store section for `backend`, pointing at the test databases."""
    if backend == "sqlite":
        return "online_store:\n  type: sqlite\n  path: %s\n" % os.path.join(tmpdir, "online.db")
    if backend == "postgres":
        e = os.environ
        return ("online_store:\n  type: postgres\n  host: %s\n  port: %s\n  database: %s\n"
                "  user: %s\n  password: ${TEST_PG_PASSWORD}\n  sslmode: disable\n%s"
                % (e["TEST_PG_HOST"], e["TEST_PG_PORT"], e["TEST_PG_DB"], e["TEST_PG_USER"],
                   "  db_schema: %s\n" % schema if schema else ""))
    if backend == "mysql":
        e = os.environ
        return ("online_store:\n  type: mysql\n  host: %s\n  port: %s\n  database: %s\n"
                "  user: %s\n  password: ${TEST_MYSQL_PASSWORD}\n"
                % (e["TEST_MYSQL_HOST"], e["TEST_MYSQL_PORT"], e["TEST_MYSQL_DB"], e["TEST_MYSQL_USER"]))
    raise ValueError(backend)


class Server:
    """A larder process serving a fresh project on a free port."""

    def __init__(self, project="itest", larder=None, backend=None, extra_yaml=""):
        self.backend = backend or BACKEND
        self.tmpdir = tempfile.mkdtemp(prefix="larder-it-")
        atexit.register(shutil.rmtree, self.tmpdir, True)
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.project = project
        settings = {"listen": self.addr, "workers": 2}
        settings.update(larder or {})
        lines = ["project: %s" % project, "registry: registry.db", "provider: local",
                 store_yaml(self.backend, self.tmpdir).rstrip("\n"), "larder:"]
        lines += ["  %s: %s" % (k, str(v).lower() if isinstance(v, bool) else v) for k, v in settings.items()]
        self.config = os.path.join(self.tmpdir, "feature_store.yaml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n" + extra_yaml)
        self.log_path = os.path.join(self.tmpdir, "larder.log")
        self.proc = None
        self.channel = None

    def start(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([LARDER_BIN, "serve", "-c", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        # Plain connects first: a gRPC channel that meets a closed port backs off for a second.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        self.channel = grpc.insecure_channel(self.addr)
        try:
            grpc.channel_ready_future(self.channel).result(timeout=20)
        except grpc.FutureTimeoutError:
            self.proc.kill()
            raise RuntimeError("larder did not start:\n" + self.read_log())
        self.stub = rpc.OnlineStoreStub(self.channel)
        return self

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
        return self.start()

    def __exit__(self, *exc):
        code = self.stop()
        if exc[0] is None and code not in (0, None):
            raise AssertionError("larder exited with %s" % code)


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
