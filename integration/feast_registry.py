"""Feast registries for the tests, written the way Feast writes them.

Feast itself is not needed (REGISTRY.md §8). The same objects can be written

- into an SQL registry (`SqlRegistry`): the tables of Feast's
  sdk/python/feast/infra/registry/sql.py as SQLAlchemy 1.4's create_all makes
  them on SQLite, PostgreSQL and MySQL/MariaDB, and rows as SqlRegistry's
  apply_* methods write them (REGISTRY.md §3-5): entities and feature services
  without `spec.project`; feature views in the three transactions of
  apply_feature_view (A: the row, its `to_proto()`, with the feast_metadata
  bump; B: a feature_view_version_history row; C: the row replaced by the
  version snapshot, which has `spec.project` and the version number and moves
  no timestamp); `feast_metadata` rows `project_uuid` and
  `last_updated_timestamp`; the `projects` row. Every decision Feast takes by
  querying the database (does the row exist, is there a projects row, the next
  version number) is taken here by the same query, so the collation of the
  database (MySQL's case-insensitive names) plays as it plays for Feast.
- into a file registry (`FileRegistry`): one serialized `feast.core.Registry`
  with every `spec.project` set and the history in
  `Registry.feature_view_version_history`, as sdk/python/feast/infra/registry/
  registry.py keeps it.

Both model an SDK `FeatureStore.apply` (objects applied one by one); the
CLI's extra write of a fresh Project row at the start of `feast apply` is not
modelled (REGISTRY.md §5: it is no change signal).

Also here: the online store side (rows written through larder's Update and
OnlineWriteBatch), larder processes that share one online store, and the
client helpers the registry tests use.
"""
import atexit
import contextlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
import urllib.parse
import uuid

import harness
from harness import grpc, key, pb, row  # noqa: F401  (re-exported for the tests)
from feast.core import Registry_pb2 as reg
from feast.serving import ServingService_pb2 as sv
from feast.types import Value_pb2 as V

# feast.types.ValueType.Enum
BYTES, STRING, INT32, INT64, DOUBLE, FLOAT, BOOL, UNIX_TIMESTAMP = 1, 2, 3, 4, 5, 6, 7, 8
# feast.core.FeatureViewState
STATE_UNSPECIFIED, CREATED, GENERATED, MATERIALIZING, AVAILABLE_ONLINE = 0, 1, 2, 3, 4
DUMMY = "__dummy"  # the entity of entity-less views

# --------------------------------------------------------------------------- protobuf bytes
# larder's Registry.proto is a subset of Feast's: the meta timestamps that Feast
# writes into every object (created_timestamp = 1, last_updated_timestamp = 2 of
# each *Meta message) are not in it, so they are added as bytes here, in the
# place Feast's serializer puts them. larder must skip them as unknown fields.


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


def _field(number, payload):
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _timestamp(seconds):
    return _varint(1 << 3) + _varint(seconds) if seconds else b""


def _meta(now, rest=b""):
    """A *Meta message: created and last-updated timestamps, then `rest` (fields 3 and up)."""
    ts = _timestamp(now)
    return _field(1, ts) + _field(2, ts) + rest


def _message(spec, meta):
    """An object message {spec = 1, meta = 2}, fields in number order as protobuf writes them."""
    return _field(1, spec.SerializeToString(deterministic=True)) + _field(2, meta)


# --------------------------------------------------------------------------- objects


class Entity:
    def __init__(self, name, join_key=None, value_type=INT64):
        self.name, self.join_key, self.value_type = name, join_key or name, value_type

    table, id_column, proto_column = "entities", "entity_name", "entity_proto"

    def spec(self, project=""):
        return reg.EntitySpecV2(name=self.name, value_type=self.value_type, join_key=self.join_key,
                                project=project)

    def to_bytes(self, project="", now=0):
        return _message(self.spec(project), _meta(now))

    def same(self, stored):
        """Feast's `existing_obj == obj`: the stored proto describes this object."""
        s = reg.Entity.FromString(stored).spec
        s.project = ""
        return s.SerializeToString(deterministic=True) == self.spec().SerializeToString(deterministic=True)


def _fields(pairs):
    return [reg.FeatureSpecV2(name=n, value_type=t) for n, t in pairs]


