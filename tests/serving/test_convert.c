/*
 * JSON to feast.types.Value by declared type (serving/convert.c and
 * convert_list.c, HTTP.md §4.2 for join keys and §5 for features): for each
 * declared type the JSON kinds it takes, with the Value made (its kind and
 * contents, written as one string), and those it refuses, with the message's
 * words. Among them: integer ranges, integral numbers against fractions,
 * digit strings, booleans refused for integers and strings, FLOAT's range,
 * numeric strings, base64, Python's json.dumps text for JSON, null list
 * elements as their type's zero, sets deduplicated in order (100,000
 * elements too), maps inferred, lists of lists; keys refuse null and the
 * types that are not key types. Then an arena capped at every size from 1
 * byte: each conversion fails cleanly until it fits, then gives its Value.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serving/convert_int.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static struct ldr_arena arena;

/* ---- a Value as one string: KIND:contents ---- */

/* Every list and set message of Value.proto is { repeated T val = 1 }. */
struct any_list {
  ProtobufCMessage base;
  size_t n_val;
  void *val;
};

static void put_double(struct ldr_sb *sb, double d, int single) {
  if (isnan(d))
    ldr_sb_puts(sb, "nan");
  else if (isinf(d))
    ldr_sb_puts(sb, d < 0 ? "-inf" : "inf");
  else
    ldr_sb_printf(sb, single ? "%.9g" : "%.17g", d);
}

static void put_bytes(struct ldr_sb *sb, ProtobufCBinaryData b) {
  for (size_t i = 0; i < b.len; i++) ldr_sb_printf(sb, "%02x", b.data[i]);
}

static void describe(struct ldr_sb *sb, const Feast__Types__Value *v);

static void describe_map(struct ldr_sb *sb, const Feast__Types__Map *m) {
  ldr_sb_puts(sb, "{");
  for (size_t i = 0; i < m->n_val; i++) {
    ldr_sb_printf(sb, "%s%s=", i ? "," : "", m->val[i]->key);
    describe(sb, m->val[i]->value);
  }
  ldr_sb_puts(sb, "}");
}

static void describe(struct ldr_sb *sb, const Feast__Types__Value *v) {
  if (v == NULL || v->val_case == FEAST__TYPES__VALUE__VAL__NOT_SET) {
    ldr_sb_puts(sb, "empty");
    return;
  }
  int c = (int)v->val_case;
  ldr_sb_printf(sb, "%s:", ldr_value_type_name(c));
  switch (c) {
  case T_BYTES:
    put_bytes(sb, v->bytes_val);
    return;
  case T_STRING:
  case T_JSON:
  case T_UUID:
  case T_TIME_UUID:
  case T_DECIMAL:
    ldr_sb_puts(sb, v->string_val); /* one union member for all strings */
    return;
  case T_INT32:
    ldr_sb_printf(sb, "%d", v->int32_val);
    return;
  case T_INT64:
  case T_UNIX_TIMESTAMP:
    ldr_sb_printf(sb, "%lld", (long long)v->int64_val);
    return;
  case T_DOUBLE:
    put_double(sb, v->double_val, 0);
    return;
  case T_FLOAT:
    put_double(sb, v->float_val, 1);
    return;
  case T_BOOL:
    ldr_sb_puts(sb, v->bool_val ? "true" : "false");
    return;
  case T_MAP:
  case T_STRUCT:
    describe_map(sb, v->map_val);
    return;
  case T_MAP_LIST:
  case T_STRUCT_LIST:
    ldr_sb_puts(sb, "[");
    for (size_t i = 0; i < v->map_list_val->n_val; i++) {
      if (i) ldr_sb_puts(sb, ",");
      describe_map(sb, v->map_list_val->val[i]);
    }
    ldr_sb_puts(sb, "]");
    return;
  case T_VALUE_LIST:
  case T_VALUE_SET:
    ldr_sb_puts(sb, "[");
    for (size_t i = 0; i < v->list_val->n_val; i++) {
      if (i) ldr_sb_puts(sb, ",");
      describe(sb, v->list_val->val[i]);
    }
    ldr_sb_puts(sb, "]");
    return;
  default:
    break;
  }
  /* Lists and sets of scalars: the pointer members share their place. */
  const struct any_list *l = (const struct any_list *)v->int64_list_val;
  int et = ldr_cv_element_type(c);
  if (c == T_JSON_LIST) et = T_STRING;
  assert_true(et != 0);
  ldr_sb_puts(sb, "[");
  for (size_t i = 0; i < l->n_val; i++) {
    if (i) ldr_sb_puts(sb, ",");
    switch (et) {
    case T_BYTES:
      put_bytes(sb, ((const ProtobufCBinaryData *)l->val)[i]);
      break;
    case T_INT32:
      ldr_sb_printf(sb, "%d", ((const int32_t *)l->val)[i]);
      break;
    case T_INT64:
    case T_UNIX_TIMESTAMP:
      ldr_sb_printf(sb, "%lld", (long long)((const int64_t *)l->val)[i]);
      break;
    case T_DOUBLE:
      put_double(sb, ((const double *)l->val)[i], 0);
      break;
    case T_FLOAT:
      put_double(sb, ((const float *)l->val)[i], 1);
      break;
    case T_BOOL:
      ldr_sb_puts(sb, ((const protobuf_c_boolean *)l->val)[i] ? "true" : "false");
      break;
    default:
      ldr_sb_puts(sb, ((char *const *)l->val)[i]);
      break;
    }
  }
  ldr_sb_puts(sb, "]");
}

static const char *described(const Feast__Types__Value *v) {
  struct ldr_sb sb = {0};
  describe(&sb, v);
  const char *s = ldr_arena_memdup(&arena, ldr_sb_str(&sb), sb.len);
  ldr_sb_free(&sb);
  return s;
}

static const struct ldr_json *parse(const char *text) {
  struct ldr_json *j = NULL;
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_json_parse(text, strlen(text), &arena, 64, &j, NULL, &err) != LDR_OK)
    fail_msg("%s: %s", text, err.msg);
  return j;
}

