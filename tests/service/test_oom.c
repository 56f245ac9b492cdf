/*
 * Out-of-memory injection (STYLE §20, as SQLite's test_malloc.c): every
 * request decoder and handler runs a valid request as the server runs it
 * (fuzz/fuzz_request.c's way: a real SQLite store, Feast's registry_example)
 * with the call's arena capped at every size from 1 byte up to the size at
 * which it succeeds: byte by byte up to 4 KiB, then 5% more each step. Each
 * run must end OK or RESOURCE_EXHAUSTED with a message and no reply set
 * (never INTERNAL, INVALID_ARGUMENT or a crash, and nothing leaked: the ASan
 * build runs this with LeakSanitizer), and the first run that succeeds must
 * give the right reply.
 *
 * GrpcFeatureServer's Push and WriteToOnlineStore (text and typed features)
 * run on a second store with tests/support/registry.c's push sources; for
 * them the run just below the cap that sufficed must also leave the tables
 * as they were: a write refused for memory writes nothing.
 *
 * A cap of 0 means "no cap" to ldr_arena_init, so the sweep starts at 1.
 * ldr_registry_parse takes no arena (it builds the registry with malloc), so
 * the registry decoder is not swept here; tests/registry covers its refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/log.h"
#include "feast/serving/GrpcServer.pb-c.h"
#include "feast/serving/ServingService.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "larder/v1/online_store.pb-c.h"
#include "service/service_int.h"
#include "tests/support/registry.h"
#include "tests/support/store.h"

#define SWEEP_STEP_LIMIT 4096
#define SWEEP_MAX (64u << 20)

static struct ldr_test_store store;
/* A store with tests/support/registry.c's push sources, for GrpcFeatureServer. */
static struct ldr_test_store push_store;
static atomic_int stopping;
static struct ldr_worker_state worker = {.stopping = &stopping};
static int64_t now_s;

/* ---- requests ---- */

static Feast__Types__Value *int64_value(int64_t x) {
  Feast__Types__Value *v = calloc(1, sizeof *v);
  feast__types__value__init(v);
  v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
  v->int64_val = x;
  return v;
}

static Feast__Types__EntityKey *driver_key(int64_t id) {
  Feast__Types__EntityKey *k = calloc(1, sizeof *k);
  feast__types__entity_key__init(k);
  k->n_join_keys = k->n_entity_values = 1;
  k->join_keys = calloc(1, sizeof(char *));
  k->join_keys[0] = "driver_id";
  k->entity_values = calloc(1, sizeof(Feast__Types__Value *));
  k->entity_values[0] = int64_value(id);
  return k;
}

/* Packs `m` into a new buffer; frees nothing of `m`. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *b = malloc(*len + 1);
  protobuf_c_message_pack(m, b);
  return b;
}

/* Frees a message built here with calloc (not with protobuf-c's unpack). */
static void free_key(Feast__Types__EntityKey *k) {
  free(k->entity_values[0]);
  free(k->entity_values);
  free(k->join_keys);
  free(k);
}

