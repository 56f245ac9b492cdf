/*
 * Feast's JSON for stored Values and answers (http/render.c, HTTP.md §4.3,
 * §4.4): every Value kind built with protobuf-c, packed as a store holds it,
 * and written out, compared as exact text (doubles as Python's repr, floats
 * widened, non-finite numbers as null, int64 exact, bytes as base64, lists,
 * sets, maps, RepeatedValue, zoned timestamps in UTC, at fixed offsets and in
 * an IANA zone); timestamps with 0, 3, 6 and 9 fraction digits; the answer's
 * table. Then the Value bytes stored by tests/data/http_vectors.json for the
 * case gof_all_value_kinds, each written out and compared with the JSON the
 * vectors expect (Feast's own rendering), column by column and as a whole.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/http_int.h"
#include "tests/support/support.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static struct ldr_arena arena;

/* ---- building Values ---- */

static Feast__Types__Value *val(Feast__Types__Value__ValCase c) {
  Feast__Types__Value *v = ldr_arena_alloc(&arena, sizeof *v);
  feast__types__value__init(v);
  v->val_case = c;
  return v;
}

static Feast__Types__Value *i64(int64_t x) {
  Feast__Types__Value *v = val(FEAST__TYPES__VALUE__VAL_INT64_VAL);
  v->int64_val = x;
  return v;
}

static Feast__Types__Value *dbl(double x) {
  Feast__Types__Value *v = val(FEAST__TYPES__VALUE__VAL_DOUBLE_VAL);
  v->double_val = x;
  return v;
}

static Feast__Types__Value *str(const char *s) {
  Feast__Types__Value *v = val(FEAST__TYPES__VALUE__VAL_STRING_VAL);
  v->string_val = (char *)s;
  return v;
}

/* Every list and set message of Value.proto is { repeated T val = 1 }. */
struct any_list {
  ProtobufCMessage base;
  size_t n_val;
  void *val;
};

static void *list_of(const ProtobufCMessageDescriptor *d, const void *elems, size_t n,
                     size_t size) {
  struct any_list *l = ldr_arena_calloc(&arena, 1, d->sizeof_message);
  protobuf_c_message_init(d, l);
  l->n_val = n;
  l->val = n ? ldr_arena_memdup(&arena, elems, n * size) : NULL;
  return l;
}
#define LIST(desc, arr) list_of(&desc, arr, N_OF(arr), sizeof(arr)[0])

static Feast__Types__Map *map_of(size_t n, const char *const *keys, Feast__Types__Value **vals) {
  Feast__Types__Map *m = ldr_arena_alloc(&arena, sizeof *m);
  feast__types__map__init(m);
  m->n_val = n;
  m->val = ldr_arena_alloc(&arena, (n + 1) * sizeof *m->val);
  for (size_t i = 0; i < n; i++) {
    m->val[i] = ldr_arena_alloc(&arena, sizeof *m->val[i]);
    feast__types__map__val_entry__init(m->val[i]);
    m->val[i]->key = (char *)keys[i];
    m->val[i]->value = vals[i];
  }
  return m;
}

static Feast__Types__RepeatedValue *repeated(size_t n, Feast__Types__Value **vals) {
  Feast__Types__RepeatedValue *r = ldr_arena_alloc(&arena, sizeof *r);
  feast__types__repeated_value__init(r);
  r->n_val = n;
  r->val = ldr_arena_memdup(&arena, vals, n * sizeof *vals);
  return r;
}

static Feast__Types__Value *zoned(int64_t t, const char *zone) {
  Feast__Types__Value *v = val(FEAST__TYPES__VALUE__VAL_ZONED_TIMESTAMP_VAL);
  v->zoned_timestamp_val = ldr_arena_alloc(&arena, sizeof *v->zoned_timestamp_val);
  feast__types__zoned_timestamp__init(v->zoned_timestamp_val);
  v->zoned_timestamp_val->unix_timestamp = t;
  v->zoned_timestamp_val->zone = (char *)zone;
  return v;
}

/* ---- writing them ---- */

static const char *render_bytes(const uint8_t *b, size_t n) {
  struct ldr_sb sb = {0};
  ldr_http_put_value(&sb, b, n, &arena);
  assert_false(sb.failed);
  const char *out = ldr_arena_memdup(&arena, ldr_sb_str(&sb), sb.len);
  ldr_sb_free(&sb);
  return out;
}

static const char *render(const Feast__Types__Value *v) {
  size_t n = feast__types__value__get_packed_size(v);
  uint8_t *b = ldr_arena_alloc(&arena, n + 1);
  assert_int_equal(feast__types__value__pack(v, b), n);
  return render_bytes(b, n);
}

static void expect_at(int line, const Feast__Types__Value *v, const char *want) {
  const char *got = render(v);
  if (strcmp(got, want)) fail_msg("line %d: %s, want %s", line, got, want);
}
#define EXPECT(v, want) expect_at(__LINE__, v, want)

