#!/usr/bin/python3
"""Feast's feature-server HTTP/JSON API and GrpcFeatureServer Push and
WriteToOnlineStore (feast-compat HTTP.md), replayed from the vectors in
tests/data/http_vectors.json against the real larder process on
LARDER_TEST_BACKEND:

- HttpVectors: the registry of `registry_hex`, the `stored_rows` stored, larder
  with `http_listen`; every `http_cases` entry in order on one persistent
  connection: the status, the body compared with strict JSON types, Feast's error
  bodies decoded as Feast's client decodes them, and the database read with SQL
  before and after each case: exactly the `expect_rows` added or changed, nothing
  else touched;
- HttpAuth: `auth_cases` against a second larder whose `auth.tokens_env` names a
  variable holding `auth_token`;
- GrpcFeatureServerVectors: `grpc_cases` in order (raw unary calls with the
  vectors' bytes), the reply or status code, and the rows; on a larder without
  `http_listen` (Push and WriteToOnlineStore are gRPC calls: they need no HTTP);
- GrpcParity: what the vectors assume of the serving rules holds over gRPC today:
  `stored_rows` read back with SQL byte for byte, and every /get-online-features
  case of the initial state asked through ServingService.GetOnlineFeatures gives
  the vector's body once rendered as HTTP.md §4.3-4.4 (or INVALID_ARGUMENT for its
  400s and 404s): one serving logic, two encodings."""
import json
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import grpc, pb, raw_call  # noqa: E402
import http_common as hc  # noqa: E402
from http_common import VECTORS  # noqa: E402
from feast.serving import ServingService_pb2 as sv  # noqa: E402
from google.protobuf import json_format  # noqa: E402

Code = grpc.StatusCode
REGISTRY_SETTING = "{path: registry.db, cache_ttl_seconds: 1}"
# HTTP.md §6.5 gives these messages word for word; every other message is indicative.
EXACT_MESSAGES = {"err_push_offline", "err_push_online_and_offline"}
GET = "/get-online-features"


def reply_problems(reply, expect, case_name="", path=""):
    """What is wrong with an HTTP reply against a vector's `expect`: a list of messages."""
    p = []
    if reply.status != expect["status"]:
        p.append("status %d, expected %d; body %r" % (reply.status, expect["status"], reply.body[:400]))
    length = reply.header("Content-Length")
    if length is None:
        p.append("no Content-Length")
    elif length.strip() != str(len(reply.body)):
        p.append("Content-Length %s for a body of %d bytes" % (length, len(reply.body)))
    if reply.header("Content-Encoding") not in (None, "identity"):
        p.append("the response is compressed (Content-Encoding %s)" % reply.header("Content-Encoding"))
    if reply.header("Transfer-Encoding") is not None:
        p.append("Transfer-Encoding %s: every response has a Content-Length" % reply.header("Transfer-Encoding"))
    ctype = (reply.header("Content-Type") or "").split(";")[0].strip().lower()
    if reply.status != expect["status"]:
        return p  # the rest would only repeat it
    if "body" in expect:
        if ctype != "application/json":
            p.append("Content-Type %r, expected application/json" % reply.header("Content-Type"))
        try:
            d = hc.json_diff(expect["body"], hc.loads_strict(reply.body))
        except hc.JsonError as e:
            d = str(e)
        if d:
            p.append("body: " + d)
    if expect.get("body_empty"):
        if reply.body != b"":
            p.append("body %r, expected none" % reply.body[:300])
        if path == "/health" and reply.header("Content-Type") is not None:
            p.append("/health answers with no Content-Type (HTTP.md §3); got %r" % reply.header("Content-Type"))
    if "error" in expect:
        if ctype != "application/json":
            p.append("Content-Type %r, expected application/json" % reply.header("Content-Type"))
        try:
            module, cls, message = hc.feast_error(reply.body)
            want = expect["error"]
            if (module, cls) != (want["module"], want["class"]):
                p.append("error %s.%s, expected %s.%s (message %r)" % (module, cls, want["module"], want["class"],
                                                                      message))
            if not message.strip():
                p.append("the error message is empty")
            elif case_name in EXACT_MESSAGES and message != want["message"]:
                p.append("message %r, expected %r (HTTP.md gives this text)" % (message, want["message"]))
        except hc.JsonError as e:
            p.append("not a feast_error body (%s): %r" % (e, reply.body[:300]))
    if "detail" in expect:
        d = hc.detail_problem(reply.body, expect["detail"])
        if d:
            p.append(d)
    if reply.status == 405 and not reply.header("Allow"):
        p.append("405 without an Allow header")
    if reply.status == 401 and not (reply.header("WWW-Authenticate") or "").lower().startswith("bearer"):
        p.append("401 without WWW-Authenticate: Bearer (got %r)" % reply.header("WWW-Authenticate"))
    return p