/* Drivers 1001..1003, each with conv_rate (double) and avg_daily_trips; 1001 twice. */
static uint8_t *write_request(size_t *len) {
  static const int64_t ids[] = {1001, 1002, 1003, 1001};
  enum { N = sizeof ids / sizeof ids[0] };
  Larder__V1__OnlineWriteBatchRequest req = LARDER__V1__ONLINE_WRITE_BATCH_REQUEST__INIT;
  Larder__V1__WriteRow rows[N], *prows[N];
  Larder__V1__WriteRow__FeaturesEntry e[N][2], *pe[N][2];
  Feast__Types__Value conv[N], *trips[N];
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT,
                              created = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.seconds = now_s - 60;
  ts.nanos = 5000;
  created.seconds = now_s;
  Feast__Types__EntityKey *keys[N];
  for (size_t i = 0; i < N; i++) {
    larder__v1__write_row__init(&rows[i]);
    keys[i] = driver_key(ids[i]);
    rows[i].entity_key = keys[i];
    rows[i].event_ts = &ts;
    rows[i].created_ts = i % 2 ? &created : NULL;
    feast__types__value__init(&conv[i]);
    conv[i].val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
    conv[i].double_val = (double)ids[i] / 4 + (double)i; /* 1001's last write: 253.25 */
    trips[i] = int64_value(ids[i] * 10);
    for (int f = 0; f < 2; f++) {
      larder__v1__write_row__features_entry__init(&e[i][f]);
      e[i][f].key = f ? "avg_daily_trips" : "conv_rate";
      e[i][f].value = f ? trips[i] : &conv[i];
      pe[i][f] = &e[i][f];
    }
    rows[i].n_features = 2;
    rows[i].features = pe[i];
    prows[i] = &rows[i];
  }
  req.feature_view = LDR_TEST_VIEW;
  req.n_rows = N;
  req.rows = prows;
  uint8_t *b = pack(&req.base, len);
  for (size_t i = 0; i < N; i++) {
    free_key(keys[i]);
    free(trips[i]);
  }
  return b;
}

static int check_write(const uint8_t *p, size_t n) {
  Larder__V1__OnlineWriteBatchResponse *r =
      larder__v1__online_write_batch_response__unpack(NULL, n, p);
  int ok = r != NULL && r->rows_written == 4;
  larder__v1__online_write_batch_response__free_unpacked(r, NULL);
  return ok;
}

/* Keys 1003, 9999 (missing), 1001, 1003, asking for two features and one that is not stored. */
static uint8_t *read_request(size_t *len) {
  static const int64_t ids[] = {1003, 9999, 1001, 1003};
  enum { N = sizeof ids / sizeof ids[0] };
  Larder__V1__OnlineReadRequest req = LARDER__V1__ONLINE_READ_REQUEST__INIT;
  Feast__Types__EntityKey *keys[N];
  for (size_t i = 0; i < N; i++) keys[i] = driver_key(ids[i]);
  char *features[] = {"conv_rate", "avg_daily_trips", "never_written"};
  req.feature_view = LDR_TEST_VIEW;
  req.n_entity_keys = N;
  req.entity_keys = keys;
  req.n_requested_features = 3;
  req.requested_features = features;
  uint8_t *b = pack(&req.base, len);
  for (size_t i = 0; i < N; i++) free_key(keys[i]);
  return b;
}

static const Feast__Types__Value *result_feature(const Larder__V1__ReadResult *r,
                                                 const char *name) {
  for (size_t i = 0; i < r->n_features; i++)
    if (!strcmp(r->features[i]->key, name)) return r->features[i]->value;
  return NULL;
}

static int check_read(const uint8_t *p, size_t n) {
  Larder__V1__OnlineReadResponse *r = larder__v1__online_read_response__unpack(NULL, n, p);
  static const struct {
    int found;
    double conv;
    int64_t trips;
  } want[] = {{1, 1003.0 / 4 + 2, 10030},
              {0, 0, 0},
              {1, 1001.0 / 4 + 3, 10010},
              {1, 1003.0 / 4 + 2, 10030}};
  int ok = r != NULL && r->n_results == 4;
  for (size_t i = 0; ok && i < 4; i++) {
    const Larder__V1__ReadResult *x = r->results[i];
    ok = x->found == want[i].found;
    if (!ok || !x->found) {
      ok = ok && x->n_features == 0;
      continue;
    }
    const Feast__Types__Value *conv = result_feature(x, "conv_rate");
    const Feast__Types__Value *trips = result_feature(x, "avg_daily_trips");
    ok = x->n_features == 2 && conv && conv->double_val == want[i].conv && trips &&
         trips->int64_val == want[i].trips && x->event_ts && x->event_ts->seconds == now_s - 60;
  }
  larder__v1__online_read_response__free_unpacked(r, NULL);
  return ok;
}