/* ---- the cases: want is the Value, or "!" and words of the refusal ---- */

struct conv_case {
  int type;
  int key;
  const char *json;
  const char *want;
};

static void run_cases(const struct conv_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const struct conv_case *c = &cases[i];
    Feast__Types__Value *v = NULL;
    struct ldr_err err;
    ldr_err_clear(&err);
    enum ldr_rc rc = ldr_json_to_value(parse(c->json), c->type, c->key, &arena, &v, &err);
    if (c->want[0] == '!') {
      if (rc != LDR_INVALID || strstr(err.msg, c->want + 1) == NULL)
        fail_msg("%s %s%s: %s '%s', want INVALID_ARGUMENT '%s'", ldr_value_type_name(c->type),
                 c->json, c->key ? " (key)" : "", ldr_rc_str(rc), err.msg, c->want + 1);
      continue;
    }
    if (rc != LDR_OK)
      fail_msg("%s %s%s: %s '%s'", ldr_value_type_name(c->type), c->json, c->key ? " (key)" : "",
               ldr_rc_str(rc), err.msg);
    const char *got = described(v);
    if (strcmp(got, c->want))
      fail_msg("%s %s%s: %s, want %s", ldr_value_type_name(c->type), c->json,
               c->key ? " (key)" : "", got, c->want);
    /* The Value packs and reads back as itself. */
    size_t len = feast__types__value__get_packed_size(v);
    uint8_t *b = ldr_arena_alloc(&arena, len + 1);
    feast__types__value__pack(v, b);
    Feast__Types__Value *back = feast__types__value__unpack(NULL, len, b);
    assert_non_null(back);
    if (strcmp(described(back), got))
      fail_msg("%s %s: packed and read back as %s", ldr_value_type_name(c->type), c->json,
               described(back));
    feast__types__value__free_unpacked(back, NULL);
  }
  ldr_arena_reset(&arena);
}

/* HTTP.md §4.2: entity values, converted to the join key's declared type. */
static void join_keys(void **state) {
  (void)state;
  static const struct conv_case cases[] = {
      {T_INT64, 1, "1001", "INT64:1001"},
      {T_INT64, 1, "1002.0", "INT64:1002"},
      {T_INT64, 1, "1e3", "INT64:1000"},
      {T_INT64, 1, "-2.5e1", "INT64:-25"},
      {T_INT64, 1, "-0", "INT64:0"},
      {T_INT64, 1, "1.9", "!1.9 is out of range for INT64, or not an integer"},
      {T_INT64, 1, "1e-3", "!1e-3 is out of range for INT64"},
      {T_INT64, 1, "9223372036854775807", "INT64:9223372036854775807"},
      {T_INT64, 1, "-9223372036854775808", "INT64:-9223372036854775808"},
      {T_INT64, 1, "9223372036854775808", "!9223372036854775808 is out of range for INT64"},
      {T_INT64, 1, "-9223372036854775809", "!is out of range for INT64"},
      {T_INT64, 1, "1e19", "!1e19 is out of range for INT64"},
      {T_INT64, 1, "\"1001\"", "INT64:1001"},
      {T_INT64, 1, "\"+7\"", "INT64:7"},
      {T_INT64, 1, "\"-7\"", "INT64:-7"},
      {T_INT64, 1, "\"-9223372036854775808\"", "INT64:-9223372036854775808"},
      {T_INT64, 1, "\"9223372036854775808\"", "!9223372036854775808 (a string) is out of range"},
      {T_INT64, 1, "\"1e3\"", "!a JSON string cannot be a INT64 value"},
      {T_INT64, 1, "\"1.0\"", "!a JSON string cannot be a INT64 value"},
      {T_INT64, 1, "\"\"", "!a JSON string cannot be a INT64 value"},
      {T_INT64, 1, "\" 7\"", "!a JSON string cannot be a INT64 value"},
      {T_INT64, 1, "\"-\"", "!a JSON string cannot be a INT64 value"},
      {T_INT64, 1, "true", "!a JSON boolean cannot be a INT64 value"},
      {T_INT64, 1, "false", "!a JSON boolean cannot be a INT64 value"},
      {T_INT64, 1, "null", "!null: an entity key needs a value"},
      {T_INT64, 1, "[1]", "!a JSON array cannot be a INT64 value"},
      {T_INT64, 1, "{}", "!a JSON object cannot be a INT64 value"},
      {T_INT32, 1, "2147483647", "INT32:2147483647"},
      {T_INT32, 1, "-2147483648", "INT32:-2147483648"},
      {T_INT32, 1, "2147483647.0", "INT32:2147483647"},
      {T_INT32, 1, "2147483648", "!2147483648 is out of range for INT32"},
      {T_INT32, 1, "-2147483649", "!-2147483649 is out of range for INT32"},
      {T_INT32, 1, "\"2147483648\"", "!out of range for INT32"},
      {T_INT32, 1, "\"-2147483648\"", "INT32:-2147483648"},
      {T_INT32, 1, "true", "!a JSON boolean cannot be a INT32 value"},
      {T_STRING, 1, "\"abc\"", "STRING:abc"},
      {T_STRING, 1, "\"\"", "STRING:"},
      {T_STRING, 1, "42", "STRING:42"},
      {T_STRING, 1, "-0", "STRING:0"},
      {T_STRING, 1, "-17", "STRING:-17"},
      {T_STRING, 1, "123456789012345678901234567890", "STRING:123456789012345678901234567890"},
      {T_STRING, 1, "42.0", "!a JSON number with a fraction cannot be a STRING value"},
      {T_STRING, 1, "1e3", "!a JSON number with a fraction cannot be a STRING value"},
      {T_STRING, 1, "true", "!a JSON boolean cannot be a STRING value"},
      {T_STRING, 1, "[\"a\"]", "!a JSON array cannot be a STRING value"},
      {T_UNIX_TIMESTAMP, 1, "1700000000", "UNIX_TIMESTAMP:1700000000"},
      {T_UNIX_TIMESTAMP, 1, "1.7e9", "UNIX_TIMESTAMP:1700000000"},
      {T_UNIX_TIMESTAMP, 1, "1.5", "!1.5 is out of range for UNIX_TIMESTAMP"},
      {T_UNIX_TIMESTAMP, 1, "\"1700000000\"", "UNIX_TIMESTAMP:1700000000"},
      {T_UNIX_TIMESTAMP, 1, "\"2024-01-01\"", "!a JSON string cannot be a UNIX_TIMESTAMP value"},
      {T_UNIX_TIMESTAMP, 1, "false", "!a JSON boolean cannot be a UNIX_TIMESTAMP value"},
      {T_BYTES, 1, "\"AP9hYmM=\"", "BYTES:00ff616263"},
      {T_BYTES, 1, "\"\"", "BYTES:"},
      {T_BYTES, 1, "\"Zh==\"", "!a BYTES value must be standard base64 with padding"},
      {T_BYTES, 1, "\"abc\"", "!a BYTES value must be standard base64"},
      {T_BYTES, 1, "\"YQ\"", "!a BYTES value must be standard base64"},
      {T_BYTES, 1, "5", "!a JSON integer cannot be a BYTES value"},
      /* No declared type: integers are INT64, strings STRING. */
      {T_INVALID, 1, "5", "INT64:5"},
      {T_INVALID, 1, "\"x\"", "STRING:x"},
      {T_INVALID, 1, "5.0", "!a JSON number with a fraction cannot be an entity key"},
      {T_INVALID, 1, "true", "!a JSON boolean cannot be an entity key"},
      {T_INVALID, 1, "[1]", "!a JSON array cannot be an entity key"},
      {T_INVALID, 1, "{}", "!a JSON object cannot be an entity key"},
      {T_INVALID, 1, "null", "!null: an entity key needs a value"},
      /* Types that are not key types, whatever the value. */
      {T_DOUBLE, 1, "1.5", "!DOUBLE is not a type an entity key can have"},
      {T_FLOAT, 1, "1", "!FLOAT is not a type an entity key can have"},
      {T_BOOL, 1, "true", "!BOOL is not a type an entity key can have"},
      {T_UUID, 1, "\"u\"", "!UUID is not a type an entity key can have"},
      {T_JSON, 1, "\"{}\"", "!JSON is not a type an entity key can have"},
      {T_INT64_LIST, 1, "[1]", "!INT64_LIST is not a type an entity key can have"},
      {T_MAP, 1, "{}", "!MAP is not a type an entity key can have"},
      {LDR_TYPE_PDF_BYTES, 1, "\"AQ==\"", "!PDF_BYTES is not a type an entity key can have"},
      {T_DOUBLE, 1, "null", "!DOUBLE is not a type an entity key can have"},
  };
  run_cases(cases, N_OF(cases));
}