class _View:
    """What the four kinds of views share. `entities`: Entity objects (their
    names go to spec.entities, their join keys and types to entity_columns), or
    DUMMY for an entity-less view. `features`: (name, ValueType) pairs."""
    kind = None        # feature_view_version_history.feature_view_type
    table = None       # the SQL table of this kind
    message = None     # the proto class
    id_column, proto_column = "feature_view_name", "feature_view_proto"

    def __init__(self, name, entities=(), features=(), ttl=0, disabled=False, state=STATE_UNSPECIFIED,
                 entity_columns=None, online=True):
        self.name = name
        self.entity_names = [DUMMY if e == DUMMY else e.name for e in entities]
        if entity_columns is None:
            entity_columns = [(e.join_key, e.value_type) for e in entities if e != DUMMY]
        self.entity_columns = list(entity_columns)
        self.features = list(features)
        self.ttl, self.disabled, self.state, self.online = ttl, disabled, state, online

    def feature_type(self, name):
        return dict(self.features).get(name, 0)

    def schema(self):
        """What `_schema_or_udf_changed` compares: a change makes a new version."""
        return (sorted(self.features), sorted(self.entity_names), sorted(self.entity_columns))

    @classmethod
    def stored_schema(cls, stored):
        s = cls.message.FromString(stored).spec
        entities = list(getattr(s, "entities", []))
        return (sorted((f.name, f.value_type) for f in s.features), sorted(entities),
                sorted((f.name, f.value_type) for f in getattr(s, "entity_columns", [])))

    def spec(self, project=""):
        raise NotImplementedError

    def meta(self, version):
        return b""

    def to_bytes(self, project="", version=None, now=0):
        """Feast's to_proto(): `version` None leaves current_version_number unset, as
        for an object built from a repo definition."""
        return _message(self.spec(project), _meta(now, self.meta(version)))

    def same(self, stored):
        """FeatureView.__eq__ compares neither `enabled` nor the state: a change of
        those alone is no change to SqlRegistry._apply_object (nothing written)."""
        old, new = self.message.FromString(stored).spec, self.spec()
        for s in (old, new):
            s.project = ""
            if hasattr(s, "disabled"):
                s.disabled = False
        return old.SerializeToString(deterministic=True) == new.SerializeToString(deterministic=True)


class FeatureView(_View):
    kind, table, message = "feature_view", "feature_views", reg.FeatureView

    def spec(self, project=""):
        s = reg.FeatureViewSpec(name=self.name, project=project, entities=self.entity_names,
                                features=_fields(self.features), online=self.online,
                                entity_columns=_fields(self.entity_columns), version="latest",
                                disabled=self.disabled)
        s.ttl.SetInParent()
        s.ttl.seconds = self.ttl
        return s

    def meta(self, version):
        m = reg.FeatureViewMeta(state=self.state)
        if version is not None:
            m.current_version_number = version
        return m.SerializeToString()


class StreamFeatureView(FeatureView):
    kind, table, message = "stream_feature_view", "stream_feature_views", reg.StreamFeatureView

    def spec(self, project=""):
        s = reg.StreamFeatureViewSpec(name=self.name, project=project, entities=self.entity_names,
                                      features=_fields(self.features), online=self.online,
                                      entity_columns=_fields(self.entity_columns), version="latest",
                                      disabled=self.disabled)
        s.ttl.SetInParent()
        s.ttl.seconds = self.ttl
        return s


class OnDemandFeatureView(_View):
    kind, table, message = "on_demand_feature_view", "on_demand_feature_views", reg.OnDemandFeatureView

    def __init__(self, name, features=(), write_to_online_store=False, entities=(), **kw):
        super().__init__(name, entities, features, **kw)
        self.write_to_online_store = write_to_online_store

    def spec(self, project=""):
        return reg.OnDemandFeatureViewSpec(name=self.name, project=project, features=_fields(self.features),
                                           write_to_online_store=self.write_to_online_store,
                                           entities=self.entity_names,
                                           entity_columns=_fields(self.entity_columns), version="latest",
                                           disabled=self.disabled)

    def meta(self, version):
        m = reg.OnDemandFeatureViewMeta(state=self.state)
        if version is not None:
            m.current_version_number = version
        return m.SerializeToString()


class LabelView(_View):
    """No disabled flag, no state, no version number (LabelViewMeta has only timestamps)."""
    kind, table, message = "label_view", "label_views", reg.LabelView

    def spec(self, project=""):
        s = reg.LabelViewSpec(name=self.name, project=project, entities=self.entity_names,
                              features=_fields(self.features), online=self.online,
                              entity_columns=_fields(self.entity_columns))
        s.ttl.SetInParent()
        s.ttl.seconds = self.ttl
        return s