static int have_zoneinfo(void) { return access("/usr/share/zoneinfo/Europe/Paris", R_OK) == 0; }

/* ---- scalars ---- */

static void scalars(void **state) {
  (void)state;
  assert_string_equal(render_bytes(NULL, 0), "null");
  EXPECT(val(FEAST__TYPES__VALUE__VAL__NOT_SET), "null"); /* packs to no bytes */
  EXPECT(val(FEAST__TYPES__VALUE__VAL_NULL_VAL), "null");

  static const uint8_t raw[] = {0x00, 0xff, 'a', 'b', 'c'};
  Feast__Types__Value *b = val(FEAST__TYPES__VALUE__VAL_BYTES_VAL);
  b->bytes_val = (ProtobufCBinaryData){sizeof raw, (uint8_t *)raw};
  EXPECT(b, "\"AP9hYmM=\"");
  b = val(FEAST__TYPES__VALUE__VAL_BYTES_VAL);
  EXPECT(b, "\"\"");
  b = val(FEAST__TYPES__VALUE__VAL_BYTES_VAL);
  b->bytes_val = (ProtobufCBinaryData){2, (uint8_t *)"ab"};
  EXPECT(b, "\"YWI=\"");

  EXPECT(str("h\xc3\xa9llo \"q\" \xe2\x98\x83\n\\"),
         "\"h\xc3\xa9llo \\\"q\\\" \xe2\x98\x83\\n\\\\\"");
  EXPECT(str(""), "\"\"");
  Feast__Types__Value *j = val(FEAST__TYPES__VALUE__VAL_JSON_VAL);
  j->json_val = "{\"a\": [1, 2]}"; /* the stored text, not parsed */
  EXPECT(j, "\"{\\\"a\\\": [1, 2]}\"");
  Feast__Types__Value *u = val(FEAST__TYPES__VALUE__VAL_UUID_VAL);
  u->uuid_val = "123e4567-e89b-12d3-a456-426614174000";
  EXPECT(u, "\"123e4567-e89b-12d3-a456-426614174000\"");
  u = val(FEAST__TYPES__VALUE__VAL_TIME_UUID_VAL);
  u->time_uuid_val = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
  EXPECT(u, "\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\"");
  Feast__Types__Value *dec = val(FEAST__TYPES__VALUE__VAL_DECIMAL_VAL);
  dec->decimal_val = "12.340";
  EXPECT(dec, "\"12.340\"");

  static const int32_t i32s[] = {0, -42, INT32_MIN, INT32_MAX};
  static const char *const i32_text[] = {"0", "-42", "-2147483648", "2147483647"};
  for (size_t i = 0; i < N_OF(i32s); i++) {
    Feast__Types__Value *v = val(FEAST__TYPES__VALUE__VAL_INT32_VAL);
    v->int32_val = i32s[i];
    EXPECT(v, i32_text[i]);
  }
  EXPECT(i64(9007199254740993LL), "9007199254740993"); /* not rounded through a double */
  EXPECT(i64(INT64_MIN), "-9223372036854775808");
  EXPECT(i64(INT64_MAX), "9223372036854775807");
  EXPECT(i64(-1), "-1");
  Feast__Types__Value *ts = val(FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL);
  ts->unix_timestamp_val = 1700000000;
  EXPECT(ts, "1700000000");
  ts = val(FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL);
  ts->unix_timestamp_val = INT64_MIN; /* only a zoned timestamp's INT64_MIN is null */
  EXPECT(ts, "-9223372036854775808");

  /* Python's repr of a float. */
  static const struct {
    double d;
    const char *text;
  } doubles[] = {
      {0.1, "0.1"},          {3.0, "3.0"},        {1e16, "1e+16"}, {1e-05, "1e-05"},
      {0.0001, "0.0001"},    {-0.0, "-0.0"},      {0.0, "0.0"},    {123456789.0, "123456789.0"},
      {1.5e300, "1.5e+300"}, {5e-324, "5e-324"},  {-2.5, "-2.5"},  {NAN, "null"},
      {INFINITY, "null"},    {-INFINITY, "null"},
  };
  for (size_t i = 0; i < N_OF(doubles); i++) EXPECT(dbl(doubles[i].d), doubles[i].text);
  static const struct {
    float f;
    const char *text;
  } floats[] = {
      {0.1f, "0.10000000149011612"},
      {0.5f, "0.5"},
      {1e10f, "10000000000.0"},
      {-3.0f, "-3.0"},
      {NAN, "null"},
      {INFINITY, "null"},
  };
  for (size_t i = 0; i < N_OF(floats); i++) {
    Feast__Types__Value *v = val(FEAST__TYPES__VALUE__VAL_FLOAT_VAL);
    v->float_val = floats[i].f;
    EXPECT(v, floats[i].text);
  }
  Feast__Types__Value *t = val(FEAST__TYPES__VALUE__VAL_BOOL_VAL);
  t->bool_val = 1;
  EXPECT(t, "true");
  EXPECT(val(FEAST__TYPES__VALUE__VAL_BOOL_VAL), "false");

  /* A scalar map is not yet supported by Feast: null. */
  Feast__Types__Value *sm = val(FEAST__TYPES__VALUE__VAL_SCALAR_MAP_VAL);
  sm->scalar_map_val = ldr_arena_alloc(&arena, sizeof *sm->scalar_map_val);
  feast__types__scalar_map__init(sm->scalar_map_val);
  EXPECT(sm, "null");
}