/* HTTP.md §5: scalar features. */
static void scalar_features(void **state) {
  (void)state;
  static const struct conv_case cases[] = {
      /* null is the empty Value, whatever the type. */
      {T_INT64, 0, "null", "empty"},
      {T_STRING_LIST, 0, "null", "empty"},
      {T_MAP, 0, "null", "empty"},
      {T_JSON, 0, "null", "empty"},
      {T_SCALAR_MAP, 0, "null", "empty"},
      {T_INT64, 0, "1001", "INT64:1001"},
      {T_INT64, 0, "1002.0", "INT64:1002"},
      {T_INT64, 0, "1e3", "INT64:1000"},
      {T_INT64, 0, "1.9", "!1.9 is out of range for INT64, or not an integer"},
      {T_INT64, 0, "\"12\"", "INT64:12"},
      {T_INT64, 0, "\"1.0\"", "!a JSON string cannot be a INT64 value"},
      {T_INT64, 0, "true", "!a JSON boolean cannot be a INT64 value"},
      {T_INT64, 0, "[1]", "!a JSON array cannot be a INT64 value"},
      {T_INT32, 0, "-2147483648", "INT32:-2147483648"},
      {T_INT32, 0, "2147483648", "!2147483648 is out of range for INT32"},
      {T_INT32, 0, "3e9", "!3e9 is out of range for INT32"},
      {T_UNIX_TIMESTAMP, 0, "\"17\"", "UNIX_TIMESTAMP:17"},
      {T_UNIX_TIMESTAMP, 0, "-1", "UNIX_TIMESTAMP:-1"},
      {T_UNIX_TIMESTAMP, 0, "0.5", "!0.5 is out of range for UNIX_TIMESTAMP"},
      /* FLOAT: rounded to float32; finite beyond its range refused. */
      {T_FLOAT, 0, "0.5", "FLOAT:0.5"},
      {T_FLOAT, 0, "1", "FLOAT:1"},
      {T_FLOAT, 0, "0.1", "FLOAT:0.100000001"},
      {T_FLOAT, 0, "16777217", "FLOAT:16777216"},
      {T_FLOAT, 0, "3.4028234663852886e38", "FLOAT:3.40282347e+38"},
      {T_FLOAT, 0, "-3.4028234663852886e38", "FLOAT:-3.40282347e+38"},
      {T_FLOAT, 0, "3.5e38", "!3.5e38 is beyond the range of a FLOAT value"},
      {T_FLOAT, 0, "-1e39", "!-1e39 is beyond the range of a FLOAT value"},
      {T_FLOAT, 0, "1e400", "FLOAT:inf"}, /* Python's float("1e400") is inf, as the JSON parse */
      {T_FLOAT, 0, "1e-50", "FLOAT:0"},
      {T_FLOAT, 0, "\"0.5\"", "FLOAT:0.5"},
      {T_FLOAT, 0, "\"1e3\"", "FLOAT:1000"},
      {T_FLOAT, 0, "\"-2\"", "FLOAT:-2"},
      {T_FLOAT, 0, "\".5\"", "FLOAT:0.5"},
      {T_FLOAT, 0, "\"nan\"", "FLOAT:nan"},
      {T_FLOAT, 0, "\"NaN\"", "FLOAT:nan"},
      {T_FLOAT, 0, "\"inf\"", "FLOAT:inf"},
      {T_FLOAT, 0, "\"+inf\"", "FLOAT:inf"},
      {T_FLOAT, 0, "\"-Infinity\"", "FLOAT:-inf"},
      {T_FLOAT, 0, "\"1e39\"", "!is beyond the range of a FLOAT value"},
      {T_FLOAT, 0, "\"abc\"", "!'abc' is not a number for a FLOAT value"},
      {T_FLOAT, 0, "\"0x10\"", "!'0x10' is not a number for a FLOAT value"},
      {T_FLOAT, 0, "\" 1\"", "!is not a number for a FLOAT value"},
      {T_FLOAT, 0, "\"\"", "!is not a number for a FLOAT value"},
      {T_FLOAT, 0, "\"1_000\"", "!is not a number for a FLOAT value"},
      {T_FLOAT, 0, "\"1e\"", "!is not a number for a FLOAT value"},
      {T_FLOAT, 0, "\"nana\"", "!is not a number for a FLOAT value"},
      {T_FLOAT, 0, "true", "!a JSON boolean cannot be a FLOAT value"},
      {T_FLOAT, 0, "{}", "!a JSON object cannot be a FLOAT value"},
      {T_DOUBLE, 0, "1", "DOUBLE:1"},
      {T_DOUBLE, 0, "0.1", "DOUBLE:0.10000000000000001"},
      {T_DOUBLE, 0, "-0.0", "DOUBLE:-0"},
      {T_DOUBLE, 0, "9007199254740993", "DOUBLE:9007199254740992"},
      {T_DOUBLE, 0, "3.5e38", "DOUBLE:3.5e+38"},
      {T_DOUBLE, 0, "\"2.5\"", "DOUBLE:2.5"},
      {T_DOUBLE, 0, "\"nan\"", "DOUBLE:nan"},
      {T_DOUBLE, 0, "\"-inf\"", "DOUBLE:-inf"},
      {T_DOUBLE, 0, "\"x1\"", "!'x1' is not a number for a DOUBLE value"},
      {T_DOUBLE, 0, "false", "!a JSON boolean cannot be a DOUBLE value"},
      {T_DOUBLE, 0, "[0.5]", "!a JSON array cannot be a DOUBLE value"},
      /* BOOL: booleans, 0 and 1, "true" and "false" in any case. */
      {T_BOOL, 0, "true", "BOOL:true"},
      {T_BOOL, 0, "false", "BOOL:false"},
      {T_BOOL, 0, "1", "BOOL:true"},
      {T_BOOL, 0, "0", "BOOL:false"},
      {T_BOOL, 0, "\"true\"", "BOOL:true"},
      {T_BOOL, 0, "\"FALSE\"", "BOOL:false"},
      {T_BOOL, 0, "\"True\"", "BOOL:true"},
      {T_BOOL, 0, "2", "!a BOOL value is true, false, 0, 1, \"true\" or \"false\", not 2"},
      {T_BOOL, 0, "-1", "!a BOOL value is true, false, 0, 1"},
      {T_BOOL, 0, "1.0", "!a BOOL value is true, false, 0, 1"},
      {T_BOOL, 0, "\"yes\"", "!a BOOL value is true, false, 0, 1, \"true\" or \"false\", not yes"},
      {T_BOOL, 0, "\"1\"", "!a BOOL value is true"},
      {T_BOOL, 0, "\"truex\"", "!a BOOL value is true"},
      {T_BOOL, 0, "[true]", "!a JSON array cannot be a BOOL value"},
      /* STRING: strings, and integers as their digits. */
      {T_STRING, 0, "\"h\\u00e9\"", "STRING:h\xc3\xa9"},
      {T_STRING, 0, "42", "STRING:42"},
      {T_STRING, 0, "-9223372036854775808", "STRING:-9223372036854775808"},
      {T_STRING, 0, "1.5", "!a JSON number with a fraction cannot be a STRING value"},
      {T_STRING, 0, "false", "!a JSON boolean cannot be a STRING value"},
      {T_STRING, 0, "{}", "!a JSON object cannot be a STRING value"},
      /* BYTES and the bytes with a meaning: standard base64. */
      {T_BYTES, 0, "\"AQ==\"", "BYTES:01"},
      {T_BYTES, 0, "\"/+8=\"", "BYTES:ffef"},
      {T_BYTES, 0, "\"_-8=\"", "!a BYTES value must be standard base64"},
      {T_BYTES, 0, "\"AQ==\\n\"", "!a BYTES value must be standard base64"},
      {LDR_TYPE_PDF_BYTES, 0, "\"JVBERg==\"", "BYTES:25504446"},
      {LDR_TYPE_IMAGE_BYTES, 0, "\"AAEC\"", "BYTES:000102"},
      {LDR_TYPE_PDF_BYTES, 0, "\"A\"", "!a BYTES value must be standard base64"},
      {LDR_TYPE_IMAGE_BYTES, 0, "1", "!a JSON integer cannot be a BYTES value"},
      /* UUID, TIME_UUID, DECIMAL: strings as they are. */
      {T_UUID, 0, "\"not-validated\"", "UUID:not-validated"},
      {T_TIME_UUID, 0, "\"t\"", "TIME_UUID:t"},
      {T_DECIMAL, 0, "\"12.340\"", "DECIMAL:12.340"},
      {T_DECIMAL, 0, "12.34", "!a JSON number with a fraction cannot be a DECIMAL value"},
      {T_UUID, 0, "5", "!a JSON integer cannot be a UUID value"},
      {T_TIME_UUID, 0, "true", "!a JSON boolean cannot be a TIME_UUID value"},
      /* Types JSON cannot write. */
      {T_SCALAR_MAP, 0, "{}", "!SCALAR_MAP values cannot be written from JSON"},
      {T_ZONED_TIMESTAMP, 0, "\"2024-01-01T00:00:00Z\"",
       "!ZONED_TIMESTAMP values cannot be written from JSON"},
      {T_NULL, 0, "1", "!NULL values cannot be written from JSON"},
      {99, 0, "1", "!a JSON integer cannot be a an unknown type value"},
      /* No declared type: inferred from the JSON. */
      {T_INVALID, 0, "5", "INT64:5"},
      {T_INVALID, 0, "1.5", "DOUBLE:1.5"},
      {T_INVALID, 0, "5.0", "DOUBLE:5"},
      {T_INVALID, 0, "\"s\"", "STRING:s"},
      {T_INVALID, 0, "true", "BOOL:true"},
      {T_INVALID, 0, "{\"a\":1}", "MAP:{a=INT64:1}"},
      {T_INVALID, 0, "[1,2]", "INT64_LIST:[1,2]"},
      {T_INVALID, 0, "[1,2.5]", "DOUBLE_LIST:[1,2.5]"},
      {T_INVALID, 0, "[]", "empty"},
      {T_INVALID, 0, "null", "empty"},
      {T_INVALID, 0, "[1,\"a\"]", "!an array of mixed kinds (or with null) has no list type"},
      {T_INVALID, 0, "[null]", "!an array of mixed kinds (or with null) has no list type"},
      {T_INVALID, 0, "9223372036854775808", "!9223372036854775808 is out of range for INT64"},
  };
  run_cases(cases, N_OF(cases));
}