class Projection:
    """A view of a feature service. `view`: the view object (the features' types
    come from it, as Feast's FeatureViewProjection carries them)."""

    def __init__(self, view, features, alias="", join_key_map=None, version_tag=None, view_type=None):
        self.view, self.features, self.alias = view, list(features), alias
        self.join_key_map = dict(join_key_map or {})
        self.version_tag = version_tag
        self.view_type = view_type or ("labelView" if isinstance(view, LabelView) else "featureView")

    def proto(self):
        p = reg.FeatureViewProjection(feature_view_name=self.view.name, feature_view_name_alias=self.alias,
                                      feature_columns=_fields((f, self.view.feature_type(f))
                                                              for f in self.features),
                                      view_type=self.view_type)
        for k, v in self.join_key_map.items():
            p.join_key_map[k] = v
        if self.version_tag is not None:
            p.version_tag = self.version_tag
        return p


class FeatureService:
    table, id_column, proto_column = "feature_services", "feature_service_name", "feature_service_proto"

    def __init__(self, name, projections, precompute_online=False):
        self.name, self.projections, self.precompute_online = name, list(projections), precompute_online

    def spec(self, project=""):
        return reg.FeatureServiceSpec(name=self.name, project=project,
                                      features=[p.proto() for p in self.projections],
                                      precompute_online=self.precompute_online)

    def to_bytes(self, project="", now=0):
        return _message(self.spec(project), _meta(now))

    def same(self, stored):
        s = reg.FeatureService.FromString(stored).spec
        s.project = ""
        return s.SerializeToString(deterministic=True) == self.spec().SerializeToString(deterministic=True)


def project_bytes(name, now):
    return _message(reg.ProjectSpec(name=name), _meta(now))


VIEW_KINDS = {c.kind: c for c in (FeatureView, StreamFeatureView, OnDemandFeatureView, LabelView)}

# --------------------------------------------------------------------------- SQL registry

# (table, [(column, type, nullable)], primary key, index): sql.py's Table
# definitions. "PROTO" is ProtoBytes: BLOB / BYTEA / LONGBLOB.
_NAME, _TS, _PROTO = "VARCHAR(255)", "BIGINT", "PROTO"
TABLES = [
    ("projects", [("project_id", _NAME, False), ("project_name", _NAME, False),
                  ("last_updated_timestamp", _TS, False), ("project_proto", _PROTO, False)],
     ["project_id"], "idx_projects_project_id"),
    ("entities", [("entity_name", _NAME, False), ("project_id", _NAME, False),
                  ("last_updated_timestamp", _TS, False), ("entity_proto", _PROTO, False)],
     ["entity_name", "project_id"], "idx_entities_project_id"),
    ("data_sources", [("data_source_name", _NAME, False), ("project_id", _NAME, False),
                      ("last_updated_timestamp", _TS, False), ("data_source_proto", _PROTO, False)],
     ["data_source_name", "project_id"], "idx_data_sources_project_id"),
    ("feature_views", [("feature_view_name", _NAME, False), ("project_id", _NAME, False),
                       ("last_updated_timestamp", _TS, False), ("materialized_intervals", _PROTO, True),
                       ("feature_view_proto", _PROTO, False), ("user_metadata", _PROTO, True)],
     ["feature_view_name", "project_id"], "idx_feature_views_project_id"),
] + [
    (t, [("feature_view_name", _NAME, False), ("project_id", _NAME, False),
         ("last_updated_timestamp", _TS, False), ("feature_view_proto", _PROTO, False),
         ("user_metadata", _PROTO, True)],
     ["feature_view_name", "project_id"], "idx_%s_project_id" % t)
    for t in ("stream_feature_views", "on_demand_feature_views", "label_views")
] + [
    (t, [(n + "_name", _NAME, False), ("project_id", _NAME, False),
         ("last_updated_timestamp", _TS, False), (n + "_proto", _PROTO, False)],
     [n + "_name", "project_id"], "idx_%s_project_id" % t)
    for t, n in (("feature_services", "feature_service"), ("saved_datasets", "saved_dataset"),
                 ("validation_references", "validation_reference"), ("managed_infra", "infra"),
                 ("permissions", "permission"))
] + [
    ("feature_view_version_history",
     [("feature_view_name", _NAME, False), ("project_id", _NAME, False), ("version_number", "INTEGER", False),
      ("feature_view_type", "VARCHAR(50)", False), ("feature_view_proto", _PROTO, False),
      ("created_timestamp", _TS, False), ("description", "TEXT", True), ("version_id", "VARCHAR(36)", False)],
     ["feature_view_name", "project_id", "version_number"], "idx_fv_version_history_project_id"),
    ("feast_metadata", [("project_id", _NAME, False), ("metadata_key", "VARCHAR(50)", False),
                        ("metadata_value", "TEXT", False), ("last_updated_timestamp", _TS, False)],
     ["project_id", "metadata_key"], "idx_feast_metadata_project_id"),
]
TABLE_NAMES = [t[0] for t in TABLES]
# What a registry made by an older Feast may lack (REGISTRY.md §3).
OPTIONAL_TABLES = ["stream_feature_views", "on_demand_feature_views", "label_views",
                   "feature_view_version_history", "projects", "feast_metadata"]
