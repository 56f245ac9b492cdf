/*
 * Every entity_key_cases record of vectors.json (bytes produced by Feast's own
 * key_encoding_utils.py): serialize the inputs with the record's version and
 * compare byte for byte, or expect the refusal Feast raises. Version 3 records
 * also decode back to the sorted join keys and value kinds Feast reports.
 * Usage: test_entity_key [INDEX] (all records without INDEX).
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

static json_object *records;

static const char *kind_name(const Feast__Types__Value *v) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
      &feast__types__value__descriptor, (unsigned)v->val_case);
  return f ? f->name : "unset";
}

static void check_record(void **state) {
  json_object *rec = *state;
  struct ldr_arena a;
  struct ldr_err err;
  struct ldr_key key = {0};
  ldr_arena_init(&a, 4096, 0);
  ldr_err_clear(&err);
  int version = json_object_get_int(ldr_test_get(rec, "version"));
  Feast__Types__EntityKey *ek = ldr_test_key_from_record(rec, &a);
  assert_non_null(ek);
  enum ldr_rc rc = ldr_entity_key_serialize(ek, version, &a, &key, &err);
  json_object *error = ldr_test_get(rec, "error");
  if (error != NULL) {
    /* Feast raises ValueError or struct.error: larder refuses the key. */
    assert_int_equal(rc, LDR_INVALID);
    assert_true(strlen(err.msg) > 0);
  } else {
    if (rc != LDR_OK) fail_msg("serialize failed: %s", err.msg);
    const char *want = json_object_get_string(ldr_test_get(rec, "serialized_hex"));
    assert_string_equal(ldr_test_hex(&a, key.bytes, key.len), want);
    assert_int_equal(key.len, json_object_get_int(ldr_test_get(rec, "length")));
    json_object *back = ldr_test_get(rec, "deserialized_v3");
    if (back != NULL) {
      Feast__Types__EntityKey *dk = NULL;
      rc = ldr_entity_key_deserialize(key.bytes, key.len, &a, &dk, &err);
      if (rc != LDR_OK) fail_msg("deserialize failed: %s", err.msg);
      json_object *jk = ldr_test_get(back, "join_keys"), *kinds = ldr_test_get(back, "value_kinds");
      assert_int_equal(dk->n_join_keys, json_object_array_length(jk));
      assert_int_equal(dk->n_entity_values, json_object_array_length(kinds));
      for (size_t i = 0; i < dk->n_join_keys; i++)
        assert_string_equal(dk->join_keys[i],
                            json_object_get_string(json_object_array_get_idx(jk, i)));
      for (size_t i = 0; i < dk->n_entity_values; i++)
        assert_string_equal(kind_name(dk->entity_values[i]),
                            json_object_get_string(json_object_array_get_idx(kinds, i)));
      /* And the decoded key serializes to the same bytes again. */
      struct ldr_key again;
      assert_int_equal(ldr_entity_key_serialize(dk, 3, &a, &again, &err), LDR_OK);
      assert_memory_equal(again.bytes, key.bytes, key.len);
    }
  }
  ldr_arena_destroy(&a);
}

int main(int argc, char **argv) {
  json_object *root = ldr_test_json_file(ldr_test_data("vectors.json"));
  records = ldr_test_get(root, "entity_key_cases");
  size_t n = json_object_array_length(records);
  size_t first = 0, last = n;
  if (argc > 1) {
    first = (size_t)strtoul(argv[1], NULL, 10);
    last = first + 1;
    if (first >= n) {
      fprintf(stderr, "record %zu does not exist (%zu records)\n", first, n);
      return 1;
    }
  }
  struct CMUnitTest *tests = calloc(last - first, sizeof *tests);
  char(*names)[128] = calloc(last - first, sizeof *names);
  for (size_t i = first; i < last; i++) {
    json_object *rec = json_object_array_get_idx(records, i);
    snprintf(names[i - first], sizeof names[0], "%s v%d",
             json_object_get_string(ldr_test_get(rec, "name")),
             json_object_get_int(ldr_test_get(rec, "version")));
    tests[i - first].name = names[i - first];
    tests[i - first].test_func = check_record;
    tests[i - first].initial_state = rec;
  }
  int failed = _cmocka_run_group_tests("entity_key_cases", tests, last - first, NULL, NULL);
  free(tests);
  free(names);
  json_object_put(root);
  return failed;
}
