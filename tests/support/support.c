#include "tests/support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_object *ldr_test_json_file(const char *path) {
  json_object *o = json_object_from_file(path);
  if (o == NULL) {
    fprintf(stderr, "cannot parse %s: %s\n", path, json_util_get_last_err());
    exit(1);
  }
  return o;
}

json_object *ldr_test_get(json_object *obj, const char *key) {
  json_object *v = NULL;
  return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

static int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

uint8_t *ldr_test_unhex(struct ldr_arena *a, const char *hex, size_t *len) {
  size_t n = strlen(hex);
  if (n % 2) return NULL;
  uint8_t *p = ldr_arena_alloc(a, n / 2 + 1);
  for (size_t i = 0; i < n / 2; i++) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return NULL;
    p[i] = (uint8_t)(hi << 4 | lo);
  }
  *len = n / 2;
  return p;
}

char *ldr_test_hex(struct ldr_arena *a, const uint8_t *p, size_t n) {
  char *s = ldr_arena_alloc(a, 2 * n + 1);
  for (size_t i = 0; i < n; i++) sprintf(s + 2 * i, "%02x", p[i]);
  s[2 * n] = '\0';
  return s;
}

int ldr_test_value_from_spec(json_object *spec, struct ldr_arena *a, Feast__Types__Value *v) {
  const char *type = json_object_get_string(ldr_test_get(spec, "type"));
  json_object *val = ldr_test_get(spec, "value");
  feast__types__value__init(v);
  if (!strcmp(type, "unset")) return 0;
  if (!strcmp(type, "string")) {
    v->val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
    v->string_val =
        ldr_arena_memdup(a, json_object_get_string(val), strlen(json_object_get_string(val)));
  } else if (!strcmp(type, "bytes")) {
    v->val_case = FEAST__TYPES__VALUE__VAL_BYTES_VAL;
    v->bytes_val.data = ldr_test_unhex(a, json_object_get_string(val), &v->bytes_val.len);
  } else if (!strcmp(type, "int32")) {
    v->val_case = FEAST__TYPES__VALUE__VAL_INT32_VAL;
    v->int32_val = (int32_t)json_object_get_int64(val);
  } else if (!strcmp(type, "int64")) {
    v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    v->int64_val = json_object_get_int64(val);
  } else if (!strcmp(type, "unix_timestamp")) {
    v->val_case = FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL;
    v->unix_timestamp_val = json_object_get_int64(val);
  } else if (!strcmp(type, "double")) {
    v->val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
    v->double_val = json_object_get_double(val);
  } else if (!strcmp(type, "bool")) {
    v->val_case = FEAST__TYPES__VALUE__VAL_BOOL_VAL;
    v->bool_val = json_object_get_boolean(val);
  } else {
    return -1;
  }
  return 0;
}

Feast__Types__EntityKey *ldr_test_key_from_record(json_object *rec, struct ldr_arena *a) {
  json_object *keys = ldr_test_get(rec, "join_keys"), *vals = ldr_test_get(rec, "values");
  size_t nk = json_object_array_length(keys), nv = json_object_array_length(vals);
  Feast__Types__EntityKey *ek = ldr_arena_alloc(a, sizeof *ek);
  feast__types__entity_key__init(ek);
  ek->n_join_keys = nk;
  ek->join_keys = ldr_arena_alloc(a, (nk + 1) * sizeof(char *));
  for (size_t i = 0; i < nk; i++) {
    const char *s = json_object_get_string(json_object_array_get_idx(keys, i));
    ek->join_keys[i] = ldr_arena_memdup(a, s, strlen(s));
  }
  ek->n_entity_values = nv;
  ek->entity_values = ldr_arena_alloc(a, (nv + 1) * sizeof(Feast__Types__Value *));
  for (size_t i = 0; i < nv; i++) {
    ek->entity_values[i] = ldr_arena_alloc(a, sizeof(Feast__Types__Value));
    if (ldr_test_value_from_spec(json_object_array_get_idx(vals, i), a, ek->entity_values[i]) != 0)
      return NULL;
  }
  return ek;
}

const char *ldr_test_data(const char *name) {
  static char path[4096];
  const char *dir = getenv("LDR_TEST_DATA");
  snprintf(path, sizeof path, "%s/%s", dir ? dir : LDR_TEST_DATA_DIR, name);
  return path;
}
