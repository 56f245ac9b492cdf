"""Shared pieces of the HTTP/JSON API tests (feast-compat HTTP.md, vectors in
tests/data/http_vectors.json): the vectors' registry and stored rows put in
place, strict JSON comparison, Feast's error bodies, the stored rows read back
with SQL per backend (Feast's table layout), and the JSON rendering of a
GetOnlineFeaturesResponse as HTTP.md §4.3-4.4 defines it (used to hold the
gRPC answers against the vectors' HTTP bodies)."""
import base64
import datetime
import json
import math
import os
import subprocess
import time
import zoneinfo

import harness
from harness import EntityKey_pb2, Value_pb2, pb, raw_call
from feast.core import Registry_pb2 as reg
from feast.serving import ServingService_pb2 as sv
from google.protobuf import json_format

with open(os.path.join(harness.TEST_DATA, "http_vectors.json")) as f:
    VECTORS = json.load(f)

VECTOR_PROJECT = VECTORS["project"]  # "demo": table names in the vectors are demo_<view>
REGISTRY = VECTORS["registry"]
# Every view of the registry that has a table (feature views and stream feature views).
VIEWS = [v["name"] for v in REGISTRY["feature_views"] + REGISTRY["stream_feature_views"]]
VIEW_DEFS = {v["name"]: v for v in REGISTRY["feature_views"] + REGISTRY["stream_feature_views"]}
ENTITY_TYPES = {e["join_key"]: e["value_type"] for e in REGISTRY["entities"]}
ENTITY_NAMES = {e["name"]: e["join_key"] for e in REGISTRY["entities"]}


# ---------------------------------------------------------------- registry and rows

def _reproject(msg, old, new):
    """Sets every string field named `project` equal to `old` to `new`, recursively."""
    for fd, value in msg.ListFields():
        if fd.name == "project" and fd.type == fd.TYPE_STRING and value == old:
            setattr(msg, fd.name, new)
        elif fd.type == fd.TYPE_MESSAGE:
            if fd.label == fd.LABEL_REPEATED:
                if fd.message_type.GetOptions().map_entry:
                    if fd.message_type.fields_by_name["value"].type == fd.TYPE_MESSAGE:
                        for v in value.values():
                            _reproject(v, old, new)
                else:
                    for v in value:
                        _reproject(v, old, new)
            else:
                _reproject(value, old, new)


def registry_bytes(project):
    """The registry file's bytes: `registry_hex` as it is for the vectors' project;
    for another project name (client-server databases give each run its own, so that
    its tables never meet another run's) the same registry with every `project` renamed."""
    raw = bytes.fromhex(VECTORS["registry_hex"])
    if project == VECTOR_PROJECT:
        return raw
    r = reg.Registry.FromString(raw)
    _reproject(r, VECTOR_PROJECT, project)
    return r.SerializeToString()


def write_registry(server):
    path = os.path.join(server.tmpdir, "registry.db")
    with open(path + ".tmp", "wb") as f:
        f.write(registry_bytes(server.project))
    os.replace(path + ".tmp", path)
    return path


def wait_healthy(server, timeout=10):
    """True once GET /health answers 200 (registry loaded, database answered); False when
    it has not within `timeout` seconds."""
    end = time.monotonic() + timeout * harness.SLOW
    while time.monotonic() < end:
        try:
            if server.http("GET", "/health").status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def apply_tables(server):
    """`larder apply`: the tables of every view, made locally (needs no token)."""
    out = subprocess.run([harness.LARDER_BIN, "apply", "-c", server.config] + VIEWS, capture_output=True,
                         text=True, timeout=60, env=server.env)
    if out.returncode != 0:
        raise AssertionError("larder apply failed: %s" % out.stderr)


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def entity_key(spec):
    """An EntityKey from the vectors' protobuf-JSON form."""
    return json_format.ParseDict(spec, EntityKey_pb2.EntityKey())


def write_row_bytes(stored):
    """A larder.v1.WriteRow carrying the vectors' Value bytes exactly as they are (map
    entries in their order: python-protobuf would re-encode them in an order of its own)."""
    head = pb.WriteRow(entity_key=entity_key(stored["entity_key"]))
    head.event_ts.seconds = stored["event_ts"]
    if stored.get("created_ts") is not None:
        head.created_ts.seconds = stored["created_ts"]
    out = head.SerializeToString()
    for name, value_hex in stored["features"].items():
        entry = _len_field(1, name.encode()) + _len_field(2, bytes.fromhex(value_hex))
        out += _len_field(2, entry)
    return out


