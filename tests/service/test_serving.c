/*
 * ServingService on the wire: Feast's golden GetOnlineFeatures messages of
 * vectors.json. larder's hand-written response encoder reproduces Feast's
 * response byte for byte, and the requests Feast's client sends decode as
 * they are described. Then GetOnlineFeatures itself on a real SQLite store
 * with Feast's registry_example (driver_hourly_stats, ttl one day): the TTL
 * rule at its boundary, enforce_ttl off, max_columns and the request checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/log.h"
#include "feast/serving/ServingService.pb-c.h"
#include "service/service_int.h"
#include "tests/support/store.h"
#include "tests/support/support.h"

static struct ldr_arena arena;
static json_object *vectors;

static const uint8_t *golden(const char *name, size_t *len) {
  json_object *list = ldr_test_get(vectors, "serving_proto_wire");
  for (size_t i = 0; i < json_object_array_length(list); i++) {
    json_object *rec = json_object_array_get_idx(list, i);
    if (!strcmp(json_object_get_string(ldr_test_get(rec, "name")), name))
      return ldr_test_unhex(&arena, json_object_get_string(ldr_test_get(rec, "proto_hex")), len);
  }
  fail_msg("no record %s", name);
  return NULL;
}

/* metadata.feature_names=[driver_id, conv_rate]; driver_id 1001, 1002; conv_rate
 * 0.5 PRESENT at 1700000000 for 1001, NOT_FOUND for 1002. */
static void response_example(void **state) {
  (void)state;
  static const uint8_t v1001[] = {0x20, 0xe9, 0x07}, v1002[] = {0x20, 0xea, 0x07};
  static const uint8_t half[] = {0x29, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f};
  struct ldr_cell keys[2] = {{v1001, 3, LDR_FIELD_PRESENT, 0, {0, 0}},
                             {v1002, 3, LDR_FIELD_PRESENT, 0, {0, 0}}};
  struct ldr_cell conv[2] = {{half, 9, LDR_FIELD_PRESENT, 1, {1700000000, 0}},
                             {NULL, 0, LDR_FIELD_NOT_FOUND, 0, {0, 0}}};
  struct ldr_column cols[2] = {{"driver_id", keys}, {"conv_rate", conv}};
  grpc_slice out;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_serving_encode(cols, 2, 2, NULL, 0, 1 << 20, &out, &err), LDR_OK);
  size_t n;
  const uint8_t *want = golden("GetOnlineFeaturesResponse_example", &n);
  assert_string_equal(ldr_test_hex(&arena, GRPC_SLICE_START_PTR(out), GRPC_SLICE_LENGTH(out)),
                      ldr_test_hex(&arena, want, n));
  grpc_slice_unref(out);

  /* The same with nanoseconds, OUTSIDE_MAX_AGE and view metadata: protobuf-c reads it back. */
  conv[0].ts.ns = 123456000;
  conv[1] = (struct ldr_cell){NULL, 0, LDR_FIELD_OUTSIDE_MAX_AGE, 1, {-5, 0}};
  const struct ldr_serving_view views[] = {{"driver_hourly_stats", 3}, {"stats", 0}};
  assert_int_equal(ldr_serving_encode(cols, 2, 2, views, 2, 1 << 20, &out, &err), LDR_OK);
  Feast__Serving__GetOnlineFeaturesResponse *r =
      feast__serving__get_online_features_response__unpack(NULL, GRPC_SLICE_LENGTH(out),
                                                           GRPC_SLICE_START_PTR(out));
  assert_non_null(r);
  assert_int_equal(r->metadata->n_feature_view_metadata, 2);
  assert_string_equal(r->metadata->feature_view_metadata[0]->name, "driver_hourly_stats");
  assert_int_equal(r->metadata->feature_view_metadata[0]->version, 3);
  assert_string_equal(r->metadata->feature_view_metadata[1]->name, "stats");
  assert_int_equal(r->metadata->feature_view_metadata[1]->version, 0);
  assert_int_equal(r->n_results, 2);
  Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *c = r->results[1];
  assert_int_equal(c->n_values, 2);
  assert_true(c->values[0]->double_val == 0.5);
  assert_int_equal(c->values[1]->val_case, FEAST__TYPES__VALUE__VAL__NOT_SET);
  assert_int_equal(c->n_statuses, 2);
  assert_int_equal(c->statuses[1], FEAST__SERVING__FIELD_STATUS__OUTSIDE_MAX_AGE);
  assert_int_equal(c->event_timestamps[0]->nanos, 123456000);
  assert_int_equal(c->event_timestamps[1]->seconds, -5);
  feast__serving__get_online_features_response__free_unpacked(r, NULL);
  grpc_slice_unref(out);

  /* Too big for the limit: RESOURCE_EXHAUSTED, and no slice made (none to release). */
  ldr_err_clear(&err);
  out = grpc_empty_slice();
  assert_int_equal(ldr_serving_encode(cols, 2, 2, NULL, 0, 40, &out, &err), LDR_EXHAUSTED);
  assert_non_null(strstr(err.msg, "max_message_bytes"));
  assert_null(out.refcount);
  assert_int_equal(GRPC_SLICE_LENGTH(out), 0);
  /* The limit is the encoded size itself: exactly that many bytes fit, one less does not. */
  assert_int_equal(ldr_serving_encode(cols, 2, 2, NULL, 0, 1 << 20, &out, &err), LDR_OK);
  size_t exact = GRPC_SLICE_LENGTH(out);
  grpc_slice_unref(out);
  assert_int_equal(ldr_serving_encode(cols, 2, 2, NULL, 0, exact, &out, &err), LDR_OK);
  assert_int_equal(GRPC_SLICE_LENGTH(out), exact);
  grpc_slice_unref(out);
  ldr_err_clear(&err);
  assert_int_equal(ldr_serving_encode(cols, 2, 2, NULL, 0, exact - 1, &out, &err), LDR_EXHAUSTED);
}

