/*
 * backends/collect.c: read rows laid out per requested key (request order,
 * duplicates sharing results, rows of other keys ignored, the latest
 * event_ts), the byte budget a read may take (counted per row, given back by
 * ldr_collect_reset, checked ahead by ldr_collect_reserve), and the
 * last-wins flattening of a write batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backends/backend_int.h"

static struct ldr_arena arena;

static struct ldr_key K(const char *s) {
  struct ldr_key k = {(const uint8_t *)s, strlen(s)};
  return k;
}

/* A stored row: key, feature name, value, event_ts seconds (0: none). */
struct stored {
  const char *key, *name, *value;
  int64_t ts;
};

static const struct ldr_read_feature *feature(const struct ldr_read_row *r, const char *name) {
  for (size_t i = 0; i < r->n_features; i++)
    if (r->features[i].name_len == strlen(name) && !memcmp(r->features[i].name, name, strlen(name)))
      return &r->features[i];
  return NULL;
}

static void add(struct ldr_collector *c, const struct stored *s) {
  struct ldr_ts ts = {s->ts, 7};
  struct ldr_err err;
  ldr_err_clear(&err);
  enum ldr_rc rc = ldr_collect_row(c, s->key, strlen(s->key), s->name, strlen(s->name), s->value,
                                   strlen(s->value), s->ts ? &ts : NULL, &err);
  if (rc != LDR_OK) fail_msg("row %s/%s: %s", s->key, s->name, err.msg);
}

/* Keys in request order (with repeats and a prefix of another key), rows in
 * any order: each key gets its own rows, in request order. */
static void request_order_and_duplicates(void **state) {
  (void)state;
  static const char *const request[] = {"k3", "k1", "nope", "k3", "k", "k10", "k1"};
  static const struct stored rows[] = {
      {"k1", "a", "A1", 100},    {"k3", "a", "A3", 300},
      {"k1", "b", "B1", 150},    {"zz", "a", "Z", 999}, /* nobody asked for it */
      {"k10", "a", "A10", 1000}, {"k3", "b", "B3", 250},
      {"k", "a", "A", 0},        {"k1", "c", "C1", 120},
  };
  /* What each request position must get: its features and latest event_ts. */
  static const struct {
    int found;
    size_t n;
    int64_t ts; /* 0: none */
    const char *a, *b, *c;
  } want[] = {
      {1, 2, 300, "A3", "B3", NULL}, {1, 3, 150, "A1", "B1", "C1"}, {0, 0, 0, NULL, NULL, NULL},
      {1, 2, 300, "A3", "B3", NULL}, {1, 1, 0, "A", NULL, NULL},    {1, 1, 1000, "A10", NULL, NULL},
      {1, 3, 150, "A1", "B1", "C1"},
  };
  size_t n = sizeof request / sizeof request[0];
  struct ldr_key keys[sizeof request / sizeof request[0]];
  for (size_t i = 0; i < n; i++) keys[i] = K(request[i]);
  size_t budget = (size_t)-1;
  struct ldr_collector c;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_collect_begin(&c, &arena, keys, n, &budget, &err), LDR_OK);
  assert_int_equal(c.nuniq, 5);        /* the distinct keys a backend sends */
  for (size_t u = 1; u < c.nuniq; u++) /* sorted by bytes */
    assert_true(memcmp(c.uniq[u - 1].bytes, c.uniq[u].bytes,
                       c.uniq[u - 1].len < c.uniq[u].len ? c.uniq[u - 1].len : c.uniq[u].len) <= 0);
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) add(&c, &rows[i]);
  struct ldr_read_row out[sizeof request / sizeof request[0]];
  memset(out, 0x5a, sizeof out);
  assert_int_equal(ldr_collect_end(&c, out, &err), LDR_OK);
  for (size_t i = 0; i < n; i++) {
    const char *vals[3] = {want[i].a, want[i].b, want[i].c};
    static const char *const names[3] = {"a", "b", "c"};
    if (out[i].found != want[i].found || out[i].n_features != want[i].n)
      fail_msg("request %zu (%s): found %d with %zu features, want %d with %zu", i, request[i],
               out[i].found, out[i].n_features, want[i].found, want[i].n);
    assert_int_equal(out[i].has_event_ts, want[i].ts != 0);
    if (want[i].ts) {
      assert_int_equal(out[i].event_ts.s, want[i].ts);
      assert_int_equal(out[i].event_ts.ns, 7);
    }
    for (int f = 0; f < 3; f++) {
      const struct ldr_read_feature *got = feature(&out[i], names[f]);
      if (vals[f] == NULL) {
        assert_null(got);
        continue;
      }
      if (got == NULL) fail_msg("request %zu (%s): no feature %s", i, request[i], names[f]);
      assert_int_equal(got->value_len, strlen(vals[f]));
      assert_memory_equal(got->value, vals[f], got->value_len);
      assert_int_equal(got->name[got->name_len], '\0'); /* names are NUL-terminated copies */
    }
  }
}

