#!/usr/bin/python3
"""Feast's HTTP clients against larder's feature-server endpoints (feast-compat
HTTP.md), on SQLite, with the vectors' registry (tests/data/http_vectors.json):

- RemoteOnlineStore: a client written from Feast's `online_store: type: remote`
  (infra/online_stores/remote.py at the commit HTTP.md names): the bodies it sends
  for online_write_batch (`feast materialize`), online_read and
  get_online_features, and how it turns the answers back into Values (typed by
  the view's declared types, or untyped) and exceptions (rest_error_handler: a
  4xx feast_error body becomes Feast's exception; 429/500/502/503/504 are retried):
  what it reads is what it wrote;
- PushReadBack: rows pushed over HTTP read back through gRPC GetOnlineFeatures,
  HTTP /get-online-features, OnlineRead and SQL (Feast's table layout) alike;
- BadInput: every kind of bad request answered with Feast's error shape and its
  status (HTTP.md §2), and nothing written;
- Limits: JSON depth, body and reply size, rows, slow bodies, chunked bodies,
  Expect: 100-continue;
- Auth, Routes, ReadOnly, PersistentConnections, Draining."""
import datetime
import http.client
import json
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
import unittest
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SLOW, Value_pb2, grpc, pb  # noqa: E402
import http_common as hc  # noqa: E402
from feast.serving import ServingService_pb2 as sv  # noqa: E402
from feast.serving import ServingService_pb2_grpc as sv_rpc  # noqa: E402
from feast.types import EntityKey_pb2  # noqa: E402

V = Value_pb2.Value
UTC = datetime.timezone.utc
GET = "/get-online-features"
MAX_BYTES = 65536      # larder.max_message_bytes of these servers
MAX_ROWS = 100         # larder.max_batch_rows
RECEIVE_TIMEOUT = 2    # larder.receive_timeout_s
SETTINGS = {"max_message_bytes": MAX_BYTES, "max_batch_rows": MAX_ROWS, "receive_timeout_s": RECEIVE_TIMEOUT}
REGISTRY_SETTING = "{path: registry.db, cache_ttl_seconds: 1}"
RETRIED = (429, 500, 502, 503, 504)  # Feast's HttpSessionManager retries these three times
# feast.errors classes larder may name (HTTP.md §2); Feast's client imports them by name.
FEAST_ERRORS = {"FeatureViewNotFoundException", "FeatureServiceNotFoundException", "FeastObjectNotFoundException",
                "PushSourceNotFoundException", "FeatureNameCollisionError", "FeastPermissionError", "FeastError"}
DRIVER_STATS = ["conv_rate", "trips", "rating", "active", "tag"]
TYPED_FEATURES = [f["name"] for f in hc.VIEW_DEFS["typed"]["features"]]
TYPES = {v: {f["name"]: f["value_type"] for f in d["features"]} for v, d in hc.VIEW_DEFS.items()}

SERVER = None  # the larder most classes share (setUpModule)
STORE = None


def start(project="demo", larder=None, rows=True, **kw):
    settings = dict(SETTINGS)
    settings.update(larder or {})
    server = harness.Server(project=project, registry=REGISTRY_SETTING, http=True, larder=settings, **kw)
    hc.write_registry(server)
    server.start()
    try:
        server.stub.Update(pb.UpdateRequest(tables_to_keep=hc.VIEWS), timeout=30)
        if rows:
            hc.store_rows(server)
    except BaseException:
        server.stop()
        raise
    return server


def setUpModule():
    global SERVER, STORE
    if harness.BACKEND != "sqlite":
        raise unittest.SkipTest("the HTTP clients run on SQLite (the transport is the same for every store)")
    SERVER = start()
    STORE = hc.RowStore(SERVER)
    hc.wait_healthy(SERVER)


def tearDownModule():
    if STORE is not None:
        STORE.close()
    if SERVER is not None:
        code = SERVER.stop()
        if code not in (0, None):
            raise AssertionError("larder exited with %s:\n%s" % (code, SERVER.read_log()[-4000:]))


def ek(driver_id):
    return EntityKey_pb2.EntityKey(join_keys=["driver_id"], entity_values=[V(int64_val=driver_id)])


def ek_hex(driver_id):
    """serialize_entity_key({driver_id: int64}), version 3 (SPEC §3)."""
    name = b"driver_id"
    return (b"\x01\x00\x00\x00\x02\x00\x00\x00" + len(name).to_bytes(4, "little") + name + b"\x04\x00\x00\x00"
            b"\x08\x00\x00\x00" + driver_id.to_bytes(8, "little", signed=True)).hex()


def epoch(dt):
    return int(dt.timestamp())


# ---------------------------------------------------------------- Feast's RemoteOnlineStore, emulated

class FeastErrorRaised(Exception):
    """What FeastError.from_error_detail builds from a feast_error body: the exception a
    Feast SDK user gets (its module, class and message)."""

    def __init__(self, status, module, cls, message):
        super().__init__("%s.%s: %s" % (module, cls, message))
        self.status, self.module, self.cls, self.message = status, module, cls, message


class RemoteRuntimeError(RuntimeError):
    """remote.py's RuntimeError for an answer that is not 200 and was not mapped."""

    def __init__(self, status, text):
        super().__init__("Error_code=%s, error_message=%s" % (status, text))
        self.status = status


class Retried(Exception):
    """An answer Feast's session would retry (three times, with backoff) before RetryError."""


def from_error_detail(detail):
    """FeastError.from_error_detail: `detail` is response.json(); None when it is not
    a JSON string naming a class of feast.errors (Feast then logs a warning)."""
    try:
        m = json.loads(detail)
        if all(f in m for f in ("module", "class", "message")):
            if m["module"] == "feast.errors" and m["class"] in FEAST_ERRORS:
                return m["module"], m["class"], m["message"]
    except Exception:  # noqa: BLE001 - as Feast: any failure means "no mapped error"
        pass
    return None


def proto_to_python(v):
    """feast_value_type_to_python_type, for the kinds these tests write."""
    kind = v.WhichOneof("val")
    if kind is None:
        return None
    x = getattr(v, kind)
    if kind == "json_val":
        try:
            return json.loads(x)
        except ValueError:
            return x
    if kind in ("map_val", "struct_val"):
        return {k: proto_to_python(e) for k, e in x.val.items()}
    if kind in ("map_list_val", "struct_list_val"):
        return [{k: proto_to_python(e) for k, e in m.val.items()} for m in x.val]
    if kind == "unix_timestamp_val":
        return datetime.datetime.fromtimestamp(x, tz=UTC)
    if hasattr(x, "val"):
        x = list(x.val)
        if kind.endswith("_set_val"):
            return set(x)
    return x


def transport_value(v):
    """RemoteOnlineStore._proto_value_to_transport_value."""
    kind = v.WhichOneof("val")
    if kind is None:
        return None
    if kind == "json_val":
        return v.json_val
    if kind == "json_list_val":
        return list(v.json_list_val.val)
    if kind in ("map_val", "struct_val"):
        return json.dumps(proto_to_python(v))
    if kind in ("map_list_val", "struct_list_val"):
        return [json.dumps(m) for m in proto_to_python(v)]
    if kind in ("uuid_val", "time_uuid_val"):
        return getattr(v, kind)
    if kind in ("uuid_list_val", "time_uuid_list_val", "uuid_set_val", "time_uuid_set_val"):
        return list(getattr(v, kind).val)
    if kind == "unix_timestamp_val":
        return v.unix_timestamp_val
    if kind in ("unix_timestamp_list_val", "unix_timestamp_set_val"):
        return list(getattr(v, kind).val)
    return proto_to_python(v)


def infer_type(x):
    """python_type_to_feast_value_type for JSON-decoded values."""
    if isinstance(x, bool):
        return "BOOL"
    if isinstance(x, int):
        return "INT64"
    if isinstance(x, float):
        return "DOUBLE"
    if isinstance(x, str):
        return "STRING"
    if isinstance(x, dict):
        return "MAP"
    if isinstance(x, list):
        if x and isinstance(x[0], dict):
            return "MAP_LIST"
        kinds = {infer_type(e) for e in x}
        if len(kinds) > 1:
            raise ValueError("List value type is inconsistent: %s" % kinds)
        return (kinds.pop() + "_LIST") if kinds else "UNKNOWN"
    raise ValueError("Value with native type %s cannot be converted into Feast value type" % type(x).__name__)


SCALAR_FIELDS = {"INT32": "int32_val", "INT64": "int64_val", "FLOAT": "float_val", "DOUBLE": "double_val",
                 "STRING": "string_val", "BOOL": "bool_val", "UNIX_TIMESTAMP": "unix_timestamp_val",
                 "UUID": "uuid_val", "TIME_UUID": "time_uuid_val"}
LIST_FIELDS = {"INT32_LIST": ("int32_list_val", Value_pb2.Int32List, (int,)),
               "INT64_LIST": ("int64_list_val", Value_pb2.Int64List, (int,)),
               "FLOAT_LIST": ("float_list_val", Value_pb2.FloatList, (float,)),
               "DOUBLE_LIST": ("double_list_val", Value_pb2.DoubleList, (float,)),
               "STRING_LIST": ("string_list_val", Value_pb2.StringList, (str,)),
               "BOOL_LIST": ("bool_list_val", Value_pb2.BoolList, (bool,)),
               "UNIX_TIMESTAMP_LIST": ("unix_timestamp_list_val", Value_pb2.Int64List, (int,)),
               "UUID_LIST": ("uuid_list_val", Value_pb2.StringList, (str,)),
               "TIME_UUID_LIST": ("time_uuid_list_val", Value_pb2.StringList, (str,))}


def map_proto(d):
    """_python_dict_to_map_proto."""
    m = Value_pb2.Map()
    for k, x in d.items():
        m.val[k].CopyFrom(V() if x is None else to_proto(x, "UNKNOWN"))
    return m


def to_proto(x, vtype):
    """python_values_to_proto_values([x], vtype)[0] for the types these tests use,
    with Feast's type checks (a DOUBLE needs a float or an int, a DOUBLE_LIST floats)."""
    if x is None:
        return V()
    if vtype == "UNKNOWN":
        vtype = infer_type(x)
        if vtype == "UNKNOWN":
            raise TypeError("Couldn't infer value type from empty value")
    if vtype in ("MAP", "STRUCT"):
        d = json.loads(x) if isinstance(x, str) else x
        if not isinstance(d, dict):
            raise TypeError("Expected dict for %s, got %r" % (vtype, x))
        return V(**{"map_val" if vtype == "MAP" else "struct_val": map_proto(d)})
    if vtype == "MAP_LIST":
        return V(map_list_val=Value_pb2.MapList(val=[map_proto(json.loads(e) if isinstance(e, str) else e)
                                                     for e in x]))
    if vtype == "JSON":
        if isinstance(x, str):
            json.loads(x)
            return V(json_val=x)
        return V(json_val=json.dumps(x))
    if vtype == "JSON_LIST":
        return V(json_list_val=Value_pb2.StringList(val=[e if isinstance(e, str) else json.dumps(e) for e in x]))
    if vtype in LIST_FIELDS:
        field, cls, valid = LIST_FIELDS[vtype]
        if not isinstance(x, list):
            raise TypeError("%s needs a list, got %r" % (vtype, x))
        for e in x:
            if e is not None and type(e) not in valid:
                raise TypeError("Type `%s` not in %s (%s)" % (type(e).__name__, valid, vtype))
        return V(**{field: cls(val=x)})
    if vtype in SCALAR_FIELDS:
        field = SCALAR_FIELDS[vtype]
        if isinstance(x, (list, dict)):
            return V()  # array-like in a scalar column: null, as Feast
        if vtype == "DOUBLE":
            if type(x) not in (float, int):
                raise AssertionError("Type `%s` not in DOUBLE's types" % type(x).__name__)
            return V(double_val=x)
        if vtype == "BOOL":
            if type(x) not in (bool, int):
                raise AssertionError("Type `%s` not in BOOL's types" % type(x).__name__)
            return V(bool_val=bool(x))
        conv = {"INT32": int, "INT64": int, "FLOAT": float, "STRING": str, "UNIX_TIMESTAMP": int,
                "UUID": str, "TIME_UUID": str}[vtype]
        return V(**{field: conv(x)})
    raise NotImplementedError("no emulation of Feast's conversion to %s" % vtype)