static void requests_feast_sends(void **state) {
  (void)state;
  size_t n;
  const uint8_t *b = golden("GetOnlineFeaturesRequest_features", &n);
  Feast__Serving__GetOnlineFeaturesRequest *q =
      feast__serving__get_online_features_request__unpack(NULL, n, b);
  assert_non_null(q);
  assert_int_equal(q->kind_case, FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES);
  assert_int_equal(q->features->n_val, 2);
  assert_string_equal(q->features->val[0], "driver_hourly_stats:conv_rate");
  assert_string_equal(q->features->val[1], "driver_hourly_stats:acc_rate");
  assert_int_equal(q->n_entities, 1);
  assert_string_equal(q->entities[0]->key, "driver_id");
  assert_int_equal(q->entities[0]->value->n_val, 2);
  assert_int_equal(q->entities[0]->value->val[1]->int64_val, 1002);
  assert_false(q->full_feature_names);
  feast__serving__get_online_features_request__free_unpacked(q, NULL);

  b = golden("GetOnlineFeaturesRequest_feature_service", &n);
  q = feast__serving__get_online_features_request__unpack(NULL, n, b);
  assert_non_null(q);
  assert_int_equal(q->kind_case, FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE);
  assert_string_equal(q->feature_service, "driver_activity");
  assert_true(q->full_feature_names);
  assert_int_equal(q->entities[0]->value->val[0]->int64_val, 1001);
  feast__serving__get_online_features_request__free_unpacked(q, NULL);

  /* GetFeastServingInfo: Go's answer "0.0.1" encodes as Feast's bytes. */
  Feast__Serving__GetFeastServingInfoResponse info =
      FEAST__SERVING__GET_FEAST_SERVING_INFO_RESPONSE__INIT;
  info.version = "0.0.1";
  uint8_t buf[16];
  size_t len = feast__serving__get_feast_serving_info_response__pack(&info, buf);
  b = golden("GetFeastServingInfoResponse", &n);
  assert_int_equal(len, n);
  assert_memory_equal(buf, b, n);
}