def send(client, req):
    """A vector's `request` on an harness.Http connection."""
    headers = dict(req.get("headers", {}))
    if "raw_body" in req:
        headers.setdefault("Content-Type", "application/json")
        return client.request(req["method"], req["path"], body=req["raw_body"], headers=headers)
    if "body" in req:
        return client.request(req["method"], req["path"], json_body=req["body"], headers=headers)
    return client.request(req["method"], req["path"], headers=headers)


def start_vector_server(**kw):
    """A larder serving the vectors' registry, every view's table made and the
    vectors' rows stored; the rows are checked with SQL before any case runs."""
    server = harness.Server(project="demo", registry=REGISTRY_SETTING, **kw)
    hc.write_registry(server)
    server.start()
    try:
        server.stub.Update(pb.UpdateRequest(tables_to_keep=hc.VIEWS), timeout=30)
        hc.store_rows(server)
        store = hc.RowStore(server)
    except BaseException:
        server.stop()
        raise
    return server, store


def summary(kind, passed, failed):
    print("%s: %d of %d passed%s" % (kind, len(passed), len(passed) + len(failed),
                                      "; failed: " + ", ".join(failed) if failed else ""))


class HttpVectors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.store = start_vector_server(http=True)

    @classmethod
    def tearDownClass(cls):
        cls.store.close()
        cls.server.close()

    def test_http_cases(self):
        hc.wait_healthy(self.server)
        client = harness.Http(self.server.http_port)
        passed, failed = [], []
        for case in VECTORS["http_cases"]:
            with self.subTest(case=case["name"]):
                try:
                    before = self.store.snapshot()
                    try:
                        reply = send(client, case["request"])
                        problems = reply_problems(reply, case["expect"], case["name"], case["request"]["path"])
                    except (OSError, harness.ConnectionDropped) as e:
                        client.close()
                        problems = ["%s %s: %s: %s" % (case["request"]["method"], case["request"]["path"],
                                                       type(e).__name__, e)]
                    problems += hc.row_problems(before, self.store.snapshot(), case.get("expect_rows", []))
                    if problems:
                        self.fail("%s (%s):\n  %s" % (case["name"], case["desc"], "\n  ".join(problems)))
                    passed.append(case["name"])
                except BaseException:
                    failed.append(case["name"])
                    raise
        client.close()
        summary("http_cases", passed, failed)
        print("connections opened for %d cases: %d" % (len(VECTORS["http_cases"]), client.opened))


    def test_body_is_json_whatever_its_content_type(self):
        """Feast's documented `curl -d` sends a form content type: larder reads the JSON (docs/http.md)."""
        hc.wait_healthy(self.server)
        case = next(c for c in VECTORS["http_cases"]
                    if c["request"]["path"] == "/get-online-features" and c["expect"]["status"] == 200
                    and "body" in c["request"])
        client = harness.Http(self.server.http_port)
        self.addCleanup(client.close)
        body = json.dumps(case["request"]["body"]).encode()
        want = client.request("POST", "/get-online-features", body=body,
                              headers={"Content-Type": "application/json"})
        self.assertEqual(want.status, 200, want.body)
        for ctype in ("application/x-www-form-urlencoded", "text/plain", None):
            reply = client.request("POST", "/get-online-features", body=body,
                                   headers={"Content-Type": ctype} if ctype else {})
            self.assertEqual((reply.status, reply.body), (200, want.body), ctype)
        reply = client.request("POST", "/get-online-features", body=b"features=a",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(reply.status, 422, reply.body)


    def test_push_outside_the_stores_timestamp_range(self):
        """A push row that the store's columns cannot hold: MySQL's timestamp stores
        1970-2038, so a push of 2040 is 400 naming the df column and row, and nothing
        of the push is written."""
        if harness.BACKEND != "mysql":
            self.skipTest("only MySQL's timestamp column stops short of 9999")
        hc.wait_healthy(self.server)
        client = harness.Http(self.server.http_port)
        self.addCleanup(client.close)
        df = {"driver_id": [9901, 9902], "conv_rate": [0.5, 0.5], "trips": [1, 2], "rating": [1.0, 2.0],
              "active": [True, False], "tag": ["a", "b"], "speed": [1.0, 2.0],
              "event_timestamp": ["2024-05-01T12:00:00Z", "2040-01-01T00:00:00Z"]}
        before = self.store.snapshot()
        reply = client.request("POST", "/push", json_body={"push_source_name": "driver_push", "df": df,
                                                           "to": "online"})
        self.assertEqual(reply.status, 400, reply.body)
        _, _, message = hc.feast_error(reply.body)
        self.assertTrue(message.startswith("df.event_timestamp[1]: "), message)
        self.assertIn("outside MySQL's timestamp range", message)
        self.assertEqual(self.store.snapshot(), before, "a refused push changed rows")
        # A value past MySQL's BLOB column: the message names its column and row.
        df["event_timestamp"][1] = df["event_timestamp"][0]
        df["tag"][0] = "x" * 70000
        reply = client.request("POST", "/push", json_body={"push_source_name": "driver_push", "df": df,
                                                           "to": "online"})
        self.assertEqual(reply.status, 400, reply.body[:300])
        _, _, message = hc.feast_error(reply.body)
        self.assertTrue(message.startswith("df.tag[0]: the value has "), message)
        self.assertEqual(self.store.snapshot(), before, "a refused push changed rows")


class HttpAuth(unittest.TestCase):
    def test_auth_cases(self):
        env = dict(os.environ, LARDER_TEST_HTTP_TOKEN=VECTORS["auth_token"])
        server = harness.Server(project="demo", registry=REGISTRY_SETTING, http=True, env=env,
                                larder={"auth": "{tokens_env: LARDER_TEST_HTTP_TOKEN}"})
        hc.write_registry(server)
        hc.apply_tables(server)
        passed, failed = [], []
        with server:
            hc.wait_healthy(server)
            client = harness.Http(server.http_port)
            for case in VECTORS["auth_cases"]:
                with self.subTest(case=case["name"]):
                    try:
                        try:
                            problems = reply_problems(send(client, case["request"]), case["expect"], case["name"],
                                                      case["request"]["path"])
                        except (OSError, harness.ConnectionDropped) as e:
                            client.close()
                            problems = ["%s: %s" % (type(e).__name__, e)]
                        if problems:
                            self.fail("%s (%s):\n  %s" % (case["name"], case["desc"], "\n  ".join(problems)))
                        passed.append(case["name"])
                    except BaseException:
                        failed.append(case["name"])
                        raise
            client.close()
        summary("auth_cases", passed, failed)


def status_reply(raw):
    """PushResponse / WriteToOnlineStoreResponse {bool status = 1} from its bytes."""
    status, i = False, 0
    while i < len(raw):
        tag = raw[i]
        i += 1
        if tag == 0x08:
            v, shift = 0, 0
            while True:
                b = raw[i]
                i += 1
                v |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            status = v != 0
        else:
            raise AssertionError("unexpected field in the reply: %s" % raw.hex())
    return {"status": status}


class GrpcFeatureServerVectors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.store = start_vector_server()

    @classmethod
    def tearDownClass(cls):
        cls.store.close()
        cls.server.close()

    def check(self, case):
        before = self.store.snapshot()
        code, details, reply = raw_call(self.server.channel, case["method"], bytes.fromhex(case["request_hex"]))
        problems = []
        if "expect_code" in case:
            if code != Code[case["expect_code"]]:
                problems.append("status %s %r, expected %s" % (code.name, details, case["expect_code"]))
            elif not details:
                problems.append("%s with no message" % code.name)
        elif code != Code.OK:
            problems.append("status %s %r, expected OK" % (code.name, details))
        elif "expect_reply_hex" in case:
            want = sv.GetOnlineFeaturesResponse.FromString(bytes.fromhex(case["expect_reply_hex"]))
            got = sv.GetOnlineFeaturesResponse.FromString(reply)
            if want != got:
                d = hc.json_diff(json_format.MessageToDict(want), json_format.MessageToDict(got))
                problems.append("reply differs: %s (bytes %s)" % (d, reply.hex()))
        else:
            got = status_reply(reply)
            if got != case["expect_reply"]:
                problems.append("reply %s, expected %s" % (got, case["expect_reply"]))
        problems += hc.row_problems(before, self.store.snapshot(), case.get("expect_rows", []))
        if problems:
            self.fail("%s (%s):\n  %s" % (case["name"], case["desc"], "\n  ".join(problems)))

    def test_grpc_cases(self):
        passed, failed = [], []
        for case in VECTORS["grpc_cases"]:
            with self.subTest(case=case["name"]):
                try:
                    self.check(case)
                    passed.append(case["name"])
                except BaseException:
                    failed.append(case["name"])
                    raise
        summary("grpc_cases", passed, failed)


class Threads(unittest.TestCase):
    def test_threads_follow_the_affinity_mask(self):
        """workers: 0 (the default) is the CPUs in the process's affinity mask, for the HTTP
        threads as for the gRPC workers (HTTP counted every CPU of the host, and opened a
        database connection per thread)."""
        import shutil
        if shutil.which("taskset") is None:
            self.skipTest("no taskset")
        with harness.Server(http=True, larder={"workers": 0}, wrapper=["taskset", "-c", "0"]) as server:
            log = server.read_log()
        self.assertRegex(log, r", 1 workers, ")
        self.assertRegex(log, r"Feast's HTTP API at .*, 1 threads")


class GrpcParity(unittest.TestCase):
    """Checks of the vectors and of these tests' own machinery that need no HTTP."""

    @classmethod
    def setUpClass(cls):
        cls.server, cls.store = start_vector_server()

    @classmethod
    def tearDownClass(cls):
        cls.store.close()
        cls.server.close()

    def test_typed_non_finite_doubles(self):
        """typed_features (HTTP.md §8): a double for a column of another type is read as the JSON
        number it stands for. NaN is pandas' missing value, null as Feast writes it; an infinity
        is a number past a double's range, which a STRING column refuses as it refuses 1.5 (both
        used to be stored as the text "nan" and "-inf"), and a DOUBLE column keeps."""
        from feast.serving import GrpcServer_pb2 as gs
        V = harness.Value_pb2.Value
        method = "/GrpcFeatureServer/WriteToOnlineStore"

        def request(**cells):
            r = gs.WriteToOnlineStoreRequest(feature_view_name="typed")
            r.typed_features["driver_id"].CopyFrom(V(int64_val=9400))
            r.typed_features["event_timestamp"].CopyFrom(V(string_val="2024-05-01T00:00:00Z"))
            for f in hc.VIEW_DEFS["typed"]["features"]:
                r.typed_features[f["name"]].CopyFrom(cells.get(f["name"], V()))
            return r.SerializeToString()

        before = self.store.snapshot()
        for bad in (float("-inf"), float("inf")):
            code, details, _ = raw_call(self.server.channel, method, request(f_string=V(double_val=bad)))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
            self.assertIn("typed_features.f_string", details)
            self.assertEqual(self.store.snapshot(), before, "a refused write changed rows")
        code, details, _ = raw_call(self.server.channel, method, request(
            f_string=V(double_val=float("nan")), f_int64=V(int64_val=5), f_double=V(float_val=float("inf"))))
        self.assertEqual(code, grpc.StatusCode.OK, details)
        new = {k[2]: V.FromString(r.value) for k, r in self.store.snapshot().items()
               if k[0] == "typed" and before.get(k) != r}
        self.assertEqual(new["f_int64"].int64_val, 5, new)
        self.assertNotEqual(new.get("f_string", V()).WhichOneof("val"), "string_val", new.get("f_string"))
        self.assertEqual(new["f_double"].double_val, float("inf"), new.get("f_double"))
        def refused(words, **cells):
            before = self.store.snapshot()
            code, details, _ = raw_call(self.server.channel, method, request(**cells))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
            self.assertIn(words, details)
            self.assertEqual(self.store.snapshot(), before, "a refused write changed rows")

        def stored(**cells):
            """The typed view's Values once the write is OK, by feature name."""
            code, details, _ = raw_call(self.server.channel, method, request(**cells))
            self.assertEqual(code, grpc.StatusCode.OK, details)
            return {k[2]: V.FromString(r.value) for k, r in self.store.snapshot().items() if k[0] == "typed"}

        def doubles(*vals):
            return V(double_list_val=harness.Value_pb2.DoubleList(val=vals))

        # In a list NaN is an element, not a missing value: a FLOAT_LIST keeps it,
        # an INT64_LIST refuses it (it used to be stored as 0 in both).
        refused("typed_features.f_int64_list[0]: [1]: NaN is out of range for INT64",
                f_int64=V(int64_val=6), f_int64_list=doubles(1, float("nan")))
        got = stored(f_int64=V(int64_val=6), f_float_list=doubles(1.5, float("nan")))
        floats = list(got["f_float_list"].float_list_val.val)
        self.assertEqual(floats[0], 1.5, got["f_float_list"])
        self.assertTrue(math.isnan(floats[1]), got["f_float_list"])
        # A whole double past 2^53 is its own value in an INT64 column (Feast's int(x)),
        # not its 17 significant digits followed by zeros.
        big = float(2 ** 60 + 2 ** 8)  # 1152921504606847232: 19 digits
        got = stored(f_int64=V(double_val=big))
        self.assertEqual(got["f_int64"].int64_val, int(big), got["f_int64"])
        # Both ends of int64: -2^63 is a value, 2^63 is past it.
        got = stored(f_int64=V(double_val=-2.0 ** 63))
        self.assertEqual(got["f_int64"].int64_val, -2 ** 63, got["f_int64"])
        refused("typed_features.f_int64", f_int64=V(double_val=2.0 ** 63))
        # A NaN element is no text: a STRING list refuses it, as it refuses 1.5.
        refused("typed_features.f_string_list[0]: [0]: a JSON NaN cannot be a STRING",
                f_int64=V(int64_val=7), f_string_list=doubles(float("nan")))
        # A JSON column gets the text Python's json.dumps writes.
        got = stored(f_int64=V(int64_val=7), f_json=doubles(1.5, float("nan")))
        self.assertEqual(got["f_json"].json_val, "[1.5, NaN]", got["f_json"])

    def test_stored_rows_read_back_with_sql(self):
        """The vectors' rows, stored through OnlineWriteBatch, are in the tables byte for
        byte (entity key, Value, event_ts, created_ts NULL, Feast's value_text)."""
        got = self.store.snapshot()
        want = hc.expected_stored_rows()
        self.assertEqual(sorted(got), sorted(want))
        for k, (value_hex, ev, cr) in want.items():
            expect = [{"table": "%s_%s" % (hc.VECTOR_PROJECT, k[0]), "entity_key_hex": k[1], "feature_name": k[2],
                       "value_hex": value_hex, "event_ts": ev, "created_ts": cr}]
            self.assertEqual(hc.row_problems({}, {k: got[k]}, expect), [], k)
            self.assertEqual(got[k].value.hex(), value_hex, k)  # exactly, map entries in their order too

    def test_row_checks_see_changes(self):
        """row_problems finds a row added, changed, deleted or missing."""
        base = self.store.snapshot()
        k = sorted(base)[0]
        row = base[k]
        e = {"table": "%s_%s" % (hc.VECTOR_PROJECT, k[0]), "entity_key_hex": k[1], "feature_name": k[2],
             "value_hex": row.value.hex(), "event_ts": row.event_ts, "created_ts": row.created_ts}
        self.assertEqual(hc.row_problems(base, base, []), [])
        self.assertEqual(hc.row_problems(base, base, [e]), [])
        changed = dict(base)
        changed[k] = hc.Row(b"\x20\x01", row.event_ts, row.created_ts, "1", row.has_text)
        self.assertEqual(len(hc.row_problems(base, changed, [])), 1)
        self.assertEqual(len(hc.row_problems(base, changed, [e])), 2 if row.has_text else 1)
        gone = dict(base)
        del gone[k]
        self.assertIn("deleted", hc.row_problems(base, gone, [])[0])
        self.assertIn("not stored", hc.row_problems(base, gone, [e])[0])
        added = dict(base)
        added[("typed", "00", "x")] = row
        self.assertIn("written", hc.row_problems(base, added, [])[0])

    def test_get_online_features_cases_over_grpc(self):
        cases = []
        for case in VECTORS["http_cases"]:
            if case["request"]["method"] == "POST" and case["request"]["path"] in ("/push", "/write-to-online-store"):
                break  # the rows change from here on
            if case["request"]["path"] == GET and "body" in case["request"] and case["expect"]["status"] != 422:
                cases.append(case)
        self.assertGreater(len(cases), 20)
        passed, failed = [], []
        for case in cases:
            with self.subTest(case=case["name"]):
                try:
                    payload = hc.grpc_request_bytes(case["request"]["body"])
                    code, details, reply = raw_call(self.server.channel,
                                                    "/feast.serving.ServingService/GetOnlineFeatures", payload)
                    status = case["expect"]["status"]
                    if status == 200:
                        self.assertEqual(code, Code.OK, details)
                        got = hc.response_json(sv.GetOnlineFeaturesResponse.FromString(reply))
                        d = hc.json_diff(case["expect"]["body"], got)
                        if d:
                            self.fail("%s: %s" % (case["name"], d))
                    else:
                        self.assertIn(status, (400, 404))
                        self.assertEqual(code, Code.INVALID_ARGUMENT, "%s: %s" % (case["name"], details))
                    passed.append(case["name"])
                except BaseException:
                    failed.append(case["name"])
                    raise
        summary("get-online-features cases over gRPC", passed, failed)

    def test_comparators(self):
        """The strict JSON comparison and the error-body decoding themselves."""
        self.assertIsNone(hc.json_diff({"a": [1, 2.5, True, None, "x"]}, {"a": [1, 2.5, True, None, "x"]}))
        self.assertIsNone(hc.json_diff({"a": 1, "b": 2}, {"b": 2, "a": 1}))
        self.assertIn("$.a[0]: expected integer 1, got float 1.0", hc.json_diff({"a": [1]}, {"a": [1.0]}))
        self.assertIn("expected integer 1, got boolean true", hc.json_diff([1], [True]))
        self.assertIn("expected float 0.0, got boolean false", hc.json_diff([0.0], [False]))
        self.assertIn("$.results[1].values: expected 2 elements, got 3",
                      hc.json_diff({"results": [{}, {"values": [1, 2]}]}, {"results": [{}, {"values": [1, 2, 3]}]}))
        self.assertIn("unexpected key", hc.json_diff({"a": 1}, {"a": 1, "status": True}))
        self.assertIn("missing", hc.json_diff({"a": 1, "b": 1}, {"a": 1}))
        self.assertIn('$["feature names"]', hc.json_diff({"feature names": 1}, {"feature names": 2}))
        self.assertIsInstance(hc.loads_strict(b"3.0"), float)
        self.assertIsInstance(hc.loads_strict(b"3"), int)
        for bad in (b"NaN", b'{"a": 1, "a": 2}', b"\xff", b"{", b'[Infinity]'):
            with self.assertRaises(hc.JsonError):
                hc.loads_strict(bad)
        body = b'"{\\"module\\": \\"feast.errors\\", \\"class\\": \\"FeastError\\", \\"message\\": \\"m\\"}"'
        self.assertEqual(hc.feast_error(body), ("feast.errors", "FeastError", "m"))
        for bad in (b'{"module": "feast.errors", "class": "FeastError", "message": "m"}', b'"not json"',
                    b'{"detail": "Not Found"}', b'"{\\"module\\": \\"feast.errors\\"}"'):
            with self.assertRaises(hc.JsonError):
                hc.feast_error(bad)
        self.assertIsNone(hc.detail_problem(b'{"detail": "Not Found"}', "Not Found"))
        self.assertIsNotNone(hc.detail_problem(b'{"detail": "Nope"}', "Not Found"))
        self.assertIsNone(hc.detail_problem(b'{"detail": [{"type": "missing", "loc": ["body", "entities"], '
                                            b'"msg": "Field required"}]}', []))
        self.assertIsNotNone(hc.detail_problem(b'{"detail": [{"type": "missing", "msg": "x"}]}', []))
        self.assertIsNotNone(hc.detail_problem(b'{"detail": []}', []))
        # Value bytes: map entries in another order are the same Value; other bytes are not.
        m = "a2012a0a070a0161120220010a080a016212031201780a0e0a0163120929000000000000e03f0a050a016e1200"
        swapped = bytes.fromhex("a2012a" + "0a080a01621203120178" + "0a070a016112022001" +
                                "0a0e0a0163120929000000000000e03f" + "0a050a016e1200")
        self.assertTrue(hc.same_value(m, swapped))
        self.assertFalse(hc.same_value("2001", bytes.fromhex("2002")))
        self.assertFalse(hc.same_value("", bytes.fromhex("980100")))
        # The vectors' own expected replies pass reply_problems, and a wrong one does not.
        reply = harness.HttpReply(200, "OK", {"Content-Length": "4", "Content-Type": "application/json"}, b"null",
                                  False)
        self.assertEqual(reply_problems(reply, {"status": 200, "body": None}), [])
        self.assertEqual(len(reply_problems(reply, {"status": 200, "body_empty": True})), 1)
        reply.headers = {"Content-Length": "4"}
        self.assertEqual(len(reply_problems(reply, {"status": 200, "body": None})), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