/* JSON features: text kept when it parses, anything else as Python's json.dumps. */
static void json_features(void **state) {
  (void)state;
  static const struct conv_case cases[] = {
      {T_JSON, 0, "\"{\\\"a\\\":1}\"", "JSON:{\"a\":1}"},
      {T_JSON, 0, "\"[1,  2]\"", "JSON:[1,  2]"},
      {T_JSON, 0, "\"5\"", "JSON:5"},
      {T_JSON, 0, "\"\\\"s\\\"\"", "JSON:\"s\""},
      {T_JSON, 0, "\"null\"", "JSON:null"},
      {T_JSON, 0, "\"not json\"", "!the string is not JSON text"},
      {T_JSON, 0, "\"\"", "!the string is not JSON text"},
      {T_JSON, 0, "\"{\\\"a\\\":}\"", "!the string is not JSON text"},
      {T_JSON, 0, "\"[1,]\"", "!the string is not JSON text"},
      {T_JSON, 0, "{\"a\":1,\"b\":[true,null],\"c\":\"\\u00e9\"}",
       "JSON:{\"a\": 1, \"b\": [true, null], \"c\": \"\\u00e9\"}"},
      {T_JSON, 0, "{\"e\":\"\\ud83d\\ude00\",\"f\":\"\xf0\x9f\x98\x80\"}",
       "JSON:{\"e\": \"\\ud83d\\ude00\", \"f\": \"\\ud83d\\ude00\"}"},
      {T_JSON, 0, "{\"\xc3\xa9\":\"\xe2\x80\xa8\"}", "JSON:{\"\\u00e9\": \"\\u2028\"}"},
      {T_JSON, 0, "[1.5, 1e16, 1E5, -0.0, 0.1, 1e-7, 1e400, -1e400, 2.50]",
       "JSON:[1.5, 1e+16, 100000.0, -0.0, 0.1, 1e-07, Infinity, -Infinity, 2.5]"},
      {T_JSON, 0, "[-0, 123456789012345678901234567890, 7, -7]",
       "JSON:[0, 123456789012345678901234567890, 7, -7]"},
      {T_JSON, 0, "5", "JSON:5"},
      {T_JSON, 0, "1.0", "JSON:1.0"},
      {T_JSON, 0, "true", "JSON:true"},
      {T_JSON, 0, "false", "JSON:false"},
      {T_JSON, 0, "{}", "JSON:{}"},
      {T_JSON, 0, "[]", "JSON:[]"},
      {T_JSON, 0, "[null, [], {}, [[]]]", "JSON:[null, [], {}, [[]]]"},
      {T_JSON, 0, "{\"x\":{\"y\":[{}, {\"z\":null}]}}",
       "JSON:{\"x\": {\"y\": [{}, {\"z\": null}]}}"},
      /* Escapes as Python writes them: the named ones, else \u00XX; '/' and DEL as
       * Python has them ("/" as is, DEL escaped). */
      {T_JSON, 0, "{\"k\\\"\\\\\":\"\\n\\t\\r\\b\\f\\u0001\\u001f\\u007f/\"}",
       "JSON:{\"k\\\"\\\\\": \"\\n\\t\\r\\b\\f\\u0001\\u001f\\u007f/\"}"},
      {T_JSON, 0, "\"a\\u0000b\"", "!the string is not JSON text"},
      /* A repeated key: the last value, at the first key's place (Python's dict). */
      {T_JSON, 0, "{\"a\":1,\"b\":2,\"a\":3}", "JSON:{\"a\": 3, \"b\": 2}"},
      {T_JSON, 0, "{\"a\":1,\"a\":{\"a\":2,\"a\":3}}", "JSON:{\"a\": {\"a\": 3}}"},
      /* JSON_LIST: strings must be JSON text and are kept; other elements as json.dumps. */
      {T_JSON_LIST, 0, "[\"{\\\"x\\\":1}\", 5, null, {\"a\":[1]}, \"[1]\", 0.5, true]",
       "JSON_LIST:[{\"x\":1},5,null,{\"a\": [1]},[1],0.5,true]"},
      {T_JSON_LIST, 0, "[]", "JSON_LIST:[]"},
      {T_JSON_LIST, 0, "[\"bad\"]", "![0]: the string is not JSON text"},
      {T_JSON_LIST, 0, "[1, \"{\"]", "![1]: the string is not JSON text"},
      {T_JSON_LIST, 0, "\"[1]\"", "!a JSON string cannot be a JSON_LIST value"},
  };
  run_cases(cases, N_OF(cases));
}

