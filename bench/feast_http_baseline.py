#!/usr/bin/python3
"""The HTTP server a Feast user runs today, for bench/http.sh to measure
larder's HTTP API against: Feast's feature server (`feast serve`) answering
POST /get-online-features and POST /push on a SQLite online store, rebuilt
from Feast's own code with Debian's python3-fastapi, python3-uvicorn,
python3-pydantic, python3-protobuf and python3-pandas (Feast itself is not
installable here).

Every function below that does Feast's work is Feast's, carried over from
`feast-dev/feast` at f0bc0700 (the commit of feast-compat/HTTP.md) with its
name, and changed only where a Feast class or a missing package forces it
(each such place says so):

- feature_server.py: the request models, `get_online_features` and `push`
  endpoints (`run_in_threadpool` for the store work and for the JSON
  conversion, `JSONResponse`), the route table in Feast's order, the
  exception handler, the registry refresh timer (`registry_ttl_sec`, 60 s);
- utils.py: `_parse_feature_ref`, `_get_features`, `_get_feature_views_to_use`,
  `_get_entity_maps`, `_validate_feature_refs`, `_group_feature_refs`,
  `_get_online_request_context` and its cache `_get_cached_request_context`,
  `_prepare_entities_to_read_from_online_store`, `_get_unique_entities`,
  `_get_entity_key_protos`, `_populate_response_from_feature_data`,
  `_drop_unneeded_columns`, `_convert_arrow_fv_to_proto`;
- online_store.py: `OnlineStore.get_online_features`, `_read_features_per_fv`,
  `_build_feature_types`; online_response.py: `OnlineResponse.__init__`;
- type_map.py: `python_values_to_proto_values` for scalar, list and JSON types;
- key_encoding_utils.py: `serialize_entity_key` (version 3);
- infra/online_stores/sqlite.py: `online_read` (its SELECT, ORDER BY
  entity_key, groupby, `ParseFromString` per row) and `online_write_batch`
  (its INSERT ... ON CONFLICT upsert per feature, `with conn:` one transaction
  per view), the connection and its timestamp adapters and converters;
- feature_store.py: `push`, `_fvs_for_push_source_or_raise`,
  `write_to_online_store`, `_precompute_for_push`; passthrough_provider.py:
  `ingest_df`, `_prep_rows_to_write_for_ingestion`;
- feature_server_utils.py: `convert_response_to_dict` (the response layout
  of feast-compat/HTTP.md section 4.3);
- infra/registry/registry.py: the file registry's cache (`cache_ttl_seconds`
  600, `is_cache_valid`, `allow_cache=False` reading the file again).

What differs, and why: pyarrow is not packaged for Debian 12, so a push's
frame is read from pandas' columns (`df[c].to_numpy()`) where Feast goes
through `pa.Table.from_pandas(df)` and `column.to_numpy()` (the same numpy
arrays for numeric, string and object columns); Feast's FeatureView, Entity
and FeatureService classes are replaced by small ones built from the same
registry protobuf (Feast's `from_proto` does more work per object); pydantic
is 1.10 (Feast requires 2.x) and uvicorn 0.17 (Feast: 0.30+).

    feast_http_baseline.py --registry PATH --db PATH --project P --stubs DIR
                           [--host H] [--port N] [--no-access-log] [--gunicorn]

Served as `feast serve` serves by default: one worker process, uvicorn, the
access log on (`--no-access-log` as Feast's flag). `--gunicorn` runs it as
`feast serve` does on Linux: gunicorn with uvicorn's worker, 1 worker,
restarted after 1000-1050 requests (max_requests, max_requests_jitter),
keep-alive 30 s, access log on.
"""
import argparse
import base64
import itertools
import json
import logging
import os
import sqlite3
import struct
import sys
import threading
import time
import traceback
import warnings
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any, Dict, List, Optional, Sequence, Sized, Tuple

ARGS = None


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--registry", required=True, help="Feast registry file (feast.core.Registry bytes)")
    ap.add_argument("--db", required=True, help="the SQLite online store")
    ap.add_argument("--project", required=True)
    ap.add_argument("--stubs", required=True, help="folder of Python modules generated from protos/")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6566)
    ap.add_argument("--no-access-log", action="store_true")
    ap.add_argument("--gunicorn", action="store_true")
    ap.add_argument("--registry-ttl-sec", type=int, default=60)
    return ap.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()
    sys.path.insert(0, ARGS.stubs)
else:  # imported by gunicorn's worker (`feast_http_baseline:app`): settings from the environment
    ARGS = parse_args(json.loads(os.environ["FEAST_HTTP_BASELINE_ARGS"]))
    sys.path.insert(0, ARGS.stubs)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from fastapi import Depends, FastAPI, Request, Response, status  # noqa: E402
from fastapi.concurrency import run_in_threadpool  # noqa: E402
from fastapi.logger import logger  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from google.protobuf.timestamp_pb2 import Timestamp  # noqa: E402
from pydantic import BaseModel, validator  # noqa: E402

from feast.core import Registry_pb2  # noqa: E402
from feast.serving.ServingService_pb2 import FieldStatus, GetOnlineFeaturesResponse  # noqa: E402
from feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto  # noqa: E402
from feast.types import Value_pb2  # noqa: E402
from feast.types.Value_pb2 import RepeatedValue as RepeatedValueProto  # noqa: E402
from feast.types.Value_pb2 import Value as ValueProto  # noqa: E402
from feast.types.Value_pb2 import ValueType as ValueTypeProto  # noqa: E402

ProtoValue = ValueProto

# feast/value_type.py: the enum of Value.proto, 0 named UNKNOWN.
ValueType = IntEnum("ValueType", [("UNKNOWN", 0)] + [(n, v) for n, v in ValueTypeProto.Enum.items() if v != 0]
                    + [("PDF_BYTES", 30), ("IMAGE_BYTES", 31)])

DUMMY_ENTITY_ID = "__dummy_id"
DUMMY_ENTITY_NAME = "__dummy"
DUMMY_ENTITY_VAL = ""
PUSH_SOURCE = 9
NULL_TIMESTAMP_INT_VALUE: int = np.datetime64("NaT").astype(int)

# =============================================================================
# feast/errors.py (the classes this path raises)
# =============================================================================


class FeastError(Exception):
    def rpc_status_code(self):
        return 13

    def http_status_code(self) -> int:
        return 500

    def to_error_detail(self) -> str:
        import importlib  # noqa: F401
        m = {"module": "feast.errors", "class": type(self).__name__, "message": str(self)}
        return json.dumps(m)


class FeastObjectNotFoundException(FeastError):
    def http_status_code(self) -> int:
        return 404


class FeatureViewNotFoundException(FeastObjectNotFoundException):
    def __init__(self, name, project=None):
        if project:
            super().__init__(f"Feature view {name} does not exist in project {project}")
        else:
            super().__init__(f"Feature view {name} does not exist")


class FeatureServiceNotFoundException(FeastObjectNotFoundException):
    def __init__(self, feature_service_name, project=None):
        if project:
            super().__init__(f"Feature service {feature_service_name} does not exist in project {project}")
        else:
            super().__init__(f"Feature service {feature_service_name} does not exist")


class EntityNotFoundException(FeastObjectNotFoundException):
    def __init__(self, name, project=None):
        super().__init__(f"Entity {name} does not exist in project {project}" if project else
                         f"Entity {name} does not exist")


class PushSourceNotFoundException(FeastError):
    def __init__(self, push_source_name: str):
        super().__init__(f"Unable to find push source '{push_source_name}'.")

    def rpc_status_code(self):
        return 3

    def http_status_code(self) -> int:
        return 422


class FeatureNameCollisionError(FeastError):
    def __init__(self, feature_refs_collisions: List[str], full_feature_names: bool):
        if full_feature_names:
            collisions = [ref.replace(":", "__") for ref in feature_refs_collisions]
            error_message = (
                "To resolve this collision, please ensure that the feature views or their own features "
                "have different names. If you're intentionally joining the same feature view twice on "
                "different sets of entities, please rename one of the feature views with '.with_name'."
            )
        else:
            collisions = [ref.split(":")[1] for ref in feature_refs_collisions]
            error_message = "To resolve this collision, either use the full feature name by setting 'full_feature_names=True', or ensure that the features in question have different names."
        feature_names = ", ".join(set(collisions))
        super().__init__(f"Duplicate features named {feature_names} found.\n{error_message}")


class RequestDataNotFoundInEntityRowsException(FeastError):
    def __init__(self, feature_names):
        super().__init__(f"Required request data source features {feature_names} not found in the entity rows, but required by feature views.")


# =============================================================================
# Registry objects. Feast builds FeatureView / Entity / FeatureService objects
# with from_proto; these carry the attributes its serving and push paths use.
# =============================================================================


class Field:
    __slots__ = ("name", "value_type")

    def __init__(self, name, value_type):
        self.name = name
        self.value_type = ValueType(value_type)

    @property
    def dtype(self):
        return self

    def to_value_type(self):  # Field.dtype.to_value_type()
        return self.value_type