static uint8_t *update_request(size_t *len) {
  Larder__V1__UpdateRequest req = LARDER__V1__UPDATE_REQUEST__INIT;
  char *keep[] = {LDR_TEST_VIEW, "oom_extra", "oom_gone"};
  char *drop[] = {"oom_never_there"};
  req.n_tables_to_keep = 3;
  req.tables_to_keep = keep;
  req.n_tables_to_delete = 1;
  req.tables_to_delete = drop;
  return pack(&req.base, len);
}

static uint8_t *teardown_request(size_t *len) {
  Larder__V1__TeardownRequest req = LARDER__V1__TEARDOWN_REQUEST__INIT;
  char *tables[] = {"oom_gone", "oom_never_there"};
  req.n_tables = 2;
  req.tables = tables;
  return pack(&req.base, len);
}

static int check_empty(const uint8_t *p, size_t n) {
  (void)p;
  return n == 0;
}

/* driver_hourly_stats:conv_rate and avg_daily_trips for drivers 1001 and 9999. */
static uint8_t *gof_request(size_t *len) {
  Feast__Serving__GetOnlineFeaturesRequest req = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__INIT;
  Feast__Serving__FeatureList fl = FEAST__SERVING__FEATURE_LIST__INIT;
  char *refs[] = {LDR_TEST_VIEW ":conv_rate", LDR_TEST_VIEW ":avg_daily_trips"};
  fl.n_val = 2;
  fl.val = refs;
  req.kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES;
  req.features = &fl;
  Feast__Types__RepeatedValue col = FEAST__TYPES__REPEATED_VALUE__INIT;
  Feast__Types__Value *vals[] = {int64_value(1001), int64_value(9999)};
  col.n_val = 2;
  col.val = vals;
  Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry ent =
      FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__ENTITIES_ENTRY__INIT;
  ent.key = "driver_id";
  ent.value = &col;
  Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *ents[] = {&ent};
  req.n_entities = 1;
  req.entities = ents;
  req.full_feature_names = 1;
  uint8_t *b = pack(&req.base, len);
  free(vals[0]);
  free(vals[1]);
  return b;
}

static int check_gof(const uint8_t *p, size_t n) {
  Feast__Serving__GetOnlineFeaturesResponse *r =
      feast__serving__get_online_features_response__unpack(NULL, n, p);
  int ok = r != NULL && r->metadata && r->metadata->feature_names &&
           r->metadata->feature_names->n_val == 3 && r->n_results == 3;
  static const char *const names[] = {"driver_id", LDR_TEST_VIEW "__conv_rate",
                                      LDR_TEST_VIEW "__avg_daily_trips"};
  for (size_t i = 0; ok && i < 3; i++)
    ok = !strcmp(r->metadata->feature_names->val[i], names[i]) && r->results[i]->n_values == 2;
  if (ok) {
    const Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *conv = r->results[1],
                                                                   *trips = r->results[2];
    ok = conv->values[0]->double_val == 1001.0 / 4 + 3 &&
         conv->statuses[0] == FEAST__SERVING__FIELD_STATUS__PRESENT &&
         conv->statuses[1] == FEAST__SERVING__FIELD_STATUS__NOT_FOUND &&
         trips->values[0]->int64_val == 10010 && r->results[0]->values[1]->int64_val == 9999;
  }
  feast__serving__get_online_features_response__free_unpacked(r, NULL);
  return ok;
}

static uint8_t *info_request(size_t *len) {
  Feast__Serving__GetFeastServingInfoRequest req =
      FEAST__SERVING__GET_FEAST_SERVING_INFO_REQUEST__INIT;
  return pack(&req.base, len);
}

static int check_info(const uint8_t *p, size_t n) {
  Feast__Serving__GetFeastServingInfoResponse *r =
      feast__serving__get_feast_serving_info_response__unpack(NULL, n, p);
  int ok = r != NULL && !strcmp(r->version, LDR_VERSION);
  feast__serving__get_feast_serving_info_response__free_unpacked(r, NULL);
  return ok;
}

