#!/usr/bin/python3
"""feast.serving.ServingService against the real larder process: a registry
built with python3-protobuf, features written through larder, and a Python
client with stubs generated from protos/feast/serving. Feature values, statuses
and timestamps are compared with what was written; the layout with Feast's
golden bytes (tests/data/vectors.json). Runs against LARDER_TEST_BACKEND."""
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Value_pb2, grpc, key, pb, raw_call, row  # noqa: E402
from feast.core import Registry_pb2 as reg  # noqa: E402
from feast.serving import ServingService_pb2 as sv  # noqa: E402
from feast.serving import ServingService_pb2_grpc as sv_rpc  # noqa: E402
from feast.types import Value_pb2 as V  # noqa: E402

Code = grpc.StatusCode
INT64, STRING, FLOAT, DOUBLE = 4, 2, 6, 5
PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE = sv.PRESENT, sv.NOT_FOUND, sv.OUTSIDE_MAX_AGE
NOW = int(time.time())

with open(os.path.join(harness.TEST_DATA, "vectors.json")) as f:
    VECTORS = json.load(f)
SERVING = {r["name"]: bytes.fromhex(r["proto_hex"]) for r in VECTORS["serving_proto_wire"]}


def feature(name, t):
    return reg.FeatureSpecV2(name=name, value_type=t)


def entity(project, name, t, join_key=None):
    return reg.Entity(spec=reg.EntitySpecV2(name=name, value_type=t, join_key=join_key or name,
                                            project=project))


def view(project, name, entities, features, ttl=0, columns=()):
    spec = reg.FeatureViewSpec(name=name, project=project, entities=entities, online=True,
                               features=[feature(n, t) for n, t in features],
                               entity_columns=[feature(n, t) for n, t in columns])
    spec.ttl.seconds = ttl
    return reg.FeatureView(spec=spec)


def projection(view_name, features, alias="", key_map=None):
    p = reg.FeatureViewProjection(feature_view_name=view_name, feature_view_name_alias=alias,
                                  feature_columns=[feature(n, 0) for n in features])
    for k, v in (key_map or {}).items():
        p.join_key_map[k] = v
    return p


def registry(project, extra_views=()):
    """The test registry: views with one and two join keys, int64 and string
    keys, an entity-less view, a TTL, stream and on-demand views, feature services.
    A registry of another project with the same names is in the file too."""
    r = reg.Registry(registry_schema_version="1", version_id="test")
    r.entities.extend([entity(project, "driver", INT64, "driver_id"),
                       entity(project, "customer", STRING, "customer_id"),
                       entity(project, "store", STRING, "store_code"),
                       entity("other_project", "driver", STRING, "driver_id")])
    r.feature_views.extend([
        view(project, "driver_stats", ["driver"],
             [("conv_rate", FLOAT), ("acc_rate", FLOAT), ("avg_daily_trips", INT64)],
             columns=[("driver_id", INT64)]),
        view(project, "customer_driver", ["customer", "driver"], [("score", DOUBLE), ("note", STRING)],
             ttl=3600),
        view(project, "global_stats", ["__dummy"], [("total_rides", INT64)]),
        view(project, "store_stats", ["store"], [("footfall", INT64), ("conv_rate", FLOAT)]),
        view("other_project", "driver_stats", ["driver"], [("other", INT64)]),
    ] + list(extra_views))
    r.stream_feature_views.append(reg.StreamFeatureView(spec=reg.StreamFeatureViewSpec(
        name="driver_clicks", project=project, entities=["driver"], features=[feature("clicks", INT64)],
        entity_columns=[feature("driver_id", INT64)], online=True)))
    r.on_demand_feature_views.extend([
        reg.OnDemandFeatureView(spec=reg.OnDemandFeatureViewSpec(
            name="conv_plus", project=project, features=[feature("conv_plus_one", DOUBLE)],
            write_to_online_store=False)),
        reg.OnDemandFeatureView(spec=reg.OnDemandFeatureViewSpec(
            name="stored_odfv", project=project, features=[feature("ratio", DOUBLE)],
            write_to_online_store=True, entities=["driver"], entity_columns=[feature("driver_id", INT64)])),
    ])
    r.feature_services.extend([
        reg.FeatureService(spec=reg.FeatureServiceSpec(name="driver_activity", project=project, features=[
            projection("driver_stats", ["conv_rate", "acc_rate"]),
            projection("customer_driver", ["score"], alias="cd"),
            projection("global_stats", ["total_rides"])])),
        reg.FeatureService(spec=reg.FeatureServiceSpec(name="renamed", project=project, features=[
            projection("driver_stats", ["avg_daily_trips"], alias="other",
                       key_map={"driver_id": "other_driver"})])),
        reg.FeatureService(spec=reg.FeatureServiceSpec(name="broken", project=project, features=[
            projection("no_such_view", ["x"])])),
    ])
    return r