/* The common kinds are read off the wire; other bytes are decoded in full. */
static void wire_forms(void **state) {
  (void)state;
  static const struct {
    const char *name;
    const char *hex;
    const char *want;
  } cases[] = {
      {"int64 then a string: the last member wins", "2001120178", "\"x\""},
      {"a string then int64", "1201782007", "7"},
      {"int32 -1 as ten bytes", "18ffffffffffffffffff01", "-1"},
      {"bool 2 is true", "3802", "true"},
      {"double with an unknown field after it", "29000000000000e03fa80601", "0.5"},
      {"a truncated double", "29000000000000e0", "null"},
      {"a truncated varint", "2080", "null"},
      {"a truncated string", "120568", "null"},
      /* protobuf-c does not check UTF-8: a Value with a string that is not is null. */
      {"a string that is not UTF-8", "1201ff", "null"},
      {"an overlong form", "1202c0af", "null"},
      {"a surrogate", "1203eda080", "null"},
      {"a code point past U+10FFFF", "1204f4908080", "null"},
      {"a list with a string that is not UTF-8", "62060a01610a01ff", "null"},
      {"a map key that is not UTF-8", "a201090a070a01ff12022001", "null"},
      {"UTF-8 passes", "1206c3a9f09f9880", "\"\xc3\xa9\xf0\x9f\x98\x80\""},
      {"a double with the wrong wire type", "2801", "null"},
      {"a float", "350000803f", "1.0"},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    size_t n;
    uint8_t *b = ldr_test_unhex(&arena, cases[i].hex, &n);
    /* An exact copy: ASan sees any read past the bytes. */
    uint8_t *p = malloc(n);
    memcpy(p, b, n);
    const char *got = render_bytes(p, n);
    free(p);
    if (strcmp(got, cases[i].want)) fail_msg("%s: %s, want %s", cases[i].name, got, cases[i].want);
  }
}

/* ---- lists, sets, maps ---- */