static uint8_t *health_request(size_t *len) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = "feast.serving.ServingService";
  return pack(&req.base, len);
}

static int check_health(const uint8_t *p, size_t n) {
  Grpc__Health__V1__HealthCheckResponse *r =
      grpc__health__v1__health_check_response__unpack(NULL, n, p);
  int ok =
      r != NULL && r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  grpc__health__v1__health_check_response__free_unpacked(r, NULL);
  return ok;
}

static uint8_t *reflection_list(size_t *len) {
  Grpc__Reflection__V1__ServerReflectionRequest req =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.host = "localhost";
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  req.list_services = "*";
  return pack(&req.base, len);
}

static int check_reflection_list(const uint8_t *p, size_t n) {
  Grpc__Reflection__V1__ServerReflectionResponse *r =
      grpc__reflection__v1__server_reflection_response__unpack(NULL, n, p);
  int ok = r != NULL && r->list_services_response != NULL &&
           r->list_services_response->n_service == 6 && !strcmp(r->valid_host, "localhost");
  for (size_t i = 0; ok && i < r->list_services_response->n_service; i++)
    ok = r->list_services_response->service[i]->name[0] != '\0';
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
  return ok;
}

static uint8_t *reflection_symbol(size_t *len) {
  Grpc__Reflection__V1__ServerReflectionRequest req =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req.file_containing_symbol = "larder.v1.OnlineStore";
  return pack(&req.base, len);
}

static int check_reflection_symbol(const uint8_t *p, size_t n) {
  Grpc__Reflection__V1__ServerReflectionResponse *r =
      grpc__reflection__v1__server_reflection_response__unpack(NULL, n, p);
  /* The file and what it imports: online_store.proto, EntityKey, Value, Timestamp. */
  int ok = r != NULL && r->file_descriptor_response != NULL &&
           r->file_descriptor_response->n_file_descriptor_proto >= 4;
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
  return ok;
}

/* ---- GrpcFeatureServer: Push and WriteToOnlineStore on push_store ---- */

/* A features map entry: PushRequest's and WriteToOnlineStoreRequest's share the layout. */
static void **text_map(const ProtobufCMessageDescriptor *d, const char *const *kv, size_t n) {
  void **entries = calloc(n + 1, sizeof *entries);
  for (size_t i = 0; i < n; i++) {
    PushRequest__FeaturesEntry *e = calloc(1, d->sizeof_message);
    protobuf_c_message_init(d, e);
    e->key = (char *)kv[2 * i];
    e->value = (char *)kv[2 * i + 1];
    entries[i] = e;
  }
  return entries;
}

static void **typed_map(const ProtobufCMessageDescriptor *d, const char *const *keys,
                        Feast__Types__Value **vals, size_t n) {
  void **entries = calloc(n + 1, sizeof *entries);
  for (size_t i = 0; i < n; i++) {
    PushRequest__TypedFeaturesEntry *e = calloc(1, d->sizeof_message);
    protobuf_c_message_init(d, e);
    e->key = (char *)keys[i];
    e->value = vals[i];
    entries[i] = e;
  }
  return entries;
}

static void free_map(void **entries, size_t n) {
  for (size_t i = 0; i < n; i++) free(entries[i]);
  free(entries);
}

/* driver_push as text: driver_stats, driver_live and driver_labels, driver 1001. */
static uint8_t *push_text_request(size_t *len) {
  static const char *const kv[] = {"driver_id",       "1001",
                                   "conv_rate",       "0.5",
                                   "trips",           "3",
                                   "speed",           "10",
                                   "label_ok",        "true",
                                   "event_timestamp", "2024-01-01T00:00:00Z",
                                   "created",         "2024-01-01T00:00:01Z"};
  enum { N = sizeof kv / sizeof kv[0] / 2 };
  PushRequest req = PUSH_REQUEST__INIT;
  void **entries = text_map(&push_request__features_entry__descriptor, kv, N);
  req.n_features = N;
  req.features = (PushRequest__FeaturesEntry **)entries;
  req.stream_feature_view = "driver_push";
  req.to = "online";
  uint8_t *b = pack(&req.base, len);
  free_map(entries, N);
  return b;
}

