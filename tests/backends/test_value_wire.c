/*
 * Every value_proto_wire record of vectors.json (Value bytes from Feast's
 * protoc-generated Python classes), and the entity_key_proto_wire records:
 * a Value built from the record's description encodes to exactly those bytes,
 * and the bytes decode to that Value and encode again unchanged.
 * Usage: test_value_wire value|entity_key [INDEX].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backends/backend.h"
#include "tests/support/support.h"

/* A message of type T in the arena, set to its INIT value. */
#define NEW(a, T, init) ((T *)ldr_arena_memdup((a), &(T)init, sizeof(T)))

static char *str(struct ldr_arena *a, const char *s) { return ldr_arena_memdup(a, s, strlen(s)); }

static Feast__Types__Value *scalar(struct ldr_arena *a, Feast__Types__Value__ValCase c) {
  Feast__Types__Value *v = ldr_arena_alloc(a, sizeof *v);
  feast__types__value__init(v);
  v->val_case = c;
  return v;
}

/* Builds the Value each record describes, from the words of its "desc". */
static Feast__Types__Value *build(struct ldr_arena *a, const char *name) {
  Feast__Types__Value *v;
  if (!strcmp(name, "int64_1001") || !strcmp(name, "int64_neg1") ||
      !strcmp(name, "int64_zero_set")) {
    v = scalar(a, FEAST__TYPES__VALUE__VAL_INT64_VAL);
    v->int64_val = !strcmp(name, "int64_1001") ? 1001 : !strcmp(name, "int64_neg1") ? -1 : 0;
  } else if (!strcmp(name, "int32_neg1")) {
    v = scalar(a, FEAST__TYPES__VALUE__VAL_INT32_VAL);
    v->int32_val = -1;
  } else if (!strcmp(name, "double_1_5")) {
    v = scalar(a, FEAST__TYPES__VALUE__VAL_DOUBLE_VAL);
    v->double_val = 1.5;
  } else if (!strcmp(name, "float_0_5")) {
    v = scalar(a, FEAST__TYPES__VALUE__VAL_FLOAT_VAL);
    v->float_val = 0.5f;
  } else if (!strcmp(name, "string_hello") || !strcmp(name, "string_empty")) {
    v = scalar(a, FEAST__TYPES__VALUE__VAL_STRING_VAL);
    /* Our own buffer, never protobuf_c_empty_string, which protobuf-c omits (SPEC §7.9). */
    v->string_val = str(a, !strcmp(name, "string_hello") ? "hello" : "");
  } else if (!strcmp(name, "bytes_00ff")) {
    v = scalar(a, FEAST__TYPES__VALUE__VAL_BYTES_VAL);
    v->bytes_val.data = ldr_test_unhex(a, "00ff", &v->bytes_val.len);
  } else if (!strcmp(name, "bool_true") || !strcmp(name, "bool_false")) {
    v = scalar(a, FEAST__TYPES__VALUE__VAL_BOOL_VAL);
    v->bool_val = !strcmp(name, "bool_true");
  } else if (!strcmp(name, "null")) {
    v = scalar(a, FEAST__TYPES__VALUE__VAL_NULL_VAL);
    v->null_val = FEAST__TYPES__NULL__NULL;
  } else if (!strcmp(name, "unset")) {
    v = scalar(a, FEAST__TYPES__VALUE__VAL__NOT_SET);
  } else if (!strcmp(name, "unix_ts_1700000000")) {
    v = scalar(a, FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL);
    v->unix_timestamp_val = 1700000000;
  } else if (!strcmp(name, "int64_list") || !strcmp(name, "empty_int64_list") ||
             !strcmp(name, "unix_ts_list")) {
    static const int64_t four[] = {1, 2, 300, -1}, ts[] = {1700000000, 0};
    Feast__Types__Int64List *l = NEW(a, Feast__Types__Int64List, FEAST__TYPES__INT64_LIST__INIT);
    if (!strcmp(name, "int64_list")) {
      l->n_val = 4;
      l->val = (int64_t *)four;
      v = scalar(a, FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL);
    } else if (!strcmp(name, "unix_ts_list")) {
      l->n_val = 2;
      l->val = (int64_t *)ts;
      v = scalar(a, FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_LIST_VAL);
    } else {
      v = scalar(a, FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL);
    }
    v->int64_list_val = l; /* the same union slot for unix_timestamp_list_val */
  } else if (!strcmp(name, "int32_list")) {
    static const int32_t vals[] = {1, -1};
    Feast__Types__Int32List *l = NEW(a, Feast__Types__Int32List, FEAST__TYPES__INT32_LIST__INIT);
    l->n_val = 2;
    l->val = (int32_t *)vals;
    v = scalar(a, FEAST__TYPES__VALUE__VAL_INT32_LIST_VAL);
    v->int32_list_val = l;
  } else if (!strcmp(name, "double_list")) {
    static const double vals[] = {1.0, -2.5};
    Feast__Types__DoubleList *l = NEW(a, Feast__Types__DoubleList, FEAST__TYPES__DOUBLE_LIST__INIT);
    l->n_val = 2;
    l->val = (double *)vals;
    v = scalar(a, FEAST__TYPES__VALUE__VAL_DOUBLE_LIST_VAL);
    v->double_list_val = l;
  } else if (!strcmp(name, "float_list")) {
    static const float vals[] = {0.5f, 2.0f};
    Feast__Types__FloatList *l = NEW(a, Feast__Types__FloatList, FEAST__TYPES__FLOAT_LIST__INIT);
    l->n_val = 2;
    l->val = (float *)vals;
    v = scalar(a, FEAST__TYPES__VALUE__VAL_FLOAT_LIST_VAL);
    v->float_list_val = l;
  } else if (!strcmp(name, "bool_list")) {
    static const protobuf_c_boolean vals[] = {1, 0};
    Feast__Types__BoolList *l = NEW(a, Feast__Types__BoolList, FEAST__TYPES__BOOL_LIST__INIT);
    l->n_val = 2;
    l->val = (protobuf_c_boolean *)vals;
    v = scalar(a, FEAST__TYPES__VALUE__VAL_BOOL_LIST_VAL);
    v->bool_list_val = l;
  } else if (!strcmp(name, "string_list") || !strcmp(name, "string_set")) {
    int set = !strcmp(name, "string_set");
    char **vals = ldr_arena_alloc(a, 3 * sizeof *vals);
    vals[0] = str(a, "a");
    vals[1] = str(a, "bc");
    vals[2] = str(a, "");
    if (set) {
      Feast__Types__StringSet *l = NEW(a, Feast__Types__StringSet, FEAST__TYPES__STRING_SET__INIT);
      l->n_val = 1;
      l->val = vals;
      v = scalar(a, FEAST__TYPES__VALUE__VAL_STRING_SET_VAL);
      v->string_set_val = l;
    } else {
      Feast__Types__StringList *l =
          NEW(a, Feast__Types__StringList, FEAST__TYPES__STRING_LIST__INIT);
      l->n_val = 3;
      l->val = vals;
      v = scalar(a, FEAST__TYPES__VALUE__VAL_STRING_LIST_VAL);
      v->string_list_val = l;
    }
  } else if (!strcmp(name, "bytes_list")) {
    ProtobufCBinaryData *vals = ldr_arena_alloc(a, 2 * sizeof *vals);
    vals[0].data = ldr_test_unhex(a, "01", &vals[0].len);
    vals[1].data = (uint8_t *)str(a, "");
    vals[1].len = 0;
    Feast__Types__BytesList *l = NEW(a, Feast__Types__BytesList, FEAST__TYPES__BYTES_LIST__INIT);
    l->n_val = 2;
    l->val = vals;
    v = scalar(a, FEAST__TYPES__VALUE__VAL_BYTES_LIST_VAL);
    v->bytes_list_val = l;
  } else if (!strcmp(name, "map_val")) {
    Feast__Types__Map__ValEntry **e = ldr_arena_alloc(a, 2 * sizeof *e);
    e[0] = NEW(a, Feast__Types__Map__ValEntry, FEAST__TYPES__MAP__VAL_ENTRY__INIT);
    e[0]->key = str(a, "a");
    e[0]->value = scalar(a, FEAST__TYPES__VALUE__VAL_STRING_VAL);
    e[0]->value->string_val = str(a, "x");
    e[1] = NEW(a, Feast__Types__Map__ValEntry, FEAST__TYPES__MAP__VAL_ENTRY__INIT);
    e[1]->key = str(a, "b");
    e[1]->value = scalar(a, FEAST__TYPES__VALUE__VAL_INT64_VAL);
    e[1]->value->int64_val = 2;
    Feast__Types__Map *m = NEW(a, Feast__Types__Map, FEAST__TYPES__MAP__INIT);
    m->n_val = 2;
    m->val = e;
    v = scalar(a, FEAST__TYPES__VALUE__VAL_MAP_VAL);
    v->map_val = m;
  } else if (!strcmp(name, "zoned_ts")) {
    Feast__Types__ZonedTimestamp *z =
        NEW(a, Feast__Types__ZonedTimestamp, FEAST__TYPES__ZONED_TIMESTAMP__INIT);
    z->unix_timestamp = 1700000000;
    z->zone = str(a, "UTC");
    v = scalar(a, FEAST__TYPES__VALUE__VAL_ZONED_TIMESTAMP_VAL);
    v->zoned_timestamp_val = z;
  } else if (!strcmp(name, "json_val")) {
    v = scalar(a, FEAST__TYPES__VALUE__VAL_JSON_VAL);
    v->json_val = str(a, "{\"k\":1}");
  } else {
    return NULL;
  }
  return v;
}

