/*
 * The value_text column against value_text.json (Python's str() of each value,
 * produced by CPython): doubles in shortest round-trip form, float32 widened
 * first, ints, bools, strings, and NULL for every other kind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backends/backend.h"
#include "common/file.h"
#include "tests/support/support.h"

static json_object *cases;

static double le_double(const uint8_t *p) {
  uint64_t u = 0;
  for (int i = 7; i >= 0; i--) u = u << 8 | p[i];
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

static float le_float(const uint8_t *p) {
  uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* The kinds of Value the cases must cover: each one has a builder below. */
static const char *const kinds[] = {"double_val", "float_val",  "int32_val", "int64_val",
                                    "bool_val",   "string_val", "bytes_val", "int64_list_val"};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

/* How many cases the file holds, counted in its text rather than by json-c: a
 * parse that lost cases, or an empty list, does not pass for a good run. */
static size_t cases_in_file(const char *path) {
  uint8_t *text = NULL;
  size_t len = 0, n = 0;
  if (ldr_read_file(path, &text, &len) != 0) fail_msg("cannot read %s", path);
  for (const char *p = (const char *)text; (p = strstr(p, "\"kind\"")) != NULL; p++) n++;
  free(text);
  return n;
}

static void all_cases(void **state) {
  (void)state;
  size_t n = json_object_array_length(cases), compared = 0, nulls = 0;
  size_t per_kind[N_KINDS] = {0};
  for (size_t i = 0; i < n; i++) {
    json_object *c = json_object_array_get_idx(cases, i);
    const char *kind = json_object_get_string(ldr_test_get(c, "kind"));
    json_object *want = ldr_test_get(c, "value_text");
    json_object *hex = ldr_test_get(c, "value_hex"), *value = ldr_test_get(c, "value");
    struct ldr_arena a;
    ldr_arena_init(&a, 1024, 0);
    Feast__Types__Value v = FEAST__TYPES__VALUE__INIT;
    size_t blen = 0;
    uint8_t *bytes = hex ? ldr_test_unhex(&a, json_object_get_string(hex), &blen) : NULL;
    Feast__Types__Int64List list = FEAST__TYPES__INT64_LIST__INIT;
    for (size_t k = 0; k < N_KINDS; k++)
      if (!strcmp(kind, kinds[k])) per_kind[k]++;
    if (!strcmp(kind, "double_val")) {
      v.val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
      v.double_val = le_double(bytes);
    } else if (!strcmp(kind, "float_val")) {
      v.val_case = FEAST__TYPES__VALUE__VAL_FLOAT_VAL;
      v.float_val = le_float(bytes);
    } else if (!strcmp(kind, "int32_val")) {
      v.val_case = FEAST__TYPES__VALUE__VAL_INT32_VAL;
      v.int32_val = (int32_t)json_object_get_int64(value);
    } else if (!strcmp(kind, "int64_val")) {
      v.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
      v.int64_val = json_object_get_int64(value);
    } else if (!strcmp(kind, "bool_val")) {
      v.val_case = FEAST__TYPES__VALUE__VAL_BOOL_VAL;
      v.bool_val = json_object_get_boolean(value);
    } else if (!strcmp(kind, "string_val")) {
      v.val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
      v.string_val = (char *)json_object_get_string(value);
    } else if (!strcmp(kind, "bytes_val")) {
      v.val_case = FEAST__TYPES__VALUE__VAL_BYTES_VAL;
      v.bytes_val.data = bytes;
      v.bytes_val.len = blen;
    } else if (!strcmp(kind, "int64_list_val")) {
      v.val_case = FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL;
      v.int64_list_val = &list;
    } else {
      fail_msg("case %zu: kind %s has no builder", i, kind);
    }
    char buf[32];
    const char *text = NULL;
    size_t len = 0;
    int has = ldr_value_text(&v, buf, &text, &len);
    if (want == NULL) {
      if (has) fail_msg("case %zu (%s): want NULL, got '%.*s'", i, kind, (int)len, text);
      nulls++;
    } else {
      const char *w = json_object_get_string(want);
      if (!has || len != strlen(w) || memcmp(text, w, len) != 0)
        fail_msg("case %zu (%s %s): want '%s', got '%.*s'", i, kind,
                 json_object_get_string(ldr_test_get(c, "value_repr")), w, has ? (int)len : 4,
                 has ? text : "NULL");
    }
    compared++;
    ldr_arena_destroy(&a);
  }
  print_message("compared %zu value_text cases (%zu NULL)\n", compared, nulls);
  assert_true(compared > 0);
  assert_int_equal(compared, cases_in_file(ldr_test_data("value_text.json")));
  /* Both answers occur, and every kind is covered. */
  assert_true(nulls > 0 && nulls < compared);
  for (size_t k = 0; k < N_KINDS; k++)
    if (per_kind[k] == 0) fail_msg("value_text.json has no %s case", kinds[k]);
}

/* Doubles beyond the vectors: every formatted value reads back exactly. */
static void round_trips(void **state) {
  (void)state;
  static const double samples[] = {1e-7,     123.456,       1e15,   9.999999999999999e15,
                                   1e16 - 2, 6.02214076e23, 2.5e-5, 0.000123,
                                   1.0 / 3,  4.35,          5e-324};
  char buf[32];
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
    size_t n = ldr_format_double(samples[i], buf);
    assert_int_equal(n, strlen(buf));
    assert_true(strtod(buf, NULL) == samples[i]);
    assert_true(n < 32);
  }
}

int main(void) {
  json_object *root = ldr_test_json_file(ldr_test_data("value_text.json"));
  cases = ldr_test_get(root, "cases");
  const struct CMUnitTest tests[] = {cmocka_unit_test(all_cases), cmocka_unit_test(round_trips)};
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  json_object_put(root);
  return failed;
}