/* driver_push with typed_features: driver 1002, speed given as an int64 (stored as a double). */
static uint8_t *push_typed_request(size_t *len) {
  static const char *const keys[] = {"driver_id", "conv_rate", "trips",
                                     "speed",     "label_ok",  "event_timestamp"};
  enum { N = sizeof keys / sizeof keys[0] };
  Feast__Types__Value conv = FEAST__TYPES__VALUE__INIT, flag = FEAST__TYPES__VALUE__INIT,
                      ts = FEAST__TYPES__VALUE__INIT;
  conv.val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
  conv.double_val = 0.25;
  flag.val_case = FEAST__TYPES__VALUE__VAL_BOOL_VAL;
  flag.bool_val = 1;
  ts.val_case = FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL;
  ts.unix_timestamp_val = 1700000000;
  Feast__Types__Value *vals[N] = {int64_value(1002), &conv, int64_value(4),
                                  int64_value(7),    &flag, &ts};
  PushRequest req = PUSH_REQUEST__INIT;
  void **entries = typed_map(&push_request__typed_features_entry__descriptor, keys, vals, N);
  req.n_typed_features = N;
  req.typed_features = (PushRequest__TypedFeaturesEntry **)entries;
  req.stream_feature_view = "driver_push";
  uint8_t *b = pack(&req.base, len); /* to "": online over gRPC */
  free_map(entries, N);
  free(vals[0]);
  free(vals[2]);
  free(vals[3]);
  return b;
}

/* view plain: driver 7, x 70 as text. */
static uint8_t *write_text_request(size_t *len) {
  static const char *const kv[] = {"driver_id", "7", "x", "70", "event_timestamp", "2024-01-01"};
  WriteToOnlineStoreRequest req = WRITE_TO_ONLINE_STORE_REQUEST__INIT;
  void **entries = text_map(&write_to_online_store_request__features_entry__descriptor, kv, 3);
  req.n_features = 3;
  req.features = (WriteToOnlineStoreRequest__FeaturesEntry **)entries;
  req.feature_view_name = "plain";
  uint8_t *b = pack(&req.base, len);
  free_map(entries, 3);
  return b;
}

/* view plain: driver 8, x given as an int32 5, the time as ISO text. */
static uint8_t *write_typed_request(size_t *len) {
  static const char *const keys[] = {"driver_id", "x", "event_timestamp"};
  Feast__Types__Value x = FEAST__TYPES__VALUE__INIT, ts = FEAST__TYPES__VALUE__INIT;
  x.val_case = FEAST__TYPES__VALUE__VAL_INT32_VAL;
  x.int32_val = 5;
  ts.val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
  ts.string_val = "2024-01-01T00:00:00Z";
  Feast__Types__Value *vals[] = {int64_value(8), &x, &ts};
  WriteToOnlineStoreRequest req = WRITE_TO_ONLINE_STORE_REQUEST__INIT;
  void **entries =
      typed_map(&write_to_online_store_request__typed_features_entry__descriptor, keys, vals, 3);
  req.n_typed_features = 3;
  req.typed_features = (WriteToOnlineStoreRequest__TypedFeaturesEntry **)entries;
  req.feature_view_name = "plain";
  uint8_t *b = pack(&req.base, len);
  free_map(entries, 3);
  free(vals[0]);
  return b;
}

