// larder from Node: @grpc/grpc-js with stubs loaded at run time from protos/.
// Usage: node client.js [host:port]   (LARDER_TOKEN: a bearer token, when auth is on)
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const protos = process.env.LARDER_PROTOS || path.join(__dirname, '..', '..', 'protos');
const definition = protoLoader.loadSync('larder/v1/online_store.proto', {
  includeDirs: [protos],
  keepCase: true,   // field names as in the .proto: feature_view, entity_keys
  longs: Number,    // int64 values as numbers (exact below 2^53)
  defaults: false,
  oneofs: true,     // each Value says which member it holds in `val`
});
const larder = grpc.loadPackageDefinition(definition).larder.v1;
const stub = new larder.OnlineStore(process.argv[2] || '127.0.0.1:6566',
                                    grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
if (process.env.LARDER_TOKEN) metadata.set('authorization', 'Bearer ' + process.env.LARDER_TOKEN);

function call(method, request) {
  const deadline = new Date(Date.now() + 5000);
  return new Promise((resolve, reject) =>
    stub[method](request, metadata, {deadline}, (err, reply) => (err ? reject(err) : resolve(reply))));
}

const driver = (id) => ({join_keys: ['driver_id'], entity_values: [{int64_val: id}]});

async function main() {
  await call('Update', {tables_to_keep: ['driver_hourly_stats']});
  const now = {seconds: Math.floor(Date.now() / 1000), nanos: 0};
  await call('OnlineWriteBatch', {
    feature_view: 'driver_hourly_stats',
    rows: [[2001, 0.72], [2002, 0.38]].map(([id, rate]) => ({
      entity_key: driver(id),
      features: {conv_rate: {double_val: rate}, trips_today: {int64_val: id - 1990}},
      event_ts: now,
    })),
  });
  const ids = [2001, 2002, 9999];
  const reply = await call('OnlineRead', {
    feature_view: 'driver_hourly_stats',
    entity_keys: ids.map(driver),
    requested_features: ['conv_rate', 'trips_today'],
  });
  reply.results.forEach((result, i) => {
    if (!result.found) return console.log(ids[i], 'not found');
    const values = {};
    for (const name of Object.keys(result.features).sort())
      values[name] = result.features[name][result.features[name].val];
    console.log(ids[i], JSON.stringify(values));
  });
}

main().catch((err) => {
  console.error(`${err.code !== undefined ? grpc.status[err.code] : 'error'}: ${err.details || err.message}`);
  process.exit(1);
});