static void lists_and_sets(void **state) {
  (void)state;
  static const int64_t i64s[] = {1, -2, INT64_MAX};
  static const int32_t i32s[] = {7, INT32_MIN};
  static const int64_t stamps[] = {1700000000, INT64_MIN};
  static const double dbls[] = {1.5, 2.0, NAN, -INFINITY, 1e-05};
  static const float flts[] = {0.5f, 0.1f, INFINITY};
  static const protobuf_c_boolean bools[] = {1, 0};
  static const ProtobufCBinaryData bytes[] = {{1, (uint8_t *)"a"}, {0, NULL}};
  static char *const strs[] = {"a", "", "c\"d"};
  static char *const jsons[] = {"{\"x\":1}", "[1]"};
  static const struct {
    Feast__Types__Value__ValCase c;
    const ProtobufCMessageDescriptor *d;
    const void *elems;
    size_t n, size;
    const char *want;
  } cases[] = {
      {FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL, &feast__types__int64_list__descriptor, i64s, 3,
       sizeof *i64s, "[1,-2,9223372036854775807]"},
      {FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL, &feast__types__int64_list__descriptor, i64s, 0,
       sizeof *i64s, "[]"},
      {FEAST__TYPES__VALUE__VAL_INT32_LIST_VAL, &feast__types__int32_list__descriptor, i32s, 2,
       sizeof *i32s, "[7,-2147483648]"},
      {FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_LIST_VAL, &feast__types__int64_list__descriptor,
       stamps, 2, sizeof *stamps, "[1700000000,-9223372036854775808]"},
      {FEAST__TYPES__VALUE__VAL_DOUBLE_LIST_VAL, &feast__types__double_list__descriptor, dbls, 5,
       sizeof *dbls, "[1.5,2.0,null,null,1e-05]"},
      {FEAST__TYPES__VALUE__VAL_FLOAT_LIST_VAL, &feast__types__float_list__descriptor, flts, 3,
       sizeof *flts, "[0.5,0.10000000149011612,null]"},
      {FEAST__TYPES__VALUE__VAL_BOOL_LIST_VAL, &feast__types__bool_list__descriptor, bools, 2,
       sizeof *bools, "[true,false]"},
      {FEAST__TYPES__VALUE__VAL_BYTES_LIST_VAL, &feast__types__bytes_list__descriptor, bytes, 2,
       sizeof *bytes, "[\"YQ==\",\"\"]"},
      {FEAST__TYPES__VALUE__VAL_STRING_LIST_VAL, &feast__types__string_list__descriptor, strs, 3,
       sizeof *strs, "[\"a\",\"\",\"c\\\"d\"]"},
      {FEAST__TYPES__VALUE__VAL_JSON_LIST_VAL, &feast__types__string_list__descriptor, jsons, 2,
       sizeof *jsons, "[\"{\\\"x\\\":1}\",\"[1]\"]"},
      {FEAST__TYPES__VALUE__VAL_UUID_LIST_VAL, &feast__types__string_list__descriptor, strs, 1,
       sizeof *strs, "[\"a\"]"},
      {FEAST__TYPES__VALUE__VAL_TIME_UUID_LIST_VAL, &feast__types__string_list__descriptor, strs, 2,
       sizeof *strs, "[\"a\",\"\"]"},
      {FEAST__TYPES__VALUE__VAL_DECIMAL_LIST_VAL, &feast__types__string_list__descriptor, strs, 1,
       sizeof *strs, "[\"a\"]"},
      /* Sets: the stored order. */
      {FEAST__TYPES__VALUE__VAL_INT64_SET_VAL, &feast__types__int64_set__descriptor, i64s, 2,
       sizeof *i64s, "[1,-2]"},
      {FEAST__TYPES__VALUE__VAL_INT32_SET_VAL, &feast__types__int32_set__descriptor, i32s, 2,
       sizeof *i32s, "[7,-2147483648]"},
      {FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_SET_VAL, &feast__types__int64_set__descriptor,
       stamps, 1, sizeof *stamps, "[1700000000]"},
      {FEAST__TYPES__VALUE__VAL_DOUBLE_SET_VAL, &feast__types__double_set__descriptor, dbls, 3,
       sizeof *dbls, "[1.5,2.0,null]"},
      {FEAST__TYPES__VALUE__VAL_FLOAT_SET_VAL, &feast__types__float_set__descriptor, flts, 2,
       sizeof *flts, "[0.5,0.10000000149011612]"},
      {FEAST__TYPES__VALUE__VAL_BOOL_SET_VAL, &feast__types__bool_set__descriptor, bools, 1,
       sizeof *bools, "[true]"},
      {FEAST__TYPES__VALUE__VAL_BYTES_SET_VAL, &feast__types__bytes_set__descriptor, bytes, 1,
       sizeof *bytes, "[\"YQ==\"]"},
      {FEAST__TYPES__VALUE__VAL_STRING_SET_VAL, &feast__types__string_set__descriptor, strs, 3,
       sizeof *strs, "[\"a\",\"\",\"c\\\"d\"]"},
      {FEAST__TYPES__VALUE__VAL_UUID_SET_VAL, &feast__types__string_set__descriptor, strs, 1,
       sizeof *strs, "[\"a\"]"},
      {FEAST__TYPES__VALUE__VAL_TIME_UUID_SET_VAL, &feast__types__string_set__descriptor, strs, 2,
       sizeof *strs, "[\"a\",\"\"]"},
      {FEAST__TYPES__VALUE__VAL_DECIMAL_SET_VAL, &feast__types__string_set__descriptor, strs, 1,
       sizeof *strs, "[\"a\"]"},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    Feast__Types__Value *v = val(cases[i].c);
    /* Every list member of the oneof is a pointer at the same place. */
    v->int64_list_val = list_of(cases[i].d, cases[i].elems, cases[i].n, cases[i].size);
    const char *got = render(v);
    if (strcmp(got, cases[i].want))
      fail_msg("case %zu (val_case %d): %s, want %s", i, cases[i].c, got, cases[i].want);
  }
}

