/* Helpers shared by the unit tests: JSON vectors, hex, building Values. */
#ifndef LDR_TEST_SUPPORT_H
#define LDR_TEST_SUPPORT_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "feast/types/EntityKey.pb-c.h"
#include "feast/types/Value.pb-c.h"

/* Parses a JSON file; fails the test (exit 1) when it cannot. */
json_object *ldr_test_json_file(const char *path);

/* Member `key` of `obj`, or NULL. */
json_object *ldr_test_get(json_object *obj, const char *key);

/* Decodes lowercase or uppercase hex into arena memory; NULL on bad input. */
uint8_t *ldr_test_unhex(struct ldr_arena *a, const char *hex, size_t *len);

/* Lowercase hex of p[0..n) in arena memory. */
char *ldr_test_hex(struct ldr_arena *a, const uint8_t *p, size_t n);

/* Fills `v` from a vectors.json value spec {"type": "int64", "value": 1001};
 * types: unset, string, bytes (hex), int32, int64, unix_timestamp, double, bool.
 * Returns 0, or -1 for an unknown type. */
int ldr_test_value_from_spec(json_object *spec, struct ldr_arena *a, Feast__Types__Value *v);

/* Builds an EntityKey from a record's "join_keys" and "values" arrays. */
Feast__Types__EntityKey *ldr_test_key_from_record(json_object *rec, struct ldr_arena *a);

/* Path of a file in tests/data, from the LDR_TEST_DATA environment variable
 * or the compiled-in source folder. Returns a static buffer. */
const char *ldr_test_data(const char *name);

#endif