class DataSource:
    def __init__(self, proto):
        self.name = proto.name
        self.timestamp_field = proto.timestamp_field
        self.created_timestamp_column = proto.created_timestamp_column
        self.field_mapping = dict(proto.field_mapping)
        self.is_push_source = proto.type == PUSH_SOURCE
        self.batch_source = DataSource(proto.batch_source) if proto.HasField("batch_source") else None


class FeatureViewProjection:
    def __init__(self, name, name_alias, features, join_key_map=None, version_tag=None):
        self.name = name
        self.name_alias = name_alias
        self.features = features
        self.join_key_map = join_key_map or {}
        self.version_tag = version_tag

    def name_to_use(self):
        base = self.name_alias or self.name
        if self.version_tag is not None:
            return f"{base}@v{self.version_tag}"
        return base

    def get_feature(self, feature_name: str) -> Field:
        try:
            return next(field for field in self.features if field.name == feature_name)
        except StopIteration:
            raise KeyError(f"Feature {feature_name} not found in projection {self.name_to_use()}")


class FeatureView:
    def __init__(self, spec, meta=None):
        self.name = spec.name
        self.entities = list(spec.entities)
        self.features = [Field(f.name, f.value_type) for f in spec.features]
        self.entity_columns = [Field(f.name, f.value_type) for f in spec.entity_columns]
        self.ttl = timedelta(seconds=spec.ttl.seconds) if spec.HasField("ttl") else timedelta(0)
        self.batch_source = DataSource(spec.batch_source) if spec.HasField("batch_source") else None
        self.stream_source = DataSource(spec.stream_source) if spec.HasField("stream_source") else None
        if self.batch_source is None and self.stream_source is not None:
            self.batch_source = self.stream_source.batch_source
        self.enabled = not spec.disabled
        self.state = meta.state if meta is not None else 0
        self.current_version_number = meta.current_version_number if meta is not None else 0
        self.projection = FeatureViewProjection(self.name, None, list(self.features))

    def with_projection(self, projection):
        import copy
        fv = copy.copy(self)
        fv.projection = projection
        return fv


class Entity:
    def __init__(self, spec):
        self.name = spec.name
        self.join_key = spec.join_key or spec.name
        self.value_type = ValueType(spec.value_type)


class FeatureService:
    def __init__(self, spec):
        self.name = spec.name
        self.precompute_online = spec.precompute_online
        self.feature_view_projections = [
            FeatureViewProjection(p.feature_view_name, p.feature_view_name_alias or None,
                                  [Field(f.name, f.value_type) for f in p.feature_columns], dict(p.join_key_map),
                                  p.version_tag if p.HasField("version_tag") else None)
            for p in spec.features]


# feast/infra/registry/registry.py: the file registry and its cache.
class Registry:
    def __init__(self, path, project, cache_ttl_seconds=600):
        self.path = path
        self.project = project
        self.cached_registry_proto_ttl = timedelta(seconds=cache_ttl_seconds)
        self.cached_registry_proto = None
        self.cached_registry_proto_created = None
        self._refresh_lock = threading.Lock()
        self.enable_online_versioning = False
        self.refresh()

    def _read(self):
        proto = Registry_pb2.Registry()
        with open(self.path, "rb") as f:
            proto.ParseFromString(f.read())
        return proto

    def refresh(self, project=None):
        self.cached_registry_proto = self._read()
        self.cached_registry_proto_created = datetime.now(timezone.utc)

    def is_cache_valid(self) -> bool:
        if self.cached_registry_proto_created is None:
            return False
        if (self.cached_registry_proto_ttl.total_seconds() > 0
                and datetime.now(timezone.utc) > self.cached_registry_proto_created + self.cached_registry_proto_ttl):
            return False
        return True

    def _get_registry_proto(self, project, allow_cache=False):
        with self._refresh_lock:
            expired = self.cached_registry_proto_created is None or (
                self.cached_registry_proto_ttl.total_seconds() > 0
                and datetime.now(timezone.utc) > self.cached_registry_proto_created + self.cached_registry_proto_ttl)
            if allow_cache and not expired:
                return self.cached_registry_proto
            logger.info("Registry cache expired, so refreshing")
            self.refresh()
            return self.cached_registry_proto

    def list_entities(self, project, allow_cache=False):
        p = self._get_registry_proto(project, allow_cache)
        return [Entity(e.spec) for e in p.entities if e.spec.project == project]

    def list_feature_views(self, project, allow_cache=False):
        p = self._get_registry_proto(project, allow_cache)
        return [FeatureView(v.spec, v.meta) for v in p.feature_views if v.spec.project == project]

    def list_stream_feature_views(self, project, allow_cache=False):
        p = self._get_registry_proto(project, allow_cache)
        return [FeatureView(v.spec, v.meta) for v in p.stream_feature_views if v.spec.project == project]

    def list_feature_services(self, project, allow_cache=False):
        p = self._get_registry_proto(project, allow_cache)
        return [FeatureService(s.spec) for s in p.feature_services if s.spec.project == project]

    def get_feature_service(self, name, project, allow_cache=False):
        p = self._get_registry_proto(project, allow_cache)
        for s in p.feature_services:
            if s.spec.project == project and s.spec.name == name:
                return FeatureService(s.spec)
        raise FeatureServiceNotFoundException(name, project=project)

    def get_any_feature_view(self, name, project, allow_cache=False):
        # proto_registry_utils.get_any_feature_view: feature views, stream feature views, ...
        p = self._get_registry_proto(project, allow_cache)
        for v in itertools.chain(p.feature_views, p.stream_feature_views):
            if v.spec.project == project and v.spec.name == name:
                return FeatureView(v.spec, v.meta)
        raise FeatureViewNotFoundException(name, project)


# =============================================================================
# feast/infra/key_encoding_utils.py
# =============================================================================


def _serialize_val(value_type, v: ValueProto, entity_key_serialization_version=3) -> Tuple[bytes, int]:
    if value_type == "string_val":
        return v.string_val.encode("utf8"), ValueType.STRING
    elif value_type == "bytes_val":
        return v.bytes_val, ValueType.BYTES
    elif value_type == "int32_val":
        return struct.pack("<i", v.int32_val), ValueType.INT32
    elif value_type == "int64_val":
        if 0 <= entity_key_serialization_version <= 1:
            return struct.pack("<l", v.int64_val), ValueType.INT64
        return struct.pack("<q", v.int64_val), ValueType.INT64
    elif value_type == "unix_timestamp_val":
        return struct.pack("<q", v.unix_timestamp_val), ValueType.UNIX_TIMESTAMP
    else:
        raise ValueError(f"Value type not supported for feast feature store: {v}")


def serialize_entity_key(entity_key: EntityKeyProto, entity_key_serialization_version=3) -> bytes:
    if entity_key_serialization_version < 3:
        warnings.warn("Serialization of entity key with version < 3 is removed.")
    sorted_keys: List[str]
    sorted_values: List[ValueProto]
    if not entity_key.join_keys:
        sorted_keys = []
        sorted_values = []
    elif len(entity_key.join_keys) == 1:
        sorted_keys = [entity_key.join_keys[0]]
        sorted_values = [entity_key.entity_values[0]]
    else:
        pairs = sorted(zip(entity_key.join_keys, entity_key.entity_values))
        sorted_keys = [k for k, _ in pairs]
        sorted_values = [v for _, v in pairs]

    output: List[bytes] = []
    if entity_key_serialization_version > 2:
        output.append(struct.pack("<I", len(sorted_keys)))
    if sorted_keys:
        encoded_keys = [k.encode("utf8") for k in sorted_keys]
        for i, k_encoded in enumerate(encoded_keys):
            output.append(struct.pack("<I", ValueType.STRING))
            if entity_key_serialization_version > 2:
                output.append(struct.pack("<I", len(k_encoded)))
            output.append(k_encoded)
    for v in sorted_values:
        val_bytes, value_type = _serialize_val(v.WhichOneof("val"), v,
                                               entity_key_serialization_version=entity_key_serialization_version)
        output.append(struct.pack("<I", value_type))
        output.append(struct.pack("<I", len(val_bytes)))
        output.append(val_bytes)
    return b"".join(output)


# =============================================================================
# feast/type_map.py: python_values_to_proto_values (scalars, lists, JSON)
# =============================================================================

PYTHON_LIST_VALUE_TYPE_TO_PROTO_VALUE = {
    ValueType.FLOAT_LIST: (Value_pb2.FloatList, "float_list_val", [np.float32, np.float64, float]),
    ValueType.DOUBLE_LIST: (Value_pb2.DoubleList, "double_list_val", [np.float64, np.float32, float]),
    ValueType.INT32_LIST: (Value_pb2.Int32List, "int32_list_val", [np.int64, np.int32, int]),
    ValueType.INT64_LIST: (Value_pb2.Int64List, "int64_list_val", [np.int64, np.int32, int]),
    ValueType.STRING_LIST: (Value_pb2.StringList, "string_list_val", [np.str_, str]),
    ValueType.BOOL_LIST: (Value_pb2.BoolList, "bool_list_val", [np.bool_, bool]),
    ValueType.BYTES_LIST: (Value_pb2.BytesList, "bytes_list_val", [np.bytes_, bytes]),
}

