#!/usr/bin/python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/): valid
requests of every method built with the real protobuf messages, a few near
misses, and feature_store.yaml files using every key. Run it again after a
protocol change; the fuzzers grow their own corpus from these."""
import hashlib
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
os.environ.setdefault("LARDER_TEST_BACKEND", "sqlite")
import harness  # noqa: E402
from harness import Value_pb2 as V, key, pb, row  # noqa: E402
from harness import health_pb2 as H, reflection_pb2 as R  # noqa: E402
from feast.serving import ServingService_pb2 as sv  # noqa: E402
from feast.types import Value_pb2  # noqa: E402

OUT = os.path.join(HERE, "corpus")


def save(target, data):
    folder = os.path.join(OUT, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    elif not isinstance(data, bytes):
        data = data.SerializeToString()
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def values():
    out = [V.Value(int64_val=7), V.Value(double_val=0.5), V.Value(string_val="x"), V.Value(bytes_val=b"\0\1"),
           V.Value(bool_val=True), V.Value(float_val=1.5), V.Value(int32_val=-3), V.Value(unix_timestamp_val=17),
           V.Value()]
    lists = V.Value()
    lists.int64_list_val.val.extend([1, 2, 3])
    out.append(lists)
    strs = V.Value()
    strs.string_list_val.val.extend(["a", "b"])
    out.append(strs)
    return out


# JSON bodies of the HTTP API (Feast's feature server) and near misses of the grammar.
JSON_SEEDS = [
    '{"features":["driver_stats:conv_rate"],"entities":{"driver_id":[1001,1002]},"full_feature_names":true}',
    '{"feature_service":"driver_activity","entities":{"driver_id":[1001]}}',
    '{"features":["driver_hourly_stats:conv_rate","driver_hourly_stats:acc_rate",'
    '"driver_hourly_stats:avg_daily_trips"],"entities":{"driver_id":[1001,1002,1003],"val_to_add":[1,2,3]}}',
    '{"push_source_name":"driver_stats_push_source","df":{"driver_id":[1001],'
    '"event_timestamp":["2022-05-13 10:59:42"],"created":["2022-05-13 10:59:42"],"conv_rate":[1.0],'
    '"acc_rate":[1.0],"avg_daily_trips":[1000]},"to":"online"}',
    '{\n  "feature_view_name": "driver_hourly_stats",\n  "df": {"driver_id": [1001], "conv_rate": [0.5]},\n'
    '  "allow_registry_cache": true\n}\n',
    r'["caf\u00e9","\ud83d\ude00","tab\t","quote\"","back\\slash","\/","\u0000"]',
    '[0,-0,1.5e-3,-1E+10,123456789012345678901234567890,9223372036854775807,-9223372036854775808,'
    '1e400,2.5e1,1002.0,-0.0]',
    '"caf\u00e9 \u20ac \U0001f600"',  # raw UTF-8 in the file
    '[[[[[[[[{"a":[{"b":null}]}]]]]]]]]',
    '[true,false,null,{},[],""]',
    '{"a":1,"a":2,"a":{"a":[]}}',
    '{"bytes_val":["AAEC","Zm9vYmFy","Zg==","Zh==",""]}',
    '{"features":["a",],"entities":{}}',
    '{"a":1 "b":2}',
    r'"\ud800"',
    '[01,.5,+1,NaN]',
    b'"\xc0\x80 \xed\xa0\x80"',
]


def json_seeds():
    for text in JSON_SEEDS:
        save("json", text)


HTTP_SEEDS = [
    b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /push HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
    b"4\r\n{\"a\"\r\n1;ext=1\r\n}\r\n0\r\nTrailer: x\r\n\r\n",
    b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /x?y HTTP/1.1\r\nAuthorization: Bearer abc\r\nX:  v \r\n\r\n",
    b"POST /p HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
    b"5\r\nhello\r\n0\r\n\r\n",
]


CONVERT_SEEDS = ["1001", "-7", "1.5", "1e3", '"1001"', '"AP9hYmM="', "true", "null", "[1, 2, 2, null]",
                 '[0.5, 1, "nan"]', '["a", "b", "a"]', '{"k": 1, "m": {"x": [1.5, 2]}, "s": "t"}',
                 '"{\\"a\\": [true, null]}"', "[[1, 2], [\"a\"], null, []]",
                 '[{"a": 1}, "{\\"b\\": 2}", null]', '"2024-05-01T12:00:00Z"', '"\\u00e9\\ud83d\\ude00"']


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    json_seeds()
    for seed in HTTP_SEEDS:
        save("http", seed)
    for seed in CONVERT_SEEDS:
        save("convert", seed)
    drivers = [key(driver_id=i) for i in (1001, 1002)]
    for i, v in enumerate(values()):
        save("online_write_batch", pb.OnlineWriteBatchRequest(
            feature_view="driver_hourly_stats", rows=[row(drivers[i % 2], {"conv_rate": v}, created=1700000001)]))
    save("online_write_batch", pb.OnlineWriteBatchRequest(
        feature_view="v", rows=[row(key(driver_id=1, trip="t"), {"a": V.Value(int64_val=1), "b": V.Value()})]))
    save("online_write_batch", pb.OnlineWriteBatchRequest(feature_view="v", rows=[row(key(driver_id=1), {}, ts=None)]))
    save("online_write_batch", pb.OnlineWriteBatchRequest(feature_view="missing"))
    save("online_read", pb.OnlineReadRequest(feature_view="driver_hourly_stats", entity_keys=drivers,
                                             requested_features=["conv_rate", "acc_rate"]))
    save("online_read", pb.OnlineReadRequest(feature_view="v", entity_keys=[key(s="x"), key(b=b"\xff"), key(n=1 << 40)]))
    save("online_read", pb.OnlineReadRequest(feature_view="v"))
    save("update", pb.UpdateRequest(tables_to_keep=["v", "w"], tables_to_delete=["x"]))
    save("update", pb.UpdateRequest())
    # The shapes of issue 13: the longest table names, many join keys, far timestamps.
    longest = [("v%03d" % i + "_" * 60)[:60 - len("my_project") - 1] for i in range(100)]
    save("update", pb.UpdateRequest(tables_to_keep=longest[:3], tables_to_delete=longest[3:6]))
    save("update", pb.UpdateRequest(tables_to_keep=longest))
    save("teardown", pb.TeardownRequest(tables=longest[:50] + [longest[0] + "x"]))
    many = harness.EntityKey_pb2.EntityKey()
    for i in reversed(range(1000)):
        many.join_keys.append("k%04d" % i)
        many.entity_values.add().int64_val = i
    save("online_read", pb.OnlineReadRequest(feature_view="v", entity_keys=[key(a=1), many]))
    save("online_write_batch", pb.OnlineWriteBatchRequest(feature_view="v", rows=[row(many, {"f": V.Value(int64_val=1)})]))
    far = row(key(driver_id=5), {"far": V.Value(int64_val=9999)}, ts=253402300799, created=253402300799)
    far.event_ts.nanos = 999999999
    save("online_write_batch", pb.OnlineWriteBatchRequest(feature_view="v", rows=[far]))
    save("teardown", pb.TeardownRequest(tables=["w"]))
    save("teardown", pb.TeardownRequest(tables=["v", "no_such_view"]))

    req = sv.GetOnlineFeaturesRequest(features=sv.FeatureList(val=["driver_hourly_stats:conv_rate",
                                                                    "driver_hourly_stats:avg_daily_trips"]))
    ids = req.entities["driver_id"]
    ids.val.extend([Value_pb2.Value(int64_val=1001), Value_pb2.Value(int64_val=1002)])
    save("get_online_features", req)
    req.full_feature_names = True
    save("get_online_features", req)
    svc = sv.GetOnlineFeaturesRequest(feature_service="driver_activity")
    svc.entities["driver_id"].val.add(int64_val=1)
    save("get_online_features", svc)
    # Versioned references, an entity name for its join key, unknown and context columns.
    ver = sv.GetOnlineFeaturesRequest(features=sv.FeatureList(val=["driver_hourly_stats@v2:conv_rate",
                                                                    "driver_hourly_stats@latest:conv_rate",
                                                                    "driver_hourly_stats@:acc_rate"]),
                                      include_feature_view_version_metadata=True)
    ver.entities["driver"].val.add(int64_val=1001)
    ver.entities["not_a_key"].val.add(string_val="x")
    ver.request_context["rc"].val.add(double_val=0.5)
    save("get_online_features", ver)
    wide = sv.GetOnlineFeaturesRequest(features=sv.FeatureList(val=["driver_hourly_stats:conv_rate"]))
    for i in range(300):
        wide.entities["c%03d" % i].val.add(int64_val=i)
    save("get_online_features", wide)
    bad = sv.GetOnlineFeaturesRequest(features=sv.FeatureList(val=["nope:x", "driver_hourly_stats"]))
    bad.entities["driver_id"].val.add(string_val="1")
    save("get_online_features", bad)

    for name in ("", "larder.v1.OnlineStore", "feast.serving.ServingService", "no.such.Service"):
        save("health_check", H.HealthCheckRequest(service=name))
    for r in (R.ServerReflectionRequest(list_services="*"),
              R.ServerReflectionRequest(file_containing_symbol="larder.v1.OnlineStore"),
              R.ServerReflectionRequest(file_containing_symbol="feast.serving.ServingService.GetOnlineFeatures"),
              R.ServerReflectionRequest(file_by_filename="feast/types/Value.proto"),
              R.ServerReflectionRequest(all_extension_numbers_of_type="feast.types.Value"),
              R.ServerReflectionRequest(file_containing_extension=R.ExtensionRequest(
                  containing_type="feast.types.Value", extension_number=5))):
        save("reflection", r)

    root = os.path.join(HERE, "..")
    for path in ("examples/feature_store.yaml", "docker/feature_store.sqlite.yaml",
                 "docker/feature_store.postgres.yaml", "docker/feature_store.mysql.yaml"):
        with open(os.path.join(root, path)) as f:
            save("config", f.read())
    save("config", "project: p\nregistry:\n  registry_type: file\n  path: r.db\n  cache_ttl_seconds: 5\n"
                   "online_store: sqlite\nentity_key_serialization_version: 2\n"
                   "larder:\n  listen: '[::]:6566'\n  workers: 4\n  admin_rpcs: false\n  max_batch_rows: 10\n"
                   "  max_message_bytes: 2048\n  grace_period_s: 1\n  log_level: debug\n  log_format: json\n"
                   "  enforce_ttl: false\n  metrics_listen: 127.0.0.1:9090\n  wait_for_backend_s: 3\n"
                   "  tls: {cert: c.pem, key: k.pem, client_ca: ca.pem}\n"
                   "  auth: {tokens_file: t, tokens_env: TOKENS}\n  keepalive_time_s: 30\n"
                   "  keepalive_timeout_s: 5\n  max_connection_idle_s: 60\n  max_connection_age_s: 600\n"
                   "  max_connection_age_grace_s: 5\n  max_concurrent_streams: 100\n")
    save("config", "project: ${A}\nonline_store:\n  type: feast.infra.online_stores.contrib.postgres.PostgreSQLOnlineStore\n"
                   "  host: $HOME\n  port: 5432\n  database: d\n  db_schema: s\n  user: u\n  password: ${PW}\n"
                   "  sslmode: require\n  min_conn: 1\n  max_conn: 10\n")
    save("config", "project: p\nonline_store:\n  type: mysql\n  host: h\n  port: 3306\n  database: d\n"
                   "  user: u\n  password: p\n")
    save("config", "project: p\nproject: q\n")
    save("config", "- [a, {b: *x}]\n")
    registry_seeds()


def registry_seeds():
    """Registries: Feast's registry_example, the HTTP vectors' registry, and one
    written here with every kind of view, a version history and a service with
    an alias, a key map and a version tag."""
    import json
    import tempfile
    import feast_registry as fr
    data = os.path.join(HERE, "..", "tests", "data")
    with open(os.path.join(data, "vectors.json")) as f:
        save("registry", bytes.fromhex(json.load(f)["registry_example"]["proto_hex"]))
    with open(os.path.join(data, "http_vectors.json")) as f:
        save("registry", bytes.fromhex(json.load(f)["registry_hex"]))
    driver = fr.Entity("driver", "driver_id")
    rider = fr.Entity("rider", "rider_id", fr.STRING)
    stats = fr.FeatureView("stats", [driver], [("trips", fr.INT64), ("rate", fr.DOUBLE)], ttl=3600,
                           state=fr.AVAILABLE_ONLINE)
    live = fr.StreamFeatureView("live", [driver, rider], [("speed", fr.FLOAT)])
    odfv = fr.OnDemandFeatureView("calc", [("x", fr.DOUBLE)], write_to_online_store=True, entities=[driver])
    labels = fr.LabelView("labels", [fr.DUMMY], [("label", fr.STRING)])
    service = fr.FeatureService("svc", [fr.Projection(stats, ["trips"], alias="s", join_key_map={"driver_id": "d"},
                                                      version_tag=1),
                                        fr.Projection(labels, []), fr.Projection(fr.FeatureView("gone"), ["y"])])
    with tempfile.TemporaryDirectory() as tmp:
        r = fr.FileRegistry(os.path.join(tmp, "registry.db"))
        r.apply("demo", driver, rider, stats, live, odfv, labels, service)
        r.apply("demo", fr.FeatureView("stats", [driver], [("trips", fr.INT64)], ttl=60))
        r.apply("other", driver, stats)
        with open(r.path, "rb") as f:
            save("registry", f.read())


if __name__ == "__main__":
    main()