/* The latest event_ts wins by seconds, then by nanoseconds, whatever the row order. */
static void latest_event_ts(void **state) {
  (void)state;
  static const struct {
    struct ldr_ts ts[3];
    struct ldr_ts want;
  } cases[] = {
      {{{5, 0}, {7, 0}, {6, 0}}, {7, 0}},
      {{{7, 1}, {7, 9}, {7, 3}}, {7, 9}},
      {{{8, 0}, {7, 999999999}, {-1, 0}}, {8, 0}},
      {{{-5, 0}, {-9, 0}, {-7, 0}}, {-5, 0}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ldr_key k = K("key");
    size_t budget = (size_t)-1;
    struct ldr_collector c;
    struct ldr_err err;
    ldr_err_clear(&err);
    assert_int_equal(ldr_collect_begin(&c, &arena, &k, 1, &budget, &err), LDR_OK);
    for (int r = 0; r < 3; r++) {
      char name[2] = {(char)('a' + r), 0};
      assert_int_equal(ldr_collect_row(&c, "key", 3, name, 1, "v", 1, &cases[i].ts[r], &err),
                       LDR_OK);
    }
    struct ldr_read_row out;
    assert_int_equal(ldr_collect_end(&c, &out, &err), LDR_OK);
    assert_true(out.has_event_ts);
    if (out.event_ts.s != cases[i].want.s || out.event_ts.ns != cases[i].want.ns)
      fail_msg("case %zu: %lld.%d, want %lld.%d", i, (long long)out.event_ts.s, out.event_ts.ns,
               (long long)cases[i].want.s, cases[i].want.ns);
  }
}

/* Each row costs its name and value plus 16 bytes of framing. */
static void budget_counting(void **state) {
  (void)state;
  struct ldr_key keys[2] = {K("a"), K("b")};
  size_t budget = 100;
  struct ldr_collector c;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_collect_begin(&c, &arena, keys, 2, &budget, &err), LDR_OK);
  /* 4 + 20 + 16 = 40 */
  assert_int_equal(ldr_collect_row(&c, "a", 1, "name", 4, "01234567890123456789", 20, NULL, &err),
                   LDR_OK);
  assert_int_equal(budget, 60);
  assert_int_equal(c.spent, 40);
  /* Rows of keys nobody asked for cost nothing. */
  assert_int_equal(ldr_collect_row(&c, "x", 1, "name", 4, "01234567890123456789", 20, NULL, &err),
                   LDR_OK);
  assert_int_equal(budget, 60);
  /* reserve checks without taking: 44 + 16 = 60 fits exactly, 61 does not. */
  assert_int_equal(ldr_collect_reserve(&c, 4, 40, &err), LDR_OK);
  assert_int_equal(budget, 60);
  assert_int_equal(ldr_collect_reserve(&c, 4, 41, &err), LDR_EXHAUSTED);
  assert_non_null(strstr(err.msg, "larder.max_message_bytes"));
  ldr_err_clear(&err);
  /* A row of exactly what is left fits; the next byte does not. */
  assert_int_equal(ldr_collect_row(&c, "b", 1, "n", 1,
                                   "0123456789012345678901234567890123456789"
                                   "012",
                                   43, NULL, &err),
                   LDR_OK);
  assert_int_equal(budget, 0);
  assert_int_equal(ldr_collect_row(&c, "a", 1, "", 0, "", 0, NULL, &err), LDR_EXHAUSTED);
  assert_int_equal(budget, 0);
  /* A reset (a statement run again) gives back what the rows took, and forgets them. */
  ldr_err_clear(&err);
  ldr_collect_reset(&c);
  assert_int_equal(budget, 100);
  assert_int_equal(c.spent, 0);
  assert_int_equal(ldr_collect_row(&c, "b", 1, "n", 1, "v", 1, NULL, &err), LDR_OK);
  assert_int_equal(budget, 82);
  struct ldr_read_row out[2];
  assert_int_equal(ldr_collect_end(&c, out, &err), LDR_OK);
  assert_false(out[0].found); /* the row of "a" before the reset is gone */
  assert_true(out[1].found);
  assert_int_equal(out[1].n_features, 1);
}