/* X_LIST and X_SET: elements by X's rule, null as X's zero, sets in first-seen order. */
static void lists_and_sets(void **state) {
  (void)state;
  static const struct conv_case cases[] = {
      {T_INT64_LIST, 0, "[1,null,3]", "INT64_LIST:[1,0,3]"},
      {T_INT64_LIST, 0, "[\"5\", 2.0, -0, 1e2]", "INT64_LIST:[5,2,0,100]"},
      {T_INT64_LIST, 0, "[]", "INT64_LIST:[]"},
      {T_INT64_LIST, 0, "[1.5]", "![0]: 1.5 is out of range for INT64, or not an integer"},
      {T_INT64_LIST, 0, "[1, true]", "![1]: a JSON boolean cannot be a INT64 value"},
      {T_INT64_LIST, 0, "[[1]]", "![0]: a JSON array cannot be a INT64 value"},
      {T_INT64_LIST, 0, "5", "!a JSON integer cannot be a INT64_LIST value"},
      {T_INT64_LIST, 0, "\"[1]\"", "!a JSON string cannot be a INT64_LIST value"},
      {T_INT32_LIST, 0, "[null,-1]", "INT32_LIST:[0,-1]"},
      {T_INT32_LIST, 0, "[1, 2147483648]", "![1]: 2147483648 is out of range for INT32"},
      {T_UNIX_TIMESTAMP_LIST, 0, "[1700000000,null]",
       "UNIX_TIMESTAMP_LIST:[1700000000,-9223372036854775808]"},
      {T_STRING_LIST, 0, "[\"a\",null,7,\"\"]", "STRING_LIST:[a,,7,]"},
      {T_STRING_LIST, 0, "[\"a\", 1.5]", "![1]: a JSON number with a fraction cannot be a STRING"},
      {T_BOOL_LIST, 0, "[true,null,0,\"TRUE\"]", "BOOL_LIST:[true,false,false,true]"},
      {T_DOUBLE_LIST, 0, "[1, 2.5, null, \"nan\"]", "DOUBLE_LIST:[1,2.5,0,nan]"},
      {T_FLOAT_LIST, 0, "[0.5, null, \"inf\"]", "FLOAT_LIST:[0.5,0,inf]"},
      {T_FLOAT_LIST, 0, "[1, 1e39]", "![1]: 1e39 is beyond the range of a FLOAT value"},
      {T_BYTES_LIST, 0, "[\"AQ==\", null, \"\"]", "BYTES_LIST:[01,,]"},
      {T_BYTES_LIST, 0, "[\"A\"]", "![0]: a BYTES value must be standard base64"},
      {T_UUID_LIST, 0, "[\"u\",null]", "UUID_LIST:[u,]"},
      {T_TIME_UUID_LIST, 0, "[\"t\"]", "TIME_UUID_LIST:[t]"},
      {T_DECIMAL_LIST, 0, "[\"1.5\", null]", "DECIMAL_LIST:[1.5,]"},
      {T_DECIMAL_LIST, 0, "[1.5]", "![0]: a JSON number with a fraction cannot be a DECIMAL"},
      /* Sets: the first occurrence of each value, in order. */
      {T_INT64_SET, 0, "[3,1,3,2,1]", "INT64_SET:[3,1,2]"},
      {T_INT64_SET, 0, "[3,\"3\",3.0,null,0,-0]", "INT64_SET:[3,0]"},
      {T_INT64_SET, 0, "[]", "INT64_SET:[]"},
      {T_INT64_SET, 0, "[7]", "INT64_SET:[7]"},
      {T_INT64_SET, 0, "[9223372036854775807,-9223372036854775808,9223372036854775807]",
       "INT64_SET:[9223372036854775807,-9223372036854775808]"},
      {T_INT64_SET, 0, "[1, 2.5]", "![1]: 2.5 is out of range for INT64"},
      {T_INT32_SET, 0, "[5,5,-5]", "INT32_SET:[5,-5]"},
      {T_UNIX_TIMESTAMP_SET, 0, "[null,1,null]", "UNIX_TIMESTAMP_SET:[-9223372036854775808,1]"},
      {T_STRING_SET, 0, "[\"b\",\"a\",\"b\",null,\"\",\"a\"]", "STRING_SET:[b,a,]"},
      {T_STRING_SET, 0, "[1,\"1\",\"ab\",\"a\"]", "STRING_SET:[1,ab,a]"},
      {T_BOOL_SET, 0, "[true,false,true,null,1]", "BOOL_SET:[true,false]"},
      {T_BOOL_SET, 0, "[false,false]", "BOOL_SET:[false]"},
      /* NaN is never a duplicate (Python's set keeps each NaN object); -0.0 is 0. */
      {T_DOUBLE_SET, 0, "[1, 1.0, \"nan\", \"nan\", -0.0, 0, 2, \"inf\", \"inf\"]",
       "DOUBLE_SET:[1,nan,nan,-0,2,inf]"},
      {T_FLOAT_SET, 0, "[0.1, \"0.1\", 0.5, \"nan\", \"nan\"]",
       "FLOAT_SET:[0.100000001,0.5,nan,nan]"},
      {T_BYTES_SET, 0, "[\"AQ==\",\"AQ==\",\"AAE=\",null,\"\",\"AA==\"]",
       "BYTES_SET:[01,0001,,00]"},
      {T_UUID_SET, 0, "[\"u\",null,\"\",\"u\"]", "UUID_SET:[u,]"},
      {T_TIME_UUID_SET, 0, "[\"b\",\"a\",\"b\"]", "TIME_UUID_SET:[b,a]"},
      {T_DECIMAL_SET, 0, "[\"1.0\",\"1.00\",\"1.0\"]", "DECIMAL_SET:[1.0,1.00]"},
      {T_INT64_SET, 0, "{}", "!a JSON object cannot be a INT64_SET value"},
  };
  run_cases(cases, N_OF(cases));
}

