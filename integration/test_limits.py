#!/usr/bin/python3
"""What one client can do to the server with requests the protocol allows
(issue 10, items 1, 2, 4 (PostgreSQL names), 5 and 8a/b/d), against the live
server on LARDER_TEST_BACKEND:

- Update/Teardown of views whose table names are the longest allowed (60
  bytes), three and a hundred at a time, on PostgreSQL in a db_schema of the
  test's own;
- an entity key of 100,000 join keys and a GetOnlineFeatures of 100,000
  columns are refused at once (max_join_keys, max_columns) while a health
  Check from another client still answers within a second; a big write
  leaves health checks answered too;
- PostgreSQL never leaves a name to search_path: a table that exists only in
  `public` is not found from another db_schema, and is left as it was;
- a read whose result is far larger than max_message_bytes is refused without
  the server's memory growing by the size of the result, and a burst of large
  calls leaves no lasting growth;
- MySQL columns wider than Feast's come back whole (or a clear error);
- far-future timestamps and huge deadlines are served correctly (no overflow);
- a view whose name is another view's index name is refused, never INTERNAL.
- a read naming thousands of features in the reverse of their stored order
  answers within a second;
- reads served together whose rows pass a worker's arena are served again
  in halves, each with the whole arena (SQLite).

Time bounds triple when LARDER_SANITIZED=1."""
import concurrent.futures
import datetime
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SLOW, EntityKey_pb2, Value_pb2, grpc, key, pb, raw_call, row  # noqa: E402
from harness import health_pb2 as H  # noqa: E402
from feast.serving import ServingService_pb2 as sv  # noqa: E402
from feast.serving import ServingService_pb2_grpc as sv_rpc  # noqa: E402

Code = grpc.StatusCode
V = Value_pb2.Value
BACKEND = harness.BACKEND
SERVING = H.HealthCheckResponse.SERVING
FAR = 253402300799  # 9999-12-31T23:59:59Z, the last second Feast's timestamps allow


def check_stub(channel):
    return channel.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=H.HealthCheckRequest.SerializeToString,
                               response_deserializer=H.HealthCheckResponse.FromString)


def pg_connect():
    from test_compat_postgres import connect
    return connect()


def view_of_length(server, n, prefix):
    """A feature view name that makes the table name (<project>_<view>) n bytes long."""
    room = n - len(server.project) - 1
    return (prefix + "_" * room)[:room]


def probe_health(addr, bound, stop, out):
    """Health Checks from another client, one after the other, until `stop` is set:
    appends (seconds taken, status or error code) to `out`."""
    channel = grpc.insecure_channel(addr)
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
        check = check_stub(channel)
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                r = check(H.HealthCheckRequest(service=""), timeout=bound)
                out.append((time.monotonic() - t0, "SERVING" if r.status == SERVING else r.status))
            except grpc.RpcError as e:
                out.append((time.monotonic() - t0, e.code()))
            stop.wait(0.1)
    finally:
        channel.close()


class Alongside:
    """Runs health probes from another client while the body runs."""

    def __init__(self, server):
        self.server, self.results, self.stop = server, [], threading.Event()
        self.bound = 1.0 * SLOW

    def __enter__(self):
        self.thread = threading.Thread(target=probe_health, args=(self.server.addr, self.bound, self.stop,
                                                                  self.results), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.results and time.monotonic() < deadline:  # the prober is connected and answered
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=15)

    def slow(self):
        return [(round(t, 2), s) for t, s in self.results if t >= self.bound or s != "SERVING"]


def skip_on_sanitizers(test):
    if SLOW > 1:
        test.skipTest("memory is measured on the normal build: a sanitizer's shadow memory and quarantine "
                      "change what is resident")