def write_registry(path, r):
    """Replaces the file as tools do: a new file renamed over the old one."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(r.SerializeToString())
    os.replace(tmp, path)


def ints(*xs):
    return V.RepeatedValue(val=[V.Value(int64_val=x) for x in xs])


def strs(*xs):
    return V.RepeatedValue(val=[V.Value(string_val=x) for x in xs])


def request(features=None, service=None, full=False, **entities):
    req = sv.GetOnlineFeaturesRequest(full_feature_names=full)
    if service is not None:
        req.feature_service = service
    else:
        req.features.val.extend(features)
    for k, v in entities.items():
        req.entities[k].CopyFrom(v)
    return req


class Serving(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(registry="{path: registry.db, cache_ttl_seconds: 1}")
        cls.registry_path = os.path.join(cls.server.tmpdir, "registry.db")
        write_registry(cls.registry_path, registry(cls.server.project))
        cls.server.start()
        cls.serving = sv_rpc.ServingServiceStub(cls.server.channel)
        s = cls.server.stub
        s.Update(pb.UpdateRequest(tables_to_keep=["driver_stats", "customer_driver", "global_stats",
                                                  "store_stats", "driver_clicks", "stored_odfv"]))
        # Drivers 1..150 exist; every third has no acc_rate stored.
        cls.drivers = {}
        rows = []
        for d in range(1, 151):
            feats = {"conv_rate": V.Value(float_val=d / 256), "avg_daily_trips": V.Value(int64_val=d * 10)}
            if d % 3:
                feats["acc_rate"] = V.Value(float_val=1 - d / 512)
            cls.drivers[d] = (feats, 1700000000 + d)
            rows.append(row(key(driver_id=d), feats, ts=1700000000 + d))
        s.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="driver_stats", rows=rows))
        # (customer, driver) pairs: fresh, and two hours old (the view's ttl is one hour).
        s.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="customer_driver", rows=[
            row(key(customer_id="c1", driver_id=1), {"score": V.Value(double_val=0.25),
                                                    "note": V.Value(string_val="fresh")}, ts=NOW - 60),
            row(key(customer_id="c2", driver_id=2), {"score": V.Value(double_val=0.75),
                                                    "note": V.Value(string_val="old")}, ts=NOW - 7200)]))
        s.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="global_stats", rows=[
            row(key(__dummy_id=""), {"total_rides": V.Value(int64_val=123456)}, ts=1700000500)]))
        s.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="store_stats", rows=[
            row(key(store_code="s-1"), {"footfall": V.Value(int64_val=77)}, ts=1700000600)]))
        s.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="stored_odfv", rows=[
            row(key(driver_id=5), {"ratio": V.Value(double_val=2.5)}, ts=1700000700)]))

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def get(self, req, path=None):
        if path is None:
            return self.serving.GetOnlineFeatures(req, timeout=10)
        code, details, reply = raw_call(self.server.channel, path, req.SerializeToString())
        self.assertEqual(code, Code.OK, details)
        return sv.GetOnlineFeaturesResponse.FromString(reply)

    def fails(self, req, code, *words):
        with self.assertRaises(grpc.RpcError) as cm:
            self.serving.GetOnlineFeatures(req, timeout=10)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        for w in words:
            self.assertIn(w, cm.exception.details())
        return cm.exception.details()

    def assert_names(self, resp, entities, features):
        """Entity columns first (in the order the client's map put them on the
        wire, which Python does not let a client choose), then the features."""
        names = list(resp.metadata.feature_names.val)
        self.assertEqual(sorted(names[:len(entities)]), sorted(entities))
        self.assertEqual(names[len(entities):], features)

    def columns(self, resp):
        names = list(resp.metadata.feature_names.val)
        self.assertEqual(len(names), len(resp.results))
        return dict(zip(names, resp.results))

    def check_driver_column(self, col, name, ids, requested):
        """`requested`: the call's features of driver_stats. A driver with any
        of them stored is found, and its timestamp is on every column of the
        view, a feature it lacks included (REGISTRY.md §7.1)."""
        self.assertEqual(len(col.values), len(ids))
        for i, d in enumerate(ids):
            stored = self.drivers.get(d)
            if stored is None or name not in stored[0]:
                self.assertEqual((col.values[i], col.statuses[i]), (V.Value(), NOT_FOUND), (d, name))
                found = stored is not None and any(f in stored[0] for f in requested)
                self.assertEqual(col.event_timestamps[i].seconds, stored[1] if found else 0, (d, name))
            else:
                self.assertEqual((col.values[i], col.statuses[i]), (stored[0][name], PRESENT), (d, name))
                self.assertEqual(col.event_timestamps[i].seconds, stored[1])

    def test_serving_info(self):
        version = subprocess.run([harness.LARDER_BIN, "--version"], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
        self.assertEqual(self.serving.GetFeastServingInfo(sv.GetFeastServingInfoRequest()).version, version)

    def test_one_entity_two_views(self):
        resp = self.get(request(["driver_stats:conv_rate", "customer_driver:score", "driver_stats:acc_rate"],
                                driver_id=ints(1), customer_id=strs("c1")))
        self.assert_names(resp, ["driver_id", "customer_id"], ["conv_rate", "acc_rate", "score"])
        cols = self.columns(resp)
        self.assertEqual(list(cols["driver_id"].values), [V.Value(int64_val=1)])
        self.assertEqual(list(cols["driver_id"].statuses), [PRESENT])
        self.assertEqual(cols["driver_id"].event_timestamps[0].seconds, 0)
        self.assertEqual(list(cols["customer_id"].values), [V.Value(string_val="c1")])
        self.check_driver_column(cols["conv_rate"], "conv_rate", [1], ["conv_rate", "acc_rate"])
        self.check_driver_column(cols["acc_rate"], "acc_rate", [1], ["conv_rate", "acc_rate"])
        self.assertEqual((cols["score"].values[0], cols["score"].statuses[0]), (V.Value(double_val=0.25), PRESENT))
        self.assertEqual(cols["score"].event_timestamps[0].seconds, NOW - 60)
        self.assertFalse(resp.status)

    def test_hundred_entities_two_views(self):
        ids = list(range(1, 101))
        ids[10] = 999      # not stored
        ids[20] = ids[21]  # a duplicate row
        customers = ["c1" if d == 1 else "c2" if d == 2 else "c%d" % d for d in ids]
        resp = self.get(request(["driver_stats:conv_rate", "driver_stats:acc_rate", "driver_stats:avg_daily_trips",
                                 "customer_driver:score", "customer_driver:note", "driver_clicks:clicks"],
                                driver_id=ints(*ids), customer_id=strs(*customers)))
        cols = self.columns(resp)
        for name in ("conv_rate", "acc_rate", "avg_daily_trips"):
            self.check_driver_column(cols[name], name, ids, ["conv_rate", "acc_rate", "avg_daily_trips"])
        self.assertEqual(list(cols["driver_id"].values), [V.Value(int64_val=d) for d in ids])
        score = cols["score"]
        self.assertEqual(score.statuses[0], PRESENT)
        self.assertEqual(score.statuses[1], OUTSIDE_MAX_AGE)  # c2/2 is two hours old
        self.assertEqual(list(score.statuses[2:]), [NOT_FOUND] * 98)
        self.assertEqual(list(cols["clicks"].statuses), [NOT_FOUND] * 100)

    def test_full_feature_names_and_paths(self):
        req = request(["driver_stats:conv_rate", "store_stats:conv_rate", "store_stats:footfall"], full=True,
                      driver_id=ints(7), store_code=strs("s-1"))
        resp = self.get(req)
        self.assert_names(resp, ["driver_id", "store_code"],
                          ["driver_stats__conv_rate", "store_stats__conv_rate", "store_stats__footfall"])
        cols = self.columns(resp)
        self.check_driver_column(cols["driver_stats__conv_rate"], "conv_rate", [7], ["conv_rate"])
        self.assertEqual(cols["store_stats__conv_rate"].statuses[0], NOT_FOUND)
        self.assertEqual(cols["store_stats__footfall"].values[0], V.Value(int64_val=77))
        # Feast's Python server path answers the same bytes.
        a = raw_call(self.server.channel, "/feast.serving.ServingService/GetOnlineFeatures", req.SerializeToString())
        b = raw_call(self.server.channel, "/GrpcFeatureServer/GetOnlineFeatures", req.SerializeToString())
        self.assertEqual(a[0], Code.OK, a[1])
        self.assertEqual(a, b)
        # Without full names the two conv_rate columns would collide: refused, as Feast does.
        self.fails(request(["driver_stats:conv_rate", "store_stats:conv_rate"], driver_id=ints(7),
                           store_code=strs("s-1")), Code.INVALID_ARGUMENT, "conv_rate", "full_feature_names")

    def test_feature_service(self):
        resp = self.get(request(service="driver_activity", full=True, driver_id=ints(3, 1),
                                customer_id=strs("x", "c1")))
        self.assert_names(resp, ["driver_id", "customer_id"], ["driver_stats__conv_rate", "driver_stats__acc_rate",
                                                               "cd__score", "global_stats__total_rides"])
        cols = self.columns(resp)
        self.check_driver_column(cols["driver_stats__acc_rate"], "acc_rate", [3, 1], ["conv_rate", "acc_rate"])
        self.assertEqual(list(cols["cd__score"].statuses), [NOT_FOUND, PRESENT])
        self.assertEqual(list(cols["global_stats__total_rides"].values), [V.Value(int64_val=123456)] * 2)
        # join_key_map: the view's driver_id comes from the column other_driver.
        resp = self.get(request(service="renamed", full=True, other_driver=ints(4)))
        self.assertEqual(list(resp.metadata.feature_names.val), ["other_driver", "other__avg_daily_trips"])
        self.assertEqual(resp.results[1].values[0], V.Value(int64_val=40))
        self.fails(request(service="nope", driver_id=ints(1)), Code.INVALID_ARGUMENT, "feature_service", "nope")
        self.fails(request(service="broken", driver_id=ints(1)), Code.FAILED_PRECONDITION, "no_such_view")

    def test_entityless_and_on_demand_views(self):
        resp = self.get(request(["global_stats:total_rides"]))
        self.assertEqual(list(resp.metadata.feature_names.val), ["total_rides"])
        self.assertEqual(list(resp.results[0].values), [V.Value(int64_val=123456)])
        self.assertEqual(resp.results[0].event_timestamps[0].seconds, 1700000500)
        resp = self.get(request(["stored_odfv:ratio", "global_stats:total_rides"], driver_id=ints(5, 6)))
        cols = self.columns(resp)
        self.assertEqual(list(cols["ratio"].statuses), [PRESENT, NOT_FOUND])
        self.assertEqual(list(cols["total_rides"].statuses), [PRESENT, PRESENT])
        self.fails(request(["conv_plus:conv_plus_one"], driver_id=ints(1)), Code.UNIMPLEMENTED,
                   "conv_plus", "on-demand")

    def test_ttl_can_be_turned_off(self):
        # A second larder on the same store and registry, with enforce_ttl: false.
        server = harness.Server(backend=self.server.backend, env=self.server.env)
        with open(self.server.config) as f:
            text = f.read()
        text = text.replace(self.server.addr, server.addr).replace("path: registry.db", "path: " + self.registry_path)
        with open(server.config, "w") as f:
            f.write(text + "  enforce_ttl: false\n")
        with server:
            resp = sv_rpc.ServingServiceStub(server.channel).GetOnlineFeatures(
                request(["customer_driver:score"], driver_id=ints(2), customer_id=strs("c2")), timeout=10)
            self.assertEqual((resp.results[2].values[0], resp.results[2].statuses[0]),
                             (V.Value(double_val=0.75), PRESENT))
            self.assertEqual(resp.results[2].event_timestamps[0].seconds, NOW - 7200)

    def test_bad_requests(self):
        bad = [
            (request(["nope:conv_rate"], driver_id=ints(1)), Code.INVALID_ARGUMENT, ["features[0]", "nope"]),
            (request(["driver_stats:nope"], driver_id=ints(1)), Code.INVALID_ARGUMENT, ["features[0]", "nope"]),
            (request(["driver_stats"], driver_id=ints(1)), Code.INVALID_ARGUMENT, ["features[0]", "view:feature"]),
            (request([], driver_id=ints(1)), Code.INVALID_ARGUMENT, ["features"]),
            (request(["driver_stats:conv_rate"], driver_id=ints(1, 2), customer_id=strs("a")),
             Code.INVALID_ARGUMENT, ["customer_id", "one value per entity row"]),
            (request(["customer_driver:score"], driver_id=ints(1)), Code.INVALID_ARGUMENT,
             ["customer_id", "customer_driver"]),
            (request(["driver_stats:conv_rate"], driver_id=V.RepeatedValue(val=[V.Value(int32_val=1)])),
             Code.INVALID_ARGUMENT, ["entities[driver_id][0]", "INT32", "INT64"]),
            (request(["driver_stats:conv_rate"], driver_id=V.RepeatedValue(val=[V.Value()])),
             Code.INVALID_ARGUMENT, ["entities[driver_id][0]"]),
            (request(["driver_stats:conv_rate"], driver_id=ints(*range(10001))), Code.RESOURCE_EXHAUSTED,
             ["max_batch_rows"]),
            (request(["other:x"], driver_id=ints(1)), Code.INVALID_ARGUMENT, ["other"]),
        ]
        for req, code, words in bad:
            with self.subTest(req=str(req)[:80]):
                self.fails(req, code, *words)
        # A NUL inside a string is refused, never cut short into another name.
        payload = request(["driver_stats:conv_rate\x00x"], driver_id=ints(1)).SerializeToString()
        code, details, _ = raw_call(self.server.channel, "/feast.serving.ServingService/GetOnlineFeatures", payload)
        self.assertEqual(code, Code.INVALID_ARGUMENT)
        self.assertIn("NUL", details)
        code, details, _ = raw_call(self.server.channel, "/feast.serving.ServingService/GetOnlineFeatures",
                                    b"\x12\xff")
        self.assertEqual(code, Code.INVALID_ARGUMENT)

    def test_feast_golden_bytes(self):
        # The two requests of vectors.json, as Feast's client encodes them.
        code, details, reply = raw_call(self.server.channel, "/feast.serving.ServingService/GetOnlineFeatures",
                                        SERVING["GetOnlineFeaturesRequest_features"])
        self.assertEqual(code, Code.INVALID_ARGUMENT)  # this project has no driver_hourly_stats
        self.assertIn("driver_hourly_stats", details)
        info = raw_call(self.server.channel, "/feast.serving.ServingService/GetFeastServingInfo",
                        SERVING["GetFeastServingInfoRequest"])
        self.assertEqual(info[0], Code.OK)


class GoldenRegistry(unittest.TestCase):
    """Feast's registry_example (written by Feast's code) served as it is, and the
    response compared byte for byte with Feast's GetOnlineFeaturesResponse_example."""

    def test_response_bytes(self):
        golden = reg.Registry.FromString(bytes.fromhex(VECTORS["registry_example"]["proto_hex"]))
        # Feast's bytes were made without a TTL check, and the view's ttl is one day.
        server = harness.Server(project="my_project", larder={"enforce_ttl": False})
        project = server.project  # another name for the client-server databases
        for e in golden.entities:
            e.spec.project = project
        for v in golden.feature_views:
            v.spec.project = project
        golden.feature_services.append(reg.FeatureService(spec=reg.FeatureServiceSpec(
            name="driver_activity", project=project,
            features=[projection("driver_hourly_stats", ["conv_rate"])])))
        write_registry(os.path.join(server.tmpdir, "registry.db"), golden)
        with server:
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["driver_hourly_stats"]))
            server.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="driver_hourly_stats", rows=[
                row(key(driver_id=1001), {"conv_rate": V.Value(double_val=0.5)}, ts=1700000000)]))
            req = request(["driver_hourly_stats:conv_rate"], driver_id=ints(1001, 1002))
            code, details, reply = raw_call(server.channel, "/feast.serving.ServingService/GetOnlineFeatures",
                                            req.SerializeToString())
            self.assertEqual(code, Code.OK, details)
            self.assertEqual(reply.hex(), SERVING["GetOnlineFeaturesResponse_example"].hex())
            for name in ("GetOnlineFeaturesRequest_features", "GetOnlineFeaturesRequest_feature_service"):
                code, details, reply = raw_call(server.channel, "/feast.serving.ServingService/GetOnlineFeatures",
                                                SERVING[name])
                self.assertEqual(code, Code.OK, (name, details))
                resp = sv.GetOnlineFeaturesResponse.FromString(reply)
                self.assertEqual(resp.results[0].values[0], V.Value(int64_val=1001))
                self.assertEqual(resp.results[1].values[0], V.Value(double_val=0.5))
                self.assertEqual(resp.results[1].statuses[0], PRESENT)