/* ---- GetOnlineFeatures on a store ---- */

static struct ldr_test_store ttl_on, ttl_off;
#define DAY 86400

/* Writes conv_rate = id / 10 for driver `id` at event time `ts` (whole seconds). */
static void put_driver(struct ldr_test_store *st, int64_t id, int64_t ts) {
  Feast__Types__EntityKey ek = FEAST__TYPES__ENTITY_KEY__INIT;
  Feast__Types__Value key = FEAST__TYPES__VALUE__INIT, val = FEAST__TYPES__VALUE__INIT;
  Feast__Types__Value *vals[] = {&key};
  char *names[] = {"driver_id"};
  key.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
  key.int64_val = id;
  ek.n_join_keys = ek.n_entity_values = 1;
  ek.join_keys = names;
  ek.entity_values = vals;
  val.val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
  val.double_val = (double)id / 10;
  uint8_t bytes[16];
  struct ldr_write_feature f = {"conv_rate", &val, bytes, feast__types__value__pack(&val, bytes)};
  struct ldr_err err;
  ldr_err_clear(&err);
  struct ldr_write_row row = {.features = &f, .n_features = 1, .event_ts = {ts, 0}};
  assert_int_equal(ldr_entity_key_serialize(&ek, 3, &arena, &row.key, &err), LDR_OK);
  char table[LDR_TABLE_NAME_MAX + 1];
  assert_int_equal(ldr_table_name(LDR_TEST_PROJECT, LDR_TEST_VIEW, "v", table, &err), LDR_OK);
  struct ldr_write w = {table, &row, 1, NULL};
  if (st->backend->ops->write(st->backend, &w, 1, &arena, &err) != LDR_OK) fail_msg("%s", err.msg);
}

/* A GetOnlineFeaturesRequest for `refs` and driver_id column `ids`, plus
 * `extra` request_context columns of as many rows. */
static uint8_t *gof(const char *const *refs, size_t nrefs, const int64_t *ids, size_t n,
                    size_t extra, size_t *len) {
  Feast__Serving__GetOnlineFeaturesRequest req = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__INIT;
  Feast__Serving__FeatureList fl = FEAST__SERVING__FEATURE_LIST__INIT;
  fl.n_val = nrefs;
  fl.val = (char **)refs;
  req.kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES;
  req.features = &fl;
  Feast__Types__RepeatedValue col = FEAST__TYPES__REPEATED_VALUE__INIT;
  Feast__Types__Value *vals[16];
  for (size_t i = 0; i < n; i++) {
    vals[i] = ldr_arena_calloc(&arena, 1, sizeof *vals[i]);
    feast__types__value__init(vals[i]);
    vals[i]->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    vals[i]->int64_val = ids[i];
  }
  col.n_val = n;
  col.val = vals;
  Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry
      ent = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__ENTITIES_ENTRY__INIT,
      rc[4];
  Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *ents[] = {&ent}, *rcs[4];
  static const char *const rc_names[] = {"rc0", "rc1", "rc2", "rc3"};
  ent.key = "driver_id";
  ent.value = &col;
  req.n_entities = 1;
  req.entities = ents;
  for (size_t i = 0; i < extra; i++) {
    feast__serving__get_online_features_request__entities_entry__init(&rc[i]);
    rc[i].key = (char *)rc_names[i];
    rc[i].value = &col;
    rcs[i] = &rc[i];
  }
  req.n_request_context = extra;
  req.request_context = (Feast__Serving__GetOnlineFeaturesRequest__RequestContextEntry **)rcs;
  *len = feast__serving__get_online_features_request__get_packed_size(&req);
  uint8_t *b = ldr_arena_alloc(&arena, *len + 1);
  feast__serving__get_online_features_request__pack(&req, b);
  return b;
}