/* The rows of push_store's `view` matching `where`. */
static int count_rows(const char *view, const char *where) {
  char path[128], sql[512];
  snprintf(path, sizeof path, "%s/online.db", push_store.dir);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM " LDR_TEST_PROJECT "_%s WHERE %s", view, where);
  sqlite3 *d = NULL;
  sqlite3_stmt *q = NULL;
  int n = -1;
  if (sqlite3_open_v2(path, &d, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(d, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
    n = sqlite3_column_int(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(d);
  return n;
}

/* Every row of push_store's tables, and emptying them. */
static int push_store_rows(void) {
  int n = 0;
  for (size_t i = 0; ldr_test_push_views[i] != NULL; i++)
    n += count_rows(ldr_test_push_views[i], "1");
  return n;
}

static void clear_push_store(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/online.db", push_store.dir);
  sqlite3 *d = NULL;
  assert_int_equal(sqlite3_open_v2(path, &d, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(d, 5000);
  for (size_t i = 0; ldr_test_push_views[i] != NULL; i++) {
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM " LDR_TEST_PROJECT "_%s", ldr_test_push_views[i]);
    assert_int_equal(sqlite3_exec(d, sql, NULL, NULL, NULL), SQLITE_OK);
  }
  sqlite3_close(d);
  assert_int_equal(push_store_rows(), 0);
}

/* status: true, and what the request wrote, value bytes and times. */
static int status_true(const uint8_t *p, size_t n) { return n == 2 && p[0] == 0x08 && p[1] == 1; }

static int check_push_text(const uint8_t *p, size_t n) {
  static const char when[] = "event_ts = 1704067200 AND created_ts = 1704067201";
  return status_true(p, n) &&
         count_rows("driver_stats", "feature_name = 'conv_rate' AND value = x'29000000000000e03f' "
                                    "AND event_ts = 1704067200 AND created_ts = 1704067201") == 1 &&
         count_rows("driver_stats", "feature_name = 'trips' AND value = x'2003'") == 1 &&
         count_rows("driver_live", when) == 1 && count_rows("driver_labels", when) == 1;
}

static int check_push_typed(const uint8_t *p, size_t n) {
  return status_true(p, n) &&
         count_rows("driver_live", "value = x'290000000000001c40' AND event_ts = 1700000000 AND "
                                   "created_ts IS NULL") == 1 &&
         count_rows("driver_stats", "event_ts = 1700000000") == 2 &&
         count_rows("driver_labels", "value = x'3801'") >= 1;
}

static int check_write_text(const uint8_t *p, size_t n) {
  return status_true(p, n) && count_rows("plain", "value = x'2046' AND event_ts = 1704067200") == 1;
}

static int check_write_typed(const uint8_t *p, size_t n) {
  return status_true(p, n) && count_rows("plain", "value = x'2005' AND event_ts = 1704067200") == 1;
}

/* ---- the sweep ---- */

enum path { HANDLER, READ_CALL_ARENA, READ_BATCH_ARENA };

static const struct oom_case {
  const char *name;
  const char *method; /* a path of ldr_methods */
  enum path path;
  uint8_t *(*request)(size_t *len);
  int (*check)(const uint8_t *p, size_t n);
  struct ldr_test_store *store; /* NULL: registry_example's */
} cases[] = {
    /* First the write: the reads after it find its rows. */
    {"OnlineWriteBatch", "/larder.v1.OnlineStore/OnlineWriteBatch", HANDLER, write_request,
     check_write, NULL},
    {"OnlineRead (prepare, read_jobs, reply in one arena)", "/larder.v1.OnlineStore/OnlineRead",
     READ_CALL_ARENA, read_request, check_read, NULL},
    {"OnlineRead (read_jobs in the batch arena)", "/larder.v1.OnlineStore/OnlineRead",
     READ_BATCH_ARENA, read_request, check_read, NULL},
    {"Update", "/larder.v1.OnlineStore/Update", HANDLER, update_request, check_empty, NULL},
    {"Teardown", "/larder.v1.OnlineStore/Teardown", HANDLER, teardown_request, check_empty, NULL},
    {"GetOnlineFeatures", "/feast.serving.ServingService/GetOnlineFeatures", HANDLER, gof_request,
     check_gof, NULL},
    {"GrpcFeatureServer/GetOnlineFeatures", "/GrpcFeatureServer/GetOnlineFeatures", HANDLER,
     gof_request, check_gof, NULL},
    {"GetFeastServingInfo", "/feast.serving.ServingService/GetFeastServingInfo", HANDLER,
     info_request, check_info, NULL},
    {"Health/Check", "/grpc.health.v1.Health/Check", HANDLER, health_request, check_health, NULL},
    {"reflection: list_services", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
     HANDLER, reflection_list, check_reflection_list, NULL},
    {"reflection: file_containing_symbol",
     "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", HANDLER, reflection_symbol,
     check_reflection_symbol, NULL},
    {"GrpcFeatureServer/Push (features)", "/GrpcFeatureServer/Push", HANDLER, push_text_request,
     check_push_text, &push_store},
    {"GrpcFeatureServer/Push (typed_features)", "/GrpcFeatureServer/Push", HANDLER,
     push_typed_request, check_push_typed, &push_store},
    {"GrpcFeatureServer/WriteToOnlineStore (features)", "/GrpcFeatureServer/WriteToOnlineStore",
     HANDLER, write_text_request, check_write_text, &push_store},
    {"GrpcFeatureServer/WriteToOnlineStore (typed_features)",
     "/GrpcFeatureServer/WriteToOnlineStore", HANDLER, write_typed_request, check_write_typed,
     &push_store},
};

static const struct ldr_method *method_of(const char *path) {
  for (size_t i = 0; i < ldr_n_methods; i++)
    if (!strcmp(ldr_methods[i].path, path)) return &ldr_methods[i];
  fail_msg("no method %s", path);
  return NULL;
}

/* One run of `oc` with the arena capped at `cap`; returns its code. */
static enum ldr_rc run(const struct oom_case *oc, const uint8_t *req, size_t len, size_t cap,
                       int *reply_ok) {
  struct ldr_arena call, batch;
  /* A small first block, so that the cap and not the block size decides. */
  ldr_arena_init(&call, 16, oc->path == READ_BATCH_ARENA ? 0 : cap);
  ldr_arena_init(&batch, 16, cap);
  struct ldr_test_store *st = oc->store ? oc->store : &store;
  struct ldr_handler_ctx ctx = {
      .cfg = &st->cfg,
      .backend = st->backend,
      .arena = &call,
      .req = req,
      .req_len = len,
      .registry = st->registry,
      .worker = &worker,
  };
  ldr_err_clear(&ctx.err);
  const struct ldr_method *m = method_of(oc->method);
  enum ldr_rc rc;
  if (m->batched) {
    struct ldr_read_job job, *jobs[1] = {&job};
    rc = ldr_read_prepare(&ctx, &job);
    if (rc == LDR_OK)
      rc = ldr_read_jobs(&st->cfg, st->backend, jobs, 1,
                         oc->path == READ_BATCH_ARENA ? &batch : &call, &worker, &ctx.err);
    if (rc == LDR_OK) rc = ldr_read_reply(&ctx, &job);
  } else {
    rc = m->fn(&ctx);
  }
  *reply_ok = 0;
  if (rc == LDR_OK) {
    *reply_ok = oc->check(GRPC_SLICE_START_PTR(ctx.reply), GRPC_SLICE_LENGTH(ctx.reply));
    grpc_slice_unref(ctx.reply);
  } else {
    if (ctx.err.rc != rc || ctx.err.msg[0] == '\0')
      fail_msg("%s, cap %zu: %s without its message", oc->name, cap, ldr_rc_str(rc));
    /* A failed call sets no reply: one set here would never be released. */
    if (ctx.reply.refcount != NULL || GRPC_SLICE_LENGTH(ctx.reply) != 0)
      fail_msg("%s, cap %zu: a reply was left behind with %s", oc->name, cap, ldr_rc_str(rc));
  }
  ldr_arena_destroy(&call);
  ldr_arena_destroy(&batch);
  return rc;
}

static void sweep(void **state) {
  const struct oom_case *oc = *state;
  size_t len = 0;
  uint8_t *req = oc->request(&len);
  size_t cap = 1, runs = 0, exhausted = 0;
  int reply_ok = 0;
  enum ldr_rc rc;
  for (;;) {
    rc = run(oc, req, len, cap, &reply_ok);
    runs++;
    if (rc == LDR_OK) break;
    if (rc != LDR_EXHAUSTED) {
      /* Run it again without a cap, to tell a handler bug from the cap's. */
      int unlimited_ok = 0;
      enum ldr_rc plain = run(oc, req, len, 0, &unlimited_ok);
      fail_msg("%s, cap %zu: %s, want OK or RESOURCE_EXHAUSTED (without a cap: %s)", oc->name, cap,
               ldr_rc_str(rc), ldr_rc_str(plain));
    }
    exhausted++;
    if (cap >= SWEEP_MAX) fail_msg("%s: still exhausted at a cap of %zu bytes", oc->name, cap);
    cap = cap < SWEEP_STEP_LIMIT ? cap + 1 : cap + cap / 20;
  }
  if (!reply_ok)
    fail_msg("%s: the first run that succeeded (cap %zu) gave a wrong reply", oc->name, cap);
  if (oc->store == &push_store) {
    /* A write refused for memory writes nothing: the run just below the cap
     * that sufficed (the refusal latest in the handler), on empty tables,
     * leaves them empty; then the run at the cap writes again. */
    clear_push_store();
    if ((rc = run(oc, req, len, cap - 1, &reply_ok)) != LDR_EXHAUSTED)
      fail_msg("%s, cap %zu: %s on a second run", oc->name, cap - 1, ldr_rc_str(rc));
    if (push_store_rows() != 0)
      fail_msg("%s, cap %zu: RESOURCE_EXHAUSTED, and %d rows written", oc->name, cap - 1,
               push_store_rows());
    if ((rc = run(oc, req, len, cap, &reply_ok)) != LDR_OK || !reply_ok)
      fail_msg("%s, cap %zu: %s on a second run", oc->name, cap, ldr_rc_str(rc));
  }
  free(req);
  print_message("%s: OK from a cap of %zu bytes (%zu runs, %zu RESOURCE_EXHAUSTED)\n", oc->name,
                cap, runs, exhausted);
  /* A sweep that never met the cap tested nothing of the out-of-memory paths,
   * unless the handler takes no memory from the arena at all. */
  if (exhausted == 0 && strcmp(oc->name, "GetFeastServingInfo"))
    fail_msg("%s: succeeded at a cap of 1 byte", oc->name);
}

int main(void) {
  static const char *const views[] = {LDR_TEST_VIEW, NULL};
  now_s = (int64_t)time(NULL);
  ldr_log_set_level(LDR_LOG_ERROR);
  ldr_test_store_open(&store, "  admin_rpcs: true\n", 1, views);
  size_t reg_len;
  uint8_t *reg = ldr_test_push_registry(&reg_len);
  ldr_test_store_open_registry(&push_store, NULL, reg, reg_len, ldr_test_push_views);
  free(reg);
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_reflection_init(&err) != LDR_OK) {
    fprintf(stderr, "reflection: %s\n", err.msg);
    return 1;
  }
  struct CMUnitTest tests[sizeof cases / sizeof cases[0]];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    tests[i] = (struct CMUnitTest){cases[i].name, sweep, NULL, NULL, (void *)&cases[i]};
  int failed = _cmocka_run_group_tests("oom", tests, sizeof tests / sizeof tests[0], NULL, NULL);
  ldr_reflection_free();
  ldr_test_store_close(&push_store);
  ldr_test_store_close(&store);
  return failed;
}
