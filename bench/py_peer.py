#!/usr/bin/python3
"""The server a Feast user would otherwise run: Python grpcio (asyncio)
serving larder.v1.OnlineStore/OnlineRead over Python's sqlite3, with Feast's
SQLite store code for the work — serialize_entity_key, the one-query read
ordered by entity_key, rows grouped by key, each Value parsed with
ParseFromString and the timestamp turned into a datetime
(feast/infra/online_stores/sqlite.py, SPEC §4.1) — then the reply built from
those objects. It reads the same database file larder serves.

    py_peer.py --db PATH --project P --listen HOST:PORT --stubs DIR
"""
import argparse
import asyncio
import itertools
import sqlite3
import struct
import sys
from datetime import datetime, timezone


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--listen", default="127.0.0.1:6568")
    ap.add_argument("--stubs", required=True, help="folder with Python stubs generated from protos/")
    args = ap.parse_args()
    sys.path.insert(0, args.stubs)

    import grpc
    from feast.types import Value_pb2
    from larder.v1 import online_store_pb2 as pb
    from larder.v1 import online_store_pb2_grpc as rpc

    # key_encoding_utils.py, version 3.
    def _serialize_val(value_type, v):
        if value_type == "string_val":
            return v.string_val.encode("utf8"), 2
        if value_type == "bytes_val":
            return v.bytes_val, 1
        if value_type == "int32_val":
            return struct.pack("<i", v.int32_val), 3
        if value_type == "int64_val":
            return struct.pack("<q", v.int64_val), 4
        if value_type == "unix_timestamp_val":
            return struct.pack("<q", v.unix_timestamp_val), 8
        raise ValueError("Value type not supported for feast feature store: %s" % v)

    def serialize_entity_key(entity_key):
        if len(entity_key.join_keys) > 1:
            pairs = sorted(zip(entity_key.join_keys, entity_key.entity_values))
        else:
            pairs = list(zip(entity_key.join_keys, entity_key.entity_values))
        output = [struct.pack("<I", len(pairs))]
        for k, _ in pairs:
            kb = k.encode("utf8")
            output += [struct.pack("<I", 2), struct.pack("<I", len(kb)), kb]
        for _, v in pairs:
            value_bytes, value_type = _serialize_val(v.WhichOneof("val"), v)
            output += [struct.pack("<I", value_type), struct.pack("<I", len(value_bytes)), value_bytes]
        return b"".join(output)

    # sqlite.py: the converter Feast registers for "timestamp" columns.
    sqlite3.register_converter("timestamp", lambda v: datetime.fromtimestamp(int(v)))
    conn = sqlite3.connect(args.db, detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
                           check_same_thread=False)

    class Peer(rpc.OnlineStoreServicer):
        async def OnlineRead(self, request, context):
            table = "%s_%s" % (args.project, request.feature_view)
            keys = [serialize_entity_key(ek) for ek in request.entity_keys]
            # SqliteOnlineStore.online_read
            cur = conn.execute(
                f'SELECT entity_key, feature_name, value, event_ts FROM "{table}" WHERE entity_key IN '
                f"({','.join('?' * len(keys))}) ORDER BY entity_key", keys)
            rows = {k: list(group) for k, group in itertools.groupby(cur.fetchall(), key=lambda r: r[0])}
            result = []
            for key in keys:
                res, res_ts = {}, None
                for _, feature_name, val_bin, ts in rows.get(key, []):
                    val = Value_pb2.Value()
                    val.ParseFromString(val_bin)
                    res[feature_name] = val
                    res_ts = ts
                result.append((None, None) if not res else (res_ts, res))
            reply = pb.OnlineReadResponse()
            for ts, features in result:
                r = reply.results.add()
                if features is None:
                    continue
                r.found = True
                r.event_ts.FromDatetime(ts.replace(tzinfo=timezone.utc))
                for name, value in features.items():
                    r.features[name].CopyFrom(value)
            return reply

    async def serve():
        server = grpc.aio.server()
        rpc.add_OnlineStoreServicer_to_server(Peer(), server)
        server.add_insecure_port(args.listen)
        await server.start()
        print("py_peer listening on %s" % args.listen, file=sys.stderr, flush=True)
        await server.wait_for_termination()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
