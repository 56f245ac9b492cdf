#!/usr/bin/python3
"""Idle streams must not hold the server (issue 10, item 3): a raw HTTP/2
client (python3-h2) opens gRPC calls and never sends their message. The token
is checked as soon as a call is matched, a message that never comes ends the
call after larder.receive_timeout_s, each connection is limited to
larder.max_concurrent_streams (advertised in SETTINGS), a health Watch ends
after larder.watch_max_s without holding its request's memory, and hundreds
of idle streams leave every other client, probes included, answered within a
second. Runs on SQLite: this is the transport's behaviour, the same for every
store."""
import os
import socket
import sys
import tempfile
import time
import unittest

import h2.exceptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SLOW, Value_pb2, grpc, key, pb, row  # noqa: E402
from harness import health_pb2 as H  # noqa: E402
from harness import reflection_pb2 as R  # noqa: E402
from rawnet import RawH2  # noqa: E402

Code = grpc.StatusCode
READ = "/larder.v1.OnlineStore/OnlineRead"
CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
REFLECT = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
SERVING = H.HealthCheckResponse.SERVING


def check_stub(channel):
    return channel.unary_unary(CHECK, request_serializer=H.HealthCheckRequest.SerializeToString,
                               response_deserializer=H.HealthCheckResponse.FromString)


def watch_stub(channel):
    return channel.unary_stream(WATCH, request_serializer=H.HealthCheckRequest.SerializeToString,
                                response_deserializer=H.HealthCheckResponse.FromString)


def small_read():
    return pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=1)])


def seed(stub, metadata=None):
    stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10, metadata=metadata)
    stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
        feature_view="v", rows=[row(key(driver_id=1), {"f": Value_pb2.Value(int64_val=7)})]),
        timeout=10, metadata=metadata)


def timed(fn):
    t0 = time.monotonic()
    try:
        return fn(), None, time.monotonic() - t0
    except grpc.RpcError as e:
        return None, e, time.monotonic() - t0