_PROTO_TYPE = {"sqlite": "BLOB", "postgresql": "BYTEA", "mysql": "LONGBLOB"}


def create_table_sql(table, dialect):
    """The CREATE TABLE and CREATE INDEX statements SQLAlchemy 1.4 emits."""
    name, columns, primary, index = next(t for t in TABLES if t[0] == table)
    cols = ["%s %s%s" % (c, _PROTO_TYPE[dialect] if t == _PROTO else t, "" if null else " NOT NULL")
            for c, t, null in columns]
    cols.append("PRIMARY KEY (%s)" % ", ".join(primary))
    return ("\nCREATE TABLE %s (\n\t%s\n)\n\n" % (name, ", \n\t".join(cols)),
            "CREATE INDEX %s ON %s (project_id)" % (index, name))


class Url:
    """A SQLAlchemy database URL as the registry tests use it."""

    def __init__(self, text):
        self.text = text
        u = urllib.parse.urlsplit(text)
        self.dialect = u.scheme.split("+")[0]
        if self.dialect == "sqlite":
            self.path = text[len("sqlite:///"):]
            return
        self.user = urllib.parse.unquote(u.username or "")
        self.password = urllib.parse.unquote(u.password or "")
        self.host, self.port = u.hostname, u.port
        self.database = u.path.lstrip("/")

    @staticmethod
    def make(dialect, user, password, host, port, database):
        q = lambda s: urllib.parse.quote(str(s), safe="")  # noqa: E731
        return Url("%s://%s:%s@%s:%s/%s" % (dialect, q(user), q(password), host, port, database))

    @staticmethod
    def sqlite(path):
        return Url("sqlite:///" + os.path.abspath(path))  # four slashes: an absolute path


def backend_url(backend, tmpdir, env=None):
    """The URL of an SQL registry in the database server of the online store of
    `backend`: SQLite a file of its own beside it, PostgreSQL and MariaDB the
    test database (TEST_* variables of integration/services.sh)."""
    e = env or os.environ
    if backend == "sqlite":
        return Url.sqlite(os.path.join(tmpdir, "registry.db"))
    if backend == "postgres":
        return Url.make("postgresql", e["TEST_PG_USER"], e["TEST_PG_PASSWORD"], e["TEST_PG_HOST"],
                        e["TEST_PG_PORT"], e["TEST_PG_DB"])
    if backend == "mysql":
        return Url.make("mysql", e["TEST_MYSQL_USER"], e["TEST_MYSQL_PASSWORD"], e["TEST_MYSQL_HOST"],
                        e["TEST_MYSQL_PORT"], e["TEST_MYSQL_DB"])
    raise ValueError(backend)