def store_rows(server, rows=None, metadata=None):
    """Stores the vectors' `stored_rows` through OnlineWriteBatch, one request per view."""
    rows = VECTORS["stored_rows"] if rows is None else rows
    by_view = {}
    for r in rows:
        by_view.setdefault(r["feature_view"], []).append(r)
    for view, view_rows in by_view.items():
        payload = _len_field(1, view.encode()) + b"".join(_len_field(2, write_row_bytes(r)) for r in view_rows)
        code, details, _ = raw_call(server.channel, "OnlineWriteBatch", payload)
        if code != harness.grpc.StatusCode.OK:
            raise AssertionError("storing the vectors' rows of %s: %s %s" % (view, code, details))


def expected_stored_rows():
    """stored_rows as {(view, key hex, feature): (value hex, event_ts, created_ts)}."""
    out = {}
    for r in VECTORS["stored_rows"]:
        for name, value_hex in r["features"].items():
            out[(r["feature_view"], r["entity_key_hex"], name)] = (value_hex, r["event_ts"], r.get("created_ts"))
    return out


def feast_value_text(v):
    """Feast's sqlite.py / postgres.py value_text: str() of scalar numbers, bools and strings."""
    kind = v.WhichOneof("val")
    if kind == "string_val":
        return v.string_val
    if kind in ("int32_val", "int64_val", "double_val", "float_val", "bool_val"):
        return str(getattr(v, kind))
    return None


class Row:
    """One stored (entity_key, feature_name) row."""
    __slots__ = ("value", "event_ts", "created_ts", "value_text", "has_text")

    def __init__(self, value, event_ts, created_ts, value_text=None, has_text=False):
        self.value, self.event_ts, self.created_ts = bytes(value), event_ts, created_ts
        self.value_text, self.has_text = value_text, has_text

    def key(self):
        return (self.value, self.event_ts, self.created_ts, self.value_text)

    def __eq__(self, other):
        return isinstance(other, Row) and self.key() == other.key()

    def __repr__(self):
        return "Row(value=%s, event_ts=%r, created_ts=%r%s)" % (
            self.value.hex(), self.event_ts, self.created_ts,
            ", value_text=%r" % self.value_text if self.has_text else "")


def _seconds(x):
    """An epoch read back from SQL (int, Decimal, float or None): an int when whole."""
    if x is None:
        return None
    if int(x) == x:
        return int(x)
    return x


class RowStore:
    """The rows of every view's table, read with SQL in Feast's table layout
    (SPEC §4): SQLite through sqlite3, PostgreSQL through psycopg and MySQL through
    PyMySQL, with the connection helpers of the test_compat_* suites."""

    def __init__(self, server):
        self.server = server
        self.backend = server.backend
        self.tables = {view: "%s_%s" % (server.project, view) for view in VIEWS}
        if self.backend == "sqlite":
            import sqlite3
            self.conn = sqlite3.connect(os.path.join(server.tmpdir, "online.db"), isolation_level=None)
            self.conn.execute("PRAGMA busy_timeout = 10000")
        elif self.backend == "postgres":
            from test_compat_postgres import connect
            self.conn = connect()
            self.conn.autocommit = True
        elif self.backend == "mysql":
            from test_compat_mysql import connect
            self.conn = connect()
        else:
            raise ValueError(self.backend)

    def _query(self, table):
        if self.backend == "sqlite":
            return self.conn.execute('SELECT entity_key, feature_name, value, event_ts, created_ts, value_text '
                                     'FROM "%s"' % table).fetchall()
        if self.backend == "postgres":
            with self.conn.cursor() as cur:
                return cur.execute('SELECT entity_key, feature_name, value, EXTRACT(EPOCH FROM event_ts), '
                                   'EXTRACT(EPOCH FROM created_ts), value_text FROM public."%s"' % table).fetchall()
        with self.conn.cursor() as cur:
            cur.execute("SELECT entity_key, feature_name, value, UNIX_TIMESTAMP(event_ts), "
                        "UNIX_TIMESTAMP(created_ts) FROM `%s`" % table)
            return [tuple(r) + (None,) for r in cur.fetchall()]

    def snapshot(self):
        """{(view, entity key hex, feature): Row} over every view's table."""
        out = {}
        text = self.backend != "mysql"
        for view, table in self.tables.items():
            for ek, name, value, ev, cr, vt in self._query(table):
                # MySQL keeps the lowercase hex of the version-3 key; the others the bytes.
                ek_hex = ek.lower() if isinstance(ek, str) else bytes(ek).hex()
                out[(view, ek_hex, name)] = Row(value, _seconds(ev), _seconds(cr), vt, text)
        return out

    def close(self):
        self.conn.close()


