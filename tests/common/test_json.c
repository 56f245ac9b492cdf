/*
 * The JSON layer: RFC 8259's grammar both ways (what parses, with its shape,
 * and what is refused, where and why), UTF-8 and escapes, the depth limit,
 * numbers read exactly, what is written (strings, Python's floats, base64),
 * and memory: a capped arena fails cleanly at every size, and a 4 MiB array
 * costs a few dozen bytes per item.
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

#include "common/json.h"
#include "tests/support/support.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The parsed tree written back compactly: numbers as their text, strings
 * through ldr_json_put_string, so a shape is one string to compare. */
static void dump(struct ldr_sb *sb, const struct ldr_json *j) {
  switch (j->type) {
  case LDR_JSON_NULL:
    ldr_sb_puts(sb, "null");
    break;
  case LDR_JSON_FALSE:
    ldr_sb_puts(sb, "false");
    break;
  case LDR_JSON_TRUE:
    ldr_sb_puts(sb, "true");
    break;
  case LDR_JSON_NUMBER:
    ldr_sb_put(sb, j->s, j->len);
    break;
  case LDR_JSON_STRING:
    ldr_json_put_string(sb, j->s, j->len);
    break;
  case LDR_JSON_ARRAY:
  case LDR_JSON_OBJECT:
    ldr_sb_puts(sb, j->type == LDR_JSON_ARRAY ? "[" : "{");
    for (size_t i = 0; i < j->n; i++) {
      if (i) ldr_sb_puts(sb, ",");
      if (j->type == LDR_JSON_OBJECT) {
        assert_int_equal(j->keys[i].type, LDR_JSON_STRING);
        ldr_json_put_string(sb, j->keys[i].s, j->keys[i].len);
        ldr_sb_puts(sb, ":");
      }
      dump(sb, &j->items[i]);
    }
    ldr_sb_puts(sb, j->type == LDR_JSON_ARRAY ? "]" : "}");
    break;
  }
}

/* Parses text[0..len) with a fresh uncapped arena into `a`; the caller destroys it. */
static enum ldr_rc parse(struct ldr_arena *a, const char *text, size_t len, int max_depth,
                         struct ldr_json **out, struct ldr_json_error *where, struct ldr_err *err) {
  ldr_arena_init(a, 256, 0);
  ldr_err_clear(err);
  return ldr_json_parse(text, len, a, max_depth, out, where, err);
}