static void maps_and_repeated(void **state) {
  (void)state;
  Feast__Types__Value *t = val(FEAST__TYPES__VALUE__VAL_BOOL_VAL);
  t->bool_val = 1;
  static const char *const inner_keys[] = {"k"};
  Feast__Types__Value *inner_vals[] = {t};
  Feast__Types__Value *inner = val(FEAST__TYPES__VALUE__VAL_MAP_VAL);
  inner->map_val = map_of(1, inner_keys, inner_vals);
  static const char *const keys[] = {"a", "b", "c", "n", "m", "unset", "q\""};
  Feast__Types__Value *vals[] = {i64(1),   str("x"),
                                 dbl(0.5), val(FEAST__TYPES__VALUE__VAL_NULL_VAL),
                                 inner,    NULL, /* an entry without a value */
                                 dbl(NAN)};
  Feast__Types__Value *m = val(FEAST__TYPES__VALUE__VAL_MAP_VAL);
  m->map_val = map_of(N_OF(keys), keys, vals);
  static const char *want_map =
      "{\"a\":1,\"b\":\"x\",\"c\":0.5,\"n\":null,\"m\":{\"k\":true},\"unset\":null,\"q\\\"\":null}";
  EXPECT(m, want_map);
  Feast__Types__Value *s = val(FEAST__TYPES__VALUE__VAL_STRUCT_VAL);
  s->struct_val = m->map_val;
  EXPECT(s, want_map);
  Feast__Types__Value *empty_map = val(FEAST__TYPES__VALUE__VAL_MAP_VAL);
  empty_map->map_val = map_of(0, NULL, NULL);
  EXPECT(empty_map, "{}");

  Feast__Types__MapList *ml = ldr_arena_alloc(&arena, sizeof *ml);
  feast__types__map_list__init(ml);
  Feast__Types__Map *maps[] = {inner->map_val, empty_map->map_val};
  ml->n_val = 2;
  ml->val = maps;
  Feast__Types__Value *l = val(FEAST__TYPES__VALUE__VAL_MAP_LIST_VAL);
  l->map_list_val = ml;
  EXPECT(l, "[{\"k\":true},{}]");
  l = val(FEAST__TYPES__VALUE__VAL_STRUCT_LIST_VAL);
  l->struct_list_val = ml;
  EXPECT(l, "[{\"k\":true},{}]");

  /* RepeatedValue: each inner Value by this table. */
  static const int64_t one_two[] = {1, 2};
  static char *const a[] = {"a"};
  Feast__Types__Value *ints = val(FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL);
  ints->int64_list_val = LIST(feast__types__int64_list__descriptor, one_two);
  Feast__Types__Value *strs = val(FEAST__TYPES__VALUE__VAL_STRING_LIST_VAL);
  strs->string_list_val = LIST(feast__types__string_list__descriptor, a);
  Feast__Types__Value *items[] = {ints, strs, val(FEAST__TYPES__VALUE__VAL__NOT_SET), inner,
                                  dbl(INFINITY)};
  Feast__Types__Value *rv = val(FEAST__TYPES__VALUE__VAL_LIST_VAL);
  rv->list_val = repeated(N_OF(items), items);
  EXPECT(rv, "[[1,2],[\"a\"],null,{\"k\":true},null]");
  Feast__Types__Value *sv = val(FEAST__TYPES__VALUE__VAL_SET_VAL);
  sv->set_val = repeated(2, items);
  EXPECT(sv, "[[1,2],[\"a\"]]");
  sv = val(FEAST__TYPES__VALUE__VAL_SET_VAL);
  sv->set_val = repeated(0, items);
  EXPECT(sv, "[]");
}

/* Values nested deeper than 100 levels are written as null below that depth. */
static void deep_nesting(void **state) {
  (void)state;
  enum { LEVELS = 110, SHOWN = 101 };
  Feast__Types__Value *v = i64(5);
  for (int i = 0; i < LEVELS; i++) {
    Feast__Types__Value *outer = val(FEAST__TYPES__VALUE__VAL_LIST_VAL);
    outer->list_val = repeated(1, &v);
    v = outer;
  }
  char want[2 * SHOWN + 8];
  memset(want, '[', SHOWN);
  memcpy(want + SHOWN, "null", 4);
  memset(want + SHOWN + 4, ']', SHOWN);
  want[2 * SHOWN + 4] = '\0';
  EXPECT(v, want);
  /* 100 levels of lists hold their value. */
  v = i64(5);
  for (int i = 0; i < 100; i++) {
    Feast__Types__Value *outer = val(FEAST__TYPES__VALUE__VAL_LIST_VAL);
    outer->list_val = repeated(1, &v);
    v = outer;
  }
  memset(want, '[', 100);
  memcpy(want + 100, "5", 1);
  memset(want + 101, ']', 100);
  want[201] = '\0';
  EXPECT(v, want);
}