_LIST_NONE_DEFAULTS = {
    ValueType.FLOAT_LIST: 0.0, ValueType.DOUBLE_LIST: 0.0, ValueType.INT32_LIST: 0, ValueType.INT64_LIST: 0,
    ValueType.STRING_LIST: "", ValueType.BOOL_LIST: False, ValueType.BYTES_LIST: b"",
}

import decimal  # noqa: E402
import uuid as uuid_module  # noqa: E402

PYTHON_SCALAR_VALUE_TYPE_TO_PROTO_VALUE = {
    ValueType.INT32: ("int32_val", lambda x: int(x), None),
    ValueType.INT64: (
        "int64_val",
        lambda x: (int(x.timestamp()) if isinstance(x, pd._libs.tslibs.timestamps.Timestamp) else int(x)),
        None,
    ),
    ValueType.FLOAT: ("float_val", lambda x: float(x), None),
    ValueType.DOUBLE: ("double_val", lambda x: x, {float, np.float64, int, np.int_, decimal.Decimal}),
    ValueType.STRING: ("string_val", lambda x: str(x), None),
    ValueType.BYTES: ("bytes_val", lambda x: x, {bytes}),
    ValueType.IMAGE_BYTES: ("bytes_val", lambda x: x, {bytes}),
    ValueType.BOOL: ("bool_val", lambda x: x, {bool, np.bool_, int, np.int_}),
    ValueType.UUID: ("uuid_val", lambda x: str(x), {str, uuid_module.UUID}),
    ValueType.TIME_UUID: ("time_uuid_val", lambda x: str(x), {str, uuid_module.UUID}),
    ValueType.DECIMAL: ("decimal_val", lambda x: str(x), {decimal.Decimal, str}),
}


def _type_err(item, dtype):
    raise TypeError(f'Value "{item}" is of type {type(item)} not of type {dtype}')


def _non_empty_value(value: Any) -> bool:
    return value is not None and (not isinstance(value, Sized) or len(value) > 0 or isinstance(value, str))