class _Conn:
    """One DB-API connection, autocommit outside explicit transactions."""

    def __init__(self, url):
        self.dialect = url.dialect
        if url.dialect == "sqlite":
            self.db = sqlite3.connect(url.path, timeout=30, isolation_level=None)
        elif url.dialect == "postgresql":
            import psycopg
            self.db = psycopg.connect(host=url.host, port=url.port, user=url.user, password=url.password,
                                      dbname=url.database, autocommit=True, connect_timeout=10)
        elif url.dialect == "mysql":
            import pymysql
            self.db = pymysql.connect(host=url.host, port=url.port, user=url.user, password=url.password,
                                      database=url.database, autocommit=True, connect_timeout=10)
        else:
            raise ValueError(url.text)

    def q(self, sql, args=()):
        if self.dialect == "sqlite":
            sql = sql.replace("%s", "?")
        cur = self.db.cursor()
        cur.execute(sql, args)
        rows = cur.fetchall() if cur.description else []
        cur.close()
        return [tuple(bytes(v) if isinstance(v, (memoryview, bytearray)) else v for v in r) for r in rows]

    @contextlib.contextmanager
    def tx(self):
        """One transaction, as SQLAlchemy's engine.begin()."""
        if self.dialect == "postgresql":
            with self.db.transaction():
                yield self
            return
        self.q("BEGIN")
        try:
            yield self
        except BaseException:
            self.q("ROLLBACK")
            raise
        self.q("COMMIT")

    def has_table(self, name):
        if self.dialect == "sqlite":
            return bool(self.q("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", (name,)))
        if self.dialect == "postgresql":
            return self.q("SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0]
        return bool(self.q("SELECT COUNT(*) FROM information_schema.tables "
                           "WHERE table_schema = DATABASE() AND table_name = %s", (name,))[0][0])

    def close(self):
        self.db.close()


def _now():
    """`int(_utc_now().timestamp())`: whole seconds of the writer's clock."""
    return int(time.time())


class SqlRegistry:
    """Feast's SqlRegistry, as far as what it writes to the database goes.

    `pause(step)` (optional) is called before each transaction of an apply
    with the step's name ("A", "B", "C" for a view; "metadata", "project",
    "object" otherwise), so a test can stretch the gaps between them.
    `last_commit` is the time.monotonic() after the last transaction."""

    def __init__(self, url, pause=None, purge_feast_metadata=False):
        self.url = url if isinstance(url, Url) else Url(url)
        self.pause = pause or (lambda step: None)
        self.purge = purge_feast_metadata
        self.last_commit = None

    def connect(self):
        return _Conn(self.url)

    # ---- schema

    def create_tables(self, tables=None):
        """metadata.create_all(): each missing table with its index (checkfirst).
        `tables` limits them (a registry of an older Feast). Concurrent test
        processes share PostgreSQL and MariaDB: creation is serialized there."""
        wanted = [t for t in TABLE_NAMES if tables is None or t in tables]
        c = self.connect()
        try:
            if c.dialect == "postgresql":
                with c.tx():
                    c.q("SELECT pg_advisory_xact_lock(8675309)")
                    self._create(c, wanted)
            elif c.dialect == "mysql":
                c.q("SELECT GET_LOCK('larder_test_feast_registry_ddl', 60)")
                try:
                    self._create(c, wanted)
                finally:
                    c.q("SELECT RELEASE_LOCK('larder_test_feast_registry_ddl')")
            else:
                with c.tx():
                    self._create(c, wanted)
        finally:
            c.close()
        return self

    def _create(self, c, wanted):
        for t in wanted:
            if not c.has_table(t):
                for stmt in create_table_sql(t, c.dialect):
                    c.q(stmt)

    # ---- writes, as sql.py makes them

    def apply(self, project, *objects):
        """FeatureStore.apply(objects) through SqlRegistry: one object after the other."""
        c = self.connect()
        try:
            self._tables(c)
            for o in objects:
                if isinstance(o, _View):
                    self._apply_view(c, project, o)
                else:
                    self._apply_object(c, project, o, o.table, o.id_column, o.proto_column)
        finally:
            c.close()
        return self

    def _tables(self, c):
        self._have = {t: c.has_table(t) for t in ("feast_metadata", "projects", "feature_view_version_history")}

    def _commit(self):
        self.last_commit = time.monotonic()

    def _maybe_init_project_metadata(self, c, project):
        if self.purge or not self._have["feast_metadata"]:
            return
        self.pause("metadata")
        with c.tx():
            if not c.q("SELECT 1 FROM feast_metadata WHERE metadata_key = %s AND project_id = %s",
                       ("project_uuid", project)):
                c.q("INSERT INTO feast_metadata (project_id, metadata_key, metadata_value, last_updated_timestamp) "
                    "VALUES (%s, %s, %s, %s)", (project, "project_uuid", str(uuid.uuid4()), _now()))
        self._commit()

    def _set_last_updated_metadata(self, c, project, now):
        if self.purge or not self._have["feast_metadata"]:
            return
        if c.q("SELECT 1 FROM feast_metadata WHERE metadata_key = %s AND project_id = %s",
               ("last_updated_timestamp", project)):
            c.q("UPDATE feast_metadata SET metadata_key = %s, metadata_value = %s, last_updated_timestamp = %s, "
                "project_id = %s WHERE metadata_key = %s AND project_id = %s",
                ("last_updated_timestamp", str(now), now, project, "last_updated_timestamp", project))
        else:
            c.q("INSERT INTO feast_metadata (metadata_key, metadata_value, last_updated_timestamp, project_id) "
                "VALUES (%s, %s, %s, %s)", ("last_updated_timestamp", str(now), now, project))

    def _initialize_project_if_not_exists(self, c, project):
        if not self._have["projects"]:
            return
        if c.q("SELECT 1 FROM projects WHERE project_name = %s AND project_id = %s", (project, project)):
            return
        # apply_project(Project(name)): an _apply_object of its own.
        self._maybe_init_project_metadata(c, project)
        self.pause("project")
        with c.tx():
            now = _now()
            c.q("INSERT INTO projects (project_name, project_proto, last_updated_timestamp, project_id) "
                "VALUES (%s, %s, %s, %s)", (project, project_bytes(project, now), now, project))
            self._set_last_updated_metadata(c, project, now)
        self._commit()

    def _apply_object(self, c, project, obj, table, id_column, proto_column, step="object"):
        """sql.py _apply_object: the row (its to_proto(), no spec.project) and the
        feast_metadata bump in one transaction; nothing when unchanged.
        Returns whether it wrote."""
        self._maybe_init_project_metadata(c, project)
        self._initialize_project_if_not_exists(c, project)
        self.pause(step)
        with c.tx():
            now = _now()
            found = c.q("SELECT %s FROM %s WHERE %s = %%s AND project_id = %%s" % (proto_column, table, id_column),
                        (obj.name, project))
            if found:
                if obj.same(found[0][0]):
                    return False
                c.q("UPDATE %s SET %s = %%s, last_updated_timestamp = %%s WHERE %s = %%s AND project_id = %%s"
                    % (table, proto_column, id_column), (obj.to_bytes(now=now), now, obj.name, project))
            else:
                c.q("INSERT INTO %s (%s, %s, last_updated_timestamp, project_id) VALUES (%%s, %%s, %%s, %%s)"
                    % (table, id_column, proto_column), (obj.name, obj.to_bytes(now=now), now, project))
            self._set_last_updated_metadata(c, project, now)
        self._commit()
        return True

    def _history(self, c, name, project, number, kind, proto):
        with c.tx():
            c.q("INSERT INTO feature_view_version_history (feature_view_name, project_id, version_number, "
                "feature_view_type, feature_view_proto, created_timestamp, description, version_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (name, project, number, kind, proto, _now(), "", str(uuid.uuid4())))
        self._commit()

    def _apply_view(self, c, project, view):
        """apply_feature_view for version "latest": A, then B and C when the view is
        new or its schema changed."""
        t = view.table
        old = c.q("SELECT feature_view_proto FROM %s WHERE feature_view_name = %%s AND project_id = %%s" % t,
                  (view.name, project))
        self._apply_object(c, project, view, t, view.id_column, view.proto_column, step="A")
        if not self._have["feature_view_version_history"]:
            return  # an older Feast: no versions
        if old:
            if view.stored_schema(old[0][0]) == view.schema():
                return  # no version-significant change
            nxt = c.q("SELECT COALESCE(MAX(version_number) + 1, 0) FROM feature_view_version_history "
                      "WHERE feature_view_name = %s AND project_id = %s", (view.name, project))[0][0] or 0
            if nxt == 0:  # first versioned change of a view older than the history: the old one is v0
                self.pause("B")
                self._history(c, view.name, project, 0, view.kind, old[0][0])
                nxt = 1
        else:
            nxt = 0
        snapshot = view.to_bytes(project, version=nxt, now=_now())
        self.pause("B")
        self._history(c, view.name, project, nxt, view.kind, snapshot)
        self.pause("C")
        with c.tx():  # C: no timestamp moves
            c.q("UPDATE %s SET feature_view_proto = %%s WHERE feature_view_name = %%s AND project_id = %%s" % t,
                (snapshot, view.name, project))
        self._commit()

    def delete_view(self, project, name):
        """delete_feature_view: the rows of every view table and the history, then the bump."""
        c = self.connect()
        try:
            self._tables(c)
            with c.tx():
                for t in ("feature_views", "on_demand_feature_views", "stream_feature_views", "label_views"):
                    if c.has_table(t):
                        c.q("DELETE FROM %s WHERE feature_view_name = %%s AND project_id = %%s" % t, (name, project))
                if self._have["feature_view_version_history"]:
                    c.q("DELETE FROM feature_view_version_history WHERE feature_view_name = %s AND project_id = %s",
                        (name, project))
            with c.tx():
                self._set_last_updated_metadata(c, project, _now())
        finally:
            c.close()
        self._commit()


# --------------------------------------------------------------------------- file registry


class FileRegistry:
    """Feast's file registry (registry.py): one feast.core.Registry, rewritten
    whole (a new file renamed over the old one) after each apply."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.r = reg.Registry(registry_schema_version="1")

    def apply(self, project, *objects):
        now = _now()
        if not any(p.spec.name == project for p in self.r.projects):
            self.r.projects.append(reg.Project.FromString(project_bytes(project, now)))
        for o in objects:
            if isinstance(o, Entity):
                self._replace(self.r.entities, project, reg.Entity.FromString(o.to_bytes(project, now)))
            elif isinstance(o, FeatureService):
                self._replace(self.r.feature_services, project,
                              reg.FeatureService.FromString(o.to_bytes(project, now)))
            else:
                self._apply_view(project, o, now)
        self.write()
        return self

    @staticmethod
    def _replace(items, project, proto):
        for i, old in enumerate(items):
            if old.spec.name == proto.spec.name and old.spec.project == project:
                del items[i]
                break
        items.append(proto)

    def _views(self, view):
        return {"feature_view": self.r.feature_views, "stream_feature_view": self.r.stream_feature_views,
                "on_demand_feature_view": self.r.on_demand_feature_views,
                "label_view": self.r.label_views}[view.kind]

    def _record(self, view, project, number, proto, now):
        rec = self.r.feature_view_version_history.records.add(
            feature_view_name=view.name, project_id=project, version_number=number, feature_view_type=view.kind,
            feature_view_proto=proto, description="", version_id=str(uuid.uuid4()))
        rec.created_timestamp.seconds = now

    def _apply_view(self, project, view, now):
        items = self._views(view)
        old = next((v for v in items if v.spec.name == view.name and v.spec.project == project), None)
        history = [r.version_number for r in self.r.feature_view_version_history.records
                   if r.feature_view_name == view.name and r.project_id == project]
        if old is None:
            number = 0
        else:
            old_bytes = old.SerializeToString()
            if view.stored_schema(old_bytes) == view.schema():
                # In place (registry.py _update_metadata_fields): a definition from a
                # repo has no version number, so the row's goes back to 0.
                self._replace(items, project, view.message.FromString(view.to_bytes(project, None, now)))
                return
            number = max(history) + 1 if history else 0
            if number == 0:
                self._record(view, project, 0, old_bytes, now)
                number = 1
        proto = view.to_bytes(project, number, now)
        self._record(view, project, number, proto, now)
        self._replace(items, project, view.message.FromString(proto))

    def delete_view(self, project, name):
        for items in (self.r.feature_views, self.r.stream_feature_views, self.r.on_demand_feature_views,
                      self.r.label_views):
            for i, v in enumerate(items):
                if v.spec.name == name and v.spec.project == project:
                    del items[i]
                    break
        recs = [r for r in self.r.feature_view_version_history.records
                if not (r.feature_view_name == name and r.project_id == project)]
        del self.r.feature_view_version_history.records[:]
        self.r.feature_view_version_history.records.extend(recs)
        self.write()

    def write(self):
        self.r.version_id = str(uuid.uuid4())
        self.r.last_updated.seconds = _now()
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(self.r.SerializeToString())
        os.replace(tmp, self.path)


# --------------------------------------------------------------------------- larder side


def registry_yaml(kind, where, ttl=1, versioning=None, **extra):
    """The `registry:` value: kind "file" (a path) or "sql" (a Url)."""
    items = [] if kind == "file" else [("registry_type", "sql")]
    items.append(("path", where.text if isinstance(where, Url) else where))
    items.append(("cache_ttl_seconds", ttl))
    if versioning is not None:
        items.append(("enable_online_feature_view_versioning", versioning))
    items += extra.items()
    return "{%s}" % ", ".join("%s: %s" % (k, json.dumps(v)) for k, v in items)


def sqlite_store(path):
    return "online_store:\n  type: sqlite\n  path: %s\n" % os.path.abspath(path)


def make_server(project, registry, store=None, larder=None, env=None):
    """A harness.Server serving exactly `project` (harness gives client-server
    databases a project of their own; servers that share a store and a
    registry need the same one). `store`: an online_store section (default:
    the test backend's, for SQLite a file of this server's)."""
    s = harness.Server(registry=registry, store=store, larder=larder, env=env)
    with open(s.config) as f:
        text = f.read()
    with open(s.config, "w") as f:
        f.write(re.sub(r"^project: .*$", "project: " + project, text, count=1, flags=re.M))
    s.project = project
    return s


def store_rows(stub, table, rows):
    """Rows into the online table <project>_<table> (`table` may carry _v<N>),
    created first through larder's Update."""
    stub.Update(pb.UpdateRequest(tables_to_keep=[table]), timeout=30)
    if rows:
        stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view=table, rows=rows), timeout=30)