static enum ldr_rc run_gof(struct ldr_test_store *st, const uint8_t *req, size_t len,
                           struct ldr_err *err, Feast__Serving__GetOnlineFeaturesResponse **out) {
  struct ldr_handler_ctx c = {.cfg = &st->cfg,
                              .backend = st->backend,
                              .arena = &arena,
                              .req = req,
                              .req_len = len,
                              .registry = st->registry};
  ldr_err_clear(&c.err);
  enum ldr_rc rc = ldr_get_online_features(&c);
  *err = c.err;
  *out = NULL;
  if (rc == LDR_OK) {
    *out = feast__serving__get_online_features_response__unpack(NULL, GRPC_SLICE_LENGTH(c.reply),
                                                                GRPC_SLICE_START_PTR(c.reply));
    assert_non_null(*out);
    grpc_slice_unref(c.reply);
  }
  return rc;
}

static int64_t wall_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec;
}

/* now - event_ts > ttl in whole seconds, as Feast's Go server (REGISTRY.md
 * §7.3): a value stored exactly a day ago (whole seconds) is not expired a
 * fraction of a second later; one a second older is. With enforce_ttl off
 * nothing expires. */
static void ttl_rule(void **state) {
  (void)state;
  static const struct {
    int64_t age_s; /* the stored event_ts is now - age_s, in whole seconds */
    int status_on, status_off;
  } cases[] = {
      {DAY + 100, LDR_FIELD_OUTSIDE_MAX_AGE, LDR_FIELD_PRESENT},
      {DAY + 1, LDR_FIELD_OUTSIDE_MAX_AGE, LDR_FIELD_PRESENT},
      {DAY, LDR_FIELD_PRESENT, LDR_FIELD_PRESENT}, /* and the fraction of this second */
      {DAY - 1, LDR_FIELD_PRESENT, LDR_FIELD_PRESENT},
      {10, LDR_FIELD_PRESENT, LDR_FIELD_PRESENT},
      {-3600, LDR_FIELD_PRESENT, LDR_FIELD_PRESENT}, /* from the future */
  };
  enum { N = sizeof cases / sizeof cases[0] };
  static const char *const refs[] = {LDR_TEST_VIEW ":conv_rate"};
  for (int attempt = 0;; attempt++) {
    /* The boundary case needs the read in the second its timestamp was taken in. */
    int64_t now = wall_s();
    int64_t ids[N];
    for (size_t i = 0; i < N; i++) {
      ids[i] = 1000 + (int64_t)i;
      put_driver(&ttl_on, ids[i], now - cases[i].age_s);
      put_driver(&ttl_off, ids[i], now - cases[i].age_s);
    }
    size_t len;
    uint8_t *req = gof(refs, 1, ids, N, 0, &len);
    struct ldr_err err;
    Feast__Serving__GetOnlineFeaturesResponse *on = NULL, *off = NULL;
    assert_int_equal(run_gof(&ttl_on, req, len, &err, &on), LDR_OK);
    assert_int_equal(run_gof(&ttl_off, req, len, &err, &off), LDR_OK);
    int same_second = wall_s() == now;
    if (same_second || attempt == 5) {
      assert_true(same_second);
      for (size_t i = 0; i < N; i++) {
        const Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *a = on->results[1],
                                                                       *b = off->results[1];
        if ((int)a->statuses[i] != cases[i].status_on || (int)b->statuses[i] != cases[i].status_off)
          fail_msg("age %lld s: statuses %d / %d, want %d / %d", (long long)cases[i].age_s,
                   a->statuses[i], b->statuses[i], cases[i].status_on, cases[i].status_off);
        /* The stored event time is shown either way. */
        assert_int_equal(a->event_timestamps[i]->seconds, now - cases[i].age_s);
        assert_true(b->values[i]->double_val == (double)ids[i] / 10);
      }
    }
    feast__serving__get_online_features_response__free_unpacked(on, NULL);
    feast__serving__get_online_features_response__free_unpacked(off, NULL);
    ldr_arena_reset(&arena);
    if (same_second) break;
  }
}