/* Two reads of one call share the budget: the second sees what the first took,
 * and a reset of the second gives back only its own rows. */
static void budget_is_shared(void **state) {
  (void)state;
  struct ldr_key k = K("k");
  size_t budget = 1000;
  struct ldr_collector c1, c2;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_collect_begin(&c1, &arena, &k, 1, &budget, &err), LDR_OK);
  assert_int_equal(ldr_collect_begin(&c2, &arena, &k, 1, &budget, &err), LDR_OK);
  assert_int_equal(ldr_collect_row(&c1, "k", 1, "f", 1, "v", 1, NULL, &err), LDR_OK);
  assert_int_equal(ldr_collect_row(&c2, "k", 1, "ff", 2, "vv", 2, NULL, &err), LDR_OK);
  assert_int_equal(budget, 1000 - 18 - 20);
  ldr_collect_reset(&c2);
  assert_int_equal(budget, 1000 - 18);
}

/* ldr_collect_row_ref keeps the caller's memory; ldr_collect_row copies it;
 * ldr_collect_row_of files a row under a known distinct key. */
static void copies_and_references(void **state) {
  (void)state;
  struct ldr_key keys[2] = {K("b"), K("a")};
  size_t budget = (size_t)-1;
  struct ldr_collector c;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_collect_begin(&c, &arena, keys, 2, &budget, &err), LDR_OK);
  static const char name[] = "feature", value[] = "value";
  char scratch_name[] = "copied", scratch_value[] = "bytes";
  assert_int_equal(ldr_collect_row_ref(&c, "a", 1, name, 7, value, 5, NULL, &err), LDR_OK);
  assert_int_equal(ldr_collect_row(&c, "a", 1, scratch_name, 6, scratch_value, 5, NULL, &err),
                   LDR_OK);
  memset(scratch_name, '#', 6); /* the driver's buffer is reused */
  memset(scratch_value, '#', 5);
  /* uniq is sorted: "a" is 0, "b" is 1. */
  assert_int_equal(ldr_collect_row_of(&c, 1, "of", 2, "B", 1, NULL, &err), LDR_OK);
  struct ldr_read_row out[2];
  assert_int_equal(ldr_collect_end(&c, out, &err), LDR_OK);
  assert_int_equal(out[1].n_features, 2);
  assert_ptr_equal(feature(&out[1], "feature")->name, name);
  assert_ptr_equal(feature(&out[1], "feature")->value, value);
  const struct ldr_read_feature *f = feature(&out[1], "copied");
  assert_non_null(f);
  assert_memory_equal(f->value, "bytes", 5);
  assert_int_equal(out[0].n_features, 1);
  assert_memory_equal(feature(&out[0], "of")->value, "B", 1);
}

/* No keys, and empty names or values, are fine. */
static void empty_cases(void **state) {
  (void)state;
  size_t budget = 10;
  struct ldr_collector c;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_collect_begin(&c, &arena, NULL, 0, &budget, &err), LDR_OK);
  assert_int_equal(c.nuniq, 0);
  assert_int_equal(ldr_collect_row(&c, "k", 1, "f", 1, "v", 1, NULL, &err), LDR_OK);
  assert_int_equal(budget, 10);
  struct ldr_read_row none;
  assert_int_equal(ldr_collect_end(&c, &none, &err), LDR_OK);
}

/* A full arena is RESOURCE_EXHAUSTED, never a crash. */
static void full_arena(void **state) {
  (void)state;
  struct ldr_arena small;
  ldr_arena_init(&small, 64, 512);
  struct ldr_key keys[40];
  for (int i = 0; i < 40; i++) keys[i] = K("same");
  size_t budget = (size_t)-1;
  struct ldr_collector c;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_collect_begin(&c, &small, keys, 40, &budget, &err), LDR_EXHAUSTED);
  assert_non_null(strstr(err.msg, "larger than a call may hold"));
  ldr_arena_destroy(&small);
}

/* ---- last-wins flattening ---- */

static struct ldr_write_feature wf(const char *name, const char *tag) {
  struct ldr_write_feature f = {name, NULL, (const uint8_t *)tag, strlen(tag)};
  return f;
}