def tmpdir(prefix="larder-reg-"):
    """A folder that goes when the test process ends."""
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    return d


# --------------------------------------------------------------------------- client helpers


def ints(*xs):
    return V.RepeatedValue(val=[V.Value(int64_val=x) for x in xs])


def strs(*xs):
    return V.RepeatedValue(val=[V.Value(string_val=x) for x in xs])


def request(features=None, service=None, entities=(), context=(), full=False, metadata=False):
    """A GetOnlineFeaturesRequest as bytes, its entity and request_context
    columns on the wire in the order given ((name, RepeatedValue) pairs):
    Python's protobuf does not let a client choose the order of map entries,
    but a message is the concatenation of its fields, so each column is a
    message of its own."""
    head = sv.GetOnlineFeaturesRequest(full_feature_names=full, include_feature_view_version_metadata=metadata)
    if service is not None:
        head.feature_service = service
    else:
        head.features.val.extend(features)
    out = head.SerializeToString()
    for name, values in entities:
        one = sv.GetOnlineFeaturesRequest()
        one.entities[name].CopyFrom(values)
        out += one.SerializeToString()
    for name, values in context:
        one = sv.GetOnlineFeaturesRequest()
        one.request_context[name].CopyFrom(values)
        out += one.SerializeToString()
    return out