def canonical_value(raw):
    """Value bytes with every map's entries sorted by key (the vectors' form)."""
    return Value_pb2.Value.FromString(raw).SerializeToString(deterministic=True)


def same_value(want_hex, got):
    want = bytes.fromhex(want_hex)
    if want == got:
        return True
    try:
        return canonical_value(want) == canonical_value(got) and _has_map(Value_pb2.Value.FromString(want))
    except Exception:  # noqa: BLE001 - bytes that are no Value differ
        return False


def _has_map(v):
    kind = v.WhichOneof("val")
    if kind in ("map_val", "struct_val"):
        return True
    if kind in ("map_list_val", "struct_list_val"):
        return True
    if kind in ("list_val", "set_val"):
        return any(_has_map(x) for x in getattr(v, kind).val)
    return False


def view_of(table):
    """`demo_typed` -> `typed` (the vectors name tables by their project)."""
    prefix = VECTOR_PROJECT + "_"
    if not table.startswith(prefix):
        raise ValueError("table %s is not of project %s" % (table, VECTOR_PROJECT))
    return table[len(prefix):]


def row_problems(before, after, expect_rows):
    """What is wrong with `after` when exactly `expect_rows` were to be added or changed
    from `before`: a list of messages, empty when all is as expected."""
    problems = []
    listed = set()
    for e in expect_rows:
        k = (view_of(e["table"]), e["entity_key_hex"], e["feature_name"])
        listed.add(k)
        got = after.get(k)
        where = "%s %s %s" % (e["table"], e["entity_key_hex"], e["feature_name"])
        if got is None:
            problems.append("%s: not stored" % where)
            continue
        if not same_value(e["value_hex"], got.value):
            problems.append("%s: value %s, expected %s" % (where, got.value.hex(), e["value_hex"]))
        if got.event_ts != e["event_ts"]:
            problems.append("%s: event_ts %r, expected %r" % (where, got.event_ts, e["event_ts"]))
        if got.created_ts != e["created_ts"]:
            problems.append("%s: created_ts %r, expected %r" % (where, got.created_ts, e["created_ts"]))
        if got.has_text:
            want_text = feast_value_text(Value_pb2.Value.FromString(bytes.fromhex(e["value_hex"])))
            if got.value_text != want_text:
                problems.append("%s: value_text %r, expected %r" % (where, got.value_text, want_text))
    for k in sorted(set(before) | set(after)):
        if k in listed:
            continue
        if k not in after:
            problems.append("%s %s %s: deleted (was %r)" % (k + (before[k],)))
        elif k not in before:
            problems.append("%s %s %s: written, and no row of this case should be: %r" % (k + (after[k],)))
        elif before[k] != after[k]:
            problems.append("%s %s %s: changed from %r to %r" % (k + (before[k], after[k])))
    return problems


# ---------------------------------------------------------------- strict JSON

class JsonError(AssertionError):
    pass


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise JsonError("the key %r appears twice in one object" % k)
        out[k] = v
    return out


def _no_constants(name):
    raise JsonError("%s is not JSON" % name)


def loads_strict(body):
    """JSON text as RFC 8259 has it: UTF-8, one value, no NaN/Infinity, no repeated key."""
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonError("the body is not UTF-8: %s" % e)
    else:
        text = body
    if text.startswith("\ufeff"):
        raise JsonError("the body starts with a byte order mark")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise JsonError("the body is not JSON (%s): %r" % (e, text[:300]))


def _kind(x):
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, int):
        return "integer"
    if isinstance(x, float):
        return "float"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list):
        return "array"
    if isinstance(x, dict):
        return "object"
    return type(x).__name__


def _short(x):
    s = json.dumps(x, ensure_ascii=False) if _kind(x) != type(x).__name__ else repr(x)
    return s if len(s) <= 120 else s[:117] + "..."


def _key_path(path, k):
    return "%s.%s" % (path, k) if k.isidentifier() else "%s[%s]" % (path, json.dumps(k))


