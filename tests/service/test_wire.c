#define _GNU_SOURCE
/* The pre-decode scan of request bytes: malformed input, nesting, counts, strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "larder/v1/online_store.pb-c.h"
#include "service/wire.h"

static size_t pack_read(const char *view, const char *key, const char *feature, uint8_t *out) {
  Larder__V1__OnlineReadRequest req = LARDER__V1__ONLINE_READ_REQUEST__INIT;
  Feast__Types__EntityKey ek = FEAST__TYPES__ENTITY_KEY__INIT;
  Feast__Types__EntityKey *eks[] = {&ek, &ek};
  Feast__Types__Value v = FEAST__TYPES__VALUE__INIT;
  Feast__Types__Value *vals[] = {&v};
  char *names[] = {(char *)key};
  char *features[] = {(char *)feature};
  v.val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
  v.string_val = "x";
  ek.n_join_keys = ek.n_entity_values = 1;
  ek.join_keys = names;
  ek.entity_values = vals;
  req.feature_view = (char *)view;
  req.n_entity_keys = 2;
  req.entity_keys = eks;
  req.n_requested_features = 1;
  req.requested_features = features;
  return larder__v1__online_read_request__pack(&req, out);
}

static void counts_top_level_fields(void **state) {
  (void)state;
  uint8_t buf[256];
  size_t n = pack_read("v", "k", "f", buf);
  struct ldr_wire_scan scan;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_wire_scan(&larder__v1__online_read_request__descriptor, buf, n, &scan, &err),
                   LDR_OK);
  assert_int_equal(scan.top_count[1], 1);
  assert_int_equal(scan.top_count[2], 2);
  assert_int_equal(scan.top_count[3], 1);
  assert_false(scan.bad_field);
}

/* protobuf-c would cut these strings at the NUL: the scan names them instead. */
static void nul_bytes_are_found_with_their_path(void **state) {
  (void)state;
  uint8_t buf[256];
  size_t n = pack_read("v", "kk", "f", buf);
  uint8_t *k = memmem(buf, n, "kk", 2);
  k[1] = 0;
  struct ldr_wire_scan scan;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_wire_scan(&larder__v1__online_read_request__descriptor, buf, n, &scan, &err),
                   LDR_OK);
  assert_true(scan.bad_field);
  assert_string_equal(scan.field_err.msg, "entity_keys[0].join_keys[0]: contains a NUL byte");

  n = pack_read("v", "k", "ff", buf);
  uint8_t *f = memmem(buf, n, "ff", 2);
  f[0] = 0xc3; /* a lead byte without its continuation */
  ldr_wire_scan(&larder__v1__online_read_request__descriptor, buf, n, &scan, &err);
  assert_true(scan.bad_field);
  assert_string_equal(scan.field_err.msg, "requested_features[0]: is not valid UTF-8");
}

static void malformed_and_deep_input(void **state) {
  (void)state;
  struct ldr_wire_scan scan;
  struct ldr_err err;
  static const uint8_t truncated[] = {0x0a, 0x05, 'a'};
  static const uint8_t bad_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  static const uint8_t group[] = {0x0b};
  static const uint8_t field_zero[] = {0x02, 0x00};
  const struct {
    const uint8_t *p;
    size_t n;
  } cases[] = {
      {truncated, sizeof truncated}, {bad_varint, sizeof bad_varint}, {group, 1}, {field_zero, 2}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ldr_err_clear(&err);
    assert_int_equal(ldr_wire_scan(&larder__v1__online_read_request__descriptor, cases[i].p,
                                   cases[i].n, &scan, &err),
                     LDR_INVALID);
  }
  /* Values nested 200 deep: Value{list_val: RepeatedValue{val: Value{...}}}. */
  size_t depth = 200, n = 0;
  uint8_t *buf = calloc(depth * 8 + 16, 1);
  for (size_t i = 0; i < depth; i++) {
    /* Built inside out: each level wraps the bytes so far. */
    uint8_t tmp[8];
    size_t h = 0;
    tmp[h++] = i % 2 ? 0x0a : 0xd2; /* RepeatedValue.val = 1 / Value.list_val = 42 */
    if (!(i % 2)) tmp[h++] = 0x02;
    tmp[h] = 0;
    size_t len = n, lh = 0;
    uint8_t lb[4];
    do {
      lb[lh++] = (uint8_t)((len & 0x7f) | (len >= 0x80 ? 0x80 : 0));
      len >>= 7;
    } while (len);
    memmove(buf + h + lh, buf, n);
    memcpy(buf, tmp, h);
    memcpy(buf + h, lb, lh);
    n += h + lh;
  }
  ldr_err_clear(&err);
  assert_int_equal(ldr_wire_scan(&feast__types__repeated_value__descriptor, buf, n, &scan, &err),
                   LDR_INVALID);
  assert_non_null(strstr(err.msg, "nest deeper"));
  free(buf);
}

static void utf8_rules(void **state) {
  (void)state;
  static const struct {
    const char *s;
    size_t n;
    int ok;
  } cases[] = {
      {"plain", 5, 1},        {"Z\xc3\xbcrich", 7, 1},
      {"\xe6\x9d\xb1", 3, 1}, {"\xf0\x9f\x98\x80", 4, 1},
      {"\xc0\xaf", 2, 0},                                                   /* overlong */
      {"\xed\xa0\x80", 3, 0}, /* a surrogate */ {"\xf4\x90\x80\x80", 4, 0}, /* past U+10FFFF */
      {"\xe6\x9d", 2, 0},     {"a\0b", 3, 0},
      {"\x80", 1, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_int_equal(ldr_utf8_valid((const uint8_t *)cases[i].s, cases[i].n), cases[i].ok);
}

static void varints(void **state) {
  (void)state;
  uint8_t b[10];
  assert_int_equal(ldr_pb_put_varint(b, 300) - b, 2);
  assert_int_equal(b[0], 0xac);
  assert_int_equal(b[1], 0x02);
  assert_int_equal(ldr_pb_varint_size((uint64_t)-1), 10);
  assert_int_equal(ldr_pb_varint_size(127), 1);
  assert_int_equal(ldr_pb_varint_size(128), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(counts_top_level_fields),
      cmocka_unit_test(nul_bytes_are_found_with_their_path),
      cmocka_unit_test(malformed_and_deep_input),
      cmocka_unit_test(utf8_rules),
      cmocka_unit_test(varints),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