class IdleStreams(unittest.TestCase):
    def test_token_checked_before_the_message(self):
        """With auth on, a call that sends its headers and never its message is
        UNAUTHENTICATED at once, not after a timeout (nor never)."""
        folder = tempfile.mkdtemp(prefix="larder-tok-")
        path = os.path.join(folder, "tokens")
        token = "tok-" + os.urandom(8).hex()
        with open(path, "w") as f:
            f.write(token + "\n")
        with harness.Server(larder={"auth": "{tokens_file: %s}" % path}) as server:
            raw = RawH2(server.port)
            try:
                sids = [raw.open(READ), raw.open("/larder.v1.OnlineStore/OnlineWriteBatch"),
                        raw.open(READ, metadata=[("authorization", "Bearer wrong-" + token)])]
                raw.wait(lambda: all(raw.status(s) is not None for s in sids), 1.0 * SLOW)
                got = {s: (raw.status(s), round(raw.ended.get(s, time.monotonic()) - raw.opened[s], 2))
                       for s in sids}
                print("status and seconds per stream:", got)
                for s in sids:
                    self.assertEqual(raw.status(s), Code.UNAUTHENTICATED.value[0],
                                     "stream %d: no UNAUTHENTICATED within %.0f s (headers %s)"
                                     % (s, 1.0 * SLOW, raw.headers.get(s)))
            finally:
                raw.close()

    def test_receive_timeout(self):
        """larder.receive_timeout_s: a matched call whose message does not arrive in
        time ends with DEADLINE_EXCEEDED; the slot serves other calls afterwards."""
        with harness.Server(larder={"receive_timeout_s": 1}) as server:
            seed(server.stub)
            raw = RawH2(server.port)
            try:
                sid = raw.open(READ)
                raw.wait(lambda: raw.status(sid) is not None, 1 + 3.0 * SLOW)
                took = raw.ended.get(sid, time.monotonic()) - raw.opened[sid]
                print("idle call ended with %s after %.2f s" % (raw.status(sid), took))
                self.assertEqual(raw.status(sid), Code.DEADLINE_EXCEEDED.value[0], raw.headers.get(sid))
                self.assertGreaterEqual(took, 0.9)
                self.assertLess(took, 1 + 2.0 * SLOW)
            finally:
                raw.close()
            self.assertTrue(server.stub.OnlineRead(small_read(), timeout=10).results[0].found)

    def test_silent_connections_closed_after_receive_timeout(self):
        """A new connection that has not sent its HTTP/2 preface and SETTINGS within
        larder.receive_timeout_s is closed (gRPC's own bound is 120 s); one that
        did stays open however long it is idle, and takes calls."""
        with harness.Server(larder={"receive_timeout_s": 1}) as server:
            ready = RawH2(server.port)
            self.addCleanup(ready.close)
            sends = {"nothing": b"", "half the preface": b"PRI * HTTP/2.0\r\n",
                     "the preface without SETTINGS": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"}
            socks, t0 = {}, time.monotonic()
            for what, data in sends.items():
                socks[what] = socket.create_connection(("127.0.0.1", server.port))
                self.addCleanup(socks[what].close)
                socks[what].sendall(data)
            closed = {}
            for what, s in socks.items():
                s.settimeout(max(0.1, t0 + 1 + 2.0 * SLOW - time.monotonic()))
                try:
                    while s.recv(4096):  # the server's SETTINGS, then the end
                        pass
                    closed[what] = time.monotonic() - t0
                except ConnectionResetError:
                    closed[what] = time.monotonic() - t0
                except socket.timeout:
                    closed[what] = None
            print("closed after (s):", closed)
            for what, took in closed.items():
                self.assertIsNotNone(took, "a connection that sent %s is open after %.0f s"
                                     % (what, 1 + 2.0 * SLOW))
                self.assertGreaterEqual(took, 0.9, what)
            sid = ready.open(CHECK, message=H.HealthCheckRequest().SerializeToString())
            ready.wait(lambda: ready.status(sid) is not None, 1.0 * SLOW)
            self.assertEqual(ready.status(sid), 0, ready.headers.get(sid))

    def test_max_concurrent_streams_advertised(self):
        """SETTINGS_MAX_CONCURRENT_STREAMS is 100 by default, or the configured value."""
        with harness.Server() as server:
            raw = RawH2(server.port)
            self.addCleanup(raw.close)
            print("default SETTINGS:", raw.settings)
            self.assertEqual(raw.max_concurrent_streams(), 100, "SETTINGS %s" % raw.settings)
        with harness.Server(larder={"max_concurrent_streams": 7}) as server:
            raw = RawH2(server.port)
            self.addCleanup(raw.close)
            self.assertEqual(raw.max_concurrent_streams(), 7, "SETTINGS %s" % raw.settings)

    def test_watch_keeps_no_request_memory(self):
        """A health Watch needs no token and lasts up to larder.watch_max_s (an hour):
        it keeps the service's name, not the memory its request took. 20 Watches for
        services named by 3 MB each (answered SERVICE_UNKNOWN, and left open) grow
        larder's VmRSS by less than 48 MiB; keeping each request's decoded copy, they
        grew it by 120 MiB. A Watch of the server ("") still answers SERVING."""
        if SLOW > 1:
            self.skipTest("memory is measured on the normal build")
        with harness.Server() as server:
            channel = grpc.insecure_channel(server.addr)
            self.addCleanup(channel.close)
            watch = watch_stub(channel)
            rss0 = server.status("VmRSS")
            streams = []
            for i in range(20):
                stream = watch(H.HealthCheckRequest(service="s%d" % i + "x" * 3000000), timeout=120)
                self.assertEqual(next(stream).status, H.HealthCheckResponse.SERVICE_UNKNOWN)
                streams.append(stream)
            time.sleep(0.5)
            rss1 = server.status("VmRSS")
            print("20 Watches of 3 MB names: VmRSS %d -> %d KiB (+%.1f MiB)" % (rss0, rss1, (rss1 - rss0) / 1024))
            self.assertLess(rss1 - rss0, 48 * 1024)
            self.assertEqual(next(watch(H.HealthCheckRequest(service=""), timeout=10)).status, SERVING)
            for stream in streams:
                stream.cancel()

    def test_reply_not_taken_ends_the_stream(self):
        """A reflection stream whose client stops reading (it sends no WINDOW_UPDATE):
        the reply, 200 KB with the host it echoes, passes HTTP/2's 64 KiB window and
        its send waits. larder.receive_timeout_s (1 s here) ends the stream, as it ends a
        unary call whose reply is not taken; no other timer did, so the stream held its
        call and memory for as long as the client kept the connection."""
        with harness.Server(larder={"receive_timeout_s": 1}) as server:
            raw = RawH2(server.port)
            self.addCleanup(raw.close)
            raw.ack = False
            req = R.ServerReflectionRequest(host="h" * 100000, list_services="")
            sid = raw.open(REFLECT, message=req.SerializeToString())
            raw.wait(lambda: sid in raw.ended, 1 + 3.0 * SLOW)
            took = raw.ended.get(sid, time.monotonic()) - raw.opened[sid]
            print("a reply not taken: the stream ended after %.2f s (%s, reset %s)"
                  % (took, raw.headers.get(sid, {}).get("grpc-status"), raw.reset.get(sid)))
            self.assertIn(sid, raw.ended, "the stream did not end within %.0f s" % (1 + 3.0 * SLOW))
            self.assertGreaterEqual(took, 0.9)
        with harness.Server() as server:  # a client that reads gets the whole reply
            channel = grpc.insecure_channel(server.addr)
            self.addCleanup(channel.close)
            info = channel.stream_stream(REFLECT, request_serializer=R.ServerReflectionRequest.SerializeToString,
                                         response_deserializer=R.ServerReflectionResponse.FromString)
            got = list(info(iter([req]), timeout=10))
            self.assertEqual(len(got[0].valid_host), 100000)

    def test_watch_ends_after_watch_max_s(self):
        """larder.watch_max_s: a health Watch ends with status OK after that long."""
        with harness.Server(larder={"watch_max_s": 1}) as server:
            t0 = time.monotonic()
            stream = watch_stub(server.channel)(H.HealthCheckRequest(service=""), timeout=10 * SLOW)
            self.assertEqual(next(stream).status, SERVING)
            try:
                rest = list(stream)  # ends normally: no RpcError
            except grpc.RpcError as e:
                self.fail("the Watch ended with %s %r after %.1f s instead of OK after ~1 s"
                          % (e.code(), e.details(), time.monotonic() - t0))
            took = time.monotonic() - t0
            print("Watch ended OK after %.2f s with %d more messages" % (took, len(rest)))
            self.assertGreaterEqual(took, 0.9)
            self.assertLess(took, 1 + 2.0 * SLOW)

    def test_keepalive_pings_an_idle_connection(self):
        """larder.keepalive_time_s pings a connection with no call on it, the one whose peer
        may have vanished (gRPC pings only connections with calls unless told otherwise)."""
        import socket
        import h2.config
        import h2.connection
        import h2.events
        with harness.Server(larder={"keepalive_time_s": 1, "keepalive_timeout_s": 5}) as server:
            s = socket.create_connection(("127.0.0.1", server.port))
            self.addCleanup(s.close)
            c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            c.initiate_connection()
            s.sendall(c.data_to_send())
            s.settimeout(0.2)
            pings, end = 0, time.monotonic() + 4.5
            while time.monotonic() < end:
                try:
                    data = s.recv(65535)
                except socket.timeout:
                    continue
                self.assertTrue(data, "the server closed the idle connection")
                pings += sum(isinstance(e, h2.events.PingReceived) for e in c.receive_data(data))
                s.sendall(c.data_to_send())  # the answers
            print("pings on an idle connection in 4.5 s with keepalive_time_s 1: %d" % pings)
            self.assertGreaterEqual(pings, 3)

    def test_watch_closed_without_its_request(self):
        """A Watch whose client half-closes without sending its HealthCheckRequest ends
        with INVALID_ARGUMENT at once. It used to stay open past watch_max_s and
        receive_timeout_s (no timer looked at it), so tokenless clients could fill
        the stream slots with them and push out real Watches, and a shutdown waited
        its whole grace period for them."""
        with harness.Server(larder={"watch_max_s": 2, "receive_timeout_s": 2, "grace_period_s": 8}) as server:
            bare = server.channel.stream_stream(WATCH, request_serializer=H.HealthCheckRequest.SerializeToString,
                                                response_deserializer=H.HealthCheckResponse.FromString)
            t0 = time.monotonic()
            with self.assertRaises(grpc.RpcError) as cm:
                list(bare(iter([]), timeout=10 * SLOW))
            took = time.monotonic() - t0
            print("Watch without a request: %s %r after %.2f s" % (cm.exception.code(), cm.exception.details(), took))
            self.assertEqual(cm.exception.code(), Code.INVALID_ARGUMENT, cm.exception.details())
            self.assertLess(took, 1.0 * SLOW)
            # Another one left open while the server stops: the stop does not wait for it.
            pending = bare(iter([]), timeout=30)
            time.sleep(0.2)
            t0 = time.monotonic()
            server.proc.terminate()
            self.assertEqual(server.proc.wait(timeout=30), 0)
            took = time.monotonic() - t0
            print("stopped in %.2f s" % took)
            self.assertLess(took, 3.0 * SLOW)
            with self.assertRaises(grpc.RpcError):
                list(pending)

    def test_watch_waiting_for_its_request_ends_on_sigterm(self):
        """A Watch whose request has not come (the client keeps its side open) is ended
        with UNAVAILABLE when the server stops: the stop does not wait for its
        receive_timeout_s or the whole grace period."""
        with harness.Server(larder={"receive_timeout_s": 30, "grace_period_s": 30}) as server:
            raw = RawH2(server.port)
            try:
                sid = raw.open(WATCH)
                time.sleep(0.3)
                t0 = time.monotonic()
                server.proc.terminate()
                self.assertEqual(server.proc.wait(timeout=60), 0)
                took = time.monotonic() - t0
                try:
                    raw.wait(lambda: raw.status(sid) is not None, 2)
                except h2.exceptions.ProtocolError:  # frames after the server's GOAWAY
                    raw.terminated = raw.terminated or "GOAWAY"
                print("stopped with a request-less Watch open in %.2f s: status %s, %s" % (
                    took, raw.status(sid), raw.terminated))
                self.assertLess(took, 3.0 * SLOW)
                # Ended by the server: UNAVAILABLE, or the connection closed with its GOAWAY.
                self.assertIn(raw.status(sid), (Code.UNAVAILABLE.value[0], None), raw.headers.get(sid))
                self.assertTrue(raw.status(sid) is not None or raw.terminated, "the Watch was left open")
            finally:
                raw.close()

    def test_calls_ended_to_make_room_logged_once_a_second(self):
        """A worker holds at most 1024 unary calls in flight; past that it ends the one
        that waited longest on its client (RESOURCE_EXHAUSTED) and says so in its log,
        at most once a second, with how many it ended since: 1,200 idle calls on one
        worker end some hundreds (754 here: the contexts it keeps requested count too),
        in a line or two, not 754 (a client opens calls faster than a log should grow,
        and health calls need no token)."""
        with harness.Server(larder={"workers": 1, "receive_timeout_s": 60}) as server:
            conns = []
            try:
                for _ in range(12):
                    raw = RawH2(server.port)
                    raw.sids = [raw.open(READ) for _ in range(100)]
                    conns.append(raw)

                def ended():
                    return [raw.status(s) for raw in conns for s in raw.sids if raw.status(s) is not None]
                deadline = time.monotonic() + 5 * SLOW
                while len(ended()) < 1200 - 1024 and time.monotonic() < deadline:
                    for raw in conns:
                        raw.pump(0.02)
                codes = ended()
                lines = [line for line in server.read_log().splitlines() if "to make room" in line]
                print("%d calls ended, %d of them RESOURCE_EXHAUSTED; %d log lines: %s"
                      % (len(codes), codes.count(Code.RESOURCE_EXHAUSTED.value[0]), len(lines), lines[-1:]))
                self.assertGreaterEqual(codes.count(Code.RESOURCE_EXHAUSTED.value[0]), 1200 - 1024)
                self.assertGreaterEqual(len(lines), 1)
                self.assertLessEqual(len(lines), 3)
            finally:
                for raw in conns:
                    raw.close()

    def test_idle_streams_do_not_starve_clients(self):
        """Default settings. Four connections of 100 idle calls each (OnlineRead and
        health Check: HEADERS, never DATA) and 20 health Watch streams. Meanwhile
        another client's health Check and a small OnlineRead answer within 1 s,
        and the idle calls end DEADLINE_EXCEEDED after receive_timeout_s (10 s)."""
        with harness.Server() as server:
            seed(server.stub)
            conns = []
            try:
                for path in (READ, CHECK, READ, CHECK):
                    raw = RawH2(server.port)
                    limit = raw.max_concurrent_streams() or 100
                    raw.sids = [raw.open(path) for _ in range(min(100, limit))]
                    raw.path = path
                    conns.append(raw)
                watcher = RawH2(server.port)
                watch_req = H.HealthCheckRequest(service="").SerializeToString()
                watcher.sids = [watcher.open(WATCH, message=watch_req) for _ in range(20)]
                watcher.path = WATCH
                conns.append(watcher)
                opened = time.monotonic()
                for raw in conns:
                    raw.pump(0.1)
                idle = sum(len(c.sids) for c in conns)
                # Another client, connected before the clock starts.
                other = grpc.insecure_channel(server.addr)
                grpc.channel_ready_future(other).result(timeout=10)
                bound = 1.0 * SLOW
                reply, err, took_check = timed(lambda: check_stub(other)(H.HealthCheckRequest(service=""),
                                                                         timeout=bound))
                check_result = "SERVING" if reply is not None and reply.status == SERVING else err and err.code()
                reply, err, took_read = timed(lambda: harness.rpc.OnlineStoreStub(other).OnlineRead(
                    small_read(), timeout=bound))
                read_result = "found" if reply is not None and reply.results[0].found else err and err.code()
                print("%d idle streams open; health Check: %s in %.2f s; OnlineRead: %s in %.2f s"
                      % (idle, check_result, took_check, read_result, took_read))
                other.close()
                self.assertEqual(check_result, "SERVING", "health Check starved by idle streams")
                self.assertLess(took_check, bound)
                self.assertEqual(read_result, "found", "OnlineRead starved by idle streams")
                self.assertLess(took_read, bound)
                # The calls that never sent their message end after receive_timeout_s (default 10).
                reads = [c for c in conns if c.path == READ]
                for raw in reads:
                    raw.wait(lambda: all(raw.status(s) is not None for s in raw.sids),
                             opened + 10 + 3.0 * SLOW - time.monotonic())
                codes = {}
                for raw in reads:
                    for s in raw.sids:
                        codes[raw.status(s)] = codes.get(raw.status(s), 0) + 1
                print("idle OnlineRead calls, by final grpc-status:", codes)
                self.assertEqual(codes, {Code.DEADLINE_EXCEEDED.value[0]: sum(len(c.sids) for c in reads)})
            finally:
                for raw in conns:
                    raw.close()
            self.assertIsNone(server.proc.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