class Reload(unittest.TestCase):
    def test_replace_while_calls_run(self):
        server = harness.Server(registry="{path: registry.db, cache_ttl_seconds: 1}")
        path = os.path.join(server.tmpdir, "registry.db")
        # No registry file yet: larder starts, and ServingService says why it cannot answer.
        with server:
            serving = sv_rpc.ServingServiceStub(server.channel)
            self.assertEqual(serving.GetFeastServingInfo(sv.GetFeastServingInfoRequest()).version != "", True)
            with self.assertRaises(grpc.RpcError) as cm:
                serving.GetOnlineFeatures(request(["driver_stats:conv_rate"], driver_id=ints(1)), timeout=10)
            self.assertEqual(cm.exception.code(), Code.FAILED_PRECONDITION)
            write_registry(path, registry(server.project))
            server.stub.Update(pb.UpdateRequest(tables_to_keep=["driver_stats", "new_view"]))
            server.stub.OnlineWriteBatch(pb.OnlineWriteBatchRequest(feature_view="new_view", rows=[
                row(key(driver_id=1), {"fresh": V.Value(int64_val=1)})]))
            self.wait_for(serving, request(["driver_stats:conv_rate"], driver_id=ints(1)))

            failures, calls, stop = [], [0], threading.Event()

            def load():
                while not stop.is_set():
                    try:
                        serving.GetOnlineFeatures(request(["driver_stats:conv_rate", "driver_stats:acc_rate"],
                                                          driver_id=ints(1, 2, 3)), timeout=10)
                        calls[0] += 1
                    except grpc.RpcError as e:
                        failures.append((e.code(), e.details()))
            threads = [threading.Thread(target=load) for _ in range(4)]
            for t in threads:
                t.start()
            try:
                new = registry(server.project, [view(server.project, "new_view", ["driver"], [("fresh", INT64)])])
                for i in range(3):  # replaced three times, twice in place as Feast writes it
                    if i == 0:
                        write_registry(path, new)
                    else:
                        new.version_id = "v%d" % i
                        with open(path, "wb") as f:
                            f.write(new.SerializeToString())
                    resp = self.wait_for(serving, request(["new_view:fresh"], driver_id=ints(1)))
                    self.assertEqual(resp.results[1].values[0], V.Value(int64_val=1))
                    time.sleep(1.2)
                # A file that is not a registry: the one loaded before keeps serving.
                with open(path, "wb") as f:
                    f.write(b"\xff\xff\xff not a registry")
                # The reload thread looks every second, and a second more when the file changed
                # while it read it; under four busy callers that can take longer.
                deadline = time.monotonic() + 10 * harness.SLOW
                while "not a Feast registry" not in server.read_log() and time.monotonic() < deadline:
                    time.sleep(0.1)
                self.get_ok(serving, request(["new_view:fresh"], driver_id=ints(1)))
            finally:
                stop.set()
                for t in threads:
                    t.join()
            self.assertEqual(failures, [])
            self.assertGreater(calls[0], 50)
            log = server.read_log()
            self.assertIn("reloaded", log)
            self.assertIn("not a Feast registry", log)
            print("calls during the reloads: %d, none failed" % calls[0])

    def get_ok(self, serving, req):
        return serving.GetOnlineFeatures(req, timeout=10)

    def wait_for(self, serving, req, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return serving.GetOnlineFeatures(req, timeout=10)
            except grpc.RpcError as e:
                if time.monotonic() > deadline:
                    raise AssertionError("not served after %d s: %s" % (timeout, e.details()))
                time.sleep(0.1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