def naive_utc_iso(dt):
    """_to_naive_utc(dt).isoformat()."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat()


class RemoteOnlineStore:
    """Feast's RemoteOnlineStore (remote.py) over one pooled connection, as its
    HttpSessionManager session: the same bodies (requests' json=, allow_nan=False),
    headers and answer handling (rest_error_handler's raise_for_status and
    from_error_detail)."""

    def __init__(self, port, token=None):
        headers = {"User-Agent": "python-requests/2.31.0", "Accept-Encoding": "gzip, deflate", "Accept": "*/*",
                   "Connection": "keep-alive"}
        if token:
            headers["Authorization"] = "Bearer " + token
        self.session = harness.Http(port, headers=headers)
        self.sent = []

    def close(self):
        self.session.close()

    def post(self, path, body):
        data = json.dumps(body, allow_nan=False).encode("utf-8")
        self.sent.append((path, body))
        reply = self.session.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        if reply.header("Content-Encoding") not in (None, "identity"):
            raise AssertionError("compressed answer: %s" % reply.header("Content-Encoding"))
        if reply.status in RETRIED:
            raise Retried("%d would be retried by Feast's session: %r" % (reply.status, reply.body[:300]))
        if reply.status >= 400:
            try:
                detail = json.loads(reply.body)
            except ValueError:
                detail = None
            mapped = from_error_detail(detail)
            if mapped is not None:
                raise FeastErrorRaised(reply.status, *mapped)
        return reply

    def online_write_batch(self, view, data):
        columnar = defaultdict(list)
        for entity_key, features, event_ts, created_ts in data:
            for join_key, value in zip(entity_key.join_keys, entity_key.entity_values):
                columnar[join_key].append(proto_to_python(value))
            for name, value in features.items():
                columnar[name].append(transport_value(value))
            columnar["event_timestamp"].append(naive_utc_iso(event_ts))
            columnar["created"].append(naive_utc_iso(created_ts) if created_ts else None)
        body = {"feature_view_name": view, "df": columnar, "allow_registry_cache": False}
        reply = self.post("/write-to-online-store", body)
        if reply.status != 200:
            raise RemoteRuntimeError(reply.status, reply.body)
        return reply

    def online_read(self, view, entity_keys, requested_features):
        body = {"features": ["%s:%s" % (view, f) for f in requested_features],
                "entities": {entity_keys[0].join_keys[0]: [
                    getattr(k.entity_values[0], k.entity_values[0].WhichOneof("val")) for k in entity_keys]}}
        reply = self.post(GET, body)
        if reply.status != 200:
            raise RemoteRuntimeError(reply.status, reply.body)
        resp = json.loads(reply.body)
        event_ts = None
        results = resp.get("results") or []
        if len(results) > 1 and results[1].get("event_timestamps"):
            event_ts = datetime.datetime.fromisoformat(results[1]["event_timestamps"][0].replace("Z", "+00:00"))
        types = TYPES[view]
        out = []
        for i in range(len(entity_keys)):
            values = {}
            for index, name in enumerate(resp["metadata"]["feature_names"]):
                if name in requested_features:
                    if resp["results"][index]["statuses"][i] == "PRESENT":
                        values[name] = to_proto(resp["results"][index]["values"][i], types.get(name, "UNKNOWN"))
                    else:
                        values[name] = V()
            out.append((event_ts, values))
        return out

    def get_online_features(self, features, entity_rows, full_feature_names=False, meta=False):
        """`features`: a list of references, or a feature service's name (a str)."""
        if isinstance(entity_rows, list):
            columnar = {k: [] for k in entity_rows[0]}
            for r in entity_rows:
                for k, x in r.items():
                    columnar[k].append(x)
            entity_rows = columnar
        body = {"entities": {k: list(v) for k, v in entity_rows.items()}, "full_feature_names": full_feature_names,
                "include_feature_view_version_metadata": meta}
        if isinstance(features, str):
            body["feature_service"] = features
        else:
            body["features"] = features
        reply = self.post(GET, body)
        if reply.status != 200:
            raise RuntimeError("Failed to get online features: %s %s" % (reply.status, reply.body))
        resp = json.loads(reply.body)
        proto = sv.GetOnlineFeaturesResponse()
        proto.metadata.feature_names.val.extend(resp.get("metadata", {}).get("feature_names", []))
        for result in resp.get("results", []):
            fv = proto.results.add()
            for x in result.get("values", []):
                fv.values.append(V() if x is None else to_proto(x, "UNKNOWN"))
            for s in result.get("statuses", []):
                fv.statuses.append(sv.FieldStatus.Value(s) if s in ("PRESENT", "NOT_FOUND", "NULL_VALUE",
                                                                    "OUTSIDE_MAX_AGE") else sv.INVALID)
        proto.status = True
        return proto


def driver_row(i):
    """driver_stats features of driver i, as Feast's materialization hands them over."""
    return {"conv_rate": V(double_val=i / 1000), "trips": V(int64_val=i * 3), "rating": V(float_val=0.1 * (i % 7)),
            "active": V(bool_val=i % 2 == 0), "tag": V(string_val="t%d ü" % i)}


def typed_row():
    """Every typed feature Feast's remote store can carry over JSON; the others empty
    (materialization hands over every feature of the view)."""
    m = Value_pb2.Map()
    m.val["a"].int64_val = 1
    m.val["b"].string_val = "x"
    m.val["c"].double_val = 0.5
    m.val["d"].bool_val = True
    s = Value_pb2.Map()
    s.val["name"].string_val = "n"
    s.val["v"].int64_val = 2
    given = {
        "f_string": V(string_val='héllo "q" ☃'), "f_int32": V(int32_val=-42), "f_int64": V(int64_val=9007199254740993),
        "f_double": V(double_val=0.1), "f_double_int": V(double_val=3.0), "f_double_big": V(double_val=1e16),
        "f_double_small": V(double_val=1e-05), "f_float": V(float_val=0.1), "f_bool": V(bool_val=False),
        "f_ts": V(unix_timestamp_val=1700000000),
        "f_string_list": V(string_list_val=Value_pb2.StringList(val=["a", "", "c"])),
        "f_int32_list": V(int32_list_val=Value_pb2.Int32List(val=[1, -2])),
        "f_int64_list": V(int64_list_val=Value_pb2.Int64List(val=[1, 2, 300, -1])),
        "f_double_list": V(double_list_val=Value_pb2.DoubleList(val=[1.5, 2.0])),
        "f_float_list": V(float_list_val=Value_pb2.FloatList(val=[0.5, 0.1])),
        "f_bool_list": V(bool_list_val=Value_pb2.BoolList(val=[True, False])),
        "f_ts_list": V(unix_timestamp_list_val=Value_pb2.Int64List(val=[1700000000, 1700000001])),
        "f_map": V(map_val=m), "f_struct": V(struct_val=s),
        "f_json": V(json_val='{"a": [1, 2]}'),
        "f_json_list": V(json_list_val=Value_pb2.StringList(val=['{"x":1}', "[1]"])),
        "f_uuid": V(uuid_val="123e4567-e89b-12d3-a456-426614174000"),
        "f_time_uuid": V(time_uuid_val="6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
        "f_uuid_list": V(uuid_list_val=Value_pb2.StringList(val=["123e4567-e89b-12d3-a456-426614174000"])),
    }
    return {name: given.get(name, V()) for name in TYPED_FEATURES}, sorted(given)


class RemoteOnlineStoreTests(unittest.TestCase):
    def setUp(self):
        self.remote = RemoteOnlineStore(SERVER.http_port)
        self.addCleanup(self.remote.close)

    def test_materialize_then_online_read(self):
        """online_write_batch's body (one column per join key and feature, naive UTC
        event_timestamp text, created text or null, allow_registry_cache false) is
        stored as Feast's own store would store it, and online_read reads back the same
        Values, converted by the declared types, and the timestamp of results[1]."""
        ts = datetime.datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
        created = datetime.datetime(2024, 6, 1, 12, 0, 5, tzinfo=UTC)
        ids = [7001, 7002, 7003]
        data = [(ek(i), driver_row(i), ts, created if i % 2 else None) for i in ids]
        before = STORE.snapshot()
        self.remote.online_write_batch("driver_stats", data)
        path, body = self.remote.sent[-1]
        self.assertEqual(path, "/write-to-online-store")
        self.assertEqual(sorted(body), ["allow_registry_cache", "df", "feature_view_name"])
        self.assertEqual(sorted(body["df"]), sorted(["driver_id", "event_timestamp", "created"] + DRIVER_STATS))
        self.assertEqual(body["df"]["event_timestamp"][0], "2024-06-01T12:00:00")
        expect = []
        for i in ids:
            for name, value in driver_row(i).items():
                expect.append({"table": "demo_driver_stats", "entity_key_hex": ek_hex(i), "feature_name": name,
                               "value_hex": value.SerializeToString().hex(), "event_ts": epoch(ts),
                               "created_ts": epoch(created) if i % 2 else None})
        self.assertEqual(hc.row_problems(before, STORE.snapshot(), expect), [])

        got = self.remote.online_read("driver_stats", [ek(i) for i in ids + [9999]], DRIVER_STATS)
        self.assertEqual(self.remote.sent[-1][1], {"features": ["driver_stats:%s" % f for f in DRIVER_STATS],
                                                   "entities": {"driver_id": ids + [9999]}})
        for i, (event_ts, values) in zip(ids, got):
            self.assertEqual(event_ts, ts)
            self.assertEqual(values, driver_row(i), i)
        self.assertEqual(got[3][1], {f: V() for f in DRIVER_STATS})

    def test_typed_materialize_then_online_read(self):
        """Every value kind the remote store can send (maps and structs as JSON text,
        JSON as its text, unix timestamps as integers) comes back identical."""
        ts = datetime.datetime(2024, 6, 2, tzinfo=UTC)
        row, given = typed_row()
        self.remote.online_write_batch("typed", [(ek(7100), row, ts, None)])
        df = self.remote.sent[-1][1]["df"]
        self.assertIsInstance(df["f_map"][0], str)  # maps travel as JSON text
        self.assertEqual(json.loads(df["f_map"][0]), {"a": 1, "b": "x", "c": 0.5, "d": True})
        self.assertEqual(df["f_ts"], [1700000000])
        snap = STORE.snapshot()
        for name in given:
            stored = snap[("typed", ek_hex(7100), name)]
            self.assertEqual(hc.canonical_value(stored.value), row[name].SerializeToString(deterministic=True), name)
            self.assertEqual(stored.event_ts, epoch(ts))
        for name in set(TYPED_FEATURES) - set(given):
            self.assertEqual(snap[("typed", ek_hex(7100), name)].value, b"", name)  # null: the empty Value
        got = self.remote.online_read("typed", [ek(7100)], given)
        self.assertEqual(got[0][0], ts)
        for name in given:
            self.assertEqual(got[0][1][name], row[name], name)

    def test_get_online_features(self):
        """The SDK's get_online_features with a remote store: untyped reading of the JSON
        (integers int64, floats double) gives the stored values, statuses by name."""
        self.remote.online_write_batch("driver_stats", [(ek(i), driver_row(i), datetime.datetime(
            2024, 6, 3, tzinfo=UTC), None) for i in (7201, 7202)])
        feats = ["driver_stats:%s" % f for f in DRIVER_STATS]
        for full in (False, True):
            for meta in (False, True):
                resp = self.remote.get_online_features(feats, [{"driver_id": 7201}, {"driver_id": 7202},
                                                               {"driver_id": 9999}], full, meta)
                body = self.remote.sent[-1][1]
                self.assertEqual(list(body), ["entities", "full_feature_names", "include_feature_view_version_metadata",
                                              "features"])
                names = ["driver_stats__" + f if full else f for f in DRIVER_STATS]
                self.assertEqual(list(resp.metadata.feature_names.val), ["driver_id"] + names)
                self.assertEqual(list(resp.results[0].values), [V(int64_val=i) for i in (7201, 7202, 9999)])
                for col, f in zip(resp.results[1:], DRIVER_STATS):
                    for row_i, i in enumerate((7201, 7202)):
                        want = driver_row(i)[f]
                        if f == "rating":  # a float32 is read back as the double it widens to
                            want = V(double_val=want.float_val)
                        self.assertEqual(col.values[row_i], want, (f, i))
                    self.assertEqual(list(col.statuses), [sv.PRESENT, sv.PRESENT, sv.NOT_FOUND])
                    self.assertEqual(col.values[2], V())
        resp = self.remote.get_online_features("driver_service", {"driver_id": [7202]})
        self.assertEqual(self.remote.sent[-1][1]["feature_service"], "driver_service")
        self.assertNotIn("features", self.remote.sent[-1][1])
        self.assertEqual(list(resp.metadata.feature_names.val), ["driver_id", "conv_rate", "trips"])
        self.assertEqual(resp.results[2].values[0], V(int64_val=7202 * 3))

    def test_errors_become_feasts_exceptions(self):
        """A 4xx feast_error body is decoded into Feast's exception (module, class,
        message) by rest_error_handler; none of these is a status Feast retries."""
        cases = [
            (lambda: self.remote.get_online_features(["nope:x"], {"driver_id": [1]}), 404,
             "FeatureViewNotFoundException", "nope"),
            (lambda: self.remote.get_online_features("nope", {"driver_id": [1]}), 404,
             "FeatureServiceNotFoundException", "nope"),
            (lambda: self.remote.online_write_batch("nope", [(ek(1), {"x": V(int64_val=1)},
                                                              datetime.datetime(2024, 1, 1, tzinfo=UTC), None)]),
             404, "FeastObjectNotFoundException", "nope"),
            (lambda: self.remote.get_online_features(["driver_stats:nope"], {"driver_id": [1]}), 400, "FeastError",
             "nope"),
            (lambda: self.remote.get_online_features(["driver_stats:trips", "driver_stats:trips"],
                                                     {"driver_id": [1]}), 400, "FeatureNameCollisionError", "trips"),
            (lambda: self.remote.online_write_batch("driver_stats", [(ek(1), {"trips": V(string_val="x")},
                                                                      datetime.datetime(2024, 1, 1, tzinfo=UTC),
                                                                      None)]), 400, "FeastError", ""),
        ]
        for call, status, cls, word in cases:
            with self.subTest(cls=cls, status=status):
                before = STORE.snapshot()
                with self.assertRaises(FeastErrorRaised) as cm:
                    call()
                e = cm.exception
                self.assertEqual((e.status, e.module, e.cls), (status, "feast.errors", cls), e.message)
                self.assertIn(word, e.message)
                self.assertEqual(hc.row_problems(before, STORE.snapshot(), []), [])


# ---------------------------------------------------------------- push, read back four ways

class PushReadBack(unittest.TestCase):
    def test_push_then_read_everywhere(self):
        ids = [8001, 8002, 8003]
        df = {"driver_id": ids, "conv_rate": [0.25, 1, None], "trips": [1, "22", 333], "rating": [4.5, 0.1, 2],
              "active": [True, False, True], "tag": ["a", "b", "ü"], "speed": [10.5, 20, None],
              "event_timestamp": ["2024-05-01T12:00:00", "2024-05-01T12:00:01Z", "2024-05-01T14:00:02+02:00"],
              "created": ["2024-05-01T12:00:05", None, "2024-05-01T12:00:05"]}
        ts = [1714564800, 1714564801, 1714564802]
        created = [1714564805, None, 1714564805]
        want = {8001: {"conv_rate": V(double_val=0.25), "trips": V(int64_val=1), "rating": V(float_val=4.5),
                       "active": V(bool_val=True), "tag": V(string_val="a"), "speed": V(double_val=10.5)},
                8002: {"conv_rate": V(double_val=1.0), "trips": V(int64_val=22), "rating": V(float_val=0.1),
                       "active": V(bool_val=False), "tag": V(string_val="b"), "speed": V(double_val=20.0)},
                8003: {"conv_rate": V(), "trips": V(int64_val=333), "rating": V(float_val=2.0),
                       "active": V(bool_val=True), "tag": V(string_val="ü"), "speed": V()}}
        before = STORE.snapshot()
        reply = SERVER.http("POST", "/push", json_body={"push_source_name": "driver_push", "df": df, "to": "online"})
        self.assertEqual((reply.status, reply.body), (200, b""), reply)
        # SQL, in Feast's layout.
        expect = []
        for n, i in enumerate(ids):
            for name, value in want[i].items():
                expect.append({"table": "demo_%s" % ("driver_live" if name == "speed" else "driver_stats"),
                               "entity_key_hex": ek_hex(i), "feature_name": name,
                               "value_hex": value.SerializeToString().hex(), "event_ts": ts[n],
                               "created_ts": created[n]})
        self.assertEqual(hc.row_problems(before, STORE.snapshot(), expect), [])
        # OnlineRead.
        for view, names in (("driver_stats", DRIVER_STATS), ("driver_live", ["speed"])):
            got = SERVER.stub.OnlineRead(pb.OnlineReadRequest(feature_view=view, entity_keys=[ek(i) for i in ids]),
                                         timeout=10).results
            for n, (i, r) in enumerate(zip(ids, got)):
                self.assertTrue(r.found)
                self.assertEqual(dict(r.features), {k: want[i][k] for k in names}, (view, i))
                self.assertEqual((r.event_ts.seconds, r.event_ts.nanos), (ts[n], 0))
        # gRPC GetOnlineFeatures and HTTP /get-online-features: the same table.
        feats = ["driver_stats:%s" % f for f in DRIVER_STATS] + ["driver_live:speed"]
        req = sv.GetOnlineFeaturesRequest(features=sv.FeatureList(val=feats))
        req.entities["driver_id"].val.extend([V(int64_val=i) for i in ids])
        resp = sv_rpc.ServingServiceStub(SERVER.channel).GetOnlineFeatures(req, timeout=10)
        names = list(resp.metadata.feature_names.val)
        self.assertEqual(names, ["driver_id"] + DRIVER_STATS + ["speed"])
        for col, name in zip(resp.results[1:], names[1:]):
            for n, i in enumerate(ids):
                self.assertEqual((col.values[n], col.statuses[n], col.event_timestamps[n].seconds),
                                 (want[i][name], sv.PRESENT, ts[n]), (name, i))
        reply = SERVER.http("POST", GET, json_body={"entities": {"driver_id": ids}, "features": feats})
        self.assertEqual(reply.status, 200, reply)
        self.assertIsNone(hc.json_diff(hc.response_json(resp), hc.loads_strict(reply.body)))
        http_json = hc.loads_strict(reply.body)
        self.assertEqual(http_json["results"][1]["values"], [0.25, 1.0, None])
        self.assertEqual(http_json["results"][3]["values"], [4.5, 0.10000000149011612, 2.0])
        self.assertEqual(http_json["results"][6]["event_timestamps"],
                         ["2024-05-01T12:00:00Z", "2024-05-01T12:00:01Z", "2024-05-01T12:00:02Z"])


# ---------------------------------------------------------------- bad input

def push_body(**overrides):
    body = {"push_source_name": "driver_push", "to": "online",
            "df": {"driver_id": [9101, 9102, 9103], "conv_rate": [0.1, 0.2, 0.3], "trips": [1, 2, 3],
                   "rating": [1.0, 2.0, 3.0], "active": [True, False, True], "tag": ["a", "b", "c"],
                   "speed": [1.5, 2.5, 3.5], "event_timestamp": ["2024-05-01T00:00:00"] * 3}}
    for k, v in overrides.items():
        if v is DROP:
            body.pop(k, None)
        else:
            body[k] = v
    return body


def push_df(**columns):
    """push_body()'s df with columns replaced (DROP removes one)."""
    df = dict(push_body()["df"])
    for k, v in columns.items():
        if v is DROP:
            df.pop(k)
        else:
            df[k] = v
    return push_body(df=df)


def write_body(**overrides):
    body = {"feature_view_name": "customer_stats",
            "df": {"customer_id": ["w1", "w2"], "age": [1, 2], "segment": ["s", "t"],
                   "ts": ["2024-05-01T00:00:00", "2024-05-01T00:00:01"]}}
    for k, v in overrides.items():
        if v is DROP:
            body.pop(k, None)
        else:
            body[k] = v
    return body


def write_df(**columns):
    df = dict(write_body()["df"])
    for k, v in columns.items():
        if v is DROP:
            df.pop(k)
        else:
            df[k] = v
    return write_body(df=df)


def typed_body(**cells):
    """/write-to-online-store to `typed`: every feature null but the cells given (one row)."""
    df = {"driver_id": [9300], "event_timestamp": ["2024-05-01T00:00:00Z"]}
    df.update({f: [None] for f in TYPED_FEATURES})
    df["f_int64"] = [5]  # something to write, should the bad cell be ignored
    df.update({k: [v] for k, v in cells.items()})
    return {"feature_view_name": "typed", "df": df}


def gof_body(**overrides):
    body = {"entities": {"driver_id": [1001, 1002]}, "features": ["driver_stats:trips"], "full_feature_names": False}
    for k, v in overrides.items():
        if v is DROP:
            body.pop(k, None)
        else:
            body[k] = v
    return body


def nested(depth):
    """`depth` arrays one inside the other."""
    return json.loads("[" * depth + "]" * depth)


DROP = object()
DETAIL = "detail"  # FastAPI's {"detail": [...]} (422 of the request model)

# (name, path, body, status, shape): shape is DETAIL or the feast.errors class.
BAD = [
    # Not JSON, or not the request model: 422 with pydantic's detail list.
    ("not JSON", GET, b'{"entities": ', 422, DETAIL),
    ("empty body", "/push", b"", 422, DETAIL),
    ("not UTF-8", "/push", b'{"push_source_name": "\xff"}', 422, DETAIL),
    ("a JSON array", GET, [], 422, DETAIL),
    ("a JSON string", "/push", "push", 422, DETAIL),
    ("gof: no entities", GET, gof_body(entities=DROP), 422, DETAIL),
    ("gof: entities an array", GET, gof_body(entities=[1001]), 422, DETAIL),
    ("gof: entities a string", GET, gof_body(entities="driver_id"), 422, DETAIL),
    ("gof: a column not an array", GET, gof_body(entities={"driver_id": 1001}), 422, DETAIL),
    ("gof: a column an object", GET, gof_body(entities={"driver_id": {"a": 1}}), 422, DETAIL),
    ("gof: features a string", GET, gof_body(features="driver_stats:trips"), 422, DETAIL),
    ("gof: features not strings", GET, gof_body(features=[1]), 422, DETAIL),
    ("gof: features an object", GET, gof_body(features={}), 422, DETAIL),
    ("gof: feature_service a number", GET, gof_body(features=DROP, feature_service=1), 422, DETAIL),
    ("gof: feature_service an array", GET, gof_body(features=DROP, feature_service=["driver_service"]), 422, DETAIL),
    ("gof: full_feature_names a string", GET, gof_body(full_feature_names="true"), 422, DETAIL),
    ("gof: full_feature_names 1", GET, gof_body(full_feature_names=1), 422, DETAIL),
    ("gof: include_feature_view_version_metadata a string", GET,
     gof_body(include_feature_view_version_metadata="false"), 422, DETAIL),
    ("push: no push_source_name", "/push", push_body(push_source_name=DROP), 422, DETAIL),
    ("push: push_source_name a number", "/push", push_body(push_source_name=1), 422, DETAIL),
    ("push: no df", "/push", push_body(df=DROP), 422, DETAIL),
    ("push: df an array", "/push", push_body(df=[{"driver_id": 1}]), 422, DETAIL),
    ("push: df a string", "/push", push_body(df="driver_id"), 422, DETAIL),
    ("push: to a number", "/push", push_body(to=1), 422, DETAIL),
    ("push: to null", "/push", push_body(to=None), 422, DETAIL),
    ("push: allow_registry_cache a string", "/push", push_body(allow_registry_cache="true"), 422, DETAIL),
    ("push: transform_on_write 0", "/push", push_body(transform_on_write=0), 422, DETAIL),
    ("write: no feature_view_name", "/write-to-online-store", write_body(feature_view_name=DROP), 422, DETAIL),
    ("write: feature_view_name a number", "/write-to-online-store", write_body(feature_view_name=1), 422, DETAIL),
    ("write: no df", "/write-to-online-store", write_body(df=DROP), 422, DETAIL),
    ("write: df an array", "/write-to-online-store", write_body(df=[]), 422, DETAIL),
    ("write: allow_registry_cache 1", "/write-to-online-store", write_body(allow_registry_cache=1), 422, DETAIL),
    ("write: transform_on_write a string", "/write-to-online-store", write_body(transform_on_write="false"), 422,
     DETAIL),
    # Unknown names.
    ("gof: unknown view", GET, gof_body(features=["nope:trips"]), 404, "FeatureViewNotFoundException"),
    ("gof: unknown feature service", GET, gof_body(features=DROP, feature_service="nope"), 404,
     "FeatureServiceNotFoundException"),
    ("gof: unknown feature", GET, gof_body(features=["driver_stats:nope"]), 400, "FeastError"),
    ("push: unknown push source", "/push", push_body(push_source_name="nope"), 422, "PushSourceNotFoundException"),
    ("push: a batch source is no push source", "/push", push_body(push_source_name="driver_file"), 422,
     "PushSourceNotFoundException"),
    ("write: unknown view", "/write-to-online-store", write_body(feature_view_name="nope"), 404,
     "FeastObjectNotFoundException"),
    # Names holding a NUL byte: no name can (they used to be read as far as the NUL).
    ("gof: NUL in an entity column name", GET, gof_body(entities={"driver_id": [1001, 1002], "driver_id\x00x": [5, 6]}),
     400, "FeastError"),
    ("gof: NUL in a feature reference", GET, gof_body(features=["driver_stats:trips\x00x"]), 400, "FeastError"),
    ("gof: NUL in feature_service", GET, gof_body(features=DROP, feature_service="driver_service\x00x"), 400,
     "FeastError"),
    ("push: NUL in push_source_name", "/push", push_body(push_source_name="driver_push\x00x"), 400, "FeastError"),
    ("push: NUL in to", "/push", push_body(to="online\x00x"), 400, "FeastError"),
    ("push: NUL in a df column name", "/push", push_df(**{"trips\x00x": [9, 9, 9]}), 400, "FeastError"),
    ("write: NUL in feature_view_name", "/write-to-online-store", write_body(feature_view_name="customer_stats\x00x"),
     400, "FeastError"),
    # ... nor any text value: a NUL would end the C string early (another entity's key, a shorter value).
    ("gof: NUL in a STRING entity value", GET, gof_body(features=["customer_stats:age"],
                                                       entities={"customer_id": ["c1", "c1\x00zzz"]}), 400, "FeastError"),
    ("push: NUL in a STRING value", "/push", push_df(tag=["a", "gold\x00evil", "c"]), 400, "FeastError"),
    ("write: NUL in a STRING join key", "/write-to-online-store", write_df(customer_id=["w1", "w1\x00hack"]), 400,
     "FeastError"),
    ("write: NUL in a UUID", "/write-to-online-store", typed_body(f_uuid="1b4e28ba-2fa1-11d2-883f-0016d3cca427\x00"),
     400, "FeastError"),
    ("write: NUL in a map key", "/write-to-online-store", typed_body(f_map={"a\x00b": 1}), 400, "FeastError"),
    # `to`.
    ("push: to offline", "/push", push_body(to="offline"), 422, "FeastError"),
    ("push: to online_and_offline", "/push", push_body(to="online_and_offline"), 422, "FeastError"),
    ("push: to bad", "/push", push_body(to="bad"), 400, "FeastError"),
    ("push: to empty", "/push", push_body(to=""), 400, "FeastError"),
    # Frames.
    ("push: columns of different lengths", "/push", push_df(tag=["a", "b"]), 400, "FeastError"),
    ("push: a missing feature column", "/push", push_df(speed=DROP), 400, "FeastError"),
    ("push: a missing join key column", "/push", push_df(driver_id=DROP), 400, "FeastError"),
    ("push: no event_timestamp", "/push", push_df(event_timestamp=DROP), 400, "FeastError"),
    ("push: a null event_timestamp", "/push", push_df(event_timestamp=["2024-05-01T00:00:00", None,
                                                                        "2024-05-01T00:00:00"]), 400, "FeastError"),
    ("push: an event_timestamp that is no time", "/push", push_df(event_timestamp=["2024-05-01T00:00:00",
                                                                                    "yesterday",
                                                                                    "2024-05-01T00:00:00"]),
     400, "FeastError"),
    ("push: a null join key", "/push", push_df(driver_id=[9101, None, 9103]), 400, "FeastError"),
    ("push: an object as a column", "/push", push_df(tag={"a": 1}), 400, "FeastError"),
    ("push: a frame of scalars only", "/push", push_body(df={"driver_id": 9101, "conv_rate": 0.1, "trips": 1,
                                                              "rating": 1.0, "active": True, "tag": "a",
                                                              "speed": 1.5, "event_timestamp": "2024-05-01T00:00:00"}),
     400, "FeastError"),
    ("push: 'x' for INT64", "/push", push_df(trips=[1, "x", 3]), 400, "FeastError"),
    ("push: 1.5 for INT64", "/push", push_df(trips=[1, 1.5, 3]), 400, "FeastError"),
    ("push: true for INT64", "/push", push_df(trips=[1, True, 3]), 400, "FeastError"),
    ("push: true for STRING", "/push", push_df(tag=["a", True, "c"]), 400, "FeastError"),
    ("push: 1.5 for STRING", "/push", push_df(tag=["a", 1.5, "c"]), 400, "FeastError"),
    ("push: 'maybe' for BOOL", "/push", push_df(active=[True, "maybe", False]), 400, "FeastError"),
    ("push: 2 for BOOL", "/push", push_df(active=[True, 2, False]), 400, "FeastError"),
    ("push: 1e300 for FLOAT", "/push", push_df(rating=[1.0, 1e300, 2.0]), 400, "FeastError"),
    ("push: 'fast' for DOUBLE", "/push", push_df(speed=[1.0, "fast", 2.0]), 400, "FeastError"),
    ("push: an array for DOUBLE", "/push", push_df(conv_rate=[0.1, [0.2], 0.3]), 400, "FeastError"),
    ("push: 1.5 for an INT64 join key", "/push", push_df(driver_id=[9101, 9102.5, 9103]), 400, "FeastError"),
    ("push: an INT64 out of range", "/push", push_df(trips=[1, 9223372036854775808, 3]), 400, "FeastError"),
    ("write: 'not base64' for BYTES", "/write-to-online-store", typed_body(f_bytes="not base64!"), 400,
     "FeastError"),
    ("write: an integer for BYTES", "/write-to-online-store", typed_body(f_bytes=5), 400, "FeastError"),
    ("write: not JSON text for JSON", "/write-to-online-store", typed_body(f_json="{nope"), 400, "FeastError"),
    ("write: mixed kinds in a MAP list", "/write-to-online-store", typed_body(f_map={"a": [1, "x"]}), 400,
     "FeastError"),
    ("write: a string for INT64_LIST", "/write-to-online-store", typed_body(f_int64_list="1,2"), 400, "FeastError"),
    ("write: a string in an INT64_LIST", "/write-to-online-store", typed_body(f_int64_list=[1, "x"]), 400,
     "FeastError"),
    ("write: SCALAR_MAP from JSON", "/write-to-online-store", typed_body(f_scalar_map={"1": "one"}), 400,
     "FeastError"),
    ("write: ZONED_TIMESTAMP from JSON", "/write-to-online-store", typed_body(f_zoned="2024-01-01T00:00:00Z"), 400,
     "FeastError"),
    ("write: 2**31 for INT32", "/write-to-online-store", typed_body(f_int32=2 ** 31), 400, "FeastError"),
    ("write: a missing feature column", "/write-to-online-store", write_df(segment=DROP), 400, "FeastError"),
    ("write: a missing join key column", "/write-to-online-store", write_df(customer_id=DROP), 400, "FeastError"),
    ("write: columns of different lengths", "/write-to-online-store", write_df(age=[1]), 400, "FeastError"),
    ("write: no timestamp column", "/write-to-online-store", write_df(ts=DROP), 400, "FeastError"),
    # Entities of /get-online-features.
    ("gof: columns of different lengths", GET, gof_body(entities={"driver_id": [1001, 1002],
                                                                  "customer_id": ["c1"]}), 400, "FeastError"),
    ("gof: a missing join key", GET, gof_body(entities={"customer_id": ["c1"]}), 400, "FeastError"),
    ("gof: 'abc' for an INT64 key", GET, gof_body(entities={"driver_id": ["abc"]}), 400, "FeastError"),
    ("gof: true for an INT64 key", GET, gof_body(entities={"driver_id": [True]}), 400, "FeastError"),
    ("gof: 1.5 for a STRING key", GET, gof_body(entities={"customer_id": [1.5]}, features=["customer_stats:age"]),
     400, "FeastError"),
    ("gof: not base64 for a BYTES key", GET, gof_body(entities={"device_id": ["%%%"]},
                                                      features=["device_stats:temp"]), 400, "FeastError"),
    ("gof: an entity name and its join key both", GET, gof_body(entities={"driver": [1001], "driver_id": [1001]}),
     400, "FeastError"),
    ("gof: a reference without ':'", GET, gof_body(features=["driver_stats"]), 400, "FeastError"),
    ("gof: no features", GET, gof_body(features=DROP), 400, "FeastError"),
    ("gof: empty features", GET, gof_body(features=[]), 400, "FeastError"),
    ("gof: two features with one name", GET, gof_body(features=["driver_stats:conv_rate",
                                                                "driver_live:speed", "driver_stats:conv_rate"]),
     400, "FeatureNameCollisionError"),
    ("gof: a versioned reference, versioning off", GET, gof_body(features=["driver_stats@v2:trips"]), 409,
     "FeastError"),
    ("gof: more entity columns than max_columns (256)", GET,
     gof_body(entities=dict({"driver_id": [1001]}, **{"extra%d" % i: [1] for i in range(256)})), 400, "FeastError"),
    # JSON deeper than 64 (the outer object is level 1).
    ("JSON nested 65 deep", GET, gof_body(x=nested(64)), 400, "FeastError"),
]


def error_problem(reply, status, shape):
    """None when `reply` has `status` and `shape` (DETAIL, or a feast_error of that class)."""
    if reply.status != status:
        return "status %d, expected %d: %r" % (reply.status, status, reply.body[:300])
    if (reply.header("Content-Type") or "").split(";")[0].strip() != "application/json":
        return "Content-Type %r" % reply.header("Content-Type")
    if shape == DETAIL:
        return hc.detail_problem(reply.body, [])
    try:
        module, cls, message = hc.feast_error(reply.body)
    except hc.JsonError as e:
        return "not a feast_error body (%s): %r" % (e, reply.body[:300])
    if (module, cls) != ("feast.errors", shape):
        return "%s.%s (%r), expected feast.errors.%s" % (module, cls, message, shape)
    if not message.strip():
        return "an empty message"
    return None


class BadInput(unittest.TestCase):
    def test_bad_requests(self):
        client = harness.Http(SERVER.http_port)
        self.addCleanup(client.close)
        for name, path, body, status, shape in BAD:
            with self.subTest(name):
                before = STORE.snapshot()
                if isinstance(body, bytes):
                    reply = client.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                else:
                    reply = client.request("POST", path, json_body=body)
                problem = error_problem(reply, status, shape)
                if problem:
                    self.fail("%s: %s" % (name, problem))
                self.assertEqual(hc.row_problems(before, STORE.snapshot(), []), [], name)
        print("bad requests: %d kinds, one connection: %d opened" % (len(BAD), client.opened))

    def test_exact_texts(self):
        """The messages HTTP.md gives word for word (§6.5)."""
        for to in ("offline", "online_and_offline"):
            reply = SERVER.http("POST", "/push", json_body=push_body(to=to))
            self.assertIsNone(error_problem(reply, 422, "FeastError"))
            self.assertEqual(hc.feast_error(reply.body)[2], "to=%s: larder has no offline store; push with to=online, "
                                                            "and write the offline store with Feast" % to)

    def test_depth_64_is_taken(self):
        """JSON nested exactly 64 deep (the outer object is level 1) is no error; the
        key holding it is not a field, so it is ignored."""
        reply = SERVER.http("POST", GET, json_body=gof_body(x=nested(63)))
        self.assertEqual(reply.status, 200, reply)

    def test_good_counterparts(self):
        """The bodies the bad cases start from are good: each bad case fails for its own reason."""
        typed = typed_body()
        typed["df"]["driver_id"] = [9301]
        for path, body in ((GET, gof_body()), ("/push", push_df(driver_id=[9901, 9902, 9903])),
                           ("/write-to-online-store", write_df(customer_id=["g1", "g2"])),
                           ("/write-to-online-store", typed)):
            reply = SERVER.http("POST", path, json_body=body)
            self.assertEqual(reply.status, 200, (path, reply))


class Shapes(unittest.TestCase):
    """Request shapes HTTP.md §4.1, §1 and §6.3 answer without an error."""

    def test_other_keys_are_ignored(self):
        plain = SERVER.http("POST", GET, json_body=gof_body())
        self.assertEqual(plain.status, 200, plain)
        extra = SERVER.http("POST", GET, json_body=gof_body(request_context={"x": [1, 2]}, project="elsewhere",
                                                           anything={"a": None}))
        self.assertEqual(extra.status, 200, extra)
        self.assertIsNone(hc.json_diff(hc.loads_strict(plain.body), hc.loads_strict(extra.body)))

    def test_a_repeated_key_takes_the_last_value(self):
        body = (b'{"entities": {"driver_id": [1001]}, "features": ["nope:x"], '
                b'"features": ["driver_stats:trips"]}')
        reply = SERVER.http("POST", GET, body=body, headers={"Content-Type": "application/json"})
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(hc.loads_strict(reply.body)["metadata"]["feature_names"], ["driver_id", "trips"])

    def test_repeated_and_unnamed_columns(self):
        """A column given twice is the one given last, as json.loads' dict has it (HTTP.md §1),
        in `entities` and in `df` (the shadowed one's length does not count); a column
        named "" is one more column that names no join key: ignored (§4.2)."""
        hdr = {"Content-Type": "application/json"}
        plain = SERVER.http("POST", GET, json_body=gof_body())
        self.assertEqual(plain.status, 200, plain)
        for text in (b'{"entities": {"driver_id": [5], "driver_id": [1001, 1002]}, '
                     b'"features": ["driver_stats:trips"]}',
                     b'{"entities": {"": [5, 6], "driver_id": [1001, 1002]}, "features": ["driver_stats:trips"]}'):
            with self.subTest(text):
                reply = SERVER.http("POST", GET, body=text, headers=hdr)
                self.assertEqual(reply.status, 200, reply)
                self.assertIsNone(hc.json_diff(hc.loads_strict(plain.body), hc.loads_strict(reply.body)))
        ids = [9711, 9712, 9713]
        text = json.dumps(push_df(driver_id=ids, trips=[4, 5, 6])).replace('"trips": [', '"trips": [1], "trips": [', 1)
        self.assertIn('"trips": [1], "trips": [4, 5, 6]', text)
        reply = SERVER.http("POST", "/push", body=text.encode(), headers=hdr)
        self.assertEqual(reply.status, 200, reply)
        reply = SERVER.http("POST", GET, json_body=gof_body(entities={"driver_id": ids}))
        self.assertEqual(hc.loads_strict(reply.body)["results"][1]["values"], [4, 5, 6], reply)

    def test_field_types_before_the_frame(self):
        """Every field's type (422) is checked before what `df` holds (400), HTTP.md §1's order."""
        uneven = {"driver_id": [1], "trips": [1, 2]}
        for path, body in (("/push", push_body(df=uneven, to=5)),
                           ("/push", push_body(df=uneven, allow_registry_cache="no")),
                           ("/push", push_body(df=uneven, transform_on_write=0)),
                           ("/write-to-online-store", write_body(df=uneven, transform_on_write="no")),
                           ("/write-to-online-store", write_body(df=uneven, allow_registry_cache=[]))):
            with self.subTest(path=path, body=body):
                reply = SERVER.http("POST", path, json_body=body)
                self.assertEqual(reply.status, 422, reply)
                reply = SERVER.http("POST", path, json_body=dict(body, to="online", allow_registry_cache=True,
                                                                 transform_on_write=True))
                self.assertEqual(reply.status, 400, reply)

    def test_zero_rows(self):
        """All columns empty: 200, empty columns, no event_timestamps (HTTP.md §4.2, §4.3)."""
        reply = SERVER.http("POST", GET, json_body=gof_body(entities={"driver_id": []},
                                                           features=["driver_stats:trips", "driver_stats:tag"]))
        self.assertEqual(reply.status, 200, reply)
        want = {"metadata": {"feature_names": ["driver_id", "trips", "tag"]},
                "results": [{"values": [], "statuses": []}] * 3}
        self.assertIsNone(hc.json_diff(want, hc.loads_strict(reply.body)))

    def test_empty_frames_write_nothing(self):
        """A frame of no rows, every column there: 200, nothing written (HTTP.md §6.3.7)."""
        for path, body in (("/push", push_body(df={k: [] for k in push_body()["df"]})),
                           ("/write-to-online-store", write_body(df={k: [] for k in write_body()["df"]}))):
            with self.subTest(path):
                before = STORE.snapshot()
                reply = SERVER.http("POST", path, json_body=body)
                self.assertEqual(reply.status, 200, reply)
                self.assertEqual(hc.row_problems(before, STORE.snapshot(), []), [])


# ---------------------------------------------------------------- limits, raw sockets

class Raw:
    """A plain socket speaking HTTP/1.1 by hand, for what http.client will not do."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buf += data

    def response(self, timeout=10):
        """(status, {lowercase header: value}, body) of the next response (1xx included)."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if status < 200:
            return status, headers, b""
        if "content-length" not in headers:
            raise AssertionError("a response without Content-Length: %r" % head)
        n = int(headers["content-length"])
        while len(self.buf) < n:
            self._fill(deadline)
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed_within(self, timeout):
        """True when the server closes the connection (EOF or reset) within `timeout`."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except socket.timeout:
            return False
        except OSError:
            return True
        return False

    def close(self):
        self.sock.close()


def request_head(method, path, length=None, extra=()):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1", "Content-Type: application/json"]
    if length is not None:
        lines.append("Content-Length: %d" % length)
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(data, sizes):
    out, i = b"", 0
    for n in sizes:
        part = data[i:i + n]
        i += n
        if part:
            out += b"%x\r\n" % len(part) + part + b"\r\n"
    if i < len(data):
        out += b"%x\r\n" % (len(data) - i) + data[i:] + b"\r\n"
    return out + b"0\r\n\r\n"


class Limits(unittest.TestCase):
    def test_body_over_max_message_bytes_from_content_length(self):
        """413 decided from Content-Length, before the body comes (a server that waited
        for it would answer 408 after receive_timeout_s), then the connection is closed."""
        raw = Raw(SERVER.http_port)
        self.addCleanup(raw.close)
        raw.send(request_head("POST", "/push", MAX_BYTES + 1))
        status, headers, body = raw.response(timeout=RECEIVE_TIMEOUT * SLOW + 5)
        self.assertEqual(status, 413, body)
        self.assertIsNone(error_problem(harness.HttpReply(status, "", headers_of(headers), body, True), 413,
                                        "FeastError"))
        self.assertTrue(raw.closed_within(5 * SLOW), "the connection stayed open after a 413")

    def test_body_over_max_message_bytes_sent(self):
        """The whole body sent (valid JSON, one byte over): 413, nothing written, closed."""
        body = json.dumps(push_df(driver_id=[9401, 9402, 9403]))
        body = body[:-1] + ', "pad": "' + "x" * (MAX_BYTES + 1 - len(body) - 11) + '"}'
        self.assertEqual(len(body), MAX_BYTES + 1)
        before = STORE.snapshot()
        raw = Raw(SERVER.http_port)
        self.addCleanup(raw.close)
        raw.send(request_head("POST", "/push", len(body)) + body.encode())
        status, headers, reply = raw.response()
        self.assertEqual(status, 413, reply)
        self.assertTrue(raw.closed_within(5 * SLOW), "the connection stayed open after a 413")
        self.assertEqual(hc.row_problems(before, STORE.snapshot(), []), [])
        # One byte less is taken.
        ok = body.replace('"pad": "x', '"pad": "', 1)
        reply = SERVER.http("POST", "/push", body=ok, headers={"Content-Type": "application/json"})
        self.assertEqual(reply.status, 200, reply)

    def test_a_client_still_sending_reads_its_refusal(self):
        """A body refused from its head while the client goes on sending it (32 MiB,
        past what socket buffers hold): larder drops what comes until the client is
        done, so the client's write succeeds and it reads the 413, where a close
        with bytes unread would have reset the connection under it (RFC 9112 §9.6)."""
        conn = http.client.HTTPConnection("127.0.0.1", SERVER.http_port, timeout=30)
        self.addCleanup(conn.close)
        conn.request("POST", "/push", body=b"x" * (32 << 20), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
        self.assertEqual(resp.status, 413, body)
        self.assertIn("max_message_bytes", body.decode())

    def test_chunked_body_over_max_message_bytes(self):
        data = json.dumps(push_df(driver_id=[9411, 9412, 9413], tag=["x" * MAX_BYTES, "b", "c"])).encode()
        before = STORE.snapshot()
        raw = Raw(SERVER.http_port)
        self.addCleanup(raw.close)
        try:
            raw.send(request_head("POST", "/push", extra=["Transfer-Encoding: chunked"]) +
                     chunked(data, [4096] * (len(data) // 4096)))
        except OSError:
            pass  # the server may stop reading once it has seen enough
        status, _, reply = raw.response()
        self.assertEqual(status, 413, reply)
        self.assertEqual(hc.row_problems(before, STORE.snapshot(), []), [])

    def test_rows_over_max_batch_rows(self):
        n = MAX_ROWS + 1
        ids = list(range(9500, 9500 + n))
        cases = [
            ("/push", push_body(df={"driver_id": ids, "conv_rate": [0.5] * n, "trips": [1] * n, "rating": [1.0] * n,
                                    "active": [True] * n, "tag": ["a"] * n, "speed": [1.0] * n,
                                    "event_timestamp": ["2024-05-01T00:00:00"] * n})),
            ("/write-to-online-store", {"feature_view_name": "customer_stats",
                                        "df": {"customer_id": ["r%d" % i for i in range(n)], "age": [1] * n,
                                               "segment": ["s"] * n, "ts": ["2024-05-01T00:00:00"] * n}}),
            (GET, gof_body(entities={"driver_id": ids})),
        ]
        for path, body in cases:
            with self.subTest(path):
                before = STORE.snapshot()
                reply = SERVER.http("POST", path, json_body=body)
                self.assertIsNone(error_problem(reply, 413, "FeastError"))
                self.assertEqual(hc.row_problems(before, STORE.snapshot(), []), [])
                # MAX_ROWS rows are taken.
                small = json.loads(json.dumps(body))
                cols = small["df"] if "df" in small else small["entities"]
                for k in cols:
                    cols[k] = cols[k][:MAX_ROWS]
                self.assertEqual(SERVER.http("POST", path, json_body=small).status, 200, path)

    def test_reply_over_max_message_bytes(self):
        """A reply that would pass max_message_bytes: 413."""
        big = V(string_val="y" * 2000).SerializeToString().hex()
        hc.store_rows(SERVER, [{"feature_view": "typed", "entity_key": {"join_keys": ["driver_id"],
                                                                        "entity_values": [{"int64_val": "9600"}]},
                                "event_ts": 1700000000, "features": {"f_string": big}}])
        reply = SERVER.http("POST", GET, json_body={"entities": {"driver_id": [9600] * 60},
                                                    "features": ["typed:f_string"]})
        self.assertIsNone(error_problem(reply, 413, "FeastError"))
        reply = SERVER.http("POST", GET, json_body={"entities": {"driver_id": [9600] * 5},
                                                    "features": ["typed:f_string"]})
        self.assertEqual(reply.status, 200, reply)

    def test_slow_body_gets_408(self):
        """A body trickling in, never complete within receive_timeout_s: 408 and the
        connection closed, whatever the bytes that kept arriving."""
        raw = Raw(SERVER.http_port)
        self.addCleanup(raw.close)
        body = json.dumps(gof_body()).encode()
        raw.send(request_head("POST", GET, len(body) + 100) + body[:5])
        t0 = time.monotonic()
        got = None
        sent = 5
        while time.monotonic() - t0 < RECEIVE_TIMEOUT * SLOW + 6:
            try:
                raw.sock.settimeout(0.3)
                data = raw.sock.recv(65536)
                if not data:
                    break
                raw.buf += data
                if b"\r\n\r\n" in raw.buf:
                    got = raw.response()
                    break
            except socket.timeout:
                pass
            except OSError:
                break
            if sent < len(body):
                try:
                    raw.send(body[sent:sent + 1])
                except OSError:  # closed: the answer may be waiting all the same
                    try:
                        got = raw.response(timeout=2)
                    except (OSError, EOFError):
                        pass
                    break
                sent += 1
        elapsed = time.monotonic() - t0
        self.assertIsNotNone(got, "no answer to a body that never completed (after %.1f s)" % elapsed)
        self.assertEqual(got[0], 408, got)
        self.assertGreater(elapsed, RECEIVE_TIMEOUT * 0.8)
        self.assertTrue(raw.closed_within(5 * SLOW), "the connection stayed open after a 408")
        print("408 after %.2f s (receive_timeout_s %d)" % (elapsed, RECEIVE_TIMEOUT))

    def test_chunked_bodies_are_taken(self):
        before = STORE.snapshot()
        body = json.dumps(push_df(driver_id=[9701, 9702, 9703])).encode()
        raw = Raw(SERVER.http_port)
        self.addCleanup(raw.close)
        raw.send(request_head("POST", "/push", extra=["Transfer-Encoding: chunked"]) + chunked(body, [1, 10, 100]))
        status, headers, reply = raw.response()
        self.assertEqual((status, reply), (200, b""))
        after = STORE.snapshot()
        self.assertEqual(len([k for k in after if k not in before]), 3 * 6)
        # And on the same connection, a chunked /get-online-features.
        body = json.dumps(gof_body(entities={"driver_id": [9701]})).encode()
        raw.send(request_head("POST", GET, extra=["Transfer-Encoding: chunked"]) + chunked(body, [7, 7]))
        status, headers, reply = raw.response()
        self.assertEqual(status, 200, reply)
        self.assertEqual(hc.loads_strict(reply)["results"][1]["values"], [1])

    def test_header_block_over_16_kib(self):
        """Header blocks up to 16 KiB are taken; a larger one gets a 4xx (HTTP.md §1)."""
        body = json.dumps(gof_body()).encode()
        raw = Raw(SERVER.http_port)
        self.addCleanup(raw.close)
        raw.send(request_head("POST", GET, len(body), extra=["X-Pad: " + "p" * 15000]) + body)
        status, _, _ = raw.response()
        self.assertEqual(status, 200)
        raw2 = Raw(SERVER.http_port)
        self.addCleanup(raw2.close)
        try:
            raw2.send(request_head("POST", GET, len(body), extra=["X-Pad: " + "p" * 20000]) + body)
        except OSError:
            pass
        status, _, _ = raw2.response()
        self.assertTrue(400 <= status < 500, status)

    def test_scalar_column_converted_once(self):
        """pandas broadcasts a scalar column to every row: larder converts it once, not once
        per row. A /push of 1,000 rows whose `trips` (INT64) is one number of 3.9 MB of
        digits, 1.000...0, answers within a second and writes 1 to every row; converting
        it per row took 10 s of a worker."""
        ids = list(range(9800, 10800))
        df = dict(push_body()["df"], driver_id=ids, event_timestamp="2024-05-01T00:00:00")
        for col in ("conv_rate", "rating", "active", "tag", "speed"):
            df[col] = df[col][0]
        text = json.dumps(dict(push_body(), df=dict(df, trips=1)))
        body = text.replace('"trips": 1', '"trips": 1.' + "0" * (3900000), 1)
        self.assertEqual(len(body), len(text) + 3900001)
        with start(larder={"max_message_bytes": 4194304, "max_batch_rows": 1000}, rows=False) as server:
            t0 = time.monotonic()
            reply = server.http("POST", "/push", body=body, headers={"Content-Type": "application/json"})
            took = time.monotonic() - t0
            self.assertEqual(reply.status, 200, reply)
            print("/push of 1,000 rows, one scalar of %d bytes: %.2f s" % (len(body), took))
            got = server.stub.OnlineRead(pb.OnlineReadRequest(
                feature_view="driver_stats", entity_keys=[ek(ids[0]), ek(ids[-1])]), timeout=10).results
            self.assertEqual([r.features["trips"].int64_val for r in got], [1, 1])
            self.assertLess(took, 1.0 * SLOW)

    def test_expect_100_continue(self):
        body = json.dumps(gof_body()).encode()
        raw = Raw(SERVER.http_port)
        self.addCleanup(raw.close)
        raw.send(request_head("POST", GET, len(body), extra=["Expect: 100-continue"]))
        status, _, _ = raw.response(timeout=3 * SLOW)
        self.assertEqual(status, 100, "no 100 Continue before the body was sent")
        raw.send(body)
        status, headers, reply = raw.response()
        self.assertEqual(status, 200, reply)
        # A request refused on its headers needs no body: the final answer comes instead of 100.
        raw2 = Raw(SERVER.http_port)
        self.addCleanup(raw2.close)
        raw2.send(request_head("POST", "/push", MAX_BYTES * 2, extra=["Expect: 100-continue"]))
        status, _, _ = raw2.response(timeout=3 * SLOW)
        if status == 100:  # allowed, though the body will not be read
            status, _, _ = raw2.response(timeout=3 * SLOW)
        self.assertEqual(status, 413)


class Fairness(unittest.TestCase):
    """What one connection may take of the server: a thread, the budget of bodies, memory."""

    def test_a_pipelining_client_keeps_no_thread(self):
        """One HTTP thread (workers: 1). A client writes pipelined /health requests without
        end while reading the answers; a second client's requests are each answered within
        1 s meanwhile (a thread used to serve one connection for as long as it had bytes)."""
        server = start(larder={"workers": 1}, rows=False)
        self.addCleanup(server.stop)
        hc.wait_healthy(server)
        sock = socket.create_connection(("127.0.0.1", server.http_port))
        self.addCleanup(sock.close)
        stop = threading.Event()
        answered = [0]
        block = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 2000

        def writer():
            try:
                while not stop.is_set():
                    sock.sendall(block)
            except OSError:
                pass

        def reader():
            try:
                while not stop.is_set():
                    data = sock.recv(1 << 20)
                    if not data:
                        return
                    answered[0] += data.count(b"HTTP/1.1 200 ")
            except OSError:
                pass
        threads = [threading.Thread(target=writer, daemon=True), threading.Thread(target=reader, daemon=True)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        flood_before = answered[0]
        took = []
        for _ in range(20):
            t0 = time.monotonic()
            reply = server.http("GET", "/health", timeout=10 * SLOW)
            took.append(time.monotonic() - t0)
            self.assertEqual(reply.status, 200, reply)
        flood = answered[0] - flood_before
        stop.set()
        sock.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(5)
        print("pipelined flood: %d answers, %d of them during the other client's 20 requests "
              "(worst %.3f s)" % (answered[0], flood, max(took)))
        self.assertGreater(answered[0], 1000, "the flood was not served: the test shows nothing")
        self.assertLess(max(took), 1.0 * SLOW, took)

    def test_pipelined_requests_then_close_are_all_answered(self):
        """100 pipelined requests, then the client closes its side: 100 answers, then the
        connection closes (answers are given in turns of 16 now; a turn must not drop the rest)."""
        raw = Raw(SERVER.http_port)
        self.addCleanup(raw.close)
        # Corked, the requests and the FIN leave in one segment: the server sees the end of
        # input while most requests are still unanswered, whatever the scheduling.
        raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        raw.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 100)
        raw.sock.shutdown(socket.SHUT_WR)
        statuses = [raw.response(timeout=5 * SLOW)[0] for _ in range(100)]
        self.assertEqual(statuses, [200] * 100)
        self.assertTrue(raw.closed_within(5 * SLOW), "the connection stayed open")

    def test_refusal_after_a_head_request_has_its_body(self):
        """A 408 on a connection whose last request was HEAD has the body its
        Content-Length says (it was answered as HEAD: without one)."""
        raw = Raw(SERVER.http_port)
        self.addCleanup(raw.close)
        raw.send(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = raw.response()
        self.assertEqual((status, body), (200, b""))
        raw.send(b"POST /push HTTP/1.1\r\n")
        status, headers, body = raw.response(timeout=RECEIVE_TIMEOUT * SLOW + 5)
        self.assertEqual(status, 408)
        self.assertEqual(len(body), int(headers["content-length"]))

    def test_bodies_count_what_came_not_what_was_declared(self):
        """The budget of all bodies (here 256 MiB: 16 x max_message_bytes of 16 MiB) holds
        the bytes bodies have sent. Sixteen connections that declare 16 MiB and send nothing
        leave room for other bodies (they used to take the whole budget: 503); seventeen that
        send all but a byte of 16 MiB do not: one of them is refused with 503. Once they
        close, bodies are taken again."""
        mib16 = 16 << 20
        server = start(larder={"max_message_bytes": mib16, "receive_timeout_s": 30}, rows=False)
        self.addCleanup(server.stop)
        hc.wait_healthy(server)
        idle = [Raw(server.http_port, timeout=30) for _ in range(16)]
        for r in idle:
            self.addCleanup(r.close)
            r.send(request_head("POST", "/push", mib16))
        time.sleep(0.3)
        reply = server.http("POST", GET, json_body=gof_body())
        self.assertEqual(reply.status, 200, reply)
        for r in idle:
            r.close()
        filler = b"x" * (mib16 - 1)
        busy, refused = [], 0
        for _ in range(17):
            r = Raw(server.http_port, timeout=30)
            self.addCleanup(r.close)
            busy.append(r)
            try:
                r.send(request_head("POST", "/push", mib16) + filler)
            except OSError:  # refused and closed while sending: its 503 is waiting all the same
                pass
        for r in busy:
            try:
                r.sock.settimeout(0.5)
                data = r.sock.recv(65536)
                refused += data.startswith(b"HTTP/1.1 503 ")
            except (socket.timeout, OSError):
                pass
        print("of 17 bodies of 16 MiB less a byte, %d refused with 503" % refused)
        self.assertGreaterEqual(refused, 1)
        self.assertEqual(server.http("GET", "/health").status, 200)
        for r in busy:
            r.close()
        deadline = time.monotonic() + 5 * SLOW
        while True:
            reply = server.http("POST", GET, json_body=gof_body())
            if reply.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(reply.status, 200, reply)

    def test_a_chunked_body_arriving_in_pieces(self):
        """A chunked body of 50 KB in chunks of 1 to 5,000 bytes, sent in pieces of 3 KiB so
        that it is decoded over many reads (each read's encoded bytes dropped once decoded),
        and a request pipelined behind it: the same answer as the plain request, then the
        second answer."""
        plain = SERVER.http("POST", GET, json_body=gof_body())
        self.assertEqual(plain.status, 200, plain)
        body = json.dumps(gof_body(pad=["%07d" % i for i in range(4500)])).encode()  # 50 KB: under 64 KiB
        sizes = [1 + (i * 7919) % 5000 for i in range(200)]
        data = request_head("POST", GET, extra=["Transfer-Encoding: chunked"]) + chunked(body, sizes)
        data += b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"  # pipelined behind it, in its last piece
        raw = Raw(SERVER.http_port)
        self.addCleanup(raw.close)
        for i in range(0, len(data), 3072):
            raw.send(data[i:i + 3072])
            if i % (12 * 3072) == 0:
                time.sleep(0.002)
        status, _, reply = raw.response()
        self.assertEqual(status, 200, reply)
        self.assertIsNone(hc.json_diff(hc.loads_strict(plain.body), hc.loads_strict(reply)))
        self.assertEqual(raw.response()[0], 200)

    def test_the_path_after_a_body_that_moved_the_buffer(self):
        """A 501 names the path of its request: read after a body of 50 KB that came after the
        head and grew the buffer the head was parsed in (the path must move with it; under
        AddressSanitizer the old pointer is a use after free)."""
        for path in ("/search", "/retrieve-online-documents"):
            with self.subTest(path):
                raw = Raw(SERVER.http_port)
                self.addCleanup(raw.close)
                raw.send(request_head("POST", path, 50000))
                time.sleep(0.05)
                for i in range(0, 50000, 5000):
                    raw.send(b"x" * 5000)
                    time.sleep(0.002)
                status, _, body = raw.response()
                self.assertEqual(status, 501, body)
                self.assertIn(("%s is not served by larder" % path).encode(), body)

    @unittest.skipIf(SLOW > 1, "resident memory is not the program's own under a sanitizer")
    def test_chunk_framing_is_not_held(self):
        """A chunked body whose framing runs on (one chunk's extension of 24 MiB: a size line
        may be that long until the framing passes 2 x max_message_bytes) is read and dropped as
        it comes: the server's resident memory grows by less than 8 MiB (it held all of it)."""
        server = start(larder={"max_message_bytes": 16 << 20, "receive_timeout_s": 30}, rows=False)
        self.addCleanup(server.stop)
        hc.wait_healthy(server)
        rss0 = server.status("VmRSS")
        raw = Raw(server.http_port, timeout=30)
        self.addCleanup(raw.close)
        raw.send(request_head("POST", "/push", extra=["Transfer-Encoding: chunked"]) + b"1;" + b"e" * (24 << 20))
        time.sleep(0.3)
        grew = server.status("VmRSS") - rss0
        raw.send(b"\r\nx\r\n0\r\n\r\n")
        status, _, _ = raw.response(timeout=10 * SLOW)
        print("24 MiB of chunk extension: VmRSS grew by %d KiB; answered %d" % (grew, status))
        self.assertEqual(status, 422)  # "x" is not JSON: the body was read to its end
        self.assertLess(grew, 8 << 10)


def headers_of(d):
    """A {lowercase: value} dict as an object with .get(Name)."""
    class H(dict):
        def get(self, k, default=None):
            return dict.get(self, k.lower(), default)
    return H(d)


# ---------------------------------------------------------------- tokens and scopes

class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tokens = {s: "%s-%s" % (s, os.urandom(8).hex()) for s in ("plain", "read", "write")}
        env = dict(os.environ, LARDER_T_PLAIN=cls.tokens["plain"], LARDER_T_READ=cls.tokens["read"],
                   LARDER_T_WRITE=cls.tokens["write"])
        auth = ("{tokens_env: LARDER_T_PLAIN, scoped: [{tokens_env: LARDER_T_READ, scopes: [read]}, "
                "{tokens_env: LARDER_T_WRITE, scopes: [write]}]}")
        cls.server = harness.Server(project="demo", registry=REGISTRY_SETTING, http=True, env=env,
                                    larder=dict(SETTINGS, auth=auth))
        hc.write_registry(cls.server)
        hc.apply_tables(cls.server)
        cls.server.start()
        cls.store = hc.RowStore(cls.server)

    @classmethod
    def tearDownClass(cls):
        cls.store.close()
        cls.server.close()

    def call(self, path, body, token=None, scheme="Bearer"):
        headers = {"Authorization": "%s %s" % (scheme, token)} if token else {}
        return self.server.http("POST", path, json_body=body, headers=headers)

    def test_tokens(self):
        read, write = (GET, gof_body()), ("/push", push_df(driver_id=[9801, 9802, 9803]))
        for name, (path, body), token, scheme, status, shape in [
            ("missing token, read", read, None, "Bearer", 401, "Missing authentication token"),
            ("missing token, write", write, None, "Bearer", 401, "Missing authentication token"),
            ("unknown token", read, "nope", "Bearer", 401, "Invalid or expired access token"),
            ("another scheme", read, self.tokens["plain"], "Basic", 401, "Invalid or expired access token"),
            ("read token pushing", write, self.tokens["read"], "Bearer", 403, "FeastPermissionError"),
            ("read token writing", ("/write-to-online-store", write_df(customer_id=["a1", "a2"])), self.tokens["read"],
             "Bearer", 403, "FeastPermissionError"),
            ("write token reading", read, self.tokens["write"], "Bearer", 403, "FeastPermissionError"),
            ("plain token reading", read, self.tokens["plain"], "Bearer", 200, None),
            ("read token reading, scheme in lower case", read, self.tokens["read"], "bearer", 200, None),
            ("write token pushing", write, self.tokens["write"], "BEARER", 200, None),
        ]:
            with self.subTest(name):
                before = self.store.snapshot()
                reply = self.call(path, body, token, scheme)
                self.assertEqual(reply.status, status, reply)
                if status == 401:
                    self.assertIsNone(hc.detail_problem(reply.body, shape))
                    self.assertTrue((reply.header("WWW-Authenticate") or "").lower().startswith("bearer"),
                                    reply.header("WWW-Authenticate"))
                elif status == 403:
                    self.assertIsNone(error_problem(reply, 403, shape))
                if status != 200 or path == GET:
                    self.assertEqual(hc.row_problems(before, self.store.snapshot(), []), [])

    def test_grpc_push_needs_write(self):
        """GrpcFeatureServer Push and WriteToOnlineStore need the write scope (HTTP.md §8)."""
        case = {c["name"]: c for c in hc.VECTORS["grpc_cases"]}
        for name in ("grpc_push_typed", "grpc_write_typed"):
            payload = bytes.fromhex(case[name]["request_hex"])
            call = self.server.channel.unary_unary(case[name]["method"])
            for token, want in ((None, grpc.StatusCode.UNAUTHENTICATED), (self.tokens["read"],
                                                                          grpc.StatusCode.PERMISSION_DENIED),
                                (self.tokens["write"], grpc.StatusCode.OK)):
                with self.subTest(name, token=token and token.split("-")[0]):
                    md = (("authorization", "Bearer " + token),) if token else None
                    try:
                        call(payload, timeout=10, metadata=md)
                        code = grpc.StatusCode.OK
                    except grpc.RpcError as e:
                        code = e.code()
                    self.assertEqual(code, want)

    def test_health_needs_no_token(self):
        reply = self.server.http("GET", "/health")
        self.assertEqual((reply.status, reply.body), (200, b""))

    def test_token_checked_before_the_body(self):
        """No token and a body that never comes: 401 at once (not 408 or 413)."""
        raw = Raw(self.server.http_port)
        self.addCleanup(raw.close)
        raw.send(request_head("POST", "/push", MAX_BYTES * 10))
        status, headers, _ = raw.response(timeout=RECEIVE_TIMEOUT * SLOW + 5)
        self.assertEqual(status, 401)


# ---------------------------------------------------------------- routes

class Routes(unittest.TestCase):
    def test_unknown_paths_and_methods(self):
        client = harness.Http(SERVER.http_port)
        self.addCleanup(client.close)
        for method, path in (("POST", "/nope"), ("GET", "/"), ("POST", "/chat"), ("GET", "/docs"),
                             ("GET", "/static/index.html"), ("POST", "/get-online-features/x"), ("GET", "/metrics")):
            with self.subTest(path):
                reply = client.request(method, path, json_body={} if method == "POST" else harness.NOTHING)
                self.assertEqual(reply.status, 404, reply)
                self.assertIsNone(hc.detail_problem(reply.body, "Not Found"))
        for method, path, allowed in (("GET", GET, "POST"), ("GET", "/push", "POST"), ("PUT", "/push", "POST"),
                                      ("GET", "/write-to-online-store", "POST"), ("POST", "/health", "GET"),
                                      ("DELETE", GET, "POST")):
            with self.subTest("%s %s" % (method, path)):
                reply = client.request(method, path)
                self.assertEqual(reply.status, 405, reply)
                self.assertIsNone(hc.detail_problem(reply.body, "Method Not Allowed"))
                allow = [m.strip() for m in (reply.header("Allow") or "").split(",")]
                self.assertIn(allowed, allow, reply.header("Allow"))

    def test_not_served_by_larder(self):
        for method, path in (("POST", "/materialize"), ("POST", "/materialize-incremental"), ("POST", "/search"),
                             ("POST", "/retrieve-online-documents"), ("GET", "/v1/vector_stores"),
                             ("GET", "/v1/vector_stores/vs1"), ("POST", "/v1/vector_stores/vs1/search")):
            with self.subTest(path):
                reply = SERVER.http(method, path, json_body={} if method == "POST" else harness.NOTHING)
                self.assertIsNone(error_problem(reply, 501, "FeastError"))
                self.assertIn(path.split("/")[1] if not path.startswith("/v1") else "vector_stores",
                              hc.feast_error(reply.body)[2])

    def test_health(self):
        reply = SERVER.http("GET", "/health")
        self.assertEqual((reply.status, reply.body, reply.header("Content-Length")), (200, b"", "0"))

    def test_health_with_a_body_is_refused_from_its_head(self):
        """/health needs no token, so a body there would take from the bodies' budget
        unchecked: 400 from the head, before the body is read."""
        raw = Raw(SERVER.http_port)
        self.addCleanup(raw.close)
        raw.send(request_head("GET", "/health", 4 * MAX_BYTES))
        status, _, body = raw.response(timeout=5 * SLOW)
        self.assertEqual(status, 400, body)
        self.assertIn("GET /health takes none", body.decode())
        self.assertTrue(raw.closed_within(5 * SLOW), "the connection stayed open for a body it will not read")


class Unprepared(unittest.TestCase):
    def test_http_listen_needs_a_registry(self):
        """http_listen without registry: a configuration error, exit 2, naming both (HTTP.md §3)."""
        server = harness.Server(registry=None, http=True)
        with self.assertRaises(RuntimeError) as cm:
            server.start()
        text = str(cm.exception)
        self.assertIn("exit status 2", text)
        self.assertIn("http_listen", text)
        self.assertIn("registry", text.split("\n", 1)[1])

    def test_registry_not_loaded_then_loaded(self):
        """A registry file that is not there yet: the feature endpoints and /health answer
        503; once it is written, they serve. A view whose table does not exist: 404
        FeastObjectNotFoundException."""
        server = harness.Server(project="demo", registry=REGISTRY_SETTING, http=True, larder=SETTINGS)
        with server:
            self.assertEqual(server.http("GET", "/health").status, 503)
            for path, body in ((GET, gof_body()), ("/push", push_body()), ("/write-to-online-store", write_body())):
                with self.subTest(path):
                    self.assertEqual(server.http("POST", path, json_body=body).status, 503)
            hc.write_registry(server)
            self.assertTrue(hc.wait_healthy(server, 15), "the registry written was not loaded")
            # No table made yet.
            for path, body in ((GET, gof_body()), ("/push", push_body()), ("/write-to-online-store", write_body())):
                with self.subTest(path, tables="none"):
                    self.assertIsNone(error_problem(server.http("POST", path, json_body=body), 404,
                                                    "FeastObjectNotFoundException"))
            server.stub.Update(pb.UpdateRequest(tables_to_keep=hc.VIEWS), timeout=30)
            self.assertEqual(server.http("POST", GET, json_body=gof_body()).status, 200)


class ReadOnly(unittest.TestCase):
    def test_writes_refused(self):
        """larder.read_only: true: /push and /write-to-online-store 409, reads served."""
        first = start()
        first.stop()
        server = harness.Server(project="demo", registry=REGISTRY_SETTING, http=True)
        with open(first.config) as f:
            text = f.read()
        text = (text.replace(first.addr, server.addr).replace(first.http_addr, server.http_addr)
                .replace("path: registry.db", "path: " + os.path.join(first.tmpdir, "registry.db")))
        with open(server.config, "w") as f:
            f.write(text + "  read_only: true\n")
        db = os.path.join(first.tmpdir, "online.db")
        with server:
            conn = sqlite3.connect(db)
            count = conn.execute('SELECT COUNT(*) FROM "demo_driver_stats"').fetchone()[0]
            for path, body in (("/push", push_body()), ("/write-to-online-store", write_body())):
                with self.subTest(path):
                    self.assertIsNone(error_problem(server.http("POST", path, json_body=body), 409, "FeastError"))
            self.assertEqual(conn.execute('SELECT COUNT(*) FROM "demo_driver_stats"').fetchone()[0], count)
            conn.close()
            reply = server.http("POST", GET, json_body=gof_body())
            self.assertEqual(reply.status, 200, reply)
            self.assertEqual(hc.loads_strict(reply.body)["results"][1]["values"], [12, 7])
            self.assertEqual(server.http("GET", "/health").status, 200)


class PersistentConnections(unittest.TestCase):
    def test_two_hundred_requests_on_one_connection(self):
        client = harness.Http(SERVER.http_port)
        self.addCleanup(client.close)
        kinds = [("GET", "/health", harness.NOTHING, 200),
                 ("POST", GET, gof_body(), 200),
                 ("POST", GET, gof_body(features=["nope:x"]), 404),
                 ("POST", "/nope", {}, 404),
                 ("POST", GET, gof_body(full_feature_names="x"), 422),
                 ("POST", "/push", push_df(driver_id=[9901, 9902, 9903]), 200),
                 ("POST", "/write-to-online-store", write_df(customer_id=["p1", "p2"]), 200),
                 ("POST", GET, gof_body(entities={"driver_id": ["abc"]}), 400)]
        statuses = []
        for i in range(200):
            method, path, body, status = kinds[i % len(kinds)]
            reply = client.request(method, path, json_body=body)
            self.assertEqual(reply.status, status, (i, path, reply))
            self.assertEqual(reply.header("Content-Length"), str(len(reply.body)), (i, path))
            self.assertFalse(reply.will_close, (i, path, "Connection: close"))
            statuses.append(reply.status)
        self.assertEqual(client.opened, 1)
        print("200 requests, 1 connection; statuses %s" % {s: statuses.count(s) for s in sorted(set(statuses))})


class Descriptors(unittest.TestCase):
    def test_out_of_descriptors_closes_new_connections_without_spinning(self):
        """larder raises its soft descriptor limit to the hard one. Past that, a new
        HTTP connection is taken and closed at once (as past http_max_connections),
        not left to wake every thread again and again; once connections go, new ones
        are served."""
        server = start(rows=False, wrapper=["prlimit", "--nofile=64:160"])
        self.addCleanup(server.kill)
        with open("/proc/%d/limits" % server.proc.pid) as f:
            soft = [line.split()[3] for line in f if line.startswith("Max open files")][0]
        self.assertEqual(soft, "160")
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(260):
            socks.append(socket.create_connection(("127.0.0.1", server.http_port), timeout=5))
        time.sleep(1)

        def cpu_s():
            with open("/proc/%d/stat" % server.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_s()
        time.sleep(2)
        busy = (cpu_s() - c0) / (time.monotonic() - t0)
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                closed += s.recv(1) == b""
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed += 1
        self.assertLess(busy, 0.25 * harness.SLOW, "larder's threads spin on a listener they cannot accept from")
        # At most 160 descriptors are connections: every one past them was closed, none left waiting.
        self.assertGreaterEqual(closed, 260 - 160, "connections past the descriptor limit were left waiting")
        for s in socks:
            s.close()
        socks.clear()
        t1 = time.monotonic()
        while True:
            try:
                self.assertEqual(server.http("GET", "/health", timeout=5).status, 200)
                break
            except (OSError, harness.ConnectionDropped):
                if time.monotonic() - t1 > 10 * harness.SLOW:
                    raise
                time.sleep(0.1)
        print("out of descriptors: soft limit raised to %s; %d of 260 connections closed at once; "
              "CPU %.2f s/s meanwhile" % (soft, closed, busy))


class Draining(unittest.TestCase):
    def test_sigterm_with_a_request_in_flight(self):
        """SIGTERM while a push waits for the database (SQLite locked by another
        connection): it completes (200, stored) once the lock goes; meanwhile a new
        connection is refused or answered 503 with Connection: close, and so is a new
        request on an open connection (or that idle connection is closed); a /health
        probe is answered as /health when not ready; larder exits 0."""
        server = start(rows=False, larder={"grace_period_s": 30})
        self.addCleanup(server.kill)
        self.assertTrue(hc.wait_healthy(server))
        idle = harness.Http(server.http_port)
        self.addCleanup(idle.close)
        self.assertEqual(idle.request("GET", "/health").status, 200)
        lock = sqlite3.connect(os.path.join(server.tmpdir, "online.db"), isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        result = {}

        def push():
            try:
                result["reply"] = server.http("POST", "/push", json_body=push_df(driver_id=[9951, 9952, 9953]),
                                              timeout=30)
            except Exception as e:  # noqa: BLE001 - reported below
                result["error"] = e
        t = threading.Thread(target=push)
        t.start()
        # A probe whose head is cut in two by the signal.
        probe = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
        self.addCleanup(probe.close)
        probe.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.5)
        self.assertTrue(t.is_alive(), "the push did not wait for the lock: %r" % result)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # /health answers as when not ready: 503, no body, no Content-Type (HTTP.md §3).
        probe.sendall(b"\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            more = probe.recv(4096)
            if not more:
                break
            answer += more
        head, _, rest = answer.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 503 "), answer)
        self.assertNotIn(b"content-type:", head.lower(), answer)
        self.assertIn(b"content-length: 0", head.lower(), answer)
        self.assertEqual(rest, b"", answer)
        # A new connection. larder takes in gRPC calls for 200 ms after the signal before it
        # drains HTTP: a request in that window is still answered, so this asks until it is not.
        deadline = time.monotonic() + 5 * SLOW
        while True:
            try:
                fresh = harness.Http(server.http_port, timeout=3)
                reply = fresh.request("POST", GET, json_body=gof_body())
                fresh.close()
                if reply.status == 200 and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                self.assertEqual(reply.status, 503, reply)
                self.assertEqual((reply.header("Connection") or "").lower(), "close")
                new_conn = "503, Connection: close"
            except (ConnectionRefusedError, ConnectionResetError) as e:
                new_conn = "refused (%s)" % type(e).__name__
            break
        # A new request on the connection opened before the signal.
        try:
            reply = idle.request("POST", GET, json_body=gof_body())
            self.assertEqual(reply.status, 503, reply)
            self.assertTrue(reply.will_close, "a 503 while draining says Connection: close")
            old_conn = "503, Connection: close"
        except (harness.ConnectionDropped, OSError) as e:
            old_conn = "closed (%s)" % type(e).__name__
        self.assertTrue(t.is_alive(), "the push in flight ended before the lock went: %r" % result)
        lock.rollback()
        lock.close()
        t.join(30)
        self.assertNotIn("error", result)
        self.assertEqual((result["reply"].status, result["reply"].body), (200, b""), result["reply"])
        self.assertEqual(server.proc.wait(timeout=30), 0, server.read_log()[-3000:])
        conn = sqlite3.connect(os.path.join(server.tmpdir, "online.db"))
        n = conn.execute('SELECT COUNT(*) FROM "demo_driver_stats"').fetchone()[0]
        conn.close()
        self.assertEqual(n, 3 * 5)
        print("draining: new connection %s; open connection %s; the push in flight answered 200" % (new_conn,
                                                                                                   old_conn))


if __name__ == "__main__":
    unittest.main(verbosity=2)