static void check_value(void **state) {
  json_object *rec = *state;
  struct ldr_arena a;
  ldr_arena_init(&a, 4096, 0);
  const char *name = json_object_get_string(ldr_test_get(rec, "name"));
  const char *want = json_object_get_string(ldr_test_get(rec, "proto_hex"));
  Feast__Types__Value *v = build(&a, name);
  if (v == NULL) fail_msg("no builder for record %s: add one", name);

  /* Encode: the built Value gives Feast's bytes. */
  size_t n = feast__types__value__get_packed_size(v);
  uint8_t *out = ldr_arena_alloc(&a, n + 1);
  assert_int_equal(feast__types__value__pack(v, out), n);
  assert_string_equal(ldr_test_hex(&a, out, n), want);

  /* Decode: Feast's bytes give the same member and encode again unchanged. */
  size_t blen;
  uint8_t *bytes = ldr_test_unhex(&a, want, &blen);
  Feast__Types__Value *d = feast__types__value__unpack(NULL, blen, bytes);
  assert_non_null(d);
  assert_int_equal(d->val_case, v->val_case);
  size_t n2 = feast__types__value__get_packed_size(d);
  uint8_t *again = ldr_arena_alloc(&a, n2 + 1);
  feast__types__value__pack(d, again);
  assert_string_equal(ldr_test_hex(&a, again, n2), want);
  feast__types__value__free_unpacked(d, NULL);
  ldr_arena_destroy(&a);
}