GET = "/feast.serving.ServingService/GetOnlineFeatures"


def get(channel, payload, timeout=10):
    """(code, details, GetOnlineFeaturesResponse or None)."""
    code, details, reply = harness.raw_call(channel, GET, payload, timeout=timeout)
    return code, details, (sv.GetOnlineFeaturesResponse.FromString(reply) if reply is not None else None)


def columns(resp):
    names = list(resp.metadata.feature_names.val)
    assert len(names) == len(resp.results), (names, len(resp.results))
    return dict(zip(names, resp.results))


def wait_served(channel, payload, timeout, accept=None):
    """Calls until the call answers OK (and `accept(resp)` is true); returns
    (response, seconds waited). Raises AssertionError with the last answer."""
    t0 = time.monotonic()
    last = None
    while True:
        code, details, resp = get(channel, payload)
        if code == grpc.StatusCode.OK and (accept is None or accept(resp)):
            return resp, time.monotonic() - t0
        last = (code, details, resp)
        if time.monotonic() - t0 > timeout:
            raise AssertionError("not served within %.1f s; last answer: %s %s %s"
                                 % (timeout, last[0], last[1], last[2] and list(last[2].metadata.feature_names.val)))
        time.sleep(0.1)


def wait_loaded(channel, timeout):
    """Waits until ServingService has a registry: a call naming a view that no
    registry has answers INVALID_ARGUMENT then, FAILED_PRECONDITION before.
    Returns the seconds waited, or None when it did not load in time."""
    t0 = time.monotonic()
    probe = request(["no_such_view_larder_probe:x"], entities=[("driver_id", ints(1))])
    while time.monotonic() - t0 <= timeout:
        code, _, _ = get(channel, probe)
        if code != grpc.StatusCode.FAILED_PRECONDITION:
            return time.monotonic() - t0
        time.sleep(0.1)
    return None


class Load:
    """Threads calling GetOnlineFeatures without a pause while a test changes
    things: every answer must be OK (and pass the target's check, a function of
    the response that returns why it is wrong, or None). Use as a context
    manager; `failures`, `calls` and `slowest` (seconds) afterwards."""

    def __init__(self, targets, threads_per_target=2):
        self.targets = [tuple(t) + (None,) * (3 - len(t)) for t in targets]  # (channel, payload, check)
        self.failures, self.calls, self.slowest = [], 0, 0.0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=t, daemon=True)
                        for t in self.targets for _ in range(threads_per_target)]

    def _run(self, channel, payload, check):
        while not self.stop.is_set():
            t0 = time.monotonic()
            code, details, resp = get(channel, payload)
            took = time.monotonic() - t0
            why = check(resp) if code == grpc.StatusCode.OK and check is not None else None
            with self.lock:
                self.calls += 1
                self.slowest = max(self.slowest, took)
                if code != grpc.StatusCode.OK:
                    self.failures.append((time.strftime("%H:%M:%S"), code, details))
                elif why:
                    self.failures.append((time.strftime("%H:%M:%S"), "bad answer", why))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)