/* Maps and structs (objects, or JSON-object text), lists of them, lists of lists. */
static void maps_and_lists_of_lists(void **state) {
  (void)state;
  static const struct conv_case cases[] = {
      {T_MAP, 0, "{\"i\":1,\"d\":0.5,\"s\":\"x\",\"b\":true,\"n\":null,\"o\":{\"k\":1}}",
       "MAP:{i=INT64:1,d=DOUBLE:0.5,s=STRING:x,b=BOOL:true,n=empty,o=MAP:{k=INT64:1}}"},
      {T_MAP, 0,
       "{\"l\":[1,2],\"ld\":[1,2.5],\"ls\":[\"a\"],\"lb\":[true,false],\"lo\":[{},{\"a\":1}],"
       "\"ll\":[[1],[\"a\"]],\"e\":[]}",
       "MAP:{l=INT64_LIST:[1,2],ld=DOUBLE_LIST:[1,2.5],ls=STRING_LIST:[a],lb=BOOL_LIST:[true,"
       "false],lo=MAP_LIST:[{},{a=INT64:1}],ll=VALUE_LIST:[INT64_LIST:[1],STRING_LIST:[a]],e="
       "empty}"},
      {T_MAP, 0, "{}", "MAP:{}"},
      {T_MAP, 0, "\"{\\\"a\\\":1}\"", "MAP:{a=INT64:1}"},
      {T_MAP, 0, "\" { } \"", "MAP:{}"},
      {T_MAP, 0, "\"[1]\"", "!the string holds a JSON array, not an object"},
      {T_MAP, 0, "\"x\"", "!the string is not JSON text"},
      {T_MAP, 0, "5", "!a JSON integer cannot be a MAP value"},
      {T_MAP, 0, "[{}]", "!a JSON array cannot be a MAP value"},
      {T_MAP, 0, "{\"m\":[1,\"a\"]}",
       "![m]: an array of mixed kinds (or with null) has no list type"},
      {T_MAP, 0, "{\"m\":[1,null]}", "![m]: an array of mixed kinds"},
      {T_MAP, 0, "{\"m\":{\"n\":[true,1]}}", "![m]: [n]: an array of mixed kinds"},
      {T_MAP, 0, "{\"big\":9223372036854775808}", "![big]: 9223372036854775808 is out of range"},
      /* A repeated key: one entry, the last value, at the first key's place. */
      {T_MAP, 0, "{\"a\":1,\"b\":2,\"a\":\"x\",\"a\":[true]}",
       "MAP:{a=BOOL_LIST:[true],b=INT64:2}"},
      {T_MAP, 0, "{\"a\":[1,\"x\"],\"a\":3}", "MAP:{a=INT64:3}"},
      {T_STRUCT, 0, "\"{\\\"k\\\":1,\\\"k\\\":2}\"", "STRUCT:{k=INT64:2}"},
      {T_STRUCT, 0, "{\"a\":\"b\"}", "STRUCT:{a=STRING:b}"},
      {T_STRUCT, 0, "\"{}\"", "STRUCT:{}"},
      {T_STRUCT, 0, "true", "!a JSON boolean cannot be a STRUCT value"},
      {T_MAP_LIST, 0, "[{\"a\":1},\"{\\\"b\\\":2}\",null]",
       "MAP_LIST:[{a=INT64:1},{b=INT64:2},{}]"},
      {T_MAP_LIST, 0, "[]", "MAP_LIST:[]"},
      {T_MAP_LIST, 0, "[{}, 5]", "![1]: a JSON integer cannot be a MAP_LIST value"},
      {T_MAP_LIST, 0, "[\"[]\"]", "![0]: the string holds a JSON array, not an object"},
      {T_MAP_LIST, 0, "{}", "!a JSON object cannot be a MAP_LIST value"},
      {T_STRUCT_LIST, 0, "[{}]", "STRUCT_LIST:[{}]"},
      {T_VALUE_LIST, 0, "[[1,2],[\"a\"],null,[],[0.5,1],[{}],[[1]]]",
       "VALUE_LIST:[INT64_LIST:[1,2],STRING_LIST:[a],empty,empty,DOUBLE_LIST:[0.5,1],MAP_LIST:[{}"
       "],VALUE_LIST:[INT64_LIST:[1]]]"},
      {T_VALUE_LIST, 0, "[]", "VALUE_LIST:[]"},
      {T_VALUE_LIST, 0, "[[1], 1]", "![1]: a JSON integer cannot be a VALUE_LIST value"},
      {T_VALUE_LIST, 0, "[[1,\"a\"]]", "![0]: an array of mixed kinds"},
      {T_VALUE_LIST, 0, "{}", "!a JSON object cannot be a VALUE_LIST value"},
      {T_VALUE_SET, 0, "[[true],[true]]", "VALUE_SET:[BOOL_LIST:[true],BOOL_LIST:[true]]"},
  };
  run_cases(cases, N_OF(cases));
}