static void zoned_timestamps(void **state) {
  (void)state;
  EXPECT(zoned(1700000000, ""), "\"2023-11-14T22:13:20+00:00\"");
  EXPECT(zoned(1700000000, "UTC"), "\"2023-11-14T22:13:20+00:00\"");
  EXPECT(zoned(1700000000, "+05:30"), "\"2023-11-15T03:43:20+05:30\"");
  EXPECT(zoned(1700000000, "-0800"), "\"2023-11-14T14:13:20-08:00\"");
  EXPECT(zoned(1700000000, "UTC+01:00"), "\"2023-11-14T23:13:20+01:00\"");
  EXPECT(zoned(0, "+00:00"), "\"1970-01-01T00:00:00+00:00\"");
  EXPECT(zoned(-1, ""), "\"1969-12-31T23:59:59+00:00\"");
  EXPECT(zoned(1700000000, "Not/AZone"), "\"2023-11-14T22:13:20+00:00\""); /* read as UTC */
  EXPECT(zoned(INT64_MIN, "UTC"), "null");
  EXPECT(zoned(INT64_MIN, ""), "null");
  if (!have_zoneinfo()) {
    print_message("no /usr/share/zoneinfo: the IANA zone cases are skipped\n");
    return;
  }
  EXPECT(zoned(1700000000, "Europe/Paris"), "\"2023-11-14T23:13:20+01:00\"");
  EXPECT(zoned(1690000000, "Europe/Paris"), "\"2023-07-22T06:26:40+02:00\""); /* summer time */
  EXPECT(zoned(1700000000, "America/New_York"), "\"2023-11-14T17:13:20-05:00\"");
  EXPECT(zoned(1700000000, "Asia/Kolkata"), "\"2023-11-15T03:43:20+05:30\"");
}

/* ---- timestamps and the answer ---- */

static const char *stamp(int has, int64_t s, int32_t ns) {
  struct ldr_sb sb = {0};
  ldr_http_put_timestamp(&sb, has, (struct ldr_ts){s, ns});
  const char *out = ldr_arena_memdup(&arena, ldr_sb_str(&sb), sb.len);
  ldr_sb_free(&sb);
  return out;
}

static void timestamps(void **state) {
  (void)state;
  static const struct {
    int has;
    int64_t s;
    int32_t ns;
    const char *want;
  } cases[] = {
      {0, 1700000000, 5, "\"1970-01-01T00:00:00Z\""}, /* no time: the zero Timestamp */
      {1, 0, 0, "\"1970-01-01T00:00:00Z\""},
      {1, 1700000000, 0, "\"2023-11-14T22:13:20Z\""},
      {1, 1700000000, 123000000, "\"2023-11-14T22:13:20.123Z\""},
      {1, 1700000000, 1000000, "\"2023-11-14T22:13:20.001Z\""},
      {1, 1700000000, 123456000, "\"2023-11-14T22:13:20.123456Z\""},
      {1, 1700000000, 1000, "\"2023-11-14T22:13:20.000001Z\""},
      {1, 1700000000, 123456789, "\"2023-11-14T22:13:20.123456789Z\""},
      {1, 1700000000, 1, "\"2023-11-14T22:13:20.000000001Z\""},
      {1, 1700000000, 100000010, "\"2023-11-14T22:13:20.100000010Z\""},
      {1, -1, 500000000, "\"1969-12-31T23:59:59.500Z\""},
      {1, -62135596800LL, 0, "\"0001-01-01T00:00:00Z\""},
      {1, 253402300799LL, 999999000, "\"9999-12-31T23:59:59.999999Z\""},
      {1, 951782400, 0, "\"2000-02-29T00:00:00Z\""},
      /* A row another tool wrote at the ends of int64: no date, and the body stays JSON. */
      {1, INT64_MAX, 0, "null"},
      {1, INT64_MIN, 500, "null"},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    const char *got = stamp(cases[i].has, cases[i].s, cases[i].ns);
    if (strcmp(got, cases[i].want))
      fail_msg("%d %lld %d: %s, want %s", cases[i].has, (long long)cases[i].s, cases[i].ns, got,
               cases[i].want);
  }
}

static const char *result_text(const struct ldr_serving_result *r) {
  struct ldr_sb sb = {0};
  assert_int_equal(ldr_http_put_result(&sb, r, 1 << 20, &arena), 0);
  assert_false(sb.failed);
  const char *out = ldr_arena_memdup(&arena, ldr_sb_str(&sb), sb.len);
  ldr_sb_free(&sb);
  return out;
}