static void request_checks(void **state) {
  (void)state;
  static const char *const conv[] = {LDR_TEST_VIEW ":conv_rate"};
  static const char *const bad_view[] = {LDR_TEST_VIEW ":conv_rate", "nope:conv_rate"};
  static const char *const bad_feature[] = {LDR_TEST_VIEW ":nope"};
  static const char *const not_a_ref[] = {"conv_rate"};
  static const int64_t ids[] = {1, 2, 3, 4, 5, 6, 7};
  static const struct {
    const char *what;
    const char *const *refs;
    size_t nrefs, rows, extra;
    enum ldr_rc rc;
    const char *msg;
  } cases[] = {
      {"max_columns columns", conv, 1, 2, 1, LDR_OK, ""},
      {"one column too many", conv, 1, 2, 2, LDR_INVALID,
       "entities: 3 entity and request_context columns, more than larder.max_columns (2)"},
      {"max_batch_rows rows", conv, 1, 6, 0, LDR_OK, ""},
      {"one row too many", conv, 1, 7, 0, LDR_EXHAUSTED,
       "entities: 7 rows exceed larder.max_batch_rows (6)"},
      {"unknown view", bad_view, 2, 1, 0, LDR_INVALID,
       "features[1]: feature view nope does not exist in project my_project"},
      {"unknown feature", bad_feature, 1, 1, 0, LDR_INVALID,
       "features[0]: feature view 'driver_hourly_stats' has no feature 'nope'"},
      {"not a reference", not_a_ref, 1, 1, 0, LDR_INVALID,
       "features[0]: 'conv_rate' is not a feature reference 'view:feature'"},
      {"no features", conv, 0, 1, 0, LDR_INVALID, "features: required"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len;
    uint8_t *req = gof(cases[i].refs, cases[i].nrefs, ids, cases[i].rows, cases[i].extra, &len);
    struct ldr_err err;
    Feast__Serving__GetOnlineFeaturesResponse *r = NULL;
    enum ldr_rc rc = run_gof(&ttl_on, req, len, &err, &r);
    if (rc != cases[i].rc || strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)))
      fail_msg("%s: %s '%s', want %s '%s'", cases[i].what, ldr_rc_str(rc), err.msg,
               ldr_rc_str(cases[i].rc), cases[i].msg);
    if (r) {
      assert_int_equal(r->results[0]->n_values, cases[i].rows);
      feast__serving__get_online_features_response__free_unpacked(r, NULL);
    }
    ldr_arena_reset(&arena);
  }
  /* Without a registry: FAILED_PRECONDITION. */
  size_t len;
  uint8_t *req = gof(conv, 1, ids, 1, 0, &len);
  struct ldr_test_store none = ttl_on;
  none.registry = NULL;
  struct ldr_err err;
  Feast__Serving__GetOnlineFeaturesResponse *r = NULL;
  assert_int_equal(run_gof(&none, req, len, &err, &r), LDR_FAILED_PRECONDITION);
  assert_non_null(strstr(err.msg, "registry"));
  ldr_arena_reset(&arena);
}

int main(void) {
  static const char *const views[] = {LDR_TEST_VIEW, NULL};
  ldr_log_set_level(LDR_LOG_ERROR);
  ldr_test_store_open(&ttl_on, "  max_columns: 2\n  max_batch_rows: 6\n", 1, views);
  ldr_test_store_open(&ttl_off, "  enforce_ttl: false\n", 1, views);
  ldr_arena_init(&arena, 65536, 0);
  vectors = ldr_test_json_file(ldr_test_data("vectors.json"));
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(response_example),
      cmocka_unit_test(requests_feast_sends),
      cmocka_unit_test(ttl_rule),
      cmocka_unit_test(request_checks),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  ldr_test_store_close(&ttl_off);
  ldr_test_store_close(&ttl_on);
  json_object_put(vectors);
  ldr_arena_destroy(&arena);
  return failed;
}