static void check_entity_key(void **state) {
  json_object *rec = *state;
  struct ldr_arena a;
  ldr_arena_init(&a, 4096, 0);
  Feast__Types__EntityKey *ek = ldr_test_key_from_record(rec, &a);
  const char *want = json_object_get_string(ldr_test_get(rec, "proto_hex"));
  size_t n = feast__types__entity_key__get_packed_size(ek);
  uint8_t *out = ldr_arena_alloc(&a, n + 1);
  feast__types__entity_key__pack(ek, out);
  assert_string_equal(ldr_test_hex(&a, out, n), want);
  size_t blen;
  uint8_t *bytes = ldr_test_unhex(&a, want, &blen);
  Feast__Types__EntityKey *d = feast__types__entity_key__unpack(NULL, blen, bytes);
  assert_non_null(d);
  assert_int_equal(d->n_join_keys, ek->n_join_keys);
  for (size_t i = 0; i < d->n_join_keys; i++)
    assert_string_equal(d->join_keys[i], ek->join_keys[i]);
  feast__types__entity_key__free_unpacked(d, NULL);
  ldr_arena_destroy(&a);
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "value") && strcmp(argv[1], "entity_key"))) {
    fprintf(stderr, "usage: test_value_wire value|entity_key [INDEX]\n");
    return 2;
  }
  int values = !strcmp(argv[1], "value");
  json_object *root = ldr_test_json_file(ldr_test_data("vectors.json"));
  json_object *records = ldr_test_get(root, values ? "value_proto_wire" : "entity_key_proto_wire");
  size_t n = json_object_array_length(records), first = 0, last = n;
  if (argc > 2) {
    first = (size_t)strtoul(argv[2], NULL, 10);
    last = first + 1;
    if (first >= n) return 1;
  }
  struct CMUnitTest *tests = calloc(last - first, sizeof *tests);
  for (size_t i = first; i < last; i++) {
    json_object *rec = json_object_array_get_idx(records, i);
    tests[i - first].name = json_object_get_string(ldr_test_get(rec, "name"));
    tests[i - first].test_func = values ? check_value : check_entity_key;
    tests[i - first].initial_state = rec;
  }
  int failed = _cmocka_run_group_tests(values ? "value_proto_wire" : "entity_key_proto_wire", tests,
                                       last - first, NULL, NULL);
  free(tests);
  json_object_put(root);
  return failed;
}
