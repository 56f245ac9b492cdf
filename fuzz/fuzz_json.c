/*
 * libFuzzer target for the HTTP API's JSON parser. Any bytes, parsed into a
 * capped arena with a depth limit, must come back as a tree, as LDR_INVALID
 * with "body: at byte N: ..." (N inside the text), or as LDR_EXHAUSTED. A
 * tree must survive being written back: every string through
 * ldr_json_put_string parses to the same bytes, and the whole tree written
 * compactly parses to a tree that writes the same. Numbers must agree with
 * themselves (an int64 is integral, an integral value is its double), and a
 * string that decodes as base64 must be the one encoding of its bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

#define FUZZ_CAP (1u << 20)
#define FUZZ_DEPTH 64

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_json: %s\n", what);
    abort();
  }
}

static struct ldr_json *parse(const char *text, size_t len, struct ldr_arena *a) {
  struct ldr_json *j = NULL;
  struct ldr_err err;
  ldr_err_clear(&err);
  /* Text written from a tree may be up to six times the tree's: no cap here. */
  ldr_arena_init(a, 1024, 0);
  enum ldr_rc rc = ldr_json_parse(text, len, a, FUZZ_DEPTH, &j, NULL, &err);
  if (rc != LDR_OK) fprintf(stderr, "fuzz_json: reparse failed: %s\n", err.msg);
  check(rc == LDR_OK, "text written from a tree does not parse");
  return j;
}

static void write_tree(struct ldr_sb *sb, const struct ldr_json *j) {
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
    /* Depth is at most FUZZ_DEPTH: recursion is fine here. */
    ldr_sb_puts(sb, j->type == LDR_JSON_ARRAY ? "[" : "{");
    for (size_t i = 0; i < j->n; i++) {
      if (i > 0) ldr_sb_puts(sb, ",");
      if (j->type == LDR_JSON_OBJECT) {
        check(j->keys[i].type == LDR_JSON_STRING, "a key is not a string");
        ldr_json_put_string(sb, j->keys[i].s, j->keys[i].len);
        ldr_sb_puts(sb, ":");
      }
      write_tree(sb, &j->items[i]);
    }
    ldr_sb_puts(sb, j->type == LDR_JSON_ARRAY ? "]" : "}");
    break;
  }
}

static void check_string(const struct ldr_json *j) {
  check(j->s != NULL && j->s[j->len] == '\0', "a string is not NUL-terminated");
  struct ldr_sb sb = {0};
  ldr_json_put_string(&sb, j->s, j->len);
  check(!sb.failed, "out of memory");
  struct ldr_arena a;
  const struct ldr_json *back = parse(sb.p, sb.len, &a);
  check(back->type == LDR_JSON_STRING && back->len == j->len && memcmp(back->s, j->s, j->len) == 0,
        "a string written and parsed again differs");
  ldr_arena_destroy(&a);
  ldr_sb_free(&sb);

  /* Base64 has one encoding per byte string: decoding and encoding again is the identity. */
  ldr_arena_init(&a, 256, 0);
  uint8_t *bytes;
  size_t n;
  if (ldr_base64_decode(j->s, j->len, &a, &bytes, &n) == 0) {
    ldr_json_put_base64(&sb, bytes, n);
    check(sb.len == j->len + 2 && memcmp(sb.p + 1, j->s, j->len) == 0,
          "base64 decoded and encoded again differs");
    ldr_sb_free(&sb);
  }
  ldr_arena_destroy(&a);
}

static void check_number(const struct ldr_json *j) {
  int64_t v = 0, w = 0;
  int r = ldr_json_int64(j, &v);
  int integral = ldr_json_integral(j, &w);
  if (r == 1) check(integral == 1 && v == w, "an int64 is not integral");
  if (r != 0) check(!ldr_json_has_fraction(j), "an int64 has a fraction");
  /* The exact value and strtod's nearest double meet at the double nearest both. */
  if (integral) check(ldr_json_double(j) == (double)w, "an integral value is not its double");
  struct ldr_sb sb = {0};
  ldr_json_put_double(&sb, ldr_json_double(j));
  check(!sb.failed && sb.len > 0, "a double was not written");
  ldr_sb_free(&sb);
}