static void answers(void **state) {
  (void)state;
  static const uint8_t v1001[] = {0x20, 0xe9, 0x07}, v1002[] = {0x20, 0xea, 0x07};
  static const uint8_t half[] = {0x29, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f};
  struct ldr_cell keys[2] = {{v1001, 3, LDR_FIELD_PRESENT, 0, {0, 0}},
                             {v1002, 3, LDR_FIELD_PRESENT, 0, {0, 0}}};
  struct ldr_cell conv[2] = {{half, 9, LDR_FIELD_PRESENT, 1, {1700000000, 0}},
                             {NULL, 0, LDR_FIELD_NOT_FOUND, 0, {0, 0}}};
  struct ldr_cell odd[2] = {{half, 9, LDR_FIELD_OUTSIDE_MAX_AGE, 1, {1700000000, 5000}},
                            {NULL, 0, 2 /* NULL_VALUE */, 1, {1700000001, 0}}};
  struct ldr_cell bad[2] = {{NULL, 0, 0, 0, {0, 0}}, {NULL, 0, 9, 0, {0, 0}}};
  struct ldr_column cols[] = {{"driver_id", keys}, {"conv_rate", conv}, {"odd", odd}, {"q\"", bad}};
  struct ldr_serving_result r = {.n_rows = 2, .n_cols = 4, .cols = cols};
  assert_string_equal(
      result_text(&r),
      "{\"metadata\":{\"feature_names\":[\"driver_id\",\"conv_rate\",\"odd\",\"q\\\"\"]},"
      "\"results\":["
      "{\"values\":[1001,1002],\"statuses\":[\"PRESENT\",\"PRESENT\"],"
      "\"event_timestamps\":[\"1970-01-01T00:00:00Z\",\"1970-01-01T00:00:00Z\"]},"
      "{\"values\":[0.5,null],\"statuses\":[\"PRESENT\",\"NOT_FOUND\"],"
      "\"event_timestamps\":[\"2023-11-14T22:13:20Z\",\"1970-01-01T00:00:00Z\"]},"
      "{\"values\":[0.5,null],\"statuses\":[\"OUTSIDE_MAX_AGE\",\"NULL_VALUE\"],"
      "\"event_timestamps\":[\"2023-11-14T22:13:20.000005Z\",\"2023-11-14T22:13:21Z\"]},"
      "{\"values\":[null,null],\"statuses\":[\"INVALID\",\"INVALID\"],"
      "\"event_timestamps\":[\"1970-01-01T00:00:00Z\",\"1970-01-01T00:00:00Z\"]}]}");

  /* No rows: empty lists, and no event_timestamps (Feast's converter drops them). */
  r.n_rows = 0;
  r.n_cols = 2;
  assert_string_equal(result_text(&r),
                      "{\"metadata\":{\"feature_names\":[\"driver_id\",\"conv_rate\"]},"
                      "\"results\":[{\"values\":[],\"statuses\":[]},"
                      "{\"values\":[],\"statuses\":[]}]}");
  r.n_cols = 0;
  assert_string_equal(result_text(&r), "{\"metadata\":{\"feature_names\":[]},\"results\":[]}");
}

/* A reply past its limit stops being written at once, not after every cell:
 * 100,000 rows of a column are 1.3 MB of JSON; with a limit of 1,000 bytes
 * the text stops within a cell of it. At the exact length, it is whole. */
static void answer_stops_at_its_limit(void **state) {
  (void)state;
  enum { ROWS = 100000 };
  static const uint8_t v7[] = {0x20, 0x07};
  struct ldr_cell *cells = ldr_arena_calloc(&arena, ROWS, sizeof *cells);
  for (size_t i = 0; i < ROWS; i++)
    cells[i] = (struct ldr_cell){v7, 2, LDR_FIELD_PRESENT, 0, {0, 0}};
  struct ldr_column col = {"f", cells};
  struct ldr_serving_result r = {.n_rows = ROWS, .n_cols = 1, .cols = &col};
  struct ldr_sb sb = {0};
  assert_int_equal(ldr_http_put_result(&sb, &r, 1000, &arena), -1);
  assert_true(sb.len > 1000 && sb.len < 1100);
  ldr_sb_free(&sb);
  struct ldr_sb whole = {0};
  r.n_rows = 3;
  assert_int_equal(ldr_http_put_result(&whole, &r, 1 << 20, &arena), 0);
  size_t len = whole.len;
  ldr_sb_free(&whole);
  struct ldr_sb exact = {0};
  assert_int_equal(ldr_http_put_result(&exact, &r, len, &arena), 0);
  ldr_sb_free(&exact);
  struct ldr_sb one_less = {0};
  assert_int_equal(ldr_http_put_result(&one_less, &r, len - 1, &arena), -1);
  ldr_sb_free(&one_less);
}

/* ---- the vectors: Feast's JSON for every Value kind ---- */

static json_object *find_named(json_object *list, const char *name) {
  for (size_t i = 0; i < json_object_array_length(list); i++) {
    json_object *c = json_object_array_get_idx(list, i);
    if (!strcmp(json_object_get_string(ldr_test_get(c, "name")), name)) return c;
  }
  fail_msg("no case %s", name);
  return NULL;
}

/* The stored row of view `view` whose single int64 entity value is `id`. */
static json_object *stored_row(json_object *vectors, const char *view, const char *id) {
  json_object *rows = ldr_test_get(vectors, "stored_rows");
  for (size_t i = 0; i < json_object_array_length(rows); i++) {
    json_object *r = json_object_array_get_idx(rows, i);
    json_object *ev = ldr_test_get(ldr_test_get(r, "entity_key"), "entity_values");
    const char *v =
        json_object_get_string(ldr_test_get(json_object_array_get_idx(ev, 0), "int64_val"));
    if (!strcmp(json_object_get_string(ldr_test_get(r, "feature_view")), view) && v &&
        !strcmp(v, id))
      return r;
  }
  fail_msg("no stored row of %s for %s", view, id);
  return NULL;
}