/* A set of 100,000 elements is deduplicated in n log n: it completes, in order. */
static void large_sets(void **state) {
  (void)state;
  enum { N = 100000, DISTINCT = 1000 };
  struct ldr_sb sb = {0};
  ldr_sb_puts(&sb, "[");
  for (int i = 0; i < N; i++) ldr_sb_printf(&sb, "%s%d", i ? "," : "", (i * 7919 + 13) % DISTINCT);
  ldr_sb_puts(&sb, "]");
  static int order[DISTINCT];
  static unsigned char seen[DISTINCT];
  size_t k = 0;
  for (int i = 0; i < N; i++) {
    int x = (i * 7919 + 13) % DISTINCT;
    if (!seen[x]) {
      seen[x] = 1;
      order[k++] = x;
    }
  }
  assert_int_equal(k, DISTINCT);
  const struct ldr_json *j = parse(ldr_sb_str(&sb));
  ldr_sb_free(&sb);
  Feast__Types__Value *v;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_json_to_value(j, T_INT64_SET, 0, &arena, &v, &err), LDR_OK);
  assert_int_equal(v->val_case, FEAST__TYPES__VALUE__VAL_INT64_SET_VAL);
  assert_int_equal(v->int64_set_val->n_val, DISTINCT);
  for (size_t i = 0; i < DISTINCT; i++) assert_int_equal(v->int64_set_val->val[i], order[i]);

  /* The same as strings, and 100,000 distinct ones. */
  struct ldr_sb st = {0}, all = {0};
  ldr_sb_puts(&st, "[");
  ldr_sb_puts(&all, "[");
  for (int i = 0; i < N; i++) {
    ldr_sb_printf(&st, "%s\"s%d\"", i ? "," : "", (i * 7919 + 13) % DISTINCT);
    ldr_sb_printf(&all, "%s\"%d\"", i ? "," : "", N - i);
  }
  ldr_sb_puts(&st, "]");
  ldr_sb_puts(&all, "]");
  assert_int_equal(ldr_json_to_value(parse(ldr_sb_str(&st)), T_STRING_SET, 0, &arena, &v, &err),
                   LDR_OK);
  assert_int_equal(v->string_set_val->n_val, DISTINCT);
  for (size_t i = 0; i < DISTINCT; i++) {
    char want[16];
    snprintf(want, sizeof want, "s%d", order[i]);
    assert_string_equal(v->string_set_val->val[i], want);
  }
  assert_int_equal(ldr_json_to_value(parse(ldr_sb_str(&all)), T_STRING_SET, 0, &arena, &v, &err),
                   LDR_OK);
  assert_int_equal(v->string_set_val->n_val, N);
  assert_string_equal(v->string_set_val->val[0], "100000");
  assert_string_equal(v->string_set_val->val[N - 1], "1");
  ldr_sb_free(&st);
  ldr_sb_free(&all);
  ldr_arena_reset(&arena);
}