def _is_array_like(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (hasattr(value, "__len__") and not isinstance(value, (str, bytes)))


def _python_datetime_to_int_timestamp(values):
    if isinstance(values, np.ndarray) and isinstance(values.dtype, np.datetime64):
        return values.astype("datetime64[s]").astype(np.int_)
    int_timestamps = []
    for value in values:
        if isinstance(value, datetime):
            int_timestamps.append(int(value.timestamp()))
        elif isinstance(value, Timestamp):
            int_timestamps.append(int(value.ToSeconds()))
        elif isinstance(value, np.datetime64):
            int_timestamps.append(value.astype("datetime64[s]").astype(np.int_))
        elif isinstance(value, type(np.nan)):
            int_timestamps.append(NULL_TIMESTAMP_INT_VALUE)
        else:
            int_timestamps.append(int(value))
    return int_timestamps


def _convert_scalar_values_to_proto(feast_value_type, values, sample):
    if sample is None:
        return [ProtoValue()] * len(values)
    if feast_value_type == ValueType.UNIX_TIMESTAMP:
        out: List[Any] = [None] * len(values)
        clean_indices, clean_values = [], []
        for i, value in enumerate(values):
            if _is_array_like(value) or value is None:
                out[i] = ProtoValue()
            else:
                clean_indices.append(i)
                clean_values.append(value)
        if clean_values:
            timestamps = _python_datetime_to_int_timestamp(clean_values)
            for i, ts in zip(clean_indices, timestamps):
                out[i] = ProtoValue(unix_timestamp_val=ts)
        return out
    field_name, func, valid_scalar_types = PYTHON_SCALAR_VALUE_TYPE_TO_PROTO_VALUE[feast_value_type]
    if valid_scalar_types:
        try:
            is_zero = sample == 0 or sample == 0.0
        except (ValueError, TypeError):
            is_zero = False
        if is_zero and feast_value_type != ValueType.BOOL:
            allowed_types = {np.int64, int, np.float64, float, decimal.Decimal}
            assert type(sample) in allowed_types, f"Type `{type(sample)}` not in {allowed_types}"
        else:
            assert type(sample) in valid_scalar_types, f"Type `{type(sample)}` not in {valid_scalar_types}"
    if feast_value_type == ValueType.BOOL:
        out = []
        for value in values:
            if _is_array_like(value):
                out.append(ProtoValue())
            elif not pd.isnull(value):
                out.append(ProtoValue(**{field_name: func(bool(value) if type(value) is np.bool_ else value)}))
            else:
                out.append(ProtoValue())
        return out
    out = []
    for value in values:
        if isinstance(value, ProtoValue):
            out.append(value)
        elif _is_array_like(value):
            out.append(ProtoValue())
        elif not pd.isnull(value):
            out.append(ProtoValue(**{field_name: func(value)}))
        else:
            out.append(ProtoValue())
    return out


def _sanitize_list_value(value, feast_value_type):
    if isinstance(value, np.ndarray):
        value = value.tolist()
    none_default = _LIST_NONE_DEFAULTS.get(feast_value_type)
    if none_default is not None and isinstance(value, list):
        value = [none_default if v is None else v for v in value]
    return value


def _convert_list_values_to_proto(feast_value_type, values, sample):
    if feast_value_type not in PYTHON_LIST_VALUE_TYPE_TO_PROTO_VALUE:
        raise Exception(f"Unsupported list type: {feast_value_type} (not carried over to the baseline)")
    proto_type, field_name, valid_types = PYTHON_LIST_VALUE_TYPE_TO_PROTO_VALUE[feast_value_type]
    values = [_sanitize_list_value(v, feast_value_type) if v is not None else v for v in values]
    if sample is not None:
        sample = _sanitize_list_value(sample, feast_value_type)
    if sample is not None and not all(type(item) in valid_types for item in sample):
        first_invalid = next(item for item in sample if type(item) not in valid_types)
        raise _type_err(first_invalid, valid_types[0])
    if feast_value_type == ValueType.BOOL_LIST:
        return [ProtoValue(**{field_name: proto_type(val=[bool(e) for e in value])}) if value is not None
                else ProtoValue() for value in values]
    return [ProtoValue(**{field_name: proto_type(val=value)}) if value is not None else ProtoValue()
            for value in values]


def _python_value_to_proto_value(feast_value_type, values):
    if feast_value_type == ValueType.JSON:
        result = []
        for value in values:
            if value is None:
                result.append(ProtoValue())
            else:
                if isinstance(value, str):
                    try:
                        json.loads(value)
                    except (json.JSONDecodeError, TypeError) as e:
                        raise ValueError(f"Invalid JSON string for JSON type: {e}") from e
                    json_str = value
                else:
                    json_str = json.dumps(value)
                result.append(ProtoValue(json_val=json_str))
        return result
    sample = next(filter(_non_empty_value, values), None)
    type_name_lower = feast_value_type.name.lower()
    if "list" in type_name_lower:
        return _convert_list_values_to_proto(feast_value_type, values, sample)
    if "set" in type_name_lower or "map" in type_name_lower or "struct" in type_name_lower:
        raise Exception(f"Unsupported data type: {feast_value_type} (not carried over to the baseline)")
    if feast_value_type in PYTHON_SCALAR_VALUE_TYPE_TO_PROTO_VALUE or feast_value_type == ValueType.UNIX_TIMESTAMP:
        scalar_sample = next((v for v in values if _non_empty_value(v) and not _is_array_like(v)), None)
        return _convert_scalar_values_to_proto(feast_value_type, values, scalar_sample)
    raise Exception(f"Unsupported data type: {feast_value_type}")


_INFER = {int: ValueType.INT64, str: ValueType.STRING, float: ValueType.DOUBLE, bytes: ValueType.BYTES,
          bool: ValueType.BOOL, np.int64: ValueType.INT64, np.float64: ValueType.DOUBLE}


def python_values_to_proto_values(values: List[Any], feature_type=ValueType.UNKNOWN) -> List[ProtoValue]:
    value_type = feature_type
    sample = next(filter(_non_empty_value, values), None)
    if sample is not None and feature_type == ValueType.UNKNOWN:
        # python_type_to_feast_value_type, for the scalar kinds JSON brings
        if type(sample) not in _INFER:
            raise ValueError(f"Value with native type {type(sample).__name__} cannot be converted into Feast value type")
        value_type = _INFER[type(sample)]
    if value_type == ValueType.UNKNOWN:
        if all(v is None for v in values):
            return [ProtoValue() for _ in values]
        raise TypeError("Couldn't infer value type from empty value")
    proto_values = _python_value_to_proto_value(value_type, values)
    if len(proto_values) != len(values):
        raise ValueError(f"Number of proto values {len(proto_values)} does not match number of values {len(values)}")
    return proto_values


# =============================================================================
# feast/infra/online_stores/sqlite.py
# =============================================================================


def adapt_date_iso(val: date):
    return val.isoformat()


def adapt_datetime_iso(val: datetime):
    return val.isoformat()


def adapt_datetime_epoch(val: datetime):
    return int(val.timestamp())


sqlite3.register_adapter(date, adapt_date_iso)
sqlite3.register_adapter(datetime, adapt_datetime_iso)
sqlite3.register_adapter(datetime, adapt_datetime_epoch)


def convert_date(val: bytes):
    return date.fromisoformat(val.decode())


def convert_datetime(val: bytes):
    return datetime.fromisoformat(val.decode())


def convert_timestamp(val: bytes):
    return datetime.fromtimestamp(int(val))


sqlite3.register_converter("date", convert_date)
sqlite3.register_converter("datetime", convert_datetime)
sqlite3.register_converter("timestamp", convert_timestamp)


def _quote_id(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _table_id(project: str, table: Any, enable_versioning: bool = False) -> str:
    name = table.name
    if enable_versioning:
        version = getattr(table.projection, "version_tag", None)
        if version is None:
            version = getattr(table, "current_version_number", None)
        if version is not None and version > 0:
            name = f"{table.name}_v{version}"
    return f"{project}_{name}"


def _initialize_conn(db_path: str) -> sqlite3.Connection:
    return sqlite3.connect(db_path, detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
                           check_same_thread=False)


def to_naive_utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        return ts
    return ts.astimezone(timezone.utc).replace(tzinfo=None)


def extract_text_and_num(val, compute_num):
    val_type = val.WhichOneof("val")
    if val_type == "string_val":
        return val.string_val, None
    if val_type in ("int64_val", "int32_val", "double_val", "float_val"):
        raw = getattr(val, val_type)
        return str(raw), float(raw) if compute_num else None
    if val_type == "bool_val":
        return str(val.bool_val), (1.0 if val.bool_val else 0.0) if compute_num else None
    return None, None


class SqliteOnlineStore:
    _conn: Optional[sqlite3.Connection] = None

    def __init__(self, db_path, project):
        self.db_path = db_path
        self.project = project
        self.entity_key_serialization_version = 3
        self.enable_online_feature_view_versioning = False

    def _get_conn(self):
        if not self._conn:
            self._conn = _initialize_conn(self.db_path)
        return self._conn

    def online_write_batch(self, table, data, progress) -> None:
        conn = self._get_conn()
        project = self.project
        table_name = _table_id(project, table, self.enable_online_feature_view_versioning)
        has_value_num_col = False  # enable_openai_compatible_store: false (Feast's default)
        compute_value_num = has_value_num_col
        columns = ["entity_key", "feature_name", "value", "value_text"]
        columns.extend(["event_ts", "created_ts"])  # vector_enabled: false (Feast's default)
        pk_cols = {"entity_key", "feature_name"}
        col_csv = ", ".join(columns)
        placeholders = ", ".join(["?"] * len(columns))
        update_set = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in pk_cols)
        upsert_sql = (f"INSERT INTO {_quote_id(table_name)} ({col_csv}) "
                      f"VALUES ({placeholders}) "
                      f"ON CONFLICT(entity_key, feature_name) DO UPDATE SET {update_set};")
        with conn:
            for entity_key, values, timestamp, created_ts in data:
                entity_key_bin = serialize_entity_key(
                    entity_key, entity_key_serialization_version=self.entity_key_serialization_version)
                timestamp = to_naive_utc(timestamp)
                if created_ts is not None:
                    created_ts = to_naive_utc(created_ts)
                for feature_name, val in values.items():
                    value_text, value_num = extract_text_and_num(val, compute_value_num)
                    row: List[Any] = [entity_key_bin, feature_name, val.SerializeToString(), value_text]
                    row.extend([timestamp, created_ts])
                    conn.execute(upsert_sql, tuple(row))
                if progress:
                    progress(1)

    def online_read(self, table, entity_keys, requested_features=None):
        conn = self._get_conn()
        cur = conn.cursor()
        result = []
        serialized_entity_keys = [
            serialize_entity_key(entity_key, entity_key_serialization_version=self.entity_key_serialization_version)
            for entity_key in entity_keys
        ]
        # Fetch all entities in one go
        cur.execute(
            f"SELECT entity_key, feature_name, value, event_ts "
            f"FROM {_quote_id(_table_id(self.project, table, self.enable_online_feature_view_versioning))} "
            f"WHERE entity_key IN ({','.join('?' * len(entity_keys))}) "
            f"ORDER BY entity_key",
            serialized_entity_keys,
        )
        rows = cur.fetchall()
        rows = {k: list(group) for k, group in itertools.groupby(rows, key=lambda r: r[0])}
        for entity_key_bin in serialized_entity_keys:
            res = {}
            res_ts = None
            for _, feature_name, val_bin, ts in rows.get(entity_key_bin, []):
                val = ValueProto()
                val.ParseFromString(val_bin)
                res[feature_name] = val
                if ts.tzinfo is not None:
                    res_ts = ts.astimezone(timezone.utc)
                else:
                    res_ts = ts.replace(tzinfo=timezone.utc)
            if not res:
                result.append((None, None))
            else:
                result.append((res_ts, res))
        return result

    # ---- online_store.py: OnlineStore.get_online_features ---------------------------------
    def get_online_features(self, features, entity_rows, registry, project, full_feature_names=False,
                            include_feature_view_version_metadata=False):
        if isinstance(entity_rows, list):
            columnar: Dict[str, List[Any]] = {k: [] for k in entity_rows[0].keys()}
            for entity_row in entity_rows:
                for key, value in entity_row.items():
                    try:
                        columnar[key].append(value)
                    except KeyError as e:
                        raise ValueError("All entity_rows must have the same keys.") from e
            entity_rows = columnar

        (join_key_values, grouped_refs, entity_name_to_join_key_map, requested_on_demand_feature_views,
         feature_refs, requested_result_row_names, online_features_response) = \
            _prepare_entities_to_read_from_online_store(registry=registry, project=project, features=features,
                                                        entity_values=entity_rows,
                                                        full_feature_names=full_feature_names,
                                                        native_entity_values=True)
        self._check_versioned_read_support(grouped_refs)
        _track_read = METRICS.online_features
        if _track_read:
            _read_start = time.monotonic()
        # precompute_online feature services: not in this benchmark's registry
        self._read_features_per_fv(grouped_refs, join_key_values, entity_name_to_join_key_map,
                                   online_features_response, full_feature_names,
                                   include_feature_view_version_metadata)
        feature_types = self._build_feature_types(grouped_refs)
        _drop_unneeded_columns(online_features_response, requested_result_row_names)
        return OnlineResponse(online_features_response, feature_types=feature_types)

    def _check_versioned_read_support(self, grouped_refs):
        return  # SqliteOnlineStore supports versioned reads

    def _read_features_per_fv(self, grouped_refs, join_key_values, entity_name_to_join_key_map,
                              online_features_response, full_feature_names, include_feature_view_version_metadata):
        for table, requested_features in grouped_refs:
            table_entity_values, idxs, output_len = _get_unique_entities(table, join_key_values,
                                                                         entity_name_to_join_key_map)
            entity_key_protos = _get_entity_key_protos(table_entity_values)
            read_rows = self.online_read(table=table, entity_keys=entity_key_protos,
                                         requested_features=requested_features)
            _populate_response_from_feature_data(requested_features, read_rows, idxs, online_features_response,
                                                 full_feature_names, table, output_len,
                                                 include_feature_view_version_metadata)

    @staticmethod
    def _build_feature_types(grouped_refs):
        feature_types = {}
        for table, requested_features in grouped_refs:
            table_name = table.projection.name_to_use()
            for field in table.features:
                if field.name in requested_features:
                    vtype = field.dtype.to_value_type()
                    feature_types[field.name] = vtype
                    feature_types[f"{table_name}__{field.name}"] = vtype
        return feature_types


class OnlineResponse:
    def __init__(self, online_response_proto, feature_types=None):
        self.proto = online_response_proto
        self._feature_types = feature_types or {}
        for idx, val in enumerate(self.proto.metadata.feature_names.val):
            if val == DUMMY_ENTITY_ID:
                del self.proto.metadata.feature_names.val[idx]
                del self.proto.results[idx]
                break


class _MetricsFlags:  # feast/metrics.py: everything off unless `feast serve --metrics`
    request = online_features = push = audit_logging = False


METRICS = _MetricsFlags()

# =============================================================================
# feast/utils.py
# =============================================================================


def _parse_feature_ref(ref: str) -> Tuple[str, Optional[int], str]:
    import re
    colon_idx = ref.find(":")
    if colon_idx < 0:
        raise ValueError(f"Invalid feature reference '{ref}'. Expected format: '<feature_view>:<feature>' "
                         f"or '<feature_view>@<version>:<feature>'")
    fv_part = ref[:colon_idx]
    feature_name = ref[colon_idx + 1:]
    at_idx = fv_part.find("@")
    if at_idx < 0:
        return (fv_part, None, feature_name)
    fv_name = fv_part[:at_idx]
    version_str = fv_part[at_idx + 1:]
    if not version_str or version_str.lower() == "latest":
        return (fv_name, None, feature_name)
    match = re.match(r"^[vV](\d+)$", version_str)
    if not match:
        return (fv_part, None, feature_name)
    return (fv_name, int(match.group(1)), feature_name)


def _get_features(registry, project, features, allow_cache=False) -> List[str]:
    _features = features
    if not _features:
        raise ValueError("No features specified for retrieval")
    _feature_refs = []
    if isinstance(_features, FeatureService):
        feature_service_from_registry = registry.get_feature_service(_features.name, project, allow_cache)
        for projection in feature_service_from_registry.feature_view_projections:
            _feature_refs.extend([f"{projection.name_to_use()}:{f.name}" for f in projection.features])
    else:
        assert isinstance(_features, list)
        _feature_refs = _features
    return _feature_refs


def _get_feature_views_to_use(registry, project, features, allow_cache=False, hide_dummy_entity=True):
    import copy
    if isinstance(features, FeatureService):
        feature_views = [(projection.name, None, projection) for projection in features.feature_view_projections]
    else:
        assert features is not None
        parsed = []
        seen = set()
        for feature in features:
            fv_name, version_num, _ = _parse_feature_ref(feature)
            key = (fv_name, version_num)
            if key not in seen:
                seen.add(key)
                parsed.append((fv_name, version_num, None))
        feature_views = parsed

    fvs_to_use, od_fvs_to_use = [], []
    fvs_by_projection_key = {}

    def _append_or_merge_source_fv(fv_with_projection):
        projection_key = fv_with_projection.projection.name_to_use()
        existing = fvs_by_projection_key.get(projection_key)
        if existing is None:
            fvs_by_projection_key[projection_key] = fv_with_projection
            fvs_to_use.append(fv_with_projection)
        else:
            existing_names = {f.name for f in existing.projection.features}
            existing.projection.features = list(existing.projection.features) + [
                f for f in fv_with_projection.projection.features if f.name not in existing_names]

    for name, version_num, projection in feature_views:
        if version_num is not None:
            if not getattr(registry, "enable_online_versioning", False):
                raise ValueError(
                    f"Version-qualified ref '{name}@v{version_num}' not supported: "
                    f"online versioning is disabled. Set 'enable_online_feature_view_versioning: true' "
                    f"under 'registry' in feature_store.yaml.")
        fv = registry.get_any_feature_view(name, project, allow_cache)
        if hasattr(fv, "enabled") and not fv.enabled:
            raise ValueError(f"Feature view '{name}' is disabled and cannot serve features. "
                             f"Enable it with `feast feature-views enable {name}` or set enabled=True.")
        if fv.state not in (0, 4):  # STATE_UNSPECIFIED, AVAILABLE_ONLINE
            raise ValueError(f"Feature view '{name}' is in state '{Registry_pb2.FeatureViewState.Name(fv.state)}' "
                             f"and cannot serve features. Only AVAILABLE_ONLINE feature views can serve.")
        if hide_dummy_entity and fv.entities and fv.entities[0] == DUMMY_ENTITY_NAME:
            fv.entities = []
            fv.entity_columns = []
        if projection:
            fv = fv.with_projection(copy.copy(projection))
        _append_or_merge_source_fv(fv)
    return (fvs_to_use, od_fvs_to_use)


def _get_entity_maps(registry, project, feature_views):
    entities = registry.list_entities(project, allow_cache=True)
    entity_by_name = {entity.name: entity for entity in entities}
    entity_name_to_join_key_map: Dict[str, str] = {}
    entity_type_map: Dict[str, ValueType] = {}
    for entity in entities:
        entity_name_to_join_key_map[entity.name] = entity.join_key
    for feature_view in feature_views:
        for entity_name in feature_view.entities:
            entity = entity_by_name.get(entity_name)
            if entity is None:
                raise EntityNotFoundException(entity_name, project=project)
            entity_name = feature_view.projection.join_key_map.get(entity.join_key, entity.name)
            join_key = feature_view.projection.join_key_map.get(entity.join_key, entity.join_key)
            entity_name_to_join_key_map[entity_name] = join_key
        for entity_column in feature_view.entity_columns:
            dtype = entity_column.dtype.to_value_type()
            entity_join_key_column_name = feature_view.projection.join_key_map.get(entity_column.name,
                                                                                   entity_column.name)
            entity_type_map[entity_join_key_column_name] = dtype
    return (entity_name_to_join_key_map, entity_type_map, set(entity_name_to_join_key_map.values()))


def _validate_entity_values(join_key_values):
    set_of_row_lengths = {len(v) for v in join_key_values.values()}
    if len(set_of_row_lengths) > 1:
        raise ValueError("All entity rows must have the same columns.")
    return set_of_row_lengths.pop()


def _validate_feature_refs(feature_refs: List[str], full_feature_names: bool = False):
    collided_feature_refs = []
    if full_feature_names:
        collided_feature_refs = [ref for ref, occurrences in Counter(feature_refs).items() if occurrences > 1]
    else:
        feature_names = [_parse_feature_ref(ref)[2] for ref in feature_refs]
        collided_feature_names = [ref for ref, occurrences in Counter(feature_names).items() if occurrences > 1]
        for feature_name in collided_feature_names:
            collided_feature_refs.extend([ref for ref in feature_refs if ref.endswith(":" + feature_name)])
    if len(collided_feature_refs) > 0:
        raise FeatureNameCollisionError(collided_feature_refs, full_feature_names)


def _group_feature_refs(features, all_feature_views, all_on_demand_feature_views):
    view_index = {view.projection.name_to_use(): view for view in all_feature_views}
    on_demand_view_index = {}
    views_features = defaultdict(set)
    for ref in features:
        fv_name, version_num, feat_name = _parse_feature_ref(ref)
        view_name = f"{fv_name}@v{version_num}" if version_num is not None else fv_name
        if view_name in view_index:
            view_index[view_name].projection.get_feature(feat_name)  # For validation
            views_features[view_name].add(feat_name)
        elif view_name in on_demand_view_index:
            raise NotImplementedError("on-demand feature views: not carried over to the baseline")
        else:
            raise FeatureViewNotFoundException(view_name)
    fvs_result = []
    for view_name, feature_names in views_features.items():
        fvs_result.append((view_index[view_name], list(feature_names)))
    return fvs_result, []


def _get_online_request_context(registry, project, features, full_feature_names):
    _feature_refs = _get_features(registry, project, features, allow_cache=True)
    requested_feature_views, requested_on_demand_feature_views = _get_feature_views_to_use(
        registry=registry, project=project, features=features, allow_cache=True, hide_dummy_entity=False)
    entity_name_to_join_key_map, entity_type_map, join_keys_set = _get_entity_maps(registry, project,
                                                                                   requested_feature_views)
    _validate_feature_refs(_feature_refs, full_feature_names)
    grouped_refs, grouped_odfv_refs = _group_feature_refs(_feature_refs, requested_feature_views,
                                                          requested_on_demand_feature_views)
    requested_result_row_names = set()
    for feat_ref in _feature_refs:
        fv_name, version_num, feature_name = _parse_feature_ref(feat_ref)
        if full_feature_names:
            if version_num is not None:
                requested_result_row_names.add(f"{fv_name}@v{version_num}__{feature_name}")
            else:
                requested_result_row_names.add(f"{fv_name}__{feature_name}")
        else:
            requested_result_row_names.add(feature_name)
    feature_views = list(view for view, _ in grouped_refs)
    needed_request_data = set()
    entityless_case = DUMMY_ENTITY_NAME in [entity_name for feature_view in feature_views
                                            for entity_name in (feature_view.entities or [])]
    return (_feature_refs, requested_on_demand_feature_views, entity_name_to_join_key_map, entity_type_map,
            join_keys_set, grouped_refs, requested_result_row_names, needed_request_data, entityless_case)


_feature_resolution_cache: Dict[tuple, tuple] = {}
_feature_resolution_cache_lock = threading.Lock()
_feature_resolution_registry_ts: Optional[datetime] = None


def _get_cached_request_context(registry, project, features, full_feature_names):
    global _feature_resolution_cache, _feature_resolution_registry_ts
    registry_ts = getattr(registry, "cached_registry_proto_created", None)
    if isinstance(features, FeatureService):
        features_key: tuple = ("__fs__", features.name)
    else:
        features_key = tuple(features)
    cache_key = (features_key, project, full_feature_names)
    is_cache_valid = getattr(registry, "is_cache_valid", None)
    registry_cache_valid = is_cache_valid() if callable(is_cache_valid) else False
    if registry_ts is not None and registry_cache_valid:
        with _feature_resolution_cache_lock:
            if registry_ts != _feature_resolution_registry_ts:
                _feature_resolution_cache.clear()
                _feature_resolution_registry_ts = registry_ts
            else:
                cached = _feature_resolution_cache.get(cache_key)
                if cached is not None:
                    return cached
    ctx = _get_online_request_context(registry, project, features, full_feature_names)
    (feature_refs, requested_on_demand_feature_views, entity_name_to_join_key_map, entity_type_map, join_keys_set,
     grouped_refs, requested_result_row_names, needed_request_data, entityless_case) = ctx
    result = (feature_refs, requested_on_demand_feature_views, entity_name_to_join_key_map, entity_type_map,
              join_keys_set, grouped_refs, frozenset(requested_result_row_names), needed_request_data,
              entityless_case)
    registry_ts_after = getattr(registry, "cached_registry_proto_created", None)
    if registry_ts_after is not None:
        with _feature_resolution_cache_lock:
            if registry_ts_after != _feature_resolution_registry_ts:
                _feature_resolution_cache.clear()
                _feature_resolution_registry_ts = registry_ts_after
            _feature_resolution_cache[cache_key] = result
    return result


def _prepare_entities_to_read_from_online_store(registry, project, features, entity_values,
                                                full_feature_names=False, native_entity_values=True):
    (feature_refs, requested_on_demand_feature_views, entity_name_to_join_key_map, entity_type_map, join_keys_set,
     grouped_refs, requested_result_row_names_frozen, needed_request_data, entityless_case) = \
        _get_cached_request_context(registry, project, features, full_feature_names)
    grouped_refs = [(feature_view, list(requested_features)) for feature_view, requested_features in grouped_refs]
    requested_result_row_names = set(requested_result_row_names_frozen)
    entity_value_lists = {k: list(v) if isinstance(v, Sequence) else list(v.val) for k, v in entity_values.items()}
    if native_entity_values:
        entity_proto_values = {k: python_values_to_proto_values(v, entity_type_map.get(k, ValueType.UNKNOWN))
                               for k, v in entity_value_lists.items()}
    else:
        entity_proto_values = entity_value_lists
    num_rows = _validate_entity_values(entity_proto_values)
    join_key_values: Dict[str, List[ValueProto]] = {}
    request_data_features: Dict[str, List[ValueProto]] = {}
    for join_key_or_entity_name, values in entity_proto_values.items():
        if join_key_or_entity_name in needed_request_data:
            request_data_features[join_key_or_entity_name] = values
        elif join_key_or_entity_name in join_keys_set:
            join_key = join_key_or_entity_name
            requested_result_row_names.add(join_key)
            join_key_values[join_key] = values
        elif join_key_or_entity_name in entity_name_to_join_key_map:
            join_key = entity_name_to_join_key_map[join_key_or_entity_name]
            warnings.warn("Using entity name is deprecated. Use join_key instead.")
            requested_result_row_names.add(join_key)
            join_key_values[join_key] = values
        else:
            continue
    if len(needed_request_data) != len(request_data_features.keys()):
        raise RequestDataNotFoundInEntityRowsException(
            feature_names=[x for x in needed_request_data if x not in request_data_features])
    online_features_response = GetOnlineFeaturesResponse(results=[])
    _populate_result_rows_from_columnar(online_features_response=online_features_response,
                                        data=dict(**join_key_values, **request_data_features))
    if entityless_case:
        join_key_values[DUMMY_ENTITY_ID] = python_values_to_proto_values([DUMMY_ENTITY_VAL] * num_rows,
                                                                         ValueType.STRING)
    return (join_key_values, grouped_refs, entity_name_to_join_key_map, requested_on_demand_feature_views,
            feature_refs, requested_result_row_names, online_features_response)


def _populate_result_rows_from_columnar(online_features_response, data):
    timestamp = Timestamp()
    for feature_name, feature_values in data.items():
        online_features_response.metadata.feature_names.val.append(feature_name)
        online_features_response.results.append(
            GetOnlineFeaturesResponse.FeatureVector(values=feature_values,
                                                    statuses=[FieldStatus.PRESENT] * len(feature_values),
                                                    event_timestamps=[timestamp] * len(feature_values)))


def _get_table_entity_values(table, entity_name_to_join_key_map, join_key_proto_values):
    table_join_keys = [entity_name_to_join_key_map[entity_name] for entity_name in table.entities]
    alias_to_join_key_map = {v: k for k, v in table.projection.join_key_map.items()}
    entity_values = {alias_to_join_key_map.get(k, k): v for k, v in join_key_proto_values.items()
                     if alias_to_join_key_map.get(k, k) in table_join_keys}
    return entity_values


def _get_unique_entities(table, join_key_values, entity_name_to_join_key_map):
    table_entity_values = _get_table_entity_values(table, entity_name_to_join_key_map, join_key_values)
    expected_keys = set(entity_name_to_join_key_map.values())
    expected_keys.discard("__dummy_id")
    missing_keys = sorted(list(set([key for key in expected_keys if key not in table_entity_values])))
    empty_keys = sorted(list(set([key for key in expected_keys if not table_entity_values.get(key)])))
    if missing_keys or empty_keys:
        if not any(table_entity_values.values()):
            raise KeyError(f"Missing join key values for keys: {missing_keys}. "
                           f"No values provided for keys: {empty_keys}. "
                           f"Provided join_key_values: {list(join_key_values.keys())}")
    keys = list(table_entity_values.keys())
    rowise = list(enumerate(zip(*table_entity_values.values())))
    if not rowise:
        return (), (), 0
    rowise.sort(key=lambda row: tuple(getattr(x, x.WhichOneof("val")) for x in row[1]))
    groups = [(dict(zip(keys, key_tuple)), [idx for idx, _ in group])
              for key_tuple, group in itertools.groupby(rowise, key=lambda row: row[1])]
    if not groups:
        return (), (), 0
    unique_entities, indexes = tuple(zip(*groups))
    return unique_entities, indexes, len(rowise)


def _get_entity_key_protos(entity_rows):
    return [EntityKeyProto(join_keys=row.keys(), entity_values=row.values()) for row in entity_rows]


def _populate_response_from_feature_data(requested_features, read_rows, indexes, online_features_response,
                                         full_feature_names, table, output_len,
                                         include_feature_view_version_metadata=False):
    n_features = len(requested_features)
    table_name = table.projection.name_to_use()
    clean_table_name = table.projection.name_alias or table.projection.name
    feature_refs = [f"{table_name}__{fn}" if full_feature_names else fn for fn in requested_features]
    online_features_response.metadata.feature_names.val.extend(feature_refs)
    if include_feature_view_version_metadata:
        existing_names = [fvm.name for fvm in online_features_response.metadata.feature_view_metadata]
        if clean_table_name not in existing_names:
            fv_metadata = online_features_response.metadata.feature_view_metadata.add()
            fv_metadata.name = clean_table_name
            fv_metadata.version = getattr(table, "current_version_number", 0) or 0
    null_value = ValueProto()
    null_ts = Timestamp()
    PRESENT = FieldStatus.PRESENT
    NOT_FOUND = FieldStatus.NOT_FOUND
    row_ts_protos = []
    for row_ts, _ in read_rows:
        ts = Timestamp()
        if row_ts is not None:
            ts.FromDatetime(row_ts)
        row_ts_protos.append(ts)
    ts_template = [null_ts] * output_len
    indexes_tuple = tuple(indexes)
    for row_idx, destinations in enumerate(indexes_tuple):
        ts = row_ts_protos[row_idx]
        for out_idx in destinations:
            ts_template[out_idx] = ts
    feat_values = [[null_value] * output_len for _ in range(n_features)]
    feat_statuses = [[NOT_FOUND] * output_len for _ in range(n_features)]
    feat_idx_map = {name: i for i, name in enumerate(requested_features)}
    for row_idx, destinations in enumerate(indexes_tuple):
        _, feature_data = read_rows[row_idx]
        if feature_data is None:
            continue
        for feat_name, feat_val in feature_data.items():
            f_idx = feat_idx_map.get(feat_name)
            if f_idx is not None:
                for out_idx in destinations:
                    feat_values[f_idx][out_idx] = feat_val
                    feat_statuses[f_idx][out_idx] = PRESENT
    if METRICS.online_features:  # track_feature_statuses
        pass
    for f_idx in range(n_features):
        online_features_response.results.append(
            GetOnlineFeaturesResponse.FeatureVector(values=feat_values[f_idx], statuses=feat_statuses[f_idx],
                                                    event_timestamps=list(ts_template)))


def _drop_unneeded_columns(online_features_response, requested_result_row_names):
    unneeded_feature_indices = [idx for idx, val in enumerate(online_features_response.metadata.feature_names.val)
                                if val not in requested_result_row_names]
    for idx in reversed(unneeded_feature_indices):
        del online_features_response.metadata.feature_names.val[idx]
        del online_features_response.results[idx]


def _coerce_datetime(ts):
    if isinstance(ts, pd.Timestamp):
        return ts.to_pydatetime()
    return ts


def _columns_to_proto_values(table, columns, allow_missing=False):
    result = {}
    for column, value_type in columns:
        if column in table:
            result[column] = python_values_to_proto_values(table[column], value_type)
        elif not allow_missing:
            raise ValueError(f"Column {column} not found in table")
    return result


def _build_entity_keys(num_rows, join_keys, proto_values):
    return [EntityKeyProto(join_keys=list(join_keys.keys()),
                           entity_values=[proto_values[k][idx] for k in join_keys if k in proto_values])
            for idx in range(num_rows)]


def _convert_arrow_fv_to_proto(table, feature_view, join_keys):
    # `table`: column name -> numpy array, what Feast's RecordBatch.column(c).to_numpy() gives
    if feature_view.batch_source is None:
        raise ValueError(f"Feature view '{feature_view.name}' has no batch_source and cannot be converted to proto.")
    columns = [(field.name, field.dtype.to_value_type()) for field in feature_view.features] + list(join_keys.items())
    proto_values_by_column = _columns_to_proto_values(table, columns, allow_missing=False)
    num_rows = len(next(iter(table.values()))) if table else 0
    entity_keys = _build_entity_keys(num_rows, join_keys, proto_values_by_column)
    feature_dict = {feature.name: proto_values_by_column[feature.name] for feature in feature_view.features}
    features = [dict(zip(feature_dict, vars)) for vars in zip(*feature_dict.values())]
    event_timestamps = [_coerce_datetime(val) for val in pd.to_datetime(table[feature_view.batch_source.timestamp_field])]
    if feature_view.batch_source.created_timestamp_column:
        created_timestamps = [_coerce_datetime(val) for val in
                              pd.to_datetime(table[feature_view.batch_source.created_timestamp_column])]
    else:
        created_timestamps = [None] * num_rows
    return list(zip(entity_keys, features, event_timestamps, created_timestamps))


# =============================================================================
# feature_server_utils.py: convert_response_to_dict
# =============================================================================

_STATUS_NAMES: Dict[int, str] = {0: "INVALID", 1: "PRESENT", 2: "NULL_VALUE", 3: "NOT_FOUND", 4: "OUTSIDE_MAX_AGE"}


def convert_response_to_dict(response) -> Dict[str, Any]:
    result: Dict[str, Any] = {
        "results": [
            {
                "values": [_value_to_native(v) for v in feature_vector.values],
                "statuses": [_STATUS_NAMES.get(s, "INVALID") for s in feature_vector.statuses],
                **({"event_timestamps": [_timestamp_to_str(ts) for ts in feature_vector.event_timestamps]}
                   if feature_vector.event_timestamps else {}),
            }
            for feature_vector in response.results
        ]
    }
    if response.HasField("metadata"):
        result["metadata"] = _metadata_to_dict(response.metadata)
    if response.status:
        result["status"] = response.status
    return result


def _value_to_native(v):
    which = v.WhichOneof("val")
    if which is None or which == "null_val":
        return None
    elif which == "bytes_val":
        return base64.b64encode(v.bytes_val).decode("ascii")
    elif which in ("list_val", "set_val"):
        return [_value_to_native(nested) for nested in getattr(v, which).val]
    elif which in ("map_val", "struct_val"):
        return {k: _value_to_native(vv) for k, vv in getattr(v, which).val.items()}
    elif which in ("map_list_val", "struct_list_val"):
        return [{k: _value_to_native(vv) for k, vv in m.val.items()} for m in getattr(v, which).val]
    elif which == "scalar_map_val":
        logger.warning("scalar_map_val is not yet supported by convert_response_to_dict; value will be None")
        return None
    elif which == "zoned_timestamp_val":
        z = v.zoned_timestamp_val
        if z.unix_timestamp == NULL_TIMESTAMP_INT_VALUE:
            return None
        return datetime.fromtimestamp(z.unix_timestamp, tz=_zone_from_name(z.zone)).isoformat()
    elif which in ("bytes_list_val", "bytes_set_val"):
        return [base64.b64encode(b).decode("ascii") for b in getattr(v, which).val]
    elif "_list_" in which or "_set_" in which:
        return list(getattr(v, which).val)
    else:
        return getattr(v, which)


def _zone_from_name(zone: str):  # type_map.py
    if not zone:
        return timezone.utc
    try:
        from zoneinfo import ZoneInfo
        return ZoneInfo(zone)
    except Exception:
        offset = _fixed_offset_from_name(zone)
        if offset is not None:
            return offset
        logger.warning("Could not resolve zone %r; decoding as UTC", zone)
        return timezone.utc


def _fixed_offset_from_name(zone: str):  # type_map.py
    import re
    text = zone.strip()
    if text in ("UTC", "GMT"):
        return timezone.utc
    match = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{2}):?(\d{2})", text)
    if not match:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if sign == "-":
        delta = -delta
    return timezone(delta)


