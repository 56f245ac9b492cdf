#!/usr/bin/python3
"""pgbouncer 1.18 (Debian's) in transaction pooling, with its defaults, between
two larder replicas (larder.prepared_statements: false) and a PostgreSQL of
the test's own: 64 concurrent calls, reads and writes, all answered while the
server sees no more connections than pgbouncer's small pool; a call's
deadline still stops its statement (SET LOCAL's function form, in the
call's own transaction), and nothing of it stays on the pooled server
connections. With named statements and startup options (the default),
larder cannot pass through pgbouncer: it refuses to start, saying why; a
pgbouncer that ignores the options lets it start, and the first read that
lands on a server connection without its statements (the ones they were
prepared on ended) is served again on a new session, and the log names the
setting."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaleout  # noqa: E402

scaleout.need("pgbouncer", "initdb", "pg_ctl", "psql", "postgres")

import harness  # noqa: E402
from harness import grpc, key, pb  # noqa: E402
from scaleout import Load, Primary, report, seconds  # noqa: E402

POOL = 3         # server connections pgbouncer keeps for the database
CALLS = 64       # calls at once
WORKERS = 4      # per replica: 2 x 4 x (read and write) = 16 client connections to pgbouncer


class Pgbouncer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = Primary("postgres", durable=False).start()
        cls.dir = tempfile.mkdtemp(prefix="larder-pgbouncer-")
        os.chmod(cls.dir, 0o755)
        cls.bouncers = []
        cls.port = cls.start_pgbouncer("strict")

    @classmethod
    def start_pgbouncer(cls, name, extra=""):
        """A pgbouncer of the test's own in transaction pooling, in front of the database: its port."""
        port = harness.free_port()
        home = os.path.join(cls.dir, name)
        os.mkdir(home)
        with open(os.path.join(home, "userlist.txt"), "w") as f:
            f.write('"feast" "feast"\n')
        with open(os.path.join(home, "pgbouncer.ini"), "w") as f:
            f.write("[databases]\nfeast = host=127.0.0.1 port=%s dbname=feast\n\n[pgbouncer]\n"
                    "listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n"
                    "auth_type = scram-sha-256\nauth_file = %s/userlist.txt\n"
                    "pool_mode = transaction\ndefault_pool_size = %d\nmax_db_connections = %d\n"
                    "max_client_conn = 500\nstats_users = feast\n%s"
                    % (cls.db.env["PG_PORT"], port, home, POOL, POOL, extra))
        # pgbouncer refuses to run as root: it then runs as nobody.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        os.chmod(home, 0o755)
        for file in ("userlist.txt", "pgbouncer.ini"):
            os.chmod(os.path.join(home, file), 0o644)
        log = open(os.path.join(home, "pgbouncer.log"), "ab")
        proc = subprocess.Popen([scaleout.program("pgbouncer")] + user + [os.path.join(home, "pgbouncer.ini")],
                                stdout=log, stderr=subprocess.STDOUT)
        cls.bouncers.append((proc, log))
        ok = scaleout.wait_for(lambda: cls.psql("SELECT 1", port) == "1" or proc.poll() is not None, 10)
        if not ok or proc.poll() is not None:
            raise AssertionError("pgbouncer did not start")
        return port

    @classmethod
    def tearDownClass(cls):
        for proc, log in cls.bouncers:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()
        cls.db.stop()
        shutil.rmtree(cls.dir, True)

    @classmethod
    def psql(cls, sql, port=None, database="feast"):
        """A query through pgbouncer, as the application user ("pgbouncer": its console)."""
        out = subprocess.run([scaleout.program("psql"), "-X", "-qAt", "-h", "127.0.0.1", "-p", str(port or cls.port),
                              "-U", "feast", "-d", database, "-c", sql],
                             env=dict(os.environ, PGPASSWORD="feast"), capture_output=True, text=True, timeout=30)
        return out.stdout.strip() if out.returncode == 0 else None

    def replica(self, prepared=False, project=None, port=None, workers=WORKERS):
        store = ("online_store:\n  type: postgres\n  host: 127.0.0.1\n  port: %d\n  database: feast\n"
                 "  user: feast\n  password: feast\n  sslmode: disable\n" % (port or self.port))
        settings = {"workers": workers, "prepared_statements": prepared}
        server = harness.Server(backend="postgres", store=store, larder=settings)
        if project:  # the replicas of one deployment share their project
            server.project = project
            with open(server.config) as f:
                text = f.read()
            with open(server.config, "w") as f:
                f.write(text.replace("project: ", "project: %s\n# " % project, 1))
        return server

    def server_connections(self):
        return int(self.db.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'feast'", database="postgres"))

    def test_two_replicas_share_a_small_pool(self):
        a = self.replica().start()
        self.addCleanup(a.stop)
        b = self.replica(project=a.project).start()
        self.addCleanup(b.stop)
        a.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
        scaleout.write_rows(a.stub, range(100))
        acked, lock = [], threading.Lock()

        def call(stub, t, i, timeout):
            if t % 2:
                n = 1000 + t * 100000 + i
                scaleout.write_rows(stub, [n], timeout=timeout)
                with lock:
                    acked.append(n)
            else:
                stub.OnlineRead(pb.OnlineReadRequest(
                    feature_view="v", entity_keys=[key(driver_id=(i + k) % 100) for k in range(4)]), timeout=timeout)
        # Half the threads call one replica, half the other.
        loads = [Load(r.addr, CALLS // 2, call, timeout=10) for r in (a, b)]
        for load in loads:
            load.start()
        most, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < 3:
            most = max(most, self.server_connections())
            time.sleep(0.1)
        for load in loads:
            load.stop()
        outcomes = loads[0].between(0) + loads[1].between(0)
        failed = Load.failed(outcomes)
        self.assertEqual(failed, [])
        self.assertLessEqual(most, POOL)
        self.assertGreater(len(acked), 0)
        lost = []
        for k in range(0, len(acked), 500):
            batch = acked[k:k + 500]
            reply = b.stub.OnlineRead(pb.OnlineReadRequest(
                feature_view="v", entity_keys=[key(driver_id=i) for i in batch]), timeout=30)
            lost += [i for i, r in zip(batch, reply.results) if not r.found]
        self.assertEqual(lost, [])
        report("pgbouncer transaction pooling", calls_at_once=CALLS, replicas=2,
               larder_connections=2 * (WORKERS + 1), pool=POOL, calls=len(outcomes), failed=len(failed),
               most_server_connections=most, writes=len(acked),
               calls_per_s=int(len(outcomes) / 3))

        # A call's deadline: a write waits for a lock held elsewhere, and ends
        # in DEADLINE_EXCEEDED near its deadline (the server's statement timeout).
        table = '"%s_v"' % a.project
        locker = subprocess.Popen([scaleout.program("psql"), "-X", "-q", "-h", self.db.env["SVC_DIR"] + "/postgres/sock",
                                   "-p", self.db.env["PG_PORT"], "-U", "postgres", "-d", "feast", "-c",
                                   "BEGIN; LOCK TABLE %s IN EXCLUSIVE MODE; SELECT pg_sleep(%d); COMMIT;"
                                   % (table, seconds(3))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(locker.wait)
        time.sleep(0.5)
        t1 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            scaleout.write_rows(a.stub, [7], timeout=1)
        took = time.monotonic() - t1
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertLess(took, seconds(2))
        # The server stopped it itself, and no setting stayed on the pooled connections.
        log = self.db.env["SVC_DIR"] + "/postgres/server.log"
        def cancelled():
            with open(log) as f:
                return "canceling statement due to statement timeout" in f.read()
        self.assertTrue(scaleout.wait_for(cancelled, 5))
        for _ in range(2 * POOL):
            self.assertEqual(self.psql("SHOW statement_timeout"), "0")
        locker.wait(timeout=30)
        report("pgbouncer deadline", deadline_s=1, answered_after_s="%.2f" % took)

    def test_session_state_is_refused(self):
        """prepared_statements: true sends startup options, which pgbouncer refuses: larder says so and exits 1."""
        server = self.replica(prepared=True)
        out = subprocess.run([harness.LARDER_BIN, "serve", "-c", server.config], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("unsupported startup parameter: options", out.stderr)

    def test_session_state_lost_behind_a_lenient_pooler(self):
        """With ignore_startup_parameters = options, pgbouncer lets larder's named statements
        through. Once the server connections they were prepared on are gone (ended here; pgbouncer
        itself replaces them after server_lifetime), larder's next read lands on a new one without
        them: larder drops its session as a lost one and serves the read on a new session, logging
        what to set."""
        port = self.start_pgbouncer("lenient", "ignore_startup_parameters = options\n")
        # One worker: every read runs on the session that prepared the statement.
        server = self.replica(prepared=True, port=port, workers=1).start()
        self.addCleanup(server.stop)
        read = pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=1)])
        server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
        scaleout.write_rows(server.stub, [1])
        for _ in range(4):  # the read's statement is prepared, then used as prepared
            self.assertTrue(server.stub.OnlineRead(read, timeout=10).results[0].found)
        # The server connections pgbouncer holds end; larder's connection to pgbouncer stays.
        ended = self.db.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE usename = 'feast' AND pid <> pg_backend_pid()", database="postgres")
        self.assertGreater(int(ended), 0)
        # The backends are gone before the next read: one still exiting would end
        # pgbouncer's client connection as well, and larder would start afresh.
        self.assertTrue(scaleout.wait_for(lambda: self.server_connections() == 0, 10))
        self.assertTrue(scaleout.wait_for(lambda: self.psql("SHOW SERVERS", port, "pgbouncer") == "", 10),
                        "pgbouncer still lists server connections: %s" % self.psql("SHOW SERVERS", port, "pgbouncer"))
        # The session is dropped as a lost one, and the call served again on a new one,
        # which prepares what it needs; the log says what to set.
        for _ in range(4):
            self.assertTrue(server.stub.OnlineRead(read, timeout=10).results[0].found)
        log = server.read_log()
        self.assertIn("a prepared statement vanished", log)
        self.assertIn("set larder.prepared_statements: false", log)
        scaleout.write_rows(server.stub, [2])
        self.assertTrue(server.stub.OnlineRead(read, timeout=10).results[0].found)
        report("pgbouncer ignoring options", server_connections_ended=int(ended), read_after="OK")

if __name__ == "__main__":
    unittest.main(verbosity=2)