/* The type names messages use. */
static void type_names(void **state) {
  (void)state;
  assert_string_equal(ldr_value_type_name(T_INVALID), "INVALID");
  assert_string_equal(ldr_value_type_name(T_UNIX_TIMESTAMP_SET), "UNIX_TIMESTAMP_SET");
  assert_string_equal(ldr_value_type_name(LDR_TYPE_PDF_BYTES), "PDF_BYTES");
  assert_string_equal(ldr_value_type_name(LDR_TYPE_IMAGE_BYTES), "IMAGE_BYTES");
  assert_string_equal(ldr_value_type_name(T_ZONED_TIMESTAMP), "ZONED_TIMESTAMP");
  assert_string_equal(ldr_value_type_name(9), "an unknown type");
  assert_string_equal(ldr_value_type_name(-1), "an unknown type");
}

/* ---- an arena capped at every size (STYLE §20) ---- */

static void arena_cap_sweep(void **state) {
  (void)state;
  static const struct conv_case cases[] = {
      {T_JSON, 0, "{\"a\":[1,2.5,\"\\u00e9\"],\"b\":{\"c\":null}}",
       "JSON:{\"a\": [1, 2.5, \"\\u00e9\"], \"b\": {\"c\": null}}"},
      {T_JSON, 0, "\"{\\\"a\\\": [1, {\\\"b\\\": 2}]}\"", "JSON:{\"a\": [1, {\"b\": 2}]}"},
      {T_STRING_SET, 0, "[\"b\",\"a\",\"b\",null,\"c\",\"a\"]", "STRING_SET:[b,a,,c]"},
      {T_FLOAT_SET, 0, "[0.5, \"0.5\", 1, null]", "FLOAT_SET:[0.5,1,0]"},
      {T_MAP, 0, "{\"i\":1,\"o\":{\"l\":[1,2],\"s\":[\"x\"]},\"ll\":[[true]]}",
       "MAP:{i=INT64:1,o=MAP:{l=INT64_LIST:[1,2],s=STRING_LIST:[x]},ll=VALUE_LIST:[BOOL_LIST:["
       "true]]}"},
      {T_MAP, 0, "\"{\\\"k\\\": [0.5]}\"", "MAP:{k=DOUBLE_LIST:[0.5]}"},
      {T_MAP_LIST, 0, "[{\"a\":1},\"{}\",null]", "MAP_LIST:[{a=INT64:1},{},{}]"},
      {T_VALUE_LIST, 0, "[[1],null,[\"a\",\"b\"]]",
       "VALUE_LIST:[INT64_LIST:[1],empty,STRING_LIST:[a,b]]"},
      {T_JSON_LIST, 0, "[\"[1]\", {\"a\": 1}]", "JSON_LIST:[[1],{\"a\": 1}]"},
      {T_BYTES, 0, "\"AAECAwQFBgcICQ==\"", "BYTES:00010203040506070809"},
      {T_STRING, 1, "12345678901", "STRING:12345678901"},
      {T_INT64_LIST, 0, "[1,null,3]", "INT64_LIST:[1,0,3]"},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    const struct conv_case *c = &cases[i];
    const struct ldr_json *j = parse(c->json); /* in the uncapped arena */
    size_t exhausted = 0, cap;
    for (cap = 1;; cap++) {
      struct ldr_arena a;
      ldr_arena_init(&a, 16, cap);
      Feast__Types__Value *v = NULL;
      struct ldr_err err;
      ldr_err_clear(&err);
      enum ldr_rc rc = ldr_json_to_value(j, c->type, c->key, &a, &v, &err);
      assert_true(a.held <= cap);
      if (rc == LDR_OK) {
        const char *got = described(v);
        if (strcmp(got, c->want))
          fail_msg("%s at cap %zu: %s, want %s", c->json, cap, got, c->want);
        ldr_arena_destroy(&a);
        break;
      }
      if (rc != LDR_EXHAUSTED || err.rc != rc || strstr(err.msg, "memory") == NULL)
        fail_msg("%s at cap %zu: %s '%s', want RESOURCE_EXHAUSTED", c->json, cap, ldr_rc_str(rc),
                 err.msg);
      exhausted++;
      ldr_arena_destroy(&a);
      if (cap > (1u << 20)) fail_msg("%s: still exhausted at %zu bytes", c->json, cap);
    }
    if (exhausted == 0) fail_msg("%s: fitted in 1 byte", c->json);
    print_message("%s %s: %zu caps exhausted, OK from %zu bytes\n", ldr_value_type_name(c->type),
                  c->json, exhausted, cap);
  }
  ldr_arena_reset(&arena);
}

int main(void) {
  ldr_arena_init(&arena, 65536, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(join_keys),
      cmocka_unit_test(scalar_features),
      cmocka_unit_test(json_features),
      cmocka_unit_test(lists_and_sets),
      cmocka_unit_test(maps_and_lists_of_lists),
      cmocka_unit_test(large_sets),
      cmocka_unit_test(type_names),
      cmocka_unit_test(arena_cap_sweep),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  ldr_arena_destroy(&arena);
  return failed;
}