def _timestamp_to_str(ts) -> str:
    if ts.seconds == 0 and ts.nanos == 0:
        return "1970-01-01T00:00:00Z"
    dt = datetime.fromtimestamp(ts.seconds, tz=timezone.utc)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    nanos = ts.nanos
    if nanos == 0:
        return base + "Z"
    elif nanos % 1_000_000 == 0:
        return base + ".%03dZ" % (nanos // 1_000_000)
    elif nanos % 1_000 == 0:
        return base + ".%06dZ" % (nanos // 1_000)
    else:
        return base + ".%09dZ" % nanos


def _metadata_to_dict(metadata) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    if metadata.HasField("feature_names"):
        result["feature_names"] = list(metadata.feature_names.val)
    return result


# =============================================================================
# feature_store.py / passthrough_provider.py: FeatureStore, its push path
# =============================================================================


class FeatureStore:
    def __init__(self, registry_path, db_path, project):
        self.project = project
        self.registry = Registry(registry_path, project)
        self.online_store = SqliteOnlineStore(db_path, project)

    def refresh_registry(self):
        self.registry.refresh(self.project)

    def list_feature_views(self, allow_cache=False):
        return self.registry.list_feature_views(self.project, allow_cache=allow_cache)

    def list_stream_feature_views(self, allow_cache=False):
        return self.registry.list_stream_feature_views(self.project, allow_cache=allow_cache)

    def list_all_feature_views(self, allow_cache=False):
        return self.list_feature_views(allow_cache) + self.list_stream_feature_views(allow_cache)

    def get_online_features(self, features, entity_rows, full_feature_names=False,
                            include_feature_view_version_metadata=False):
        return self.online_store.get_online_features(
            features=features, entity_rows=entity_rows, registry=self.registry, project=self.project,
            full_feature_names=full_feature_names,
            include_feature_view_version_metadata=include_feature_view_version_metadata)

    def _fvs_for_push_source_or_raise(self, push_source_name, allow_cache):
        all_fvs = list(self.list_feature_views(allow_cache=allow_cache))
        all_fvs += self.list_stream_feature_views(allow_cache=allow_cache)
        fvs_with_push_sources = {fv for fv in all_fvs if fv.stream_source is not None
                                 and fv.stream_source.is_push_source and fv.stream_source.name == push_source_name}
        # label views: none in this benchmark's registry
        if not fvs_with_push_sources:
            raise PushSourceNotFoundException(push_source_name)
        return fvs_with_push_sources

    def push(self, push_source_name, df, allow_registry_cache=True, to="online", transform_on_write=True):
        pushed_fv_names = []
        for fv in self._fvs_for_push_source_or_raise(push_source_name, allow_registry_cache):
            if to in ("online", "online_and_offline"):
                self.write_to_online_store(fv.name, df, allow_registry_cache=allow_registry_cache,
                                           transform_on_write=transform_on_write)
                pushed_fv_names.append(fv.name)
            if to in ("offline", "online_and_offline"):
                raise NotImplementedError("offline stores: not carried over to the baseline")
        if pushed_fv_names:
            self._precompute_for_push(pushed_fv_names[0], df)

    def _precompute_for_push(self, feature_view_name, df):
        try:
            services = self.registry.list_feature_services(self.project)  # allow_cache=False: the file again
        except Exception:
            return
        affected = [svc for svc in services if svc.precompute_online
                    and any(p.name == feature_view_name for p in svc.feature_view_projections)]
        if affected:
            raise NotImplementedError("precompute_online feature services: not carried over to the baseline")

    def write_to_online_store(self, feature_view_name, df=None, inputs=None, allow_registry_cache=True,
                              transform_on_write=True):
        feature_view_dict = {fv.name: fv for fv in self.list_all_feature_views(allow_registry_cache)}
        try:
            feature_view = feature_view_dict[feature_view_name]
        except KeyError:
            raise FeatureViewNotFoundException(feature_view_name, self.project)
        if df is not None:
            if df.empty:
                warnings.warn("Cannot write empty dataframe to online store")
                return
            feature_column_names = [f.name for f in feature_view.features]
            if feature_column_names:
                feature_df = df[feature_column_names]
                if feature_df.empty or feature_df.isnull().all().all():
                    warnings.warn("Cannot write dataframe with empty feature columns to online store")
                    return
        self.ingest_df(feature_view, df)

    # passthrough_provider.py
    def ingest_df(self, feature_view, df, field_mapping=None):
        rows_to_write = self._prep_rows_to_write_for_ingestion(feature_view=feature_view, df=df,
                                                               field_mapping=field_mapping)
        self.online_store.online_write_batch(feature_view, rows_to_write, progress=None)

    @staticmethod
    def _prep_rows_to_write_for_ingestion(feature_view, df, field_mapping=None):
        # Feast: table = pa.Table.from_pandas(df), then column(c).to_numpy(zero_copy_only=False)
        table = {c: df[c].to_numpy() for c in df.columns}
        join_keys = {entity.name: entity.dtype.to_value_type() for entity in feature_view.entity_columns}
        if feature_view.batch_source is not None and feature_view.batch_source.field_mapping is not None:
            mapping = feature_view.batch_source.field_mapping
            table = {mapping.get(c, c): v for c, v in table.items()}  # _run_pyarrow_field_mapping
        return _convert_arrow_fv_to_proto(table, feature_view, join_keys)


# =============================================================================
# feature_server.py
# =============================================================================


class PushFeaturesRequest(BaseModel):
    push_source_name: str
    df: dict
    allow_registry_cache: bool = True
    to: str = "online"
    transform_on_write: bool = True


class WriteToFeatureStoreRequest(BaseModel):
    feature_view_name: str
    df: dict
    allow_registry_cache: bool = True
    transform_on_write: bool = True


class GetOnlineFeaturesRequest(BaseModel):
    entities: Dict[str, List[Any]]
    feature_service: Optional[str] = None
    features: List[str] = []
    full_feature_names: bool = False
    include_feature_view_version_metadata: bool = False


class FeatureVectorResponse(BaseModel):
    values: List[Any] = []
    statuses: List[str] = []
    event_timestamps: List[str] = []


class OnlineFeaturesMetadataResponse(BaseModel):
    feature_names: List[str] = []

    @validator("feature_names", pre=True)  # pydantic 1: Feast's field_validator(mode="before")
    def _unwrap_feature_list(cls, v: Any) -> Any:
        if isinstance(v, dict) and "val" in v:
            return v["val"]
        return v


class OnlineFeaturesResponse(BaseModel):
    metadata: Optional[OnlineFeaturesMetadataResponse] = None
    results: List[FeatureVectorResponse] = []
    status: Optional[bool] = None


async def inject_user_details(request: Request):
    # permissions/server/rest.py with auth `no_auth`: no security manager, nothing to extract
    sm = None
    current_user = None
    project_token = None
    try:
        yield current_user
    finally:
        if sm is not None and project_token is not None:
            pass


def _parse_feature_info(features):
    if isinstance(features, FeatureService):
        projections = features.feature_view_projections
        fv_names = [p.name for p in projections]
        feat_count = sum(len(p.features) for p in projections)
    elif isinstance(features, list):
        feat_count = len(features)
        fv_names = list({_parse_feature_ref(ref)[0] for ref in features if ":" in ref})
    else:
        fv_names = []
        feat_count = 0
    return fv_names, feat_count


def _resolve_feature_counts(features):
    fv_names, feat_count = _parse_feature_info(features)
    return str(feat_count), str(len(fv_names))


def _emit_online_audit(request, features, entity_count, status, latency_ms):
    try:
        requestor_id = "anonymous"  # no security manager
        fv_names, feat_count = _parse_feature_info(features)
        if METRICS.audit_logging:  # feast_metrics.emit_online_audit_log
            pass
    except Exception:
        logger.warning("Failed to emit online audit log", exc_info=True)


class _RequestMetricsContext:
    def __init__(self, feature_count="", feature_view_count=""):
        self.feature_count = feature_count
        self.feature_view_count = feature_view_count


from contextlib import contextmanager  # noqa: E402


@contextmanager
def track_request_latency(endpoint, feature_count="", feature_view_count=""):
    ctx = _RequestMetricsContext(feature_count, feature_view_count)
    if not METRICS.request:
        yield ctx
        return


async def _get_features_for_request(request, store):  # feature_server.py: _get_features
    if request.feature_service:
        feature_service = await run_in_threadpool(store.registry.get_feature_service, request.feature_service,
                                                  store.project, allow_cache=True)
        features = feature_service
    else:
        features = request.features
    return features


def get_app(store, registry_ttl_sec=60):
    shutting_down = False
    active_timer = None

    def stop_refresh():
        nonlocal shutting_down
        shutting_down = True
        if active_timer:
            active_timer.cancel()

    def async_refresh():
        if shutting_down:
            return
        store.refresh_registry()
        if registry_ttl_sec:
            nonlocal active_timer
            active_timer = threading.Timer(registry_ttl_sec, async_refresh)
            active_timer.daemon = True
            active_timer.start()

    # Feast passes a `lifespan` context manager (refresh at start, stop at exit); FastAPI 0.92
    # has no `lifespan` argument, so the same two steps are start-up and shut-down events.
    app = FastAPI(on_startup=[async_refresh], on_shutdown=[stop_refresh])

    @app.post("/get-online-features", dependencies=[Depends(inject_user_details)],
              response_model=OnlineFeaturesResponse)
    async def get_online_features(request: GetOnlineFeaturesRequest) -> Any:
        with track_request_latency("/get-online-features") as metrics_ctx:
            features = await _get_features_for_request(request, store)
            feat_count, fv_count = _resolve_feature_counts(features)
            metrics_ctx.feature_count = feat_count
            metrics_ctx.feature_view_count = fv_count
            entity_count = len(next(iter(request.entities.values()), []))
            read_params = dict(features=features, entity_rows=request.entities,
                               full_feature_names=request.full_feature_names,
                               include_feature_view_version_metadata=request.include_feature_view_version_metadata)
            audit_start_ms = time.monotonic() * 1000
            audit_status = "success"
            try:
                # SQLite: async_supported.online.read is False
                response = await run_in_threadpool(lambda: store.get_online_features(**read_params))
            except Exception:
                audit_status = "error"
                raise
            finally:
                audit_latency_ms = time.monotonic() * 1000 - audit_start_ms
                _emit_online_audit(request, features, entity_count, audit_status, audit_latency_ms)
            response_dict = await run_in_threadpool(convert_response_to_dict, response.proto)
            return JSONResponse(content=response_dict)

    def _not_carried_over(path):
        async def handler():
            raise FeastError(f"{path} is not carried over to the benchmark baseline")
        return handler

    # The rest of Feast's route table, in its order, so that routing costs what it costs there.
    app.post("/search")(_not_carried_over("/search"))
    app.post("/retrieve-online-documents", include_in_schema=False)(_not_carried_over("/retrieve-online-documents"))
    app.get("/v1/vector_stores")(_not_carried_over("/v1/vector_stores"))
    app.get("/v1/vector_stores/{vector_store_id}")(_not_carried_over("/v1/vector_stores/{id}"))
    app.post("/v1/vector_stores/{vector_store_id}/search")(_not_carried_over("/v1/vector_stores/{id}/search"))

    @app.post("/push", dependencies=[Depends(inject_user_details)])
    async def push(request: PushFeaturesRequest) -> Response:
        with track_request_latency("/push"):
            df = pd.DataFrame(request.df)
            if request.to == "offline":
                to = "offline"
            elif request.to == "online":
                to = "online"
            elif request.to == "online_and_offline":
                to = "online_and_offline"
            else:
                raise ValueError(f"{request.to} is not a supported push format. Please specify one of these "
                                 f"['online', 'offline', 'online_and_offline'].")
            all_fvs = store.list_feature_views(allow_cache=request.allow_registry_cache) + \
                store.list_stream_feature_views(allow_cache=request.allow_registry_cache)
            fvs_with_push_sources = {fv for fv in all_fvs if fv.stream_source is not None
                                     and fv.stream_source.is_push_source
                                     and fv.stream_source.name == request.push_source_name}
            for feature_view in fvs_with_push_sources:
                pass  # assert_permissions: no security manager
            # SQLite: async_supported.online.write is False; no offline write batcher
            await run_in_threadpool(lambda: store.push(push_source_name=request.push_source_name, df=df,
                                                       allow_registry_cache=request.allow_registry_cache, to=to,
                                                       transform_on_write=request.transform_on_write))
            return Response(status_code=status.HTTP_200_OK)

    app.post("/write-to-online-store", dependencies=[Depends(inject_user_details)])(
        _not_carried_over("/write-to-online-store"))

    @app.get("/health")
    async def health():
        try:
            store.registry._get_registry_proto(store.project, allow_cache=True)  # list_projects
            return Response(status_code=status.HTTP_200_OK)
        except Exception:
            return Response(status_code=status.HTTP_503_SERVICE_UNAVAILABLE)

    app.post("/chat")(_not_carried_over("/chat"))
    app.get("/chat")(_not_carried_over("/chat"))
    app.post("/materialize", dependencies=[Depends(inject_user_details)])(_not_carried_over("/materialize"))
    app.post("/materialize-incremental", dependencies=[Depends(inject_user_details)])(
        _not_carried_over("/materialize-incremental"))

    @app.exception_handler(Exception)
    async def rest_exception_handler(request: Request, exc: Exception):
        logger.exception(traceback.format_exc())
        if isinstance(exc, FeastError):
            return JSONResponse(status_code=exc.http_status_code(), content=exc.to_error_detail())
        else:
            return JSONResponse(status_code=500, content=str(exc))

    return app


def make_app():
    store = FeatureStore(ARGS.registry, ARGS.db, ARGS.project)
    return get_app(store, registry_ttl_sec=ARGS.registry_ttl_sec)


def main():
    logging.basicConfig(level=logging.INFO)  # feast/cli/serve.py
    if ARGS.gunicorn:
        # feature_server.py, FeastServeApplication on Linux: gunicorn with uvicorn's worker
        import gunicorn.app.base

        class FeastServeApplication(gunicorn.app.base.BaseApplication):
            def __init__(self, app, **options):
                self._app = app
                self._options = options
                super().__init__()

            def load_config(self):
                for key, value in self._options.items():
                    if key.lower() in self.cfg.settings and value is not None:
                        self.cfg.set(key.lower(), value)
                self.cfg.set("worker_class", "uvicorn.workers.UvicornWorker")

            def load(self):
                return self._app

        FeastServeApplication(make_app(), bind=f"{ARGS.host}:{ARGS.port}",
                              accesslog=None if ARGS.no_access_log else "-", workers=1, worker_connections=1000,
                              max_requests=1000, max_requests_jitter=50, keepalive=30).run()
    else:
        import uvicorn
        uvicorn.run(make_app(), host=ARGS.host, port=ARGS.port, access_log=(not ARGS.no_access_log))


if __name__ == "__main__":
    main()