def json_diff(want, got, path="$"):
    """None when `got` is `want` with the same JSON types (1, 1.0 and true all differ;
    object key order is free, array order is not); else where and how they first differ."""
    if _kind(want) != _kind(got):
        return "%s: expected %s %s, got %s %s" % (path, _kind(want), _short(want), _kind(got), _short(got))
    if isinstance(want, dict):
        for k in want:
            if k not in got:
                return "%s: missing (expected %s)" % (_key_path(path, k), _short(want[k]))
        for k in got:
            if k not in want:
                return "%s: unexpected key (value %s)" % (_key_path(path, k), _short(got[k]))
        for k in want:
            d = json_diff(want[k], got[k], _key_path(path, k))
            if d:
                return d
        return None
    if isinstance(want, list):
        for i, (w, g) in enumerate(zip(want, got)):
            d = json_diff(w, g, "%s[%d]" % (path, i))
            if d:
                return d
        if len(want) != len(got):
            return "%s: expected %d elements, got %d (%s)" % (path, len(want), len(got), _short(got))
        return None
    if isinstance(want, float) and math.isnan(want) and math.isnan(got):
        return None
    if want != got:
        return "%s: expected %s, got %s" % (path, _short(want), _short(got))
    return None


# ---------------------------------------------------------------- Feast's error bodies

def feast_error(body):
    """(module, class, message) of a feast_error body (HTTP.md §2): a JSON string whose text
    is a JSON object with those three fields, decoded as Feast's rest_error_handler does
    (response.json(), then FeastError.from_error_detail's json.loads). Raises JsonError
    saying why it is not one."""
    outer = loads_strict(body)
    if not isinstance(outer, str):
        raise JsonError("a feast_error body is a JSON string; got %s %s" % (_kind(outer), _short(outer)))
    inner = loads_strict(outer)
    if not isinstance(inner, dict):
        raise JsonError("the feast_error string holds %s, not an object" % _kind(inner))
    for k in ("module", "class", "message"):
        if not isinstance(inner.get(k), str):
            raise JsonError("the feast_error object has no string %r: %s" % (k, _short(inner)))
    return inner["module"], inner["class"], inner["message"]


def detail_problem(body, want):
    """None when `body` is FastAPI's {"detail": ...} shaped like `want` (a string: that
    text; a list: pydantic's error items, each with a string type and msg and a loc
    starting with "body"); else what is wrong."""
    try:
        got = loads_strict(body)
    except JsonError as e:
        return str(e)
    if not isinstance(got, dict) or "detail" not in got:
        return "not a {\"detail\": ...} body: %s" % _short(got)
    d = got["detail"]
    if isinstance(want, str):
        return None if d == want else "detail %s, expected %s" % (_short(d), _short(want))
    if not isinstance(d, list) or not d:
        return "detail should be a non-empty list of errors, got %s" % _short(d)
    for i, item in enumerate(d):
        if not isinstance(item, dict):
            return "detail[%d] is not an object: %s" % (i, _short(item))
        if not isinstance(item.get("type"), str) or not isinstance(item.get("msg"), str):
            return "detail[%d] lacks a string type or msg: %s" % (i, _short(item))
        loc = item.get("loc")
        if not isinstance(loc, list) or not loc or loc[0] != "body":
            return "detail[%d].loc should be a list starting with \"body\": %s" % (i, _short(item))
    return None


# ---------------------------------------------------------------- GetOnlineFeaturesResponse as JSON