static int status_of(const char *name) {
  static const char *const names[] = {"INVALID", "PRESENT", "NULL_VALUE", "NOT_FOUND",
                                      "OUTSIDE_MAX_AGE"};
  for (int i = 0; i < 5; i++)
    if (!strcmp(names[i], name)) return i;
  fail_msg("status %s", name);
  return -1;
}

static void vectors_every_value_kind(void **state) {
  (void)state;
  json_object *vectors = ldr_test_json_file(ldr_test_data("http_vectors.json"));
  json_object *c = find_named(ldr_test_get(vectors, "http_cases"), "gof_all_value_kinds");
  json_object *body = ldr_test_get(ldr_test_get(c, "expect"), "body");
  json_object *names = ldr_test_get(ldr_test_get(body, "metadata"), "feature_names");
  json_object *results = ldr_test_get(body, "results");
  json_object *row = stored_row(vectors, "typed", "1");
  json_object *stored = ldr_test_get(row, "features");
  int64_t event_ts = json_object_get_int64(ldr_test_get(row, "event_ts"));
  int zones = have_zoneinfo();

  /* The table the case answers: driver_id 1 (stored) and 3 (not), then each feature. */
  size_t n_cols = json_object_array_length(names), checked = 0;
  assert_int_equal(n_cols, json_object_array_length(results));
  struct ldr_column *cols = ldr_arena_calloc(&arena, n_cols, sizeof *cols);
  static const uint8_t one[] = {0x20, 0x01}, three[] = {0x20, 0x03};
  for (size_t i = 0; i < n_cols; i++) {
    const char *name = json_object_get_string(json_object_array_get_idx(names, i));
    json_object *res = json_object_array_get_idx(results, i);
    json_object *statuses = ldr_test_get(res, "statuses");
    struct ldr_cell *cells = ldr_arena_calloc(&arena, 2, sizeof *cells);
    cols[i] = (struct ldr_column){name, cells};
    for (size_t r = 0; r < 2; r++)
      cells[r].status = status_of(json_object_get_string(json_object_array_get_idx(statuses, r)));
    if (i == 0) {
      cells[0].value = one;
      cells[0].len = sizeof one;
      cells[1].value = three;
      cells[1].len = sizeof three;
      continue;
    }
    /* Driver 1 was found: its time is on every feature, stored or not. */
    cells[0].has_ts = 1;
    cells[0].ts = (struct ldr_ts){event_ts, 0};
    json_object *hex = ldr_test_get(stored, name);
    if (hex == NULL) continue; /* f_missing: no row */
    cells[0].value = ldr_test_unhex(&arena, json_object_get_string(hex), &cells[0].len);
    assert_non_null(cells[0].value);

    /* The value alone, parsed, against the vectors' JSON with strict types. */
    if (!strcmp(name, "f_zoned_iana") && !zones) continue;
    const char *text = render_bytes(cells[0].value, cells[0].len);
    json_object *got = json_tokener_parse(text);
    json_object *want = json_object_array_get_idx(ldr_test_get(res, "values"), 0);
    if (got == NULL && strcmp(text, "null")) fail_msg("%s: %s is not JSON", name, text);
    if (!json_object_equal(got, want))
      fail_msg("%s: %s, want %s", name, text, json_object_to_json_string(want));
    json_object_put(got);
    checked++;
  }
  /* Every stored kind was checked (all but f_missing, and the IANA zone without zoneinfo). */
  assert_int_equal(checked, n_cols - 2 - (zones ? 0 : 1));

  /* The whole answer, as the vectors have it. */
  struct ldr_serving_result r = {.n_rows = 2, .n_cols = n_cols, .cols = cols};
  const char *text = result_text(&r);
  json_object *got = json_tokener_parse(text);
  assert_non_null(got);
  if (zones && !json_object_equal(got, body)) fail_msg("the answer differs: %s", text);
  json_object_put(got);
  json_object_put(vectors);
}

static int reset(void **state) {
  (void)state;
  ldr_arena_reset(&arena);
  return 0;
}

int main(void) {
  ldr_arena_init(&arena, 65536, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(scalars, reset),
      cmocka_unit_test_teardown(wire_forms, reset),
      cmocka_unit_test_teardown(lists_and_sets, reset),
      cmocka_unit_test_teardown(maps_and_repeated, reset),
      cmocka_unit_test_teardown(deep_nesting, reset),
      cmocka_unit_test_teardown(zoned_timestamps, reset),
      cmocka_unit_test_teardown(timestamps, reset),
      cmocka_unit_test_teardown(answers, reset),
      cmocka_unit_test_teardown(answer_stops_at_its_limit, reset),
      cmocka_unit_test_teardown(vectors_every_value_kind, reset),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  ldr_arena_destroy(&arena);
  return failed;
}