static void valid_documents_and_their_shape(void **state) {
  (void)state;
  static const struct {
    const char *text, *shape;
  } cases[] = {
      {"0", "0"},
      {"-0", "-0"},
      {"1.5e-3", "1.5e-3"},
      {"-1E+10", "-1E+10"},
      {"0.0", "0.0"},
      {"123456789012345678901234567890", "123456789012345678901234567890"},
      {"true", "true"},
      {"false", "false"},
      {"null", "null"},
      {"\"\"", "\"\""},
      {"  [ ]  ", "[]"},
      {"{}", "{}"},
      {"[[]]", "[[]]"},
      {"[[[],{}],[{}]]", "[[[],{}],[{}]]"},
      {"[1,\"a\",true,false,null,{},[]]", "[1,\"a\",true,false,null,{},[]]"},
      {"{\"a\":{\"b\":[1,2]}}", "{\"a\":{\"b\":[1,2]}}"},
      {" \t\r\n{ \"k\" : \"v\" , \"l\":[ 1 , 2 ] } \n", "{\"k\":\"v\",\"l\":[1,2]}"},
      {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\\"\\\\/\\b\\f\\n\\r\\t\""},
      {"\"\\u0041\\u00e9\\u20AC\\uD83D\\uDE00\"", "\"A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
      {"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
       "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
      {"[-0.0,1E3,2e-0,0e0,10.01]", "[-0.0,1E3,2e-0,0e0,10.01]"},
      {"{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}"},
      {"\"\\u0000\"", "\"\\u0000\""},
      {"\"\x7f\"", "\"\x7f\""},
      {"{\"\":\"\"}", "{\"\":\"\"}"},
      {"{\"features\":[\"driver_stats:conv_rate\"],\"entities\":{\"driver_id\":[1001,1002]},"
       "\"full_feature_names\":true}",
       "{\"features\":[\"driver_stats:conv_rate\"],\"entities\":{\"driver_id\":[1001,1002]},"
       "\"full_feature_names\":true}"},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    struct ldr_arena a;
    struct ldr_err err;
    struct ldr_json *j = NULL;
    struct ldr_json_error where = {99, 1};
    enum ldr_rc rc = parse(&a, cases[i].text, strlen(cases[i].text), 64, &j, &where, &err);
    if (rc != LDR_OK) fail_msg("case %zu (%s): %s", i, cases[i].text, err.msg);
    assert_non_null(j);
    assert_int_equal(where.too_deep, 0);
    struct ldr_sb sb = {0};
    dump(&sb, j);
    if (strcmp(ldr_sb_str(&sb), cases[i].shape) != 0)
      fail_msg("case %zu: want %s, got %s", i, cases[i].shape, ldr_sb_str(&sb));
    ldr_sb_free(&sb);
    ldr_arena_destroy(&a);
  }
}

static void node_fields(void **state) {
  (void)state;
  struct ldr_arena a;
  struct ldr_err err;
  struct ldr_json *j;
  const char *text = "{\"s\":\"a\\u0000b\",\"n\":-1.5e3,\"a\":[true,null],\"e\":[],\"o\":{}}";
  assert_int_equal(parse(&a, text, strlen(text), 8, &j, NULL, &err), LDR_OK);
  assert_int_equal(j->type, LDR_JSON_OBJECT);
  assert_int_equal(j->n, 5);
  const struct ldr_json *s = ldr_json_get(j, "s");
  assert_int_equal(s->type, LDR_JSON_STRING);
  assert_int_equal(s->len, 3);
  assert_memory_equal(s->s, "a\0b", 4); /* NUL-terminated past len too */
  assert_int_equal(s->n, 0);
  const struct ldr_json *n = ldr_json_get(j, "n");
  assert_int_equal(n->type, LDR_JSON_NUMBER);
  assert_string_equal(n->s, "-1.5e3");
  assert_int_equal(n->len, 6);
  const struct ldr_json *arr = ldr_json_get(j, "a");
  assert_int_equal(arr->type, LDR_JSON_ARRAY);
  assert_int_equal(arr->n, 2);
  assert_null(arr->keys);
  assert_int_equal(arr->items[0].type, LDR_JSON_TRUE);
  assert_int_equal(arr->items[1].type, LDR_JSON_NULL);
  assert_null(arr->items[1].s);
  assert_int_equal(ldr_json_get(j, "e")->n, 0);
  assert_null(ldr_json_get(j, "e")->items);
  assert_int_equal(ldr_json_get(j, "o")->type, LDR_JSON_OBJECT);
  assert_int_equal(ldr_json_get(j, "o")->n, 0);
  ldr_arena_destroy(&a);
}

static void invalid_documents(void **state) {
  (void)state;
  static const struct {
    const char *text;
    size_t len; /* 0: strlen */
    size_t offset;
    const char *why; /* part of the message */
  } cases[] = {
      {"", 0, 0, "expected a value"},
      {"   ", 0, 3, "expected a value"},
      {"[", 0, 1, "expected a value"},
      {"]", 0, 0, "expected a value"},
      {"{", 0, 1, "expected a string or '}'"},
      {"[1,]", 0, 3, "expected a value"},
      {"{\"a\":1,}", 0, 7, "expected a string"},
      {"[1 2]", 0, 3, "expected ',' or ']'"},
      {"{\"a\" 1}", 0, 5, "expected ':'"},
      {"{\"a\":1 \"b\":2}", 0, 7, "expected ',' or '}'"},
      {"{1:2}", 0, 1, "expected a string or '}'"},
      {"{'a':1}", 0, 1, "expected a string or '}'"},
      {"['a']", 0, 1, "expected a value"},
      {"'a'", 0, 0, "expected a value"},
      {"NaN", 0, 0, "expected a value"},
      {"nan", 0, 0, "expected 'null'"},
      {"Infinity", 0, 0, "expected a value"},
      {"-Infinity", 0, 1, "expected a digit"},
      {"+1", 0, 0, "expected a value"},
      {".5", 0, 0, "expected a value"},
      {"5.", 0, 2, "expected a digit after '.'"},
      {"1.e5", 0, 2, "expected a digit after '.'"},
      {"01", 0, 0, "does not start with 0"},
      {"-01", 0, 1, "does not start with 0"},
      {"[00]", 0, 1, "does not start with 0"},
      {"1e", 0, 2, "expected a digit in the exponent"},
      {"1e+", 0, 3, "expected a digit in the exponent"},
      {"-", 0, 1, "expected a digit"},
      {"-  1", 0, 1, "expected a digit"},
      {"0x10", 0, 1, "expected the end of the text"},
      {"1 2", 0, 2, "expected the end of the text"},
      {"[1e5.0]", 0, 4, "expected ',' or ']'"},
      {"tru", 0, 0, "expected 'true'"},
      {"True", 0, 0, "expected a value"},
      {"nul", 0, 0, "expected 'null'"},
      {"falsy", 0, 0, "expected 'false'"},
      {"truex", 0, 4, "expected the end of the text"},
      {"[1]//c", 0, 3, "expected the end of the text"},
      {"/* c */ 1", 0, 0, "expected a value"},
      {"[1,/*c*/2]", 0, 3, "expected a value"},
      {"# c\n1", 0, 0, "expected a value"},
      {"\"abc", 0, 4, "expected '\"' to end the string"},
      {"\"a\tb\"", 0, 2, "control character 0x09"},
      {"\"a\nb\"", 0, 2, "control character 0x0A"},
      {"\"\x01\"", 0, 1, "control character 0x01"},
      {"\"\x1f\"", 0, 1, "control character 0x1F"},
      {"\"\\x\"", 0, 2, "expected one of"},
      {"\"\\'\"", 0, 2, "expected one of"},
      {"\"\\U0041\"", 0, 2, "expected one of"},
      {"\"\\u12\"", 0, 3, "expected four hex digits"},
      {"\"\\u12G4\"", 0, 3, "expected four hex digits"},
      {"\"\\", 0, 2, "expected an escape"},
      {"\"\\uD800\"", 0, 1, "high surrogate"},
      {"\"\\uDBFFx\"", 0, 1, "high surrogate"},
      {"\"\\uDC00\"", 0, 1, "low surrogate"},
      {"\"a\\uDFFF\\uD800\"", 0, 2, "low surrogate"},
      {"\"\\uD800\\u0041\"", 0, 1, "high surrogate"},
      {"\"\\uD800\\uD800\"", 0, 1, "high surrogate"},
      {"\"\\uD800\\n\"", 0, 1, "high surrogate"},
      {"[1,2", 0, 4, "expected ',' or ']'"},
      {"{\"a\":1", 0, 6, "expected ',' or '}'"},
      {"{\"a\"}", 0, 4, "expected ':'"},
      {"{\"a\":}", 0, 5, "expected a value"},
      {"[\"a\":1]", 0, 4, "expected ',' or ']'"},
      {"{\"a\":1,,\"b\":2}", 0, 7, "expected a string"},
      {"[,1]", 0, 1, "expected a value"},
      {"{}}", 0, 2, "expected the end of the text"},
      {"[]]", 0, 2, "expected the end of the text"},
      {"[}", 0, 1, "expected a value"},
      {"{]", 0, 1, "expected a string or '}'"},
      {"[1,\0]", 5, 3, "expected a value"},
      {"1\0", 2, 1, "expected the end of the text"},
      {"\"a\0\"", 4, 2, "control character 0x00"},
      {"\xef\xbb\xbf{}", 0, 0, "expected a value"}, /* a byte order mark */
      {"\v1", 0, 0, "expected a value"},
      {"\f1", 0, 0, "expected a value"},
      {"\xc2\xa0"
       "1",
       0, 0, "expected a value"}, /* no-break space */
      {"\"\xff\"", 0, 1, "invalid UTF-8"},
      {"[1]\n[2]", 0, 4, "expected the end of the text"},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    struct ldr_arena a;
    struct ldr_err err;
    struct ldr_json *j = (struct ldr_json *)&a; /* must come back NULL */
    struct ldr_json_error where = {99, 1};
    size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
    enum ldr_rc rc = parse(&a, cases[i].text, len, 64, &j, &where, &err);
    if (rc != LDR_INVALID)
      fail_msg("case %zu (%s): want INVALID, got %s", i, cases[i].text, ldr_rc_str(rc));
    assert_null(j);
    char want[64];
    snprintf(want, sizeof want, "body: at byte %zu: ", cases[i].offset);
    if (strncmp(err.msg, want, strlen(want)) != 0 || strstr(err.msg, cases[i].why) == NULL)
      fail_msg("case %zu (%s): want '%s...%s', got '%s'", i, cases[i].text, want, cases[i].why,
               err.msg);
    assert_int_equal(where.offset, cases[i].offset);
    assert_int_equal(where.too_deep, 0);
    ldr_arena_destroy(&a);
  }
  print_message("refused %zu invalid documents\n", N_OF(cases));
}

/* The message a client sees, whole. */
static void message_says_offset_and_expectation(void **state) {
  (void)state;
  struct ldr_arena a;
  struct ldr_err err;
  struct ldr_json *j;
  const char *text = "{\"entities\":{}   \"x\":1}";
  assert_int_equal(parse(&a, text, strlen(text), 64, &j, NULL, &err), LDR_INVALID);
  assert_string_equal(err.msg, "body: at byte 17: expected ',' or '}'");
  ldr_arena_destroy(&a);
}

/* Strings of one UTF-8 sequence between quotes: the boundaries of RFC 3629's table. */
static void utf8_edges(void **state) {
  (void)state;
  static const struct {
    const char *bytes;
    int ok;
  } cases[] = {
      {"\x7f", 1},
      {"\xc2\x80", 1},         /* U+0080 */
      {"\xdf\xbf", 1},         /* U+07FF */
      {"\xe0\xa0\x80", 1},     /* U+0800 */
      {"\xed\x9f\xbf", 1},     /* U+D7FF */
      {"\xee\x80\x80", 1},     /* U+E000 */
      {"\xef\xbf\xbf", 1},     /* U+FFFF */
      {"\xf0\x90\x80\x80", 1}, /* U+10000 */
      {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF */
      {"\xc0\x80", 0},         /* overlong NUL */
      {"\xc1\xbf", 0},         /* overlong U+007F */
      {"\xe0\x80\x80", 0},     /* overlong */
      {"\xe0\x9f\xbf", 0},     /* overlong U+07FF */
      {"\xf0\x80\x80\x80", 0}, /* overlong */
      {"\xf0\x8f\xbf\xbf", 0}, /* overlong U+FFFF */
      {"\xed\xa0\x80", 0},     /* U+D800, a surrogate */
      {"\xed\xbf\xbf", 0},     /* U+DFFF */
      {"\xf4\x90\x80\x80", 0}, /* U+110000 */
      {"\xf5\x80\x80\x80", 0}, /* past U+10FFFF */
      {"\xff", 0},
      {"\xfe", 0},
      {"\x80", 0}, /* a continuation byte alone */
      {"\xbf", 0},
      {"\xc3", 0}, /* truncated by the quote */
      {"\xe2\x82", 0},
      {"\xf0\x9f\x98", 0},
      {"\xc3\x28", 0}, /* a bad continuation */
      {"\xe2\x28\xa1", 0},
      {"\xe2\x82\x28", 0},
      {"\xf0\x9f\x28\x80", 0},
      {"\xf0\x9f\x98\x28", 0},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    char text[16];
    size_t n = strlen(cases[i].bytes);
    text[0] = '"';
    memcpy(text + 1, cases[i].bytes, n);
    text[n + 1] = '"';
    struct ldr_arena a;
    struct ldr_err err;
    struct ldr_json *j;
    enum ldr_rc rc = parse(&a, text, n + 2, 8, &j, NULL, &err);
    if (cases[i].ok) {
      if (rc != LDR_OK) fail_msg("case %zu: %s", i, err.msg);
      assert_int_equal(j->len, n);
      assert_memory_equal(j->s, cases[i].bytes, n);
    } else {
      if (rc != LDR_INVALID) fail_msg("case %zu: accepted", i);
      if (strstr(err.msg, "invalid UTF-8") == NULL) fail_msg("case %zu: %s", i, err.msg);
    }
    ldr_arena_destroy(&a);
  }
  /* And truncated by the end of the text, with no quote to stop a read past it. */
  static const char *const cut[] = {"\"\xc3", "\"\xe2\x82", "\"\xf0\x9f\x98"};
  for (size_t i = 0; i < N_OF(cut); i++) {
    size_t n = strlen(cut[i]);
    char *heap = malloc(n); /* exactly n bytes: ASan sees a read past them */
    memcpy(heap, cut[i], n);
    struct ldr_arena a;
    struct ldr_err err;
    struct ldr_json *j;
    assert_int_equal(parse(&a, heap, n, 8, &j, NULL, &err), LDR_INVALID);
    free(heap);
    ldr_arena_destroy(&a);
  }
}

static void escapes_decode_to_utf8(void **state) {
  (void)state;
  static const struct {
    const char *text;
    const char *bytes;
    size_t len;
  } cases[] = {
      {"\"\\\"\"", "\"", 1},
      {"\"\\\\\"", "\\", 1},
      {"\"\\/\"", "/", 1},
      {"\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", 5},
      {"\"\\u0041\"", "A", 1},
      {"\"\\u0000\"", "\0", 1},
      {"\"\\u001f\"", "\x1f", 1},
      {"\"\\u007F\"", "\x7f", 1},
      {"\"\\u0080\"", "\xc2\x80", 2},
      {"\"\\u07ff\"", "\xdf\xbf", 2},
      {"\"\\u0800\"", "\xe0\xa0\x80", 3},
      {"\"\\u00E9\\u00e9\"", "\xc3\xa9\xc3\xa9", 4},
      {"\"\\uFFFF\"", "\xef\xbf\xbf", 3},
      {"\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80", 4},
      {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4},
      {"\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4},
      {"\"x\\uD83D\\uDE00y\"", "x\xf0\x9f\x98\x80y", 6},
      {"\"\\u2028\\u2029\"", "\xe2\x80\xa8\xe2\x80\xa9", 6},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    struct ldr_arena a;
    struct ldr_err err;
    struct ldr_json *j;
    enum ldr_rc rc = parse(&a, cases[i].text, strlen(cases[i].text), 8, &j, NULL, &err);
    if (rc != LDR_OK) fail_msg("case %zu (%s): %s", i, cases[i].text, err.msg);
    assert_int_equal(j->type, LDR_JSON_STRING);
    assert_int_equal(j->len, cases[i].len);
    assert_memory_equal(j->s, cases[i].bytes, cases[i].len);
    assert_int_equal(j->s[j->len], '\0');
    ldr_arena_destroy(&a);
  }
}

/* Nesting exactly max_depth deep parses; one more is refused as too deep, at
 * the bracket that goes past, for arrays, objects and both mixed. */
static void depth_limit(void **state) {
  (void)state;
  static const int depths[] = {0, 1, 2, 5, 64, 1000, 200000};
  for (size_t d = 0; d < N_OF(depths); d++) {
    int max = depths[d];
    for (int kind = 0; kind < 3; kind++) {
      for (int extra = 0; extra <= 1; extra++) {
        size_t levels = (size_t)max + (size_t)extra;
        struct ldr_sb sb = {0};
        for (size_t l = 0; l < levels; l++) {
          int obj = kind == 1 || (kind == 2 && l % 2 == 1);
          ldr_sb_puts(&sb, obj ? "{\"k\":" : "[");
        }
        ldr_sb_puts(&sb, "7");
        for (size_t l = levels; l > 0; l--) {
          int obj = kind == 1 || (kind == 2 && (l - 1) % 2 == 1);
          ldr_sb_puts(&sb, obj ? "}" : "]");
        }
        struct ldr_arena a;
        struct ldr_err err;
        struct ldr_json *j;
        struct ldr_json_error where;
        enum ldr_rc rc = parse(&a, ldr_sb_str(&sb), sb.len, max, &j, &where, &err);
        if (extra == 0) {
          if (rc != LDR_OK) fail_msg("depth %d kind %d: %s", max, kind, err.msg);
          const struct ldr_json *v = j;
          for (size_t l = 0; l < levels; l++)
            v = v->type == LDR_JSON_OBJECT ? ldr_json_get(v, "k") : &v->items[0];
          assert_int_equal(v->type, LDR_JSON_NUMBER);
          assert_string_equal(v->s, "7");
        } else {
          assert_int_equal(rc, LDR_INVALID);
          assert_int_equal(where.too_deep, 1);
          /* The bracket past the limit is the last one opened. */
          size_t at = 0;
          for (size_t l = 0; l + 1 < levels; l++) {
            int obj = kind == 1 || (kind == 2 && l % 2 == 1);
            at += obj ? 5 : 1;
          }
          assert_int_equal(where.offset, at);
          if (strstr(err.msg, "nested deeper than") == NULL) fail_msg("%s", err.msg);
        }
        ldr_sb_free(&sb);
        ldr_arena_destroy(&a);
      }
    }
  }
}

static void repeated_keys_last_wins(void **state) {
  (void)state;
  struct ldr_arena a;
  struct ldr_err err;
  struct ldr_json *j;
  const char *text = "{\"a\":1,\"b\":2,\"a\":3,\"a\\u0000b\":4,\"\":5}";
  assert_int_equal(parse(&a, text, strlen(text), 8, &j, NULL, &err), LDR_OK);
  assert_int_equal(j->n, 5); /* every member kept, in order */
  assert_string_equal(j->items[0].s, "1");
  assert_string_equal(ldr_json_get(j, "a")->s, "3");
  assert_string_equal(ldr_json_get(j, "b")->s, "2");
  assert_string_equal(ldr_json_get(j, "")->s, "5");
  assert_null(ldr_json_get(j, "c"));
  assert_null(ldr_json_get(j, "ab"));
  assert_null(ldr_json_get(j, "A"));
  assert_null(ldr_json_get(&j->items[0], "a")); /* not an object */
  assert_null(ldr_json_get(NULL, "a"));
  ldr_arena_destroy(&a);
}

/* ldr_json_unique is json.loads' dict: each key once, in its first place,
 * with its last value; keys differ by their bytes ("a\0b" is not "a"). */
static void unique_members_as_python(void **state) {
  (void)state;
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"{\"a\":1,\"b\":2,\"a\":3,\"a\\u0000b\":4,\"\":5,\"\":6,\"b\":[7]}",
       "{\"a\":3,\"b\":[7],\"a\\u0000b\":4,\"\":6}"},
      {"{\"x\":1,\"x\":2,\"x\":{\"y\":3,\"y\":4}}", "{\"x\":{\"y\":3,\"y\":4}}"}, /* one level */
      {"{\"b\":1,\"a\":2}", "{\"b\":1,\"a\":2}"},
      {"{\"a\":1}", "{\"a\":1}"},
      {"{}", "{}"},
      {"[1,1]", "[1,1]"},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    struct ldr_arena a;
    struct ldr_err err;
    struct ldr_json *j;
    assert_int_equal(parse(&a, cases[i].text, strlen(cases[i].text), 8, &j, NULL, &err), LDR_OK);
    const struct ldr_json *u = ldr_json_unique(j, &a);
    assert_non_null(u);
    struct ldr_sb sb = {0};
    dump(&sb, u);
    assert_string_equal(ldr_sb_str(&sb), cases[i].want);
    /* Nothing repeated: the node itself, not a copy. */
    if (!strcmp(cases[i].text, cases[i].want)) assert_ptr_equal(u, j);
    ldr_sb_free(&sb);
    ldr_arena_destroy(&a);
  }
  assert_null(ldr_json_unique(NULL, NULL));
}

static struct ldr_json number_node(const char *text) {
  struct ldr_json j = {.type = LDR_JSON_NUMBER};
  j.s = text;
  j.len = strlen(text);
  return j;
}

static void integers_exactly(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int int64;     /* ldr_json_int64's answer */
    int integral;  /* ldr_json_integral's answer */
    int64_t value; /* when either is 1 */
  } cases[] = {
      {"0", 1, 1, 0},
      {"-0", 1, 1, 0},
      {"7", 1, 1, 7},
      {"-7", 1, 1, -7},
      {"1001", 1, 1, 1001},
      {"9223372036854775807", 1, 1, INT64_MAX},
      {"-9223372036854775808", 1, 1, INT64_MIN},
      {"9223372036854775808", -1, 0, 0},
      {"-9223372036854775809", -1, 0, 0},
      {"18446744073709551616", -1, 0, 0},
      {"100000000000000000000000000000", -1, 0, 0},
      {"1e3", 0, 1, 1000},
      {"1E3", 0, 1, 1000},
      {"1e+3", 0, 1, 1000},
      {"1002.0", 0, 1, 1002},
      {"7.000", 0, 1, 7},
      {"-0.0", 0, 1, 0},
      {"0e999999999999999999999", 0, 1, 0},
      {"0.000e-5", 0, 1, 0},
      {"2.5e1", 0, 1, 25},
      {"-2.5e1", 0, 1, -25},
      {"25e-1", 0, 0, 0},
      {"250e-1", 0, 1, 25},
      {"0.0001e4", 0, 1, 1},
      {"1.9", 0, 0, 0},
      {"0.5", 0, 0, 0},
      {"1e-1", 0, 0, 0},
      {"1.0000000000000000001", 0, 0, 0},
      {"1e19", 0, 0, 0},
      {"1e18", 0, 1, 1000000000000000000},
      {"9.223372036854775807e18", 0, 1, INT64_MAX},
      {"9.223372036854775808e18", 0, 0, 0},
      {"-9.223372036854775808e18", 0, 1, INT64_MIN},
      {"92233720368547758070e-1", 0, 1, INT64_MAX},
      {"1e999999999999999999999", 0, 0, 0},
      {"1e-999999999999999999999", 0, 0, 0},
      {"123456789.123456789e9", 0, 1, 123456789123456789},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    struct ldr_json j = number_node(cases[i].text);
    int64_t v = 42;
    int r = ldr_json_int64(&j, &v);
    if (r != cases[i].int64)
      fail_msg("int64(%s): want %d, got %d", cases[i].text, cases[i].int64, r);
    if (r == 1) assert_int_equal(v, cases[i].value);
    if (r != 1) assert_int_equal(v, 42); /* untouched */
    v = 42;
    r = ldr_json_integral(&j, &v);
    if (r != cases[i].integral)
      fail_msg("integral(%s): want %d, got %d", cases[i].text, cases[i].integral, r);
    if (r == 1 && v != cases[i].value)
      fail_msg("integral(%s): want %lld, got %lld", cases[i].text, (long long)cases[i].value,
               (long long)v);
    assert_int_equal(ldr_json_has_fraction(&j), strpbrk(cases[i].text, ".eE") != NULL);
  }
  /* Not numbers at all. */
  struct ldr_json s = {.type = LDR_JSON_STRING};
  s.s = "7";
  s.len = 1;
  int64_t v;
  assert_int_equal(ldr_json_int64(&s, &v), 0);
  assert_int_equal(ldr_json_integral(&s, &v), 0);
  assert_int_equal(ldr_json_integral(NULL, &v), 0);
  assert_int_equal(ldr_json_has_fraction(&s), 0);
}

static void doubles_and_type_names(void **state) {
  (void)state;
  static const struct {
    const char *text;
    double want;
  } cases[] = {{"0", 0.0},          {"-1.5e3", -1500.0},   {"0.1", 0.1},
               {"1e400", HUGE_VAL}, {"-1e400", -HUGE_VAL}, {"4.35", 4.35},
               {"5e-324", 5e-324}};
  for (size_t i = 0; i < N_OF(cases); i++) {
    struct ldr_json j = number_node(cases[i].text);
    assert_true(ldr_json_double(&j) == cases[i].want);
  }
  assert_string_equal(ldr_json_type_name(LDR_JSON_NULL), "null");
  assert_string_equal(ldr_json_type_name(LDR_JSON_TRUE), "boolean");
  assert_string_equal(ldr_json_type_name(LDR_JSON_FALSE), "boolean");
  assert_string_equal(ldr_json_type_name(LDR_JSON_NUMBER), "number");
  assert_string_equal(ldr_json_type_name(LDR_JSON_STRING), "string");
  assert_string_equal(ldr_json_type_name(LDR_JSON_ARRAY), "array");
  assert_string_equal(ldr_json_type_name(LDR_JSON_OBJECT), "object");
}

static void strings_written_escaped(void **state) {
  (void)state;
  static const struct {
    const char *in;
    size_t len;
    const char *out;
  } cases[] = {
      {"", 0, "\"\""},
      {"abc", 3, "\"abc\""},
      {"a\"b", 3, "\"a\\\"b\""},
      {"a\\b", 3, "\"a\\\\b\""},
      {"/", 1, "\"/\""},
      {"\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\""},
      {"\0", 1, "\"\\u0000\""},
      {"\x01\x1f", 2, "\"\\u0001\\u001f\""},
      {"\x0b", 1, "\"\\u000b\""},
      {"\x7f", 1, "\"\x7f\""},
      {" ", 1, "\" \""},
      {"caf\xc3\xa9 \xf0\x9f\x98\x80", 10, "\"caf\xc3\xa9 \xf0\x9f\x98\x80\""},
      {"\xe2\x80\xa8", 3, "\"\xe2\x80\xa8\""}, /* U+2028 stays as it is */
      {"x\n", 2, "\"x\\n\""},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    struct ldr_sb sb = {0};
    ldr_json_put_string(&sb, cases[i].in, cases[i].len);
    if (strcmp(ldr_sb_str(&sb), cases[i].out) != 0)
      fail_msg("case %zu: want %s, got %s", i, cases[i].out, ldr_sb_str(&sb));
    ldr_sb_free(&sb);
  }
  /* Every byte value that can be in a parsed string reads back the same. */
  char all[256 + 128];
  size_t n = 0;
  for (int c = 0; c < 128; c++) all[n++] = (char)c;
  for (int c = 0x80; c < 0x800; c += 0x11)
    n += (size_t)snprintf(all + n, 3, "%c%c", 0xC0 | c >> 6, 0x80 | (c & 0x3F));
  struct ldr_sb sb = {0};
  ldr_json_put_string(&sb, all, n);
  struct ldr_arena a;
  struct ldr_err err;
  struct ldr_json *j;
  assert_int_equal(parse(&a, ldr_sb_str(&sb), sb.len, 8, &j, NULL, &err), LDR_OK);
  assert_int_equal(j->len, n);
  assert_memory_equal(j->s, all, n);
  ldr_arena_destroy(&a);
  ldr_sb_free(&sb);
}

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

/* The doubles and floats of value_text.json, whose text CPython wrote: the
 * same repr in JSON, except that what is not finite is null. */
static void doubles_written_as_python(void **state) {
  (void)state;
  json_object *root = ldr_test_json_file(ldr_test_data("value_text.json"));
  json_object *cases = ldr_test_get(root, "cases");
  size_t checked = 0, nulls = 0;
  for (size_t i = 0; i < json_object_array_length(cases); i++) {
    json_object *c = json_object_array_get_idx(cases, i);
    const char *kind = json_object_get_string(ldr_test_get(c, "kind"));
    if (strcmp(kind, "double_val") != 0 && strcmp(kind, "float_val") != 0) continue;
    struct ldr_arena a;
    ldr_arena_init(&a, 256, 0);
    size_t blen;
    uint8_t *b = ldr_test_unhex(&a, json_object_get_string(ldr_test_get(c, "value_hex")), &blen);
    double d = kind[0] == 'd' ? le_double(b) : (double)le_float(b);
    const char *text = json_object_get_string(ldr_test_get(c, "value_text"));
    int finite = strcmp(text, "nan") != 0 && strcmp(text, "inf") != 0 && strcmp(text, "-inf") != 0;
    struct ldr_sb sb = {0};
    ldr_json_put_double(&sb, d);
    const char *want = finite ? text : "null";
    if (strcmp(ldr_sb_str(&sb), want) != 0)
      fail_msg("case %zu: want %s, got %s", i, want, ldr_sb_str(&sb));
    /* What is written is JSON that reads back as the same double. */
    struct ldr_json *j;
    struct ldr_err err;
    struct ldr_arena pa;
    assert_int_equal(parse(&pa, ldr_sb_str(&sb), sb.len, 1, &j, NULL, &err), LDR_OK);
    if (finite) {
      assert_true(ldr_json_double(j) == d);
    } else {
      assert_int_equal(j->type, LDR_JSON_NULL);
      nulls++;
    }
    ldr_arena_destroy(&pa);
    ldr_sb_free(&sb);
    ldr_arena_destroy(&a);
    checked++;
  }
  assert_true(checked >= 40);
  assert_true(nulls >= 3);
  print_message("checked %zu doubles (%zu not finite)\n", checked, nulls);
  json_object_put(root);
}

static void base64_both_ways(void **state) {
  (void)state;
  /* RFC 4648 §10. */
  static const char *const vectors[][2] = {{"", ""},
                                           {"f", "Zg=="},
                                           {"fo", "Zm8="},
                                           {"foo", "Zm9v"},
                                           {"foob", "Zm9vYg=="},
                                           {"fooba", "Zm9vYmE="},
                                           {"foobar", "Zm9vYmFy"}};
  struct ldr_arena a;
  ldr_arena_init(&a, 256, 0);
  for (size_t i = 0; i < N_OF(vectors); i++) {
    struct ldr_sb sb = {0};
    ldr_json_put_base64(&sb, (const uint8_t *)vectors[i][0], strlen(vectors[i][0]));
    char want[32];
    snprintf(want, sizeof want, "\"%s\"", vectors[i][1]);
    assert_string_equal(ldr_sb_str(&sb), want);
    ldr_sb_free(&sb);
    uint8_t *out = NULL;
    size_t n = 99;
    assert_int_equal(ldr_base64_decode(vectors[i][1], strlen(vectors[i][1]), &a, &out, &n), 0);
    assert_int_equal(n, strlen(vectors[i][0]));
    assert_memory_equal(out, vectors[i][0], n);
  }
  /* Every length up to past the writer's buffer, every byte value. */
  uint8_t bytes[700];
  for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(i * 7 + (i >> 8));
  for (size_t len = 0; len <= sizeof bytes; len += len < 20 ? 1 : 37) {
    struct ldr_sb sb = {0};
    ldr_json_put_base64(&sb, bytes, len);
    assert_int_equal(sb.len, 2 + (len + 2) / 3 * 4);
    uint8_t *out;
    size_t n;
    assert_int_equal(ldr_base64_decode(sb.p + 1, sb.len - 2, &a, &out, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(out, bytes, len);
    ldr_sb_free(&sb);
  }
  static const struct {
    const char *text;
    size_t len; /* 0: strlen */
  } bad[] = {
      /* Not a multiple of 4 (padding left out). */
      {"Zg=", 0},
      {"Zg", 0},
      {"Z", 0},
      {"Zm9vY", 0},
      {"Zm9vYmFy", 6}, /* the bytes past the length would decode */
      {"Zm9vYmFy", 7},
      /* Not canonical: bits set past the last whole byte. */
      {"Zh==", 0},
      {"Zm9=", 0},
      {"Zm9vZh==", 0},
      /* '=' other than one or two at the very end. */
      {"Zg==Zg==", 0},
      {"Z===", 0},
      {"====", 0},
      {"Zm=v", 0},
      {"Zg=A", 0},
      /* Whitespace, other alphabets, other bytes. */
      {"Zm 9", 0},
      {"Zm9v\n   ", 0},
      {"Zm9\n", 0},
      {" Zm9v   ", 0},
      {"Zm-v", 0},
      {"Zm_v", 0},
      {"Zm9v!AAA", 0},
      {"Zm9v\0AAA", 8},
      {"Zm9v\xc3\xa9"
       "AA",
       0},
  };
  for (size_t i = 0; i < N_OF(bad); i++) {
    size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);
    /* On the heap, no more than the literal: ASan sees a read past it, and
     * what follows a shortened length is there to be wrongly decoded. */
    size_t size = len > strlen(bad[i].text) ? len : strlen(bad[i].text);
    char *heap = malloc(size);
    memcpy(heap, bad[i].text, size);
    uint8_t *out = NULL;
    size_t n = 0;
    if (ldr_base64_decode(heap, len, &a, &out, &n) != -1)
      fail_msg("accepted '%.*s'", (int)len, bad[i].text);
    free(heap);
  }
  ldr_arena_destroy(&a);
  /* Refused text costs no memory; a full arena is a refusal too, and says so. */
  struct ldr_arena small;
  ldr_arena_init(&small, 16, 16);
  uint8_t *out;
  size_t n;
  assert_int_equal(ldr_base64_decode("Zh==", 4, &small, &out, &n), -1);
  assert_int_equal(small.held, 0);
  assert_false(small.exhausted);
  assert_int_equal(ldr_base64_decode("Zm9vYmFyZm9vYmFyZm9vYmFy", 24, &small, &out, &n), -1);
  assert_true(small.exhausted);
  ldr_arena_destroy(&small);
}

/* A request with a bit of everything, deep and wide enough that every kind of
 * allocation the parser makes (stack growth, count chunks, the tree) fails at
 * some cap. */
static char *sweep_document(size_t *len) {
  struct ldr_sb sb = {0};
  ldr_sb_puts(&sb,
              "{\"features\":[\"driver_stats:conv_rate\",\"driver_stats:acc_rate\"],"
              "\"entities\":{\"driver_id\":[1001,1002,-3.5e2],\"name\":[\"caf\\u00e9\","
              "\"\\ud83d\\ude00\",\"tab\\t\"]},\"full_feature_names\":true,\"x\":null,\"deep\":");
  for (int i = 0; i < 20; i++) ldr_sb_puts(&sb, "[");
  ldr_sb_puts(&sb, "{}");
  for (int i = 0; i < 20; i++) ldr_sb_puts(&sb, "]");
  ldr_sb_puts(&sb, ",\"many\":[");
  for (int i = 0; i < 40; i++) ldr_sb_printf(&sb, "%s[%d,{\"k\":\"v%d\"}]", i ? "," : "", i, i);
  ldr_sb_puts(&sb, "]}");
  *len = sb.len;
  return sb.p;
}

/* STYLE §20: at every cap from nothing up, the parse fails as EXHAUSTED with
 * a message or succeeds with the whole tree; the arena frees it all. */
static void arena_cap_sweep(void **state) {
  (void)state;
  size_t len;
  char *text = sweep_document(&len);
  struct ldr_arena a;
  struct ldr_err err;
  struct ldr_json *j;
  assert_int_equal(parse(&a, text, len, 64, &j, NULL, &err), LDR_OK);
  struct ldr_sb want = {0};
  dump(&want, j);
  ldr_arena_destroy(&a);

  size_t exhausted = 0, cap;
  for (cap = 16;; cap++) {
    ldr_arena_init(&a, 64, cap);
    ldr_err_clear(&err);
    j = (struct ldr_json *)&a;
    enum ldr_rc rc = ldr_json_parse(text, len, &a, 64, &j, NULL, &err);
    if (rc == LDR_EXHAUSTED) {
      assert_null(j);
      char want_msg[96];
      snprintf(want_msg, sizeof want_msg,
               "body: %zu bytes of JSON need more memory than a request may use", len);
      assert_string_equal(err.msg, want_msg);
      assert_true(a.held <= cap);
      exhausted++;
      ldr_arena_destroy(&a);
      continue;
    }
    if (rc != LDR_OK) fail_msg("cap %zu: %s %s", cap, ldr_rc_str(rc), err.msg);
    struct ldr_sb got = {0};
    dump(&got, j);
    assert_string_equal(ldr_sb_str(&got), ldr_sb_str(&want));
    ldr_sb_free(&got);
    ldr_arena_destroy(&a);
    break;
  }
  assert_true(exhausted > 100);
  print_message("%zu caps exhausted before %zu bytes sufficed\n", exhausted, cap);
  ldr_sb_free(&want);
  free(text);
}

/* 4 MiB of "[0,0,...]": about two million nodes, within a small factor of the text. */
static void large_array_memory(void **state) {
  (void)state;
  const size_t len = 4u << 20;
  char *text = malloc(len);
  assert_non_null(text);
  /* An odd count of "0,0,...,0" between the brackets, and a newline to make 4 MiB. */
  text[0] = '[';
  for (size_t i = 1; i < len - 2; i++) text[i] = i % 2 == 1 ? '0' : ',';
  text[len - 2] = '\n';
  text[len - 1] = ']';
  size_t items = (len - 2) / 2;
  struct ldr_arena a;
  struct ldr_err err;
  struct ldr_json *j;
  ldr_arena_init(&a, 4096, 0);
  ldr_err_clear(&err);
  assert_int_equal(ldr_json_parse(text, len, &a, 64, &j, NULL, &err), LDR_OK);
  assert_int_equal(j->n, items);
  assert_string_equal(j->items[items - 1].s, "0");
  assert_true(a.held < (size_t)64 << 20);
  print_message("%zu items: %zu bytes of arena, %.1f per node\n", items, a.held,
                (double)a.held / (double)(items + 1));
  ldr_arena_destroy(&a);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(valid_documents_and_their_shape),
      cmocka_unit_test(node_fields),
      cmocka_unit_test(invalid_documents),
      cmocka_unit_test(message_says_offset_and_expectation),
      cmocka_unit_test(utf8_edges),
      cmocka_unit_test(escapes_decode_to_utf8),
      cmocka_unit_test(depth_limit),
      cmocka_unit_test(repeated_keys_last_wins),
      cmocka_unit_test(unique_members_as_python),
      cmocka_unit_test(integers_exactly),
      cmocka_unit_test(doubles_and_type_names),
      cmocka_unit_test(strings_written_escaped),
      cmocka_unit_test(doubles_written_as_python),
      cmocka_unit_test(base64_both_ways),
      cmocka_unit_test(arena_cap_sweep),
      cmocka_unit_test(large_array_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