static void check_tree(const struct ldr_json *j) {
  switch (j->type) {
  case LDR_JSON_STRING:
    check_string(j);
    break;
  case LDR_JSON_NUMBER:
    check_number(j);
    break;
  case LDR_JSON_ARRAY:
  case LDR_JSON_OBJECT:
    for (size_t i = 0; i < j->n; i++) {
      if (j->type == LDR_JSON_OBJECT) {
        check_string(&j->keys[i]);
        check(ldr_json_get(j, j->keys[i].s) != NULL || memchr(j->keys[i].s, 0, j->keys[i].len),
              "a key is not found");
      }
      check_tree(&j->items[i]);
    }
    break;
  default:
    check(j->n == 0, "a scalar has items");
  }
}

/* An object as Python's dict: each key once, in the order of first places,
 * with the value ldr_json_get finds (the last); as many keys as are distinct. */
static void check_unique(const struct ldr_json *j, struct ldr_arena *a) {
  if (j->type != LDR_JSON_OBJECT) return;
  const struct ldr_json *u = ldr_json_unique(j, a);
  if (u == NULL) return; /* the arena's cap */
  check(u->type == LDR_JSON_OBJECT && u->n <= j->n, "a unique object with more members");
  size_t k = 0;
  for (size_t i = 0; i < j->n; i++) {
    const struct ldr_json *key = &j->keys[i];
    size_t first = 0;
    while (first < i &&
           !(j->keys[first].len == key->len && memcmp(j->keys[first].s, key->s, key->len) == 0))
      first++;
    if (first < i) continue; /* a repeat: its place is the first one's */
    check(k < u->n, "a unique object misses a key");
    check(u->keys[k].len == key->len && memcmp(u->keys[k].s, key->s, key->len) == 0,
          "a unique object's keys out of first-place order");
    size_t last = i;
    for (size_t m = i + 1; m < j->n; m++)
      if (j->keys[m].len == key->len && memcmp(j->keys[m].s, key->s, key->len) == 0) last = m;
    check(memcmp(&u->items[k], &j->items[last], sizeof u->items[k]) == 0,
          "a repeated key without its last value");
    k++;
  }
  check(k == u->n, "a unique object with keys the object lacks");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ldr_arena a;
  struct ldr_json *j = NULL;
  struct ldr_json_error where;
  struct ldr_err err;
  ldr_err_clear(&err);
  ldr_arena_init(&a, 1024, FUZZ_CAP);
  enum ldr_rc rc = ldr_json_parse((const char *)data, size, &a, FUZZ_DEPTH, &j, &where, &err);
  if (rc != LDR_OK) {
    check(rc == LDR_INVALID || rc == LDR_EXHAUSTED, "a parse failed with an unexpected code");
    check(j == NULL, "a failed parse left a tree");
    check(rc == LDR_EXHAUSTED || strncmp(err.msg, "body: at byte ", 14) == 0,
          "an error without its offset");
    check(strncmp(err.msg, "body: ", 6) == 0, "an error that does not name the body");
    check(where.offset <= size, "an offset past the text");
    check(!where.too_deep || rc == LDR_INVALID, "too deep but not invalid");
    ldr_arena_destroy(&a);
    return 0;
  }
  check(j != NULL, "a parse without a tree");
  check_tree(j);
  check_unique(j, &a);
  struct ldr_sb once = {0}, twice = {0};
  write_tree(&once, j);
  struct ldr_arena b;
  const struct ldr_json *again = parse(once.p, once.len, &b);
  write_tree(&twice, again);
  check(!once.failed && !twice.failed, "out of memory");
  check(once.len == twice.len && memcmp(once.p, twice.p, once.len) == 0,
        "a tree written and parsed again differs");
  ldr_sb_free(&once);
  ldr_sb_free(&twice);
  ldr_arena_destroy(&b);
  ldr_arena_destroy(&a);
  return 0;
}