def timestamp_text(ts):
    """Feast's _timestamp_to_str (HTTP.md §4.3): RFC 3339 UTC, 0, 3, 6 or 9 digits of fraction."""
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=ts.seconds)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    n = ts.nanos
    if n:
        if n % 1000000 == 0:
            text += ".%03d" % (n // 1000000)
        elif n % 1000 == 0:
            text += ".%06d" % (n // 1000)
        else:
            text += ".%09d" % n
    return text + "Z"


INT64_MIN = -(1 << 63)


def _zone(name):
    if name in ("", "UTC", "Z"):
        return datetime.timezone.utc
    text = name[3:] if name.startswith("UTC") else name
    if text[:1] in "+-" and len(text) in (5, 6):
        digits = text[1:].replace(":", "")
        if len(digits) == 4 and digits.isdigit():
            off = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            return datetime.timezone(-off if text[0] == "-" else off)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return datetime.timezone.utc


def _number(x):
    return None if math.isnan(x) or math.isinf(x) else float(x)


def value_json(v):
    """A feast.types.Value as HTTP.md §4.4 writes it."""
    kind = v.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    x = getattr(v, kind)
    if kind == "bytes_val":
        return base64.b64encode(x).decode()
    if kind in ("string_val", "json_val", "uuid_val", "time_uuid_val", "decimal_val"):
        return x
    if kind in ("int32_val", "int64_val", "unix_timestamp_val", "bool_val"):
        return x
    if kind in ("double_val", "float_val"):
        return _number(x)
    if kind in ("bytes_list_val", "bytes_set_val"):
        return [base64.b64encode(b).decode() for b in x.val]
    if kind in ("double_list_val", "float_list_val", "double_set_val", "float_set_val"):
        return [_number(e) for e in x.val]
    if kind in ("map_val", "struct_val"):
        return {k: value_json(e) for k, e in x.val.items()}
    if kind in ("map_list_val", "struct_list_val"):
        return [{k: value_json(e) for k, e in m.val.items()} for m in x.val]
    if kind in ("list_val", "set_val"):
        return [value_json(e) for e in x.val]
    if kind == "scalar_map_val":
        return None
    if kind == "zoned_timestamp_val":
        if x.unix_timestamp == INT64_MIN:
            return None
        return datetime.datetime.fromtimestamp(x.unix_timestamp, tz=_zone(x.zone)).isoformat()
    if kind.endswith("_list_val") or kind.endswith("_set_val"):
        return list(x.val)
    raise ValueError("no JSON for Value member %s" % kind)


def response_json(resp):
    """A GetOnlineFeaturesResponse as the body of /get-online-features (HTTP.md §4.3)."""
    results = []
    for col in resp.results:
        r = {"values": [value_json(v) for v in col.values],
             "statuses": [sv.FieldStatus.Name(s) for s in col.statuses]}
        if len(col.event_timestamps):
            r["event_timestamps"] = [timestamp_text(t) for t in col.event_timestamps]
        results.append(r)
    return {"metadata": {"feature_names": list(resp.metadata.feature_names.val)}, "results": results}


# ---------------------------------------------------------------- JSON entities as gRPC Values

def declared_key_type(column, views):
    """The declared type of a join-key column (HTTP.md §4.2): a requested view's
    entity_columns entry, else the entity's value_type; None when unknown."""
    for v in views:
        for c in VIEW_DEFS[v]["entity_columns"]:
            if c["name"] == column:
                return c["value_type"]
    return ENTITY_TYPES.get(column)


def _is_int_text(s):
    t = s[1:] if s[:1] in "+-" else s
    return t.isdigit()


def key_value(x, declared):
    """A JSON entity value as the Value a gRPC client would send: converted to the
    declared type as HTTP.md §4.2 does where that succeeds, else the Value of the JSON
    kind itself (which the server then refuses, as it refuses the JSON)."""
    V = Value_pb2.Value
    if declared in ("INT64", "INT32"):
        field = "int64_val" if declared == "INT64" else "int32_val"
        if isinstance(x, int) and not isinstance(x, bool):
            return V(**{field: x})
        if isinstance(x, float) and x.is_integer():
            return V(**{field: int(x)})
        if isinstance(x, str) and _is_int_text(x):
            return V(**{field: int(x)})
    elif declared == "STRING":
        if isinstance(x, str):
            return V(string_val=x)
        if isinstance(x, int) and not isinstance(x, bool):
            return V(string_val=str(x))
    elif declared == "BYTES":
        if isinstance(x, str):
            try:
                return V(bytes_val=base64.b64decode(x, validate=True))
            except ValueError:
                pass
    if x is None:
        return V()
    if isinstance(x, bool):
        return V(bool_val=x)
    if isinstance(x, int):
        return V(int64_val=x)
    if isinstance(x, float):
        return V(double_val=x)
    if isinstance(x, str):
        return V(string_val=x)
    return V()


def grpc_request_bytes(body):
    """A /get-online-features JSON body as GetOnlineFeaturesRequest bytes, the entity
    columns in the body's order (a protobuf map would be written in an order of its own)."""
    req = sv.GetOnlineFeaturesRequest(full_feature_names=bool(body.get("full_feature_names", False)))
    if body.get("feature_service"):
        req.feature_service = body["feature_service"]
        views = []
        for s in REGISTRY["feature_services"]:
            if s["name"] == body["feature_service"]:
                views = [p["feature_view_name"] for p in s["features"]]
    else:
        req.features.val.extend(body.get("features", []))
        views = [f.split(":", 1)[0].split("@", 1)[0] for f in body.get("features", [])]
    views = [v for v in views if v in VIEW_DEFS]
    out = req.SerializeToString()
    for column, values in body.get("entities", {}).items():
        join_key = column if column in ENTITY_TYPES else ENTITY_NAMES.get(column, column)
        declared = declared_key_type(join_key, views)
        rv = Value_pb2.RepeatedValue(val=[key_value(x, declared) for x in values])
        out += _len_field(3, _len_field(1, column.encode()) + _len_field(2, rv.SerializeToString()))
    return out
