#!/usr/bin/python3
"""The unary call state machine (service/call.c, worker.c), one transition at
a time, through the real server with a raw HTTP/2 client (python3-h2):

- headers, then the message: REQUESTED -> RECEIVING -> SENDING, status OK;
- headers, then RST_STREAM before the message: RECEIVING ends, CANCELLED;
- headers, then the end of the stream without a message: INVALID_ARGUMENT;
- headers and never a message: ended after larder.receive_timeout_s (1 s)
  with DEADLINE_EXCEEDED;
- an unknown method: UNIMPLEMENTED at once, without reading the message;
- a reply the client never reads (its stream window is 0): SENDING ends after
  receive_timeout_s, and the slot is reused: 200 calls afterwards succeed.

After each, /metrics (larder.metrics_listen) must count the call exactly once
as started and once as handled, with the status it ended with. Runs on
SQLite: the call states are the same for every store."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SLOW, Value_pb2, grpc, key, pb, row  # noqa: E402
from rawnet import RawH2  # noqa: E402
from test_mesh import parse_exposition, scrape  # noqa: E402

import h2.settings  # noqa: E402

Code = grpc.StatusCode
READ = "/larder.v1.OnlineStore/OnlineRead"
UNKNOWN = "/no.such.Service/Method"
RECEIVE_TIMEOUT_S = 1

READ_LABELS = {"grpc_type": "unary", "grpc_service": "larder.v1.OnlineStore", "grpc_method": "OnlineRead"}
UNKNOWN_LABELS = {"grpc_type": "unary", "grpc_service": "unknown", "grpc_method": "unknown"}


def read_request():
    return pb.OnlineReadRequest(feature_view="v", entity_keys=[key(driver_id=1)])


def counts(port):
    """{(family, method labels..., code): value} of the started and handled counters."""
    samples, _ = parse_exposition(scrape(port)[1])
    out = {}
    for (name, labels), value in samples.items():
        if name in ("grpc_server_started_total", "grpc_server_handled_total"):
            out[(name, labels)] = value
    return out


def delta(before, after):
    """What changed, as {(family, grpc_service, grpc_method, grpc_code or None): increase}."""
    out = {}
    for k, v in after.items():
        d = v - before.get(k, 0)
        if d:
            name, labels = k
            ls = dict(labels)
            out[(name, ls["grpc_service"], ls["grpc_method"], ls.get("grpc_code"))] = d
    return out


def expect(labels, code, n=1):
    s, m = labels["grpc_service"], labels["grpc_method"]
    return {("grpc_server_started_total", s, m, None): n, ("grpc_server_handled_total", s, m, code): n}


class CallStates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.metrics_port = harness.free_port()
        cls.server = harness.Server(larder={"receive_timeout_s": RECEIVE_TIMEOUT_S,
                                            "metrics_listen": "127.0.0.1:%d" % cls.metrics_port})
        cls.server.start()
        stub = cls.server.stub
        stub.Update(pb.UpdateRequest(tables_to_keep=["v"]), timeout=10)
        stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(
            feature_view="v", rows=[row(key(driver_id=1), {"f": Value_pb2.Value(string_val="x" * 100)})]),
            timeout=10)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code not in (0, None):
            raise AssertionError("larder exited with %s:\n%s" % (code, cls.server.read_log()[-4000:]))

    def raw(self):
        raw = RawH2(self.server.port)
        self.addCleanup(raw.close)
        return raw

    def assert_counted(self, before, want, what):
        """Waits (a call's end is counted as it ends) until the counters moved by
        exactly `want`, and stay there."""
        got = {}
        end = time.monotonic() + 3 * SLOW
        while time.monotonic() < end:
            got = delta(before, counts(self.metrics_port))
            if got == want:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        got = delta(before, counts(self.metrics_port))
        print("%s: counted %s" % (what, sorted(got.items())))
        self.assertEqual(got, want, "%s: the call was not counted once started and once handled" % what)

    def test_1_headers_then_message(self):
        before = counts(self.metrics_port)
        raw = self.raw()
        sid = raw.open(READ, message=read_request().SerializeToString())
        self.assertTrue(raw.wait(lambda: sid in raw.ended, 5 * SLOW), "no end: %s" % raw.headers.get(sid))
        self.assertEqual(raw.status(sid), 0, raw.headers.get(sid))
        self.assertNotIn(sid, raw.reset)
        self.assert_counted(before, expect(READ_LABELS, "OK"), "headers then message")

    def test_2_cancel_before_the_message(self):
        before = counts(self.metrics_port)
        raw = self.raw()
        sid = raw.open(READ)
        raw.pump(0.2)  # the server has matched the call and waits for its message
        raw.conn.reset_stream(sid, error_code=8)  # CANCEL
        raw.flush()
        raw.pump(0.2)
        self.assertIsNone(raw.status(sid), "the server answered a cancelled call: %s" % raw.headers.get(sid))
        self.assert_counted(before, expect(READ_LABELS, "Canceled"), "cancelled before the message")

    def test_2b_closed_without_a_message(self):
        before = counts(self.metrics_port)
        raw = self.raw()
        sid = raw.open(READ)
        raw.conn.end_stream(sid)  # an empty DATA frame with END_STREAM: no message at all
        raw.flush()
        self.assertTrue(raw.wait(lambda: raw.status(sid) is not None, 5 * SLOW), raw.headers.get(sid))
        self.assertEqual(raw.status(sid), Code.INVALID_ARGUMENT.value[0], raw.headers.get(sid))
        self.assertIn("no message was sent", raw.headers[sid].get("grpc-message", ""))
        self.assert_counted(before, expect(READ_LABELS, "InvalidArgument"), "closed without a message")

    def test_3_message_never_sent(self):
        before = counts(self.metrics_port)
        raw = self.raw()
        sid = raw.open(READ)
        raw.wait(lambda: raw.status(sid) is not None, RECEIVE_TIMEOUT_S + 3 * SLOW)
        took = raw.ended.get(sid, time.monotonic()) - raw.opened[sid]
        self.assertEqual(raw.status(sid), Code.DEADLINE_EXCEEDED.value[0], raw.headers.get(sid))
        self.assertIn("receive_timeout_s", raw.headers[sid].get("grpc-message", ""))
        self.assertGreaterEqual(took, RECEIVE_TIMEOUT_S * 0.9)
        self.assert_counted(before, expect(READ_LABELS, "DeadlineExceeded"), "message never sent")

    def test_4_unknown_method_not_read(self):
        """UNIMPLEMENTED as soon as the headers arrive: the message is never waited for."""
        before = counts(self.metrics_port)
        raw = self.raw()
        sid = raw.open(UNKNOWN)  # headers only
        raw.wait(lambda: raw.status(sid) is not None, 0.5 * RECEIVE_TIMEOUT_S * SLOW)
        self.assertEqual(raw.status(sid), Code.UNIMPLEMENTED.value[0],
                         "no UNIMPLEMENTED within half the receive timeout: %s" % raw.headers.get(sid))
        self.assertIn("no.such.Service/Method", raw.headers[sid].get("grpc-message", ""))
        self.assert_counted(before, expect(UNKNOWN_LABELS, "Unimplemented"), "unknown method")

    def test_5_reply_never_read(self):
        """A client that takes no reply data (stream window 0) holds its call only
        until receive_timeout_s; the slot then serves other calls."""
        before = counts(self.metrics_port)
        raw = self.raw()
        raw.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        raw.flush()
        raw.pump(0.2)
        sid = raw.open(READ, message=read_request().SerializeToString())
        raw.wait(lambda: sid in raw.ended, RECEIVE_TIMEOUT_S + 3 * SLOW)
        took = raw.ended.get(sid, time.monotonic()) - raw.opened[sid]
        print("unread reply: ended after %.2f s, reset %s, headers %s"
              % (took, raw.reset.get(sid), raw.headers.get(sid)))
        self.assertIn(sid, raw.ended, "the call whose reply is never read did not end")
        self.assertEqual(raw.status(sid), Code.DEADLINE_EXCEEDED.value[0], raw.headers.get(sid))
        self.assertIn("reply was not taken", raw.headers[sid].get("grpc-message", ""))
        self.assertGreaterEqual(took, RECEIVE_TIMEOUT_S * 0.9)
        self.assertLess(took, RECEIVE_TIMEOUT_S + 2 * SLOW)
        # The server produced its reply (OK) before the client stalled: counted once, as OK.
        self.assert_counted(before, expect(READ_LABELS, "OK"), "reply never read")
        before = counts(self.metrics_port)
        for i in range(200):
            self.assertTrue(self.server.stub.OnlineRead(read_request(), timeout=10).results[0].found, i)
        self.assert_counted(before, expect(READ_LABELS, "OK", 200), "200 calls afterwards")

    def test_6_every_call_once(self):
        """Over the whole run: per method, started equals the sum of handled over the codes."""
        samples, _ = parse_exposition(scrape(self.metrics_port)[1])
        started, handled = {}, {}
        for (name, labels), value in samples.items():
            ls = dict(labels)
            m = (ls.get("grpc_service"), ls.get("grpc_method"))
            if name == "grpc_server_started_total":
                started[m] = started.get(m, 0) + value
            elif name == "grpc_server_handled_total":
                handled[m] = handled.get(m, 0) + value
        print("started:", started)
        print("handled:", handled)
        self.assertEqual({m: v for m, v in started.items() if v}, {m: v for m, v in handled.items() if v})
        self.assertIsNone(self.server.proc.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