class Limits(unittest.TestCase):
    # ---- item 1: long names in Update/Teardown (PostgreSQL builds DDL text) ----
    def test_long_table_names_update_teardown(self):
        """Tables of 60-byte names, 3 and then 100 in one Update, land with their
        `<table>_ek` index in the configured db_schema; Teardown drops them."""
        schema = "s_" + os.urandom(5).hex()
        store = harness.store_yaml(BACKEND, "", schema=schema) if BACKEND == "postgres" else None
        server = harness.Server(project="lim", store=store)
        conn = pg_connect() if BACKEND == "postgres" else None
        try:
            with server:
                stub = server.stub
                for count in (3, 100):
                    views = [view_of_length(server, 60, "v%03d" % i) for i in range(count)]
                    tables = ["%s_%s" % (server.project, v) for v in views]
                    self.assertEqual({len(t) for t in tables}, {60})
                    try:
                        stub.Update(pb.UpdateRequest(tables_to_keep=views), timeout=60)
                    except grpc.RpcError as e:
                        self.fail("Update of %d views with 60-byte table names: %s %r (larder %s)"
                                  % (count, e.code(), e.details(),
                                     "alive" if server.proc.poll() is None else "exited %s" % server.proc.poll()))
                    if conn is not None:
                        self.assertEqual(self.pg_relations(conn, schema), set(tables) | {t + "_ek" for t in tables})
                        self.assertEqual(self.pg_relations(conn, "public") & set(tables), set())
                    # Every table serves a write and a read.
                    stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
                        feature_view=views[-1], rows=[row(key(driver_id=1), {"f": V(int64_val=count)})]), timeout=30)
                    got = stub.OnlineRead(pb.OnlineReadRequest(feature_view=views[-1], entity_keys=[key(driver_id=1)]),
                                          timeout=30)
                    self.assertEqual(got.results[0].features["f"].int64_val, count)
                    stub.Teardown(pb.TeardownRequest(tables=views), timeout=60)
                    if conn is not None:
                        self.assertEqual(self.pg_relations(conn, schema), set())
                    code, _, _ = raw_call(server.channel, "OnlineRead", pb.OnlineReadRequest(
                        feature_view=views[0], entity_keys=[key(driver_id=1)]).SerializeToString())
                    self.assertEqual(code, Code.NOT_FOUND)
                    print("%d views of 60-byte table names: created, served, dropped" % count)
        finally:
            if conn is not None:
                conn.rollback()
                conn.execute('DROP SCHEMA IF EXISTS "%s" CASCADE' % schema)
                conn.commit()
                conn.close()

    @staticmethod
    def pg_relations(conn, schema):
        rows = conn.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = %s AND c.relkind IN ('r', 'i') AND c.relname NOT LIKE '%%_pkey'",
                            (schema,)).fetchall()
        conn.commit()
        return {r[0] for r in rows}

    # ---- item 2: one request must not freeze a worker ----
    def many_join_keys(self, n):
        """One entity key of n join keys, in descending order (an insertion sort's worst case)."""
        ek = EntityKey_pb2.EntityKey()
        for i in reversed(range(n)):
            ek.join_keys.append("k%06d" % i)
            ek.entity_values.add().int64_val = i
        return ek

    def freeze_attempt(self, server, method, payload, expect_field, expect_limit):
        """Sends `payload` on as many calls as there are workers, with health probes
        alongside; each call must be INVALID_ARGUMENT naming the field and the limit."""
        stub_channel = grpc.insecure_channel(server.addr)
        results = []
        try:
            with Alongside(server) as probes:
                def send():
                    t0 = time.monotonic()
                    code, details, _ = raw_call(stub_channel, method, payload, timeout=30)
                    results.append((code, details, time.monotonic() - t0))
                threads = [threading.Thread(target=send, daemon=True) for _ in range(2)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=3 * SLOW)
                time.sleep(0.3)
            stuck = any(t.is_alive() for t in threads)
            print("%s of %.1f MB: %s; health probes alongside: %d, slow or failed: %s"
                  % (method, len(payload) / 1e6, [(c.name, d[:90], round(s, 2)) for c, d, s in results] or
                     "no answer within %.0f s" % (3 * SLOW), len(probes.results), probes.slow()))
            self.assertFalse(stuck, "the calls did not answer within %.0f s" % (3 * SLOW))
            self.assertEqual(probes.slow(), [], "a health Check waited for the worker")
            for code, details, took in results:
                self.assertEqual(code, Code.INVALID_ARGUMENT, details)
                self.assertTrue(details.startswith(expect_field), details)
                self.assertIn(expect_limit, details)
                self.assertLess(took, 2.0 * SLOW)
        except AssertionError:
            server.kill()  # a worker in a quadratic loop ends no other way
            raise
        finally:
            stub_channel.close()

    def test_many_join_keys_refused_fast(self):
        """Default max_join_keys (64): one key of 100,000 join keys (1.3 MB) is
        INVALID_ARGUMENT naming entity_keys[0].join_keys and max_join_keys, at once;
        64 join keys are served and 65 refused, in reads and in writes."""
        server = harness.Server().start()
        server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=30)
        huge = pb.OnlineReadRequest(feature_view="v", entity_keys=[self.many_join_keys(100000)]).SerializeToString()
        self.freeze_attempt(server, "OnlineRead", huge, "entity_keys[0].join_keys", "max_join_keys")
        with server:
            ok = pb.OnlineReadRequest(feature_view="v", entity_keys=[self.many_join_keys(64)])
            if BACKEND == "mysql":  # its entity_key column holds 256 bytes, fewer than 64 join keys need
                code, details, _ = raw_call(server.channel, "OnlineRead", ok.SerializeToString())
                self.assertEqual((code, details.split(":")[0]), (Code.INVALID_ARGUMENT, "entity_keys[0]"), details)
            else:
                self.assertFalse(server.stub.OnlineRead(ok, timeout=10).results[0].found)
            code, details, _ = raw_call(server.channel, "OnlineRead", pb.OnlineReadRequest(
                feature_view="v", entity_keys=[key(a=1), self.many_join_keys(65)]).SerializeToString())
            self.assertEqual((code, details.split(":")[0]), (Code.INVALID_ARGUMENT, "entity_keys[1].join_keys"), details)
            self.assertIn("max_join_keys", details)
            write = pb.OnlineWriteBatchRequest(feature_view="v", rows=[row(self.many_join_keys(65), {"f": V(int64_val=1)})])
            code, details, _ = raw_call(server.channel, "OnlineWriteBatch", write.SerializeToString())
            self.assertEqual((code, details.split(":")[0]), (Code.INVALID_ARGUMENT, "rows[0].entity_key.join_keys"),
                             details)
            self.assertIn("max_join_keys", details)

    def test_max_join_keys_configured(self):
        with harness.Server(larder={"max_join_keys": 4}) as server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=30)
            ok = pb.OnlineReadRequest(feature_view="v", entity_keys=[self.many_join_keys(4)])
            self.assertFalse(server.stub.OnlineRead(ok, timeout=10).results[0].found)
            code, details, _ = raw_call(server.channel, "OnlineRead", pb.OnlineReadRequest(
                feature_view="v", entity_keys=[self.many_join_keys(5)]).SerializeToString())
            self.assertEqual(code, Code.INVALID_ARGUMENT, details)
            self.assertTrue(details.startswith("entity_keys[0].join_keys"), details)
            self.assertIn("max_join_keys", details)

    @staticmethod
    def columns_request(n_entities, n_context=0):
        req = sv.GetOnlineFeaturesRequest(features=sv.FeatureList(val=["v:f"]))
        for i in range(n_entities):
            req.entities["e%06d" % i].val.add().int64_val = i
        for i in range(n_context):
            req.request_context["r%06d" % i].val.add().int64_val = i
        return req

    def test_many_columns_refused_fast(self):
        """Default max_columns (256): a GetOnlineFeatures of 100,000 entity columns is
        INVALID_ARGUMENT naming max_columns at once; entity and request_context
        columns count together (200 + 100 is too many)."""
        server = harness.Server().start()
        huge = self.columns_request(100000).SerializeToString()
        self.freeze_attempt(server, "/feast.serving.ServingService/GetOnlineFeatures", huge, "entities", "max_columns")
        with server:
            code, details, _ = raw_call(server.channel, "/feast.serving.ServingService/GetOnlineFeatures",
                                        self.columns_request(200, 100).SerializeToString())
            self.assertEqual(code, Code.INVALID_ARGUMENT, details)
            self.assertIn("max_columns", details)

    def test_big_writes_leave_health_answered(self):
        """Writes of 10,000 rows of 5 features (the most rows allowed), one per worker
        at the same time: each completes, and health Checks from another client
        alongside answer within 1 s each."""
        with harness.Server() as server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=30)
            big = [pb.OnlineWriteBatchRequest(feature_view="v", rows=[
                row(key(driver_id=i, city="c%d" % (i % 7)), {"f%d" % j: V(int64_val=i * j + w) for j in range(5)})
                for i in range(w, 20000, 2)]) for w in range(2)]
            with Alongside(server) as probes:
                t0 = time.monotonic()
                with concurrent.futures.ThreadPoolExecutor(2) as pool:
                    replies = list(pool.map(lambda r: server.stub.OnlineWriteBatch(r, timeout=120), big))
                took = time.monotonic() - t0
                time.sleep(0.3)
            print("two 10,000 x 5 writes at once: %.2f s; %d health probes alongside, slow or failed: %s"
                  % (took, len(probes.results), probes.slow()))
            self.assertEqual([r.rows_written for r in replies], [10000, 10000])
            self.assertEqual(probes.slow(), [], "a health Check waited for the writes")

    def test_health_answered_while_every_worker_waits_for_a_lock(self):
        """SQLite only (the threads' split does not depend on the store): a test
        connection holds the database's write lock while eight writes (more than
        larder's threads, the health thread included) wait for it, each on its own
        connection so that every worker takes some; health Checks alongside answer
        within 1 s each, and the writes complete once the lock is released. A
        health thread that also took writes would wait with them, and one that
        left the network to the workers alone would never read the Checks."""
        if BACKEND != "sqlite":
            self.skipTest("holds SQLite's write lock")
        import sqlite3
        with harness.Server() as server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=30)
            writes = [pb.OnlineWriteBatchRequest(feature_view="v", rows=[
                row(key(driver_id=w), {"f": V(int64_val=w)})]) for w in range(8)]
            # gRPC gives each connection's calls to one thread's queue first; a
            # local subchannel pool makes each channel its own connection.
            channels = [grpc.insecure_channel(server.addr, options=[("grpc.use_local_subchannel_pool", 1)])
                        for _ in writes]
            stubs = [harness.rpc.OnlineStoreStub(c) for c in channels]
            lock = sqlite3.connect(os.path.join(server.tmpdir, "online.db"), isolation_level=None)
            hold = 2.5 if SLOW == 1 else 4.0  # below larder's 5 s wait for a lock
            try:
                with Alongside(server) as probes:
                    lock.execute("BEGIN IMMEDIATE")
                    with concurrent.futures.ThreadPoolExecutor(len(writes)) as pool:
                        futures = [pool.submit(stub.OnlineWriteBatch, r, timeout=30)
                                   for stub, r in zip(stubs, writes)]
                        time.sleep(hold)
                        lock.execute("COMMIT")
                        replies = [f.result() for f in futures]
                    time.sleep(0.3)
            finally:
                lock.close()
                for c in channels:
                    c.close()
            print("8 writes waiting %.1f s for the lock: %d health probes alongside, slow or failed: %s"
                  % (hold, len(probes.results), probes.slow()))
            self.assertEqual([r.rows_written for r in replies], [1] * 8)
            self.assertEqual(probes.slow(), [], "a health Check waited behind the writes")

    # ---- item 4: PostgreSQL names are qualified with db_schema ----
    def test_postgres_never_uses_search_path(self):
        """db_schema s_<random>; <project>_<view> exists only in public (Feast's DDL,
        one row): OnlineRead and OnlineWriteBatch are NOT_FOUND, public is untouched."""
        if BACKEND != "postgres":
            self.skipTest("PostgreSQL only")
        from test_compat_postgres import feast_update, serialize_v3
        schema = "s_" + os.urandom(5).hex()
        server = harness.Server(project="sp", store=harness.store_yaml("postgres", "", schema=schema))
        table = "%s_v" % server.project
        conn = pg_connect()
        try:
            feast_update(conn, table)
            conn.execute('INSERT INTO public."%s" (entity_key, feature_name, value, event_ts) VALUES '
                         "(%%s, 'f', %%s, now())" % table, (serialize_v3(1), V(int64_val=42).SerializeToString()))
            conn.commit()
            before = conn.execute('SELECT entity_key, feature_name, value, event_ts FROM public."%s" ORDER BY 1, 2'
                                  % table).fetchall()
            conn.commit()
            with server:
                code, details, reply = raw_call(server.channel, "OnlineRead", pb.OnlineReadRequest(
                    feature_view="v", entity_keys=[key(driver_id=1)]).SerializeToString())
                shown = pb.OnlineReadResponse.FromString(reply) if reply is not None else None
                self.assertEqual(code, Code.NOT_FOUND, "OnlineRead answered %s %r: %s" % (code, details, shown))
                code, details, _ = raw_call(server.channel, "OnlineWriteBatch", pb.OnlineWriteBatchRequest(
                    feature_view="v", rows=[row(key(driver_id=1), {"f": V(int64_val=-1)}),
                                            row(key(driver_id=2), {"f": V(int64_val=-2)})]).SerializeToString())
                self.assertEqual(code, Code.NOT_FOUND, details)
            after = conn.execute('SELECT entity_key, feature_name, value, event_ts FROM public."%s" ORDER BY 1, 2'
                                 % table).fetchall()
            conn.commit()
            self.assertEqual(after, before, "the table in public was written through another db_schema")
        finally:
            conn.rollback()
            conn.execute('DROP TABLE IF EXISTS public."%s"' % table)
            conn.execute('DROP SCHEMA IF EXISTS "%s" CASCADE' % schema)
            conn.commit()
            conn.close()

    # ---- item 5: memory is bounded by the limits, not by what the database holds ----
    VALUE_BYTES = 64000  # fits Feast's MySQL BLOB column too
    FEATURES = 50
    KEYS = 64

    def test_big_result_refused_within_bounded_memory(self):
        """~200 MB stored (64 keys x 50 features x 64 KB); one OnlineRead of all of it
        with max_message_bytes 4 MiB: RESOURCE_EXHAUSTED, and larder's peak resident
        memory (VmHWM) grows by less than 100 MB during that read."""
        skip_on_sanitizers(self)
        with harness.Server(larder={"max_message_bytes": 4194304}) as server:
            stub = server.stub
            stub.Update(pb.UpdateRequest(tables_to_keep=["big"]), timeout=60)
            blob = os.urandom(self.VALUE_BYTES)
            for k in range(self.KEYS):
                stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="big", rows=[row(
                    key(driver_id=k), {"f%02d" % j: V(bytes_val=bytes([k, j]) + blob[2:]) for j in range(self.FEATURES)})]),
                    timeout=120)
            small = stub.OnlineRead(pb.OnlineReadRequest(feature_view="big", entity_keys=[key(driver_id=3)],
                                                         requested_features=["f07"]), timeout=30)
            self.assertEqual(small.results[0].features["f07"].bytes_val[:2], bytes([3, 7]))
            hwm0, rss0 = server.status("VmHWM"), server.status("VmRSS")
            everything = pb.OnlineReadRequest(feature_view="big", entity_keys=[key(driver_id=k) for k in range(self.KEYS)])
            code, details, _ = raw_call(server.channel, "OnlineRead", everything.SerializeToString(), timeout=120)
            hwm1 = server.status("VmHWM")
            print("stored %.0f MB; read of everything: %s %r; VmHWM %d -> %d KiB (+%.1f MiB), VmRSS before %d KiB"
                  % (self.KEYS * self.FEATURES * self.VALUE_BYTES / 1e6, code, details[:80], hwm0, hwm1,
                     (hwm1 - hwm0) / 1024, rss0))
            self.assertEqual(code, Code.RESOURCE_EXHAUSTED, details)
            self.assertLess(hwm1 - hwm0, 100 * 1024, "peak memory grew by %.0f MiB" % ((hwm1 - hwm0) / 1024))
            stub.Teardown(pb.TeardownRequest(tables=["big"]), timeout=60)

    def test_many_named_features_in_reverse_order(self):
        """A view of 16,000 features per key, read for 8,192 of them named in the
        reverse of their stored order (so the read goes by key and larder keeps the
        named rows itself): every named feature comes back, within 1 s for 4 keys.
        Matching each row against the names one by one made it 30 million
        comparisons per key, about 0.75 s of a worker's CPU."""
        stored, named = 16000, 8192
        with harness.Server() as server:
            stub = server.stub
            stub.Update(pb.UpdateRequest(tables_to_keep=["wide"]), timeout=60)
            names = ["feature_%05d" % j for j in range(stored)]
            for k in range(4):
                stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="wide", rows=[row(
                    key(driver_id=k), {n: V(int64_val=k * 100000 + j) for j, n in enumerate(names)})]),
                    timeout=120)
            wanted = names[named - 1::-1]
            req = pb.OnlineReadRequest(feature_view="wide", entity_keys=[key(driver_id=k) for k in range(4)],
                                       requested_features=wanted)
            took = []
            for _ in range(2):  # the first also teaches larder the view's width
                t0 = time.monotonic()
                reply = stub.OnlineRead(req, timeout=60)
                took.append(time.monotonic() - t0)
                for k, r in enumerate(reply.results):
                    self.assertEqual(len(r.features), named)
                    self.assertEqual(r.features["feature_00007"].int64_val, k * 100000 + 7)
                    self.assertNotIn("feature_%05d" % named, r.features)
            print("4 keys x %d stored, %d named in reverse: %s s" % (stored, named, ["%.2f" % t for t in took]))
            self.assertLess(max(took), 1.0 * SLOW)
            stub.Teardown(pb.TeardownRequest(tables=["wide"]), timeout=60)

    def test_reads_served_together_past_the_arena(self):
        """One worker, 32 concurrent OnlineReads of 3.2 MB each (50 features x 64,000 bytes,
        under max_message_bytes): served together they pass the worker's 64 MiB arena, and
        the reads that fail together are served again in halves, each with the whole arena:
        every read answers. (Retried on the arena the shared read had filled, a call of
        each batch that passed it failed with RESOURCE_EXHAUSTED.) The serving is the same
        on every store: SQLite."""
        if BACKEND != "sqlite":
            self.skipTest("reads served together are the worker's, whatever the store")
        calls = 32
        with harness.Server(larder={"workers": 1}) as server:
            stub = server.stub
            stub.Update(pb.UpdateRequest(tables_to_keep=["big"]), timeout=60)
            blob = os.urandom(self.VALUE_BYTES)
            for k in range(calls):
                stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="big", rows=[row(
                    key(driver_id=k), {"f%02d" % j: V(bytes_val=bytes([k, j]) + blob[2:]) for j in range(self.FEATURES)})]),
                    timeout=120)

            def read(k):
                code, details, reply = raw_call(server.channel, "OnlineRead", pb.OnlineReadRequest(
                    feature_view="big", entity_keys=[key(driver_id=k)]).SerializeToString(), timeout=60 * SLOW)
                if code != Code.OK:
                    return "%s %s" % (code, details[:80])
                got = pb.OnlineReadResponse.FromString(reply).results[0].features
                return "" if len(got) == self.FEATURES and got["f07"].bytes_val[:2] == bytes([k, 7]) else "wrong"

            failed = []
            rounds = 8  # each a chance for a batch to pass the arena: a retry on a full one fails a call
            for _ in range(rounds):
                with concurrent.futures.ThreadPoolExecutor(calls) as pool:
                    failed += [r for r in pool.map(read, range(calls)) if r]
            print("%d x %d concurrent reads of 3.2 MB: %d failed %s" % (rounds, calls, len(failed), failed[:2]))
            self.assertEqual(failed, [])
            stub.Teardown(pb.TeardownRequest(tables=["big"]), timeout=60)

    def test_call_memory_returned_after_a_burst(self):
        """64 concurrent OnlineWriteBatch calls of 3 MB each, then idle: larder's
        VmRSS comes back within 50 MiB of what it was before the burst."""
        skip_on_sanitizers(self)
        with harness.Server() as server:
            stub = server.stub
            stub.Update(pb.UpdateRequest(tables_to_keep=["burst"]), timeout=60)
            blob = os.urandom(self.VALUE_BYTES)

            def request(k):
                return pb.OnlineWriteBatchRequest(feature_view="burst", rows=[row(
                    key(driver_id=k), {"f%02d" % j: V(bytes_val=blob) for j in range(47)})])
            self.assertGreater(request(0).ByteSize(), 3000000)
            for k in range(4):  # warm up: every worker has served a write
                stub.OnlineWriteBatch(request(k), timeout=60)
            time.sleep(0.5)
            rss0 = server.status("VmRSS")
            payloads = [request(k) for k in range(64)]
            with concurrent.futures.ThreadPoolExecutor(64) as pool:
                replies = list(pool.map(lambda r: stub.OnlineWriteBatch(r, timeout=120), payloads))
            self.assertEqual([r.rows_written for r in replies], [1] * 64)
            peak = server.status("VmRSS")
            rss1 = server.rss_back_to(rss0, 50 * 1024)
            print("VmRSS before the burst %d KiB, right after %d KiB, idle %d KiB (%+.1f MiB)"
                  % (rss0, peak, rss1, (rss1 - rss0) / 1024))
            self.assertLess(rss1 - rss0, 50 * 1024, "the burst's memory stayed with larder")
            stub.Teardown(pb.TeardownRequest(tables=["burst"]), timeout=60)

    def test_batch_block_kept_under_load_and_given_back_when_idle(self):
        """Reads of 256 keys x 50 features of 256 bytes, one after another: a worker keeps
        the block its reads took (VmRSS stays up by at least 4 MiB between reads), and
        gives it back once no read came for a second (VmRSS back within 2 MiB)."""
        skip_on_sanitizers(self)
        # Two workers, so that eight reads give each of them two whatever the host's cores.
        with harness.Server(larder={"max_message_bytes": 16777216, "workers": 2}) as server:
            stub = server.stub
            stub.Update(pb.UpdateRequest(tables_to_keep=["kept"]), timeout=60)
            blob = os.urandom(256)  # a reply of 3.6 MB, under a client's 4 MiB
            for first in range(0, 256, 32):
                stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="kept", rows=[row(
                    key(driver_id=k), {"f%02d" % j: V(bytes_val=blob) for j in range(50)})
                    for k in range(first, first + 32)]), timeout=120)
            read = pb.OnlineReadRequest(feature_view="kept", entity_keys=[key(driver_id=k) for k in range(256)])

            def idle_rss():
                """VmRSS once a second passed without reads (and it stopped falling)."""
                time.sleep(1.5 * SLOW)
                rss = server.status("VmRSS")
                deadline = time.monotonic() + 5 * SLOW
                while time.monotonic() < deadline:
                    time.sleep(0.3)
                    now = server.status("VmRSS")
                    if now >= rss:
                        break
                    rss = now
                return rss

            self.assertEqual(len(stub.OnlineRead(read, timeout=60).results), 256)  # caches, connections
            rss0 = idle_rss()
            for _ in range(8):  # every worker reads twice: the second read fills the kept block
                self.assertEqual(len(stub.OnlineRead(read, timeout=60).results[255].features), 50)
            kept = server.status("VmRSS")
            rss1 = server.rss_back_to(rss0, 2 * 1024)
            print("VmRSS idle %d KiB, between reads %d KiB (%+.1f MiB), idle again %d KiB (%+.1f MiB)"
                  % (rss0, kept, (kept - rss0) / 1024, rss1, (rss1 - rss0) / 1024))
            self.assertGreaterEqual(kept - rss0, 4 * 1024, "the workers did not keep their blocks between reads")
            self.assertLess(rss1 - rss0, 2 * 1024, "the kept blocks stayed with larder when it went idle")
            stub.Teardown(pb.TeardownRequest(tables=["kept"]), timeout=60)

    # ---- item 8a: MySQL columns wider than Feast's ----
    def test_mysql_wider_columns(self):
        """feature_name VARCHAR(2000) and value LONGBLOB; a row of a 1,500-character
        feature name and a 100 KB value reads back whole (or a clear, non-INTERNAL
        error), and larder does not crash."""
        if BACKEND != "mysql":
            self.skipTest("MySQL only")
        from test_compat_mysql import connect
        from test_compat_postgres import serialize_v3
        with harness.Server(project="wide") as server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["w"]), timeout=30)
            table = "%s_w" % server.project
            name = "".join("n%04d_" % i for i in range(300))[:1500]
            value = V(bytes_val=os.urandom(100000))
            conn = connect()
            try:
                with conn.cursor() as cur:
                    cur.execute("ALTER TABLE %s DROP PRIMARY KEY, MODIFY feature_name VARCHAR(2000), "
                                "MODIFY value LONGBLOB" % table)
                    cur.execute("INSERT INTO %s (entity_key, feature_name, value, event_ts) VALUES (%%s, %%s, %%s, %%s)"
                                % table, (serialize_v3(1).hex(), name, value.SerializeToString(),
                                          datetime.datetime(2024, 1, 2, 3, 4, 5)))
                code, details, reply = raw_call(server.channel, "OnlineRead", pb.OnlineReadRequest(
                    feature_view="w", entity_keys=[key(driver_id=1)]).SerializeToString())
                try:  # a client sees UNAVAILABLE when the process dies under it (ASan aborts it)
                    server.proc.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
                alive = server.proc.poll() is None
                try:
                    got = pb.OnlineReadResponse.FromString(reply) if reply is not None else None
                except Exception as e:  # a name cut inside, or bytes from past a buffer
                    self.fail("the reply does not decode (%s): %d bytes, feature name bytes seen: %r"
                              % (e, len(reply), reply[10:80]))
                names = [len(n) for n in got.results[0].features] if got else None
                print("read of a 1,500-character name and a 100 KB value: %s %r; names of lengths %s; larder %s"
                      % (code.name, details[:100], names, "alive" if alive else "exited %s" % server.proc.poll()))
                self.assertTrue(alive)
                if code == Code.OK:
                    self.assertTrue(got.results[0].found)
                    self.assertEqual(list(got.results[0].features), [name])
                    self.assertEqual(got.results[0].features[name], value)
                else:  # a clear refusal is allowed, never a driver failure passed off as INTERNAL
                    self.assertIn(code, (Code.INVALID_ARGUMENT, Code.FAILED_PRECONDITION, Code.OUT_OF_RANGE,
                                         Code.RESOURCE_EXHAUSTED), details)
                self.assertTrue(server.stub.OnlineRead(pb.OnlineReadRequest(feature_view="w", entity_keys=[
                    key(driver_id=2)]), timeout=10).results[0].found is False)
            finally:
                with conn.cursor() as cur:
                    cur.execute("DROP TABLE IF EXISTS %s" % table)
                conn.close()

    # ---- item 8b: far-future timestamps and huge deadlines ----
    def test_far_future_timestamps(self):
        """event_ts in year 9999 reads back as written through OnlineRead and through
        GetOnlineFeatures of a view with a TTL (PRESENT: it is not expired). MySQL
        stores 1970-2038 only: there the write is INVALID_ARGUMENT."""
        from test_serving import INT64, entity, view, write_registry
        from feast.core import Registry_pb2 as reg
        server = harness.Server(registry="{path: registry.db, cache_ttl_seconds: 1}")
        r = reg.Registry(registry_schema_version="1", version_id="t")
        r.entities.append(entity(server.project, "driver", INT64, "driver_id"))
        r.feature_views.append(view(server.project, "far", ["driver"], [("f", INT64)], ttl=3600,
                                    columns=[("driver_id", INT64)]))
        write_registry(os.path.join(server.tmpdir, "registry.db"), r)
        with server:
            stub = server.stub
            stub.Update(pb.UpdateRequest(tables_to_keep=["far"]), timeout=30)
            write = pb.OnlineWriteBatchRequest(feature_view="far", rows=[row(key(driver_id=1), {"f": V(int64_val=5)},
                                                                            ts=FAR, created=FAR)])
            if BACKEND == "mysql":
                code, details, _ = raw_call(server.channel, "OnlineWriteBatch", write.SerializeToString())
                self.assertEqual(code, Code.INVALID_ARGUMENT, details)
                self.assertTrue(details.startswith("rows[0].event_ts"), details)
            else:
                stub.OnlineWriteBatch(write, timeout=30)
                got = stub.OnlineRead(pb.OnlineReadRequest(feature_view="far", entity_keys=[key(driver_id=1)]),
                                      timeout=30).results[0]
                self.assertEqual((got.found, got.event_ts.seconds, got.features["f"].int64_val), (True, FAR, 5))
                serving = sv_rpc.ServingServiceStub(server.channel)
                req = sv.GetOnlineFeaturesRequest(features=sv.FeatureList(val=["far:f"]))
                req.entities["driver_id"].val.add().int64_val = 1
                deadline = time.monotonic() + 10
                while True:  # the registry is read at start; wait until it serves
                    try:
                        resp = serving.GetOnlineFeatures(req, timeout=30)
                        break
                    except grpc.RpcError as e:
                        if e.code() != Code.FAILED_PRECONDITION or time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                col = resp.results[1]
                print("GetOnlineFeatures of a year-9999 value, TTL 3600 s: status %s, event_ts %d, value %d"
                      % (sv.FieldStatus.Name(col.statuses[0]), col.event_timestamps[0].seconds, col.values[0].int64_val))
                self.assertEqual(sv.FieldStatus.Name(col.statuses[0]), "PRESENT")
                self.assertEqual(col.event_timestamps[0].seconds, FAR)
                self.assertEqual(col.values[0].int64_val, 5)

    def test_huge_deadlines(self):
        """Calls with a deadline of 10^9 seconds (about 31 years) are served: Update,
        a write, a read, a readiness Check (the database's own timeout cannot be
        that long; it must not overflow or be refused)."""
        with harness.Server() as server:
            stub = server.stub
            results = {}
            for name, call in (
                    ("Update", lambda: stub.Update(pb.UpdateRequest(tables_to_keep=["far"]), timeout=1e9)),
                    ("OnlineWriteBatch", lambda: stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
                        feature_view="far", rows=[row(key(driver_id=2), {"f": V(int64_val=6)})]), timeout=1e9)),
                    ("OnlineRead", lambda: stub.OnlineRead(pb.OnlineReadRequest(
                        feature_view="far", entity_keys=[key(driver_id=2)]), timeout=1e9).results[0].features["f"].int64_val),
                    ("Check", lambda: check_stub(server.channel)(H.HealthCheckRequest(service="larder.v1.OnlineStore"),
                                                                 timeout=1e9).status == SERVING)):
                try:
                    results[name] = call()
                except grpc.RpcError as e:
                    results[name] = "%s %s" % (e.code().name, e.details())
            print("deadline of 10^9 s:", results)
            self.assertEqual([results[m] for m in ("OnlineRead", "Check")], [6, True], results)

    def test_compressed_requests_refused(self):
        """gRPC would inflate a compressed request without a bound before larder
        saw it (4 MiB of gzip can hold gigabytes): compressed calls are
        UNIMPLEMENTED naming the algorithm, and uncompressed ones go on."""
        with harness.Server() as server:
            stub = server.stub
            stub.Update(pb.UpdateRequest(tables_to_keep=["zip"]), timeout=10)
            write = pb.OnlineWriteBatchRequest(feature_view="zip", rows=[row(key(driver_id=3), {"f": V(int64_val=7)})])
            read = pb.OnlineReadRequest(feature_view="zip", entity_keys=[key(driver_id=3)])
            for name, call in (("OnlineWriteBatch", lambda: stub.OnlineWriteBatch(
                                    write, timeout=10, compression=grpc.Compression.Gzip)),
                               ("OnlineRead", lambda: stub.OnlineRead(
                                   read, timeout=10, compression=grpc.Compression.Deflate))):
                with self.assertRaises(grpc.RpcError, msg=name) as cm:
                    call()
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED, cm.exception.details())
            self.assertFalse(stub.OnlineRead(read, timeout=10).results[0].found)  # the compressed write did nothing
            stub.OnlineWriteBatch(write, timeout=10)
            self.assertEqual(stub.OnlineRead(read, timeout=10).results[0].features["f"].int64_val, 7)
            print("compressed calls:", cm.exception.code().name, cm.exception.details())

    # ---- item 8d: a view named like another view's index ----
    def test_view_named_like_an_index(self):
        """Views x and x_ek: in one Update, INVALID_ARGUMENT naming tables_to_keep[1];
        one after the other (either order), FAILED_PRECONDITION naming the
        collision; never INTERNAL."""
        with harness.Server() as server:
            stub = server.stub
            code, details, _ = raw_call(server.channel, "Update",
                                        pb.UpdateRequest(tables_to_keep=["x", "x_ek"]).SerializeToString())
            print("Update([x, x_ek]): %s %r" % (code.name, details))
            self.assertEqual(code, Code.INVALID_ARGUMENT, details)
            self.assertTrue(details.startswith("tables_to_keep[1]"), details)
            for first, second in (("x", "x_ek"), ("y_ek", "y")):
                stub.Update(pb.UpdateRequest(tables_to_keep=[first]), timeout=30)
                code, details, _ = raw_call(server.channel, "Update",
                                            pb.UpdateRequest(tables_to_keep=[second]).SerializeToString())
                print("Update([%s]) then Update([%s]): %s %r" % (first, second, code.name, details))
                self.assertEqual(code, Code.FAILED_PRECONDITION, details)
                self.assertTrue(details.startswith("tables_to_keep[0]"), details)
                self.assertIn("%s_%s" % (server.project, "x_ek" if first == "x" else "y_ek"), details)
                # The first view still works.
                stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view=first, rows=[
                    row(key(driver_id=1), {"f": V(int64_val=1)})]), timeout=30)
                stub.Teardown(pb.TeardownRequest(tables=[first, second]), timeout=30)


if __name__ == "__main__":
    unittest.main(verbosity=2)