/* The named features, for reads by key that keep only those. */
static void wanted(void **state) {
  (void)state;
  struct ldr_err err;
  ldr_err_clear(&err);
  const char *names[] = {"f07", "a", "f31", ""};
  struct ldr_wanted w;
  assert_int_equal(ldr_wanted_init(&w, names, 4, &arena, &err), LDR_OK);
  assert_true(ldr_wanted_has(&w, "f31", 3));
  assert_int_equal(w.next, 3); /* the next row is looked for after a match first */
  assert_true(ldr_wanted_has(&w, "f07", 3));
  assert_int_equal(w.next, 1);
  assert_true(ldr_wanted_has(&w, "a", 1));
  assert_true(ldr_wanted_has(&w, "", 0));
  assert_int_equal(w.next, 0);                  /* after the last name, the first */
  assert_false(ldr_wanted_has(&w, "f0", 2));    /* a prefix of a name is not it */
  assert_false(ldr_wanted_has(&w, "f071", 4));  /* nor is a name it prefixes */
  assert_true(ldr_wanted_has(&w, "f07xyz", 3)); /* the name is its len bytes: "f07" */
  assert_false(ldr_wanted_has(&w, "b", 1));
  assert_false(ldr_wanted_has(&w, "f08", 3));  /* a name of the same length */
  assert_false(ldr_wanted_has(&w, "a\0x", 3)); /* a stored name may hold a NUL */
  assert_false(ldr_wanted_has(&w, "A", 1));    /* byte for byte */
  assert_true(ldr_wanted_len(&w, 3));
  assert_true(ldr_wanted_len(&w, 1));
  assert_true(ldr_wanted_len(&w, 0));
  assert_false(ldr_wanted_len(&w, 2));
  assert_false(ldr_wanted_len(&w, 4));
  struct ldr_wanted none;
  assert_int_equal(ldr_wanted_init(&none, names, 0, &arena, &err), LDR_OK);
  assert_false(ldr_wanted_has(&none, "a", 1));
  assert_false(ldr_wanted_len(&none, 1));
  /* Its memory comes from the arena: a full one is RESOURCE_EXHAUSTED. */
  struct ldr_arena small;
  ldr_arena_init(&small, 64, 64);
  assert_int_equal(ldr_wanted_init(&w, names, 4, &small, &err), LDR_EXHAUSTED);
  ldr_arena_destroy(&small);
}

/* Many names in any order, some asked twice, against a plain scan: rows
 * coming in request order, in reverse and in no order are all kept, and
 * nothing else. */
static void wanted_many(void **state) {
  (void)state;
  enum { N = 1500 };
  static char buf[N][16];
  const char *names[N];
  unsigned seed = 12345;
  for (size_t i = 0; i < N; i++) {
    seed = seed * 1103515245u + 12345u;
    /* Lengths from 1 to 6 bytes, bytes above 0x7f too; a tenth repeat an earlier name. */
    if (i > 10 && seed % 10 == 0) {
      names[i] = names[seed % i];
      continue;
    }
    size_t len = 1 + (seed >> 8) % 6;
    for (size_t k = 0; k < len; k++) {
      seed = seed * 1103515245u + 12345u;
      buf[i][k] = (char)(1 + (seed >> 16) % 250);
    }
    buf[i][len] = 0;
    names[i] = buf[i];
  }
  struct ldr_err err;
  ldr_err_clear(&err);
  struct ldr_wanted w;
  assert_int_equal(ldr_wanted_init(&w, names, N, &arena, &err), LDR_OK);
  for (size_t i = 0; i < N; i++) assert_true(ldr_wanted_has(&w, names[i], strlen(names[i])));
  for (size_t i = N; i-- > 0;) assert_true(ldr_wanted_has(&w, names[i], strlen(names[i])));
  for (size_t t = 0; t < 20000; t++) {
    char probe[8];
    seed = seed * 1103515245u + 12345u;
    size_t len = (seed >> 8) % 7;
    if (t % 2) { /* one of the names, or one changed in its last byte */
      const char *base = names[(seed >> 4) % N];
      len = strlen(base);
      memcpy(probe, base, len);
      if (t % 4 == 1) probe[len - 1] = (char)(probe[len - 1] + 1);
    } else {
      for (size_t k = 0; k < len; k++) {
        seed = seed * 1103515245u + 12345u;
        probe[k] = (char)(1 + (seed >> 16) % 250);
      }
    }
    int is = 0, has_len = 0;
    for (size_t i = 0; i < N; i++) {
      has_len |= strlen(names[i]) == len;
      is |= strlen(names[i]) == len && !memcmp(names[i], probe, len);
    }
    if (ldr_wanted_has(&w, probe, len) != is)
      fail_msg("probe %zu of %zu bytes: want %d", t, len, is);
    assert_int_equal(ldr_wanted_len(&w, len), has_len);
  }
}

