/*
 * ServingService on the wire: Feast's golden GetOnlineFeatures messages of
 * vectors.json. larder's hand-written response encoder reproduces Feast's
 * response byte for byte, and the requests Feast's client sends decode as
 * they are described.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "feast/serving/ServingService.pb-c.h"
#include "service/service_int.h"
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

  /* Too big for the limit: RESOURCE_EXHAUSTED, and nothing allocated. */
  ldr_err_clear(&err);
  assert_int_equal(ldr_serving_encode(cols, 2, 2, NULL, 0, 40, &out, &err), LDR_EXHAUSTED);
  assert_non_null(strstr(err.msg, "max_message_bytes"));
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

int main(void) {
  ldr_arena_init(&arena, 65536, 0);
  vectors = ldr_test_json_file(ldr_test_data("vectors.json"));
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(response_example),
      cmocka_unit_test(requests_feast_sends),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  json_object_put(vectors);
  ldr_arena_destroy(&arena);
  return failed;
}