static void last_wins(void **state) {
  (void)state;
  struct ldr_write_feature r0[] = {wf("a", "r0a"), wf("b", "r0b"), wf("a", "r0a2")};
  struct ldr_write_feature r1[] = {wf("a", "r1a")};
  struct ldr_write_feature r2[] = {wf("b", "r2b"), wf("c", "r2c")};
  struct ldr_write_feature r3[] = {wf("ab", "r3ab")};
  struct ldr_write_row rows[] = {
      {.key = K("k1"), .features = r0, .n_features = 3},
      {.key = K("k2"), .features = r1, .n_features = 1},
      {.key = K("k1"), .features = r2, .n_features = 2},
      {.key = K("k1"), .features = r3, .n_features = 1},
      {.key = K("k2"), .features = NULL, .n_features = 0},
  };
  /* (key, name) -> the value that must remain, and from which row. */
  static const struct {
    const char *key, *name, *tag;
    size_t row;
  } want[] = {
      {"k1", "a", "r0a2", 0}, {"k1", "ab", "r3ab", 3}, {"k1", "b", "r2b", 2},
      {"k1", "c", "r2c", 2},  {"k2", "a", "r1a", 1},
  };
  struct ldr_flat *flat = NULL;
  size_t n = 0;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_flatten_last_wins(rows, 5, &arena, &flat, &n, &err), LDR_OK);
  assert_int_equal(n, sizeof want / sizeof want[0]);
  for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
      const struct ldr_write_row *row = flat[i].row;
      if (row->key.len != strlen(want[w].key) || memcmp(row->key.bytes, want[w].key, row->key.len))
        continue;
      if (strcmp(flat[i].feature->name, want[w].name)) continue;
      hits++;
      if (strcmp((const char *)flat[i].feature->bytes, want[w].tag) || row != &rows[want[w].row])
        fail_msg("%s/%s: kept %s, want %s", want[w].key, want[w].name,
                 (const char *)flat[i].feature->bytes, want[w].tag);
    }
    if (hits != 1) fail_msg("%s/%s listed %zu times", want[w].key, want[w].name, hits);
  }
  /* Nothing to flatten: OK, empty. */
  assert_int_equal(ldr_flatten_last_wins(rows, 0, &arena, &flat, &n, &err), LDR_OK);
  assert_int_equal(n, 0);
}

/* Many repeats of one (key, name): the very last survives, whatever the sort does. */
static void last_wins_among_many(void **state) {
  (void)state;
  enum { N = 200 };
  static char tags[N][8];
  struct ldr_write_feature fs[N];
  struct ldr_write_row rows[N];
  for (int i = 0; i < N; i++) {
    snprintf(tags[i], sizeof tags[i], "%d", i);
    fs[i] = wf(i % 2 ? "x" : "y", tags[i]);
    rows[i] =
        (struct ldr_write_row){.key = K(i % 3 ? "p" : "q"), .features = &fs[i], .n_features = 1};
  }
  struct ldr_flat *flat = NULL;
  size_t n = 0;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_flatten_last_wins(rows, N, &arena, &flat, &n, &err), LDR_OK);
  assert_int_equal(n, 4);
  for (size_t i = 0; i < n; i++) {
    /* The last i with this key and name. */
    int last = -1;
    for (int j = 0; j < N; j++)
      if (rows[j].key.bytes[0] == flat[i].row->key.bytes[0] &&
          !strcmp(fs[j].name, flat[i].feature->name))
        last = j;
    assert_ptr_equal(flat[i].row, &rows[last]);
  }
}

static int reset(void **state) {
  (void)state;
  ldr_arena_reset(&arena);
  return 0;
}

int main(void) {
  ldr_arena_init(&arena, 4096, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(request_order_and_duplicates, reset),
      cmocka_unit_test_teardown(latest_event_ts, reset),
      cmocka_unit_test_teardown(budget_counting, reset),
      cmocka_unit_test_teardown(budget_is_shared, reset),
      cmocka_unit_test_teardown(copies_and_references, reset),
      cmocka_unit_test_teardown(empty_cases, reset),
      cmocka_unit_test_teardown(full_arena, reset),
      cmocka_unit_test_teardown(wanted, reset),
      cmocka_unit_test_teardown(wanted_many, reset),
      cmocka_unit_test_teardown(last_wins, reset),
      cmocka_unit_test_teardown(last_wins_among_many, reset),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  ldr_arena_destroy(&arena);
  return failed;
}
