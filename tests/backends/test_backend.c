/*
 * The backend conformance suite: one set of tests written against
 * struct ldr_backend_ops, run for every backend against a real store.
 * Usage: test_backend BACKEND (sqlite, postgres, mysql).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backend.h"
#include "common/log.h"
#include "tests/backends/native.h"
#include "tests/support/support.h"

static const struct native *native;
static struct ldr_store_config store;
static struct ldr_backend *backend;
static struct ldr_arena arena;

/* One read or one write through the backend's multi-view interface. */
static enum ldr_rc read1(const char *table, const struct ldr_key *keys, size_t n,
                         const char *const *features, size_t nf, struct ldr_read_row *out,
                         struct ldr_err *err) {
  struct ldr_read r = {table, keys, n, features, nf, out};
  return backend->ops->read(backend, &r, 1, &arena, err);
}

static enum ldr_rc write1(const char *table, const struct ldr_write_row *rows, size_t n,
                          struct ldr_err *err) {
  struct ldr_write w = {table, rows, n, NULL};
  return backend->ops->write(backend, &w, 1, &arena, err);
}
static int table_seq;

/* A fresh table for each test: "conf_t<N>". */
struct fixture {
  char view[32];
  char table[LDR_TABLE_NAME_MAX + 1];
};

static int fresh_table(void **state) {
  struct fixture *f = calloc(1, sizeof *f);
  struct ldr_err err;
  ldr_err_clear(&err);
  snprintf(f->view, sizeof f->view, "t%d", ++table_seq);
  if (ldr_table_name(store.project, f->view, "view", f->table, &err) != LDR_OK) return -1;
  const char *keep[] = {f->table};
  if (backend->ops->update(backend, keep, 1, NULL, 0, &err) != LDR_OK) {
    fprintf(stderr, "update: %s\n", err.msg);
    return -1;
  }
  *state = f;
  return 0;
}

/* stderr while prepared_while() reads the backend's debug log: put back by
 * the test's teardown too, should an assertion end the test before it is. */
static int saved_stderr = -1;

static void restore_stderr(void) {
  if (saved_stderr < 0) return;
  ldr_log_set_level(LDR_LOG_INFO); /* the suite's level */
  fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  saved_stderr = -1;
}

static int drop_table(void **state) {
  struct fixture *f = *state;
  struct ldr_err err;
  ldr_err_clear(&err);
  const char *t[] = {f->table};
  restore_stderr();
  backend->ops->teardown(backend, t, 1, &err);
  free(f);
  ldr_arena_reset(&arena);
  return 0;
}

static struct ldr_key key_of(int64_t id) {
  Feast__Types__EntityKey ek = FEAST__TYPES__ENTITY_KEY__INIT;
  Feast__Types__Value v = FEAST__TYPES__VALUE__INIT;
  Feast__Types__Value *vals[] = {&v};
  char *names[] = {"driver_id"};
  struct ldr_key k;
  struct ldr_err err;
  ldr_err_clear(&err);
  v.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
  v.int64_val = id;
  ek.n_join_keys = ek.n_entity_values = 1;
  ek.join_keys = names;
  ek.entity_values = vals;
  assert_int_equal(ldr_entity_key_serialize(&ek, backend->key_version, &arena, &k, &err), LDR_OK);
  return k;
}

/* A feature whose Value is the int64 `x` (value_text is its decimal form). */
static struct ldr_write_feature int_feature(const char *name, int64_t x) {
  Feast__Types__Value *v = ldr_arena_alloc(&arena, sizeof *v);
  feast__types__value__init(v);
  v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
  v->int64_val = x;
  size_t n = feast__types__value__get_packed_size(v);
  uint8_t *b = ldr_arena_alloc(&arena, n);
  feast__types__value__pack(v, b);
  struct ldr_write_feature f = {name, v, b, n};
  return f;
}

static enum ldr_rc write_one(const char *table, int64_t id, const char *feature, int64_t x,
                             int64_t ts, struct ldr_err *err) {
  struct ldr_write_feature f = int_feature(feature, x);
  struct ldr_write_row row = {
      .key = key_of(id), .features = &f, .n_features = 1, .event_ts = {ts, 0}};
  return write1(table, &row, 1, err);
}

static void must_write(const char *table, int64_t id, const char *feature, int64_t x, int64_t ts) {
  struct ldr_err err;
  ldr_err_clear(&err);
  if (write_one(table, id, feature, x, ts, &err) != LDR_OK) fail_msg("write: %s", err.msg);
}

/* Reads ids[] and fails the test on error. */
static struct ldr_read_row *read_keys(const char *table, const int64_t *ids, size_t n,
                                      const char *const *features, size_t nf) {
  struct ldr_key *keys = ldr_arena_alloc(&arena, (n + 1) * sizeof *keys);
  struct ldr_read_row *rows = ldr_arena_alloc(&arena, (n + 1) * sizeof *rows);
  struct ldr_err err;
  ldr_err_clear(&err);
  for (size_t i = 0; i < n; i++) keys[i] = key_of(ids[i]);
  if (read1(table, keys, n, features, nf, rows, &err) != LDR_OK) fail_msg("read: %s", err.msg);
  return rows;
}

static const struct ldr_read_feature *feature_in(const struct ldr_read_row *r, const char *name) {
  for (size_t i = 0; i < r->n_features; i++)
    if (!strcmp(r->features[i].name, name)) return &r->features[i];
  return NULL;
}

static int64_t int_value(const struct ldr_read_feature *f) {
  Feast__Types__Value *v = feast__types__value__unpack(NULL, f->value_len, f->value);
  assert_non_null(v);
  assert_int_equal(v->val_case, FEAST__TYPES__VALUE__VAL_INT64_VAL);
  int64_t x = v->int64_val;
  feast__types__value__free_unpacked(v, NULL);
  return x;
}

/* Every Value of vectors.json is stored and read back byte for byte. */
static void round_trip_every_value_kind(void **state) {
  struct fixture *fx = *state;
  json_object *root = ldr_test_json_file(ldr_test_data("vectors.json"));
  json_object *recs = ldr_test_get(root, "value_proto_wire");
  size_t n = json_object_array_length(recs);
  struct ldr_write_feature *fs = ldr_arena_alloc(&arena, n * sizeof *fs);
  for (size_t i = 0; i < n; i++) {
    json_object *rec = json_object_array_get_idx(recs, i);
    size_t len;
    uint8_t *b =
        ldr_test_unhex(&arena, json_object_get_string(ldr_test_get(rec, "proto_hex")), &len);
    fs[i].name = json_object_get_string(ldr_test_get(rec, "name"));
    fs[i].value = feast__types__value__unpack(NULL, len, b);
    assert_non_null(fs[i].value);
    fs[i].bytes = b;
    fs[i].len = len;
  }
  struct ldr_write_row row = {
      .key = key_of(7), .features = fs, .n_features = n, .event_ts = {1700000000, 0}};
  struct ldr_err err;
  ldr_err_clear(&err);
  if (write1(fx->table, &row, 1, &err) != LDR_OK) fail_msg("%s", err.msg);
  int64_t id = 7;
  struct ldr_read_row *r = read_keys(fx->table, &id, 1, NULL, 0);
  assert_true(r->found);
  assert_int_equal(r->n_features, n);
  assert_true(r->has_event_ts);
  assert_int_equal(r->event_ts.s, 1700000000);
  for (size_t i = 0; i < n; i++) {
    const struct ldr_read_feature *f = feature_in(r, fs[i].name);
    if (f == NULL) fail_msg("feature %s missing", fs[i].name);
    assert_int_equal(f->value_len, fs[i].len);
    if (fs[i].len) assert_memory_equal(f->value, fs[i].bytes, fs[i].len);
    feast__types__value__free_unpacked((Feast__Types__Value *)fs[i].value, NULL);
  }
  json_object_put(root);
}

/* Last write wins, also when it carries an older event_ts (as in Feast). */
static void overwrite_last_write_wins(void **state) {
  struct fixture *fx = *state;
  must_write(fx->table, 1, "f", 10, 2000);
  must_write(fx->table, 1, "f", 11, 1000);
  int64_t id = 1;
  struct ldr_read_row *r = read_keys(fx->table, &id, 1, NULL, 0);
  assert_true(r->found);
  assert_int_equal(r->n_features, 1);
  assert_int_equal(int_value(&r->features[0]), 11);
  assert_int_equal(r->event_ts.s, 1000);
}

/* A (key, feature) repeated within one batch: the last occurrence wins. */
static void duplicates_in_one_batch(void **state) {
  struct fixture *fx = *state;
  struct ldr_write_feature a[2] = {int_feature("f", 1), int_feature("f", 2)};
  struct ldr_write_feature b = int_feature("f", 3);
  struct ldr_write_row rows[] = {
      {.key = key_of(1), .features = a, .n_features = 2, .event_ts = {1000, 0}},
      {.key = key_of(2), .features = &a[0], .n_features = 1, .event_ts = {1000, 0}},
      {.key = key_of(1), .features = &b, .n_features = 1, .event_ts = {500, 0}},
  };
  struct ldr_err err;
  ldr_err_clear(&err);
  if (write1(fx->table, rows, 3, &err) != LDR_OK) fail_msg("%s", err.msg);
  int64_t ids[] = {1, 2};
  struct ldr_read_row *r = read_keys(fx->table, ids, 2, NULL, 0);
  assert_int_equal(r[0].n_features, 1);
  assert_int_equal(int_value(&r[0].features[0]), 3);
  assert_int_equal(r[0].event_ts.s, 500);
  assert_int_equal(int_value(&r[1].features[0]), 1);
}

static void missing_keys_are_not_found(void **state) {
  struct fixture *fx = *state;
  must_write(fx->table, 1, "f", 10, 1000);
  int64_t ids[] = {404, 1, 405};
  struct ldr_read_row *r = read_keys(fx->table, ids, 3, NULL, 0);
  assert_false(r[0].found);
  assert_false(r[0].has_event_ts);
  assert_int_equal(r[0].n_features, 0);
  assert_true(r[1].found);
  assert_false(r[2].found);
}

static void results_in_request_order_with_duplicates(void **state) {
  struct fixture *fx = *state;
  for (int64_t id = 1; id <= 5; id++) must_write(fx->table, id, "f", id * 100, 1000 + id);
  int64_t ids[] = {5, 1, 404, 3, 5, 1};
  struct ldr_read_row *r = read_keys(fx->table, ids, 6, NULL, 0);
  for (size_t i = 0; i < 6; i++) {
    if (ids[i] == 404) {
      assert_false(r[i].found);
      continue;
    }
    assert_true(r[i].found);
    assert_int_equal(r[i].n_features, 1);
    assert_int_equal(int_value(&r[i].features[0]), ids[i] * 100);
    assert_int_equal(r[i].event_ts.s, 1000 + ids[i]);
  }
}

static void requested_features_filter(void **state) {
  struct fixture *fx = *state;
  must_write(fx->table, 1, "a", 1, 1000);
  must_write(fx->table, 1, "b", 2, 1000);
  must_write(fx->table, 1, "c", 3, 1000);
  int64_t id = 1;
  const char *want[] = {"c", "a", "nope"};
  struct ldr_read_row *r = read_keys(fx->table, &id, 1, want, 3);
  assert_true(r->found);
  assert_int_equal(r->n_features, 2);
  assert_int_equal(int_value(feature_in(r, "a")), 1);
  assert_int_equal(int_value(feature_in(r, "c")), 3);
  assert_null(feature_in(r, "b"));
  assert_null(feature_in(r, "nope"));
  const char *none[] = {"nope"};
  r = read_keys(fx->table, &id, 1, none, 1);
  assert_false(r->found);            /* found means a row among the requested features */
  const char *upper[] = {"A", "c "}; /* names match byte for byte (MySQL's collation would not) */
  r = read_keys(fx->table, &id, 1, upper, 2);
  assert_false(r->found);
  r = read_keys(fx->table, &id, 1, NULL, 0);
  assert_int_equal(r->n_features, 3);
}

/* A table with many more features per key than a read asks for, read again
 * and again (SQLite changes its statement once it has seen the table's width). */
static void few_features_of_a_wide_table(void **state) {
  struct fixture *fx = *state;
  char names[40][8];
  for (int64_t id = 1; id <= 2; id++)
    for (int i = 0; i < 40; i++) {
      snprintf(names[i], sizeof names[i], "f%02d", i);
      must_write(fx->table, id, names[i], id * 100 + i, 1000 + i);
    }
  int64_t ids[] = {2, 1, 3};
  const char *want[] = {"f31", "f0", "f07"}; /* "f0" is a prefix of stored names, not one */
  for (int pass = 0; pass < 3; pass++) {
    struct ldr_read_row *r = read_keys(fx->table, ids, 3, want, 3);
    for (int k = 0; k < 2; k++) {
      assert_true(r[k].found);
      assert_int_equal(r[k].n_features, 2);
      assert_int_equal(int_value(feature_in(&r[k], "f31")), ids[k] * 100 + 31);
      assert_int_equal(int_value(feature_in(&r[k], "f07")), ids[k] * 100 + 7);
      assert_int_equal(r[k].event_ts.s, 1031);
    }
    assert_false(r[2].found);
    r = read_keys(fx->table, &ids[1], 1, &want[2], 1);
    assert_int_equal(r->n_features, 1);
    assert_int_equal(r->event_ts.s, 1007);
    /* Once the width is known the statement names the features: still byte for byte. */
    const char *cased[] = {"F31", "f07 ", "f31"};
    r = read_keys(fx->table, ids, 2, cased, 3);
    assert_int_equal(r[0].n_features, 1);
    assert_non_null(feature_in(&r[0], "f31"));
  }
  /* Then every feature, in the reverse of the order they were written, with a
   * name asked twice and one not stored; the latest event_ts is the row's. */
  const char *all[42];
  for (int i = 0; i < 40; i++) all[i] = names[39 - i];
  all[40] = "f05";
  all[41] = "nope";
  struct ldr_read_row *r = read_keys(fx->table, ids, 3, all, 42);
  for (int k = 0; k < 2; k++) {
    assert_true(r[k].found);
    assert_int_equal(r[k].n_features, 40);
    assert_int_equal(r[k].event_ts.s, 1039);
    for (int i = 0; i < 40; i++)
      assert_int_equal(int_value(feature_in(&r[k], names[i])), ids[k] * 100 + i);
  }
  assert_false(r[2].found);
  /* The cap holds for a read naming features too. */
  struct ldr_key keys[2] = {key_of(1), key_of(2)};
  struct ldr_read_row out[2];
  struct ldr_read rd = {fx->table, keys, 2, all, 40, out};
  struct ldr_err err;
  ldr_err_clear(&err);
  backend->result_cap = 200;
  enum ldr_rc rc = backend->ops->read(backend, &rd, 1, &arena, &err);
  backend->result_cap = 0;
  assert_int_equal(rc, LDR_EXHAUSTED);
}

/* The statements the backend prepared while `reads` ran, from its debug log
 * (stderr): SQLite's lines "sqlite: prepared a read of <table> ...". */
static void prepared_while(void (*reads)(struct fixture *), struct fixture *fx, char *out,
                           size_t cap) {
  FILE *log = tmpfile();
  assert_non_null(log);
  fflush(stderr);
  saved_stderr = dup(2);
  assert_true(saved_stderr >= 0 && dup2(fileno(log), 2) == 2);
  ldr_log_set_level(LDR_LOG_DEBUG);
  reads(fx);
  restore_stderr();
  rewind(log);
  size_t n = fread(out, 1, cap - 1, log);
  out[n] = 0;
  fclose(log);
}

/* Counts the lines of `log` preparing a read of `table`, by key and naming features. */
static void count_selects(const char *log, const char *table, int *by_key, int *named) {
  char by[128], naming[128];
  snprintf(by, sizeof by, "sqlite: prepared a read of %s for 1 keys, by key", table);
  snprintf(naming, sizeof naming, "sqlite: prepared a read of %s for 1 keys, naming", table);
  *by_key = *named = 0;
  for (const char *l = strstr(log, by); l != NULL; l = strstr(l + 1, by)) ++*by_key;
  for (const char *l = strstr(log, naming); l != NULL; l = strstr(l + 1, naming)) ++*named;
}

static const char *const ten[] = {"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9"};

/* Reads of 9, then 9 again, then 2 of the table's 10 features per key. */
static void nine_nine_two(struct fixture *fx) {
  int64_t id = 1;
  assert_int_equal(read_keys(fx->table, &id, 1, ten, 9)->n_features, 9);
  assert_int_equal(read_keys(fx->table, &id, 1, ten, 9)->n_features, 9);
  struct ldr_read_row *r = read_keys(fx->table, &id, 1, &ten[3], 2);
  assert_int_equal(r->n_features, 2);
  assert_int_equal(int_value(feature_in(r, "f4")), 4);
}

/* Two reads of 2 of the 10 features. */
static void two_two(struct fixture *fx) {
  int64_t id = 1;
  for (int i = 0; i < 2; i++) {
    struct ldr_read_row *r = read_keys(fx->table, &id, 1, &ten[3], 2);
    assert_int_equal(r->n_features, 2);
    assert_int_equal(int_value(feature_in(r, "f3")), 3);
  }
}

/* SQLite, like the network stores (ldr_width_names), reads by key until it
 * knows a table holds more than twice the features a read names, then names
 * them; a table made again by Update is learned again. */
static void sqlite_names_features_once_the_table_is_wide(void **state) {
  struct fixture *fx = *state;
  if (strcmp(native->name, "sqlite") != 0) skip();
  for (int i = 0; i < 10; i++) must_write(fx->table, 1, ten[i], i, 1000);
  static char log[65536];
  int by_key, named;
  prepared_while(nine_nine_two, fx, log, sizeof log);
  count_selects(log, fx->table, &by_key, &named);
  if (by_key != 1 || named != 1) fail_msg("want 1 SELECT by key, then 1 naming features:\n%s", log);
  struct ldr_err err;
  ldr_err_clear(&err);
  const char *keep[] = {fx->table};
  assert_int_equal(backend->ops->update(backend, keep, 1, NULL, 0, &err), LDR_OK);
  prepared_while(two_two, fx, log, sizeof log);
  count_selects(log, fx->table, &by_key, &named);
  if (by_key != 1 || named != 1) fail_msg("after Update, want the width learned again:\n%s", log);
}

/* A read names at most 8,192 features of a view, on every store: one more is
 * RESOURCE_EXHAUSTED naming requested_features, and nothing is read. */
static void feature_count_limit(void **state) {
  struct fixture *fx = *state;
  must_write(fx->table, 1, "f1", 1, 1000);
  static char buf[8193][8];
  static const char *names[8193];
  for (int i = 0; i < 8193; i++) {
    snprintf(buf[i], sizeof buf[i], "n%d", i);
    names[i] = buf[i];
  }
  names[8191] = "f1";
  int64_t id = 1;
  struct ldr_read_row *r = read_keys(fx->table, &id, 1, names, 8192);
  assert_int_equal(r->n_features, 1);
  assert_int_equal(int_value(feature_in(r, "f1")), 1);
  struct ldr_key k = key_of(1);
  struct ldr_read_row out;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(read1(fx->table, &k, 1, names, 8193, &out, &err), LDR_EXHAUSTED);
  if (strstr(err.msg, "requested_features") == NULL) fail_msg("message: %s", err.msg);
}

static void event_ts_is_the_latest(void **state) {
  struct fixture *fx = *state;
  must_write(fx->table, 1, "a", 1, 3000);
  must_write(fx->table, 1, "z", 2, 1000);
  int64_t id = 1;
  struct ldr_read_row *r = read_keys(fx->table, &id, 1, NULL, 0);
  assert_int_equal(r->event_ts.s, 3000);
  const char *only_z[] = {"z"};
  r = read_keys(fx->table, &id, 1, only_z, 1);
  assert_int_equal(r->event_ts.s, 1000);
}

static void empty_requests_and_missing_tables(void **state) {
  struct fixture *fx = *state;
  struct ldr_err err;
  struct ldr_read_row row;
  ldr_err_clear(&err);
  assert_int_equal(write1(fx->table, NULL, 0, &err), LDR_OK);
  assert_int_equal(read1(fx->table, NULL, 0, NULL, 0, &row, &err), LDR_OK);
  const char *missing = "conf_no_such_view";
  assert_int_equal(read1(missing, NULL, 0, NULL, 0, &row, &err), LDR_NOT_FOUND);
  assert_non_null(strstr(err.msg, missing));
  ldr_err_clear(&err);
  assert_int_equal(write1(missing, NULL, 0, &err), LDR_NOT_FOUND);
  ldr_err_clear(&err);
  assert_int_equal(write_one(missing, 1, "f", 1, 1, &err), LDR_NOT_FOUND);
  ldr_err_clear(&err);
  struct ldr_key k = key_of(1);
  assert_int_equal(read1(missing, &k, 1, NULL, 0, &row, &err), LDR_NOT_FOUND);
}

/* One transaction per batch: a row that fails takes the whole batch with it. */
static void failing_batch_leaves_nothing(void **state) {
  struct fixture *fx = *state;
  must_write(fx->table, 2, "f", 20, 1000);
  assert_int_equal(native->poison(fx->table), 0);
  struct ldr_write_feature new_row = int_feature("f", 10);
  struct ldr_write_feature overwrite = int_feature("f", 21);
  struct ldr_write_feature bad = int_feature("poison", 1);
  struct ldr_write_row rows[] = {
      {.key = key_of(1), .features = &new_row, .n_features = 1, .event_ts = {2000, 0}},
      {.key = key_of(2), .features = &overwrite, .n_features = 1, .event_ts = {2000, 0}},
      {.key = key_of(3), .features = &bad, .n_features = 1, .event_ts = {2000, 0}},
  };
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_not_equal(write1(fx->table, rows, 3, &err), LDR_OK);
  int64_t ids[] = {1, 2, 3};
  struct ldr_read_row *r = read_keys(fx->table, ids, 3, NULL, 0);
  assert_false(r[0].found);
  assert_true(r[1].found);
  assert_int_equal(int_value(&r[1].features[0]), 20);
  assert_int_equal(r[1].event_ts.s, 1000);
  assert_false(r[2].found);
  /* The connection is usable after the failed transaction. */
  must_write(fx->table, 4, "f", 40, 1000);
}

static void update_and_teardown(void **state) {
  (void)state;
  char a[LDR_TABLE_NAME_MAX + 1], b[LDR_TABLE_NAME_MAX + 1];
  struct ldr_err err;
  ldr_err_clear(&err);
  ldr_table_name(store.project, "upd_a", "v", a, &err);
  ldr_table_name(store.project, "upd_b", "v", b, &err);
  const char *both[] = {a, b}, *only_a[] = {a}, *only_b[] = {b};
  assert_int_equal(backend->ops->update(backend, both, 2, NULL, 0, &err), LDR_OK);
  must_write(a, 1, "f", 1, 1000);
  must_write(b, 1, "f", 1, 1000);
  /* Updating an existing view keeps its rows. */
  assert_int_equal(backend->ops->update(backend, only_a, 1, only_b, 1, &err), LDR_OK);
  int64_t id = 1;
  assert_true(read_keys(a, &id, 1, NULL, 0)->found);
  struct ldr_read_row row;
  struct ldr_key k = key_of(1);
  assert_int_equal(read1(b, &k, 1, NULL, 0, &row, &err), LDR_NOT_FOUND);
  ldr_err_clear(&err);
  /* Teardown of a missing table is fine. */
  assert_int_equal(backend->ops->teardown(backend, both, 2, &err), LDR_OK);
  assert_int_equal(read1(a, &k, 1, NULL, 0, &row, &err), LDR_NOT_FOUND);
  ldr_err_clear(&err);
  assert_int_equal(backend->ops->ping(backend, &err), LDR_OK);
}

/* The stored row is Feast's: serialized key, Value bytes, value_text, epoch seconds. */
static void stored_layout(void **state) {
  struct fixture *fx = *state;
  struct ldr_write_feature fs[2] = {int_feature("trips", 42), int_feature("neg", -7)};
  Feast__Types__Value d = FEAST__TYPES__VALUE__INIT;
  d.val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
  d.double_val = 0.1;
  uint8_t dbytes[16];
  fs[1].value = &d;
  fs[1].len = feast__types__value__pack(&d, dbytes);
  fs[1].bytes = dbytes;
  fs[1].name = "rate";
  struct ldr_write_row rows[2] = {
      {.key = key_of(1001),
       .features = fs,
       .n_features = 2,
       .event_ts = {1700000000, 999999999},
       .has_created = 1,
       .created_ts = {1700000100, 0}},
      {.key = key_of(1002), .features = fs, .n_features = 1, .event_ts = {-1, 500000000}},
  };
  struct ldr_err err;
  ldr_err_clear(&err);
  struct raw_row raw;
  if (native->narrow_columns) {
    /* MySQL's timestamp starts in 1970: refused, not stored as something else. */
    assert_int_equal(write1(fx->table, rows, 2, &err), LDR_INVALID);
    assert_non_null(strstr(err.msg, "rows[1].event_ts"));
    assert_int_equal(native->raw_row(fx->table, rows[0].key.bytes, rows[0].key.len, "trips", &raw),
                     0);
    assert_false(raw.found);
    ldr_err_clear(&err);
    assert_int_equal(write1(fx->table, rows, 1, &err), LDR_OK);
  } else {
    assert_int_equal(write1(fx->table, rows, 2, &err), LDR_OK);
  }
  assert_int_equal(native->raw_row(fx->table, rows[0].key.bytes, rows[0].key.len, "trips", &raw),
                   0);
  assert_true(raw.found);
  assert_memory_equal(raw.value, fs[0].bytes, fs[0].len);
  assert_memory_equal(raw.key, rows[0].key.bytes, rows[0].key.len);
  if (!native->no_value_text) {
    assert_true(raw.has_text);
    assert_string_equal(raw.text, "42");
  }
  assert_true(raw.has_event_ts);
  assert_int_equal(raw.event_ts, 1700000000);
  assert_int_equal(raw.event_us, native->keeps_micros ? 999999 : 0); /* truncated, never rounded */
  assert_true(raw.has_created);
  assert_int_equal(raw.created_ts, 1700000100);
  assert_int_equal(native->raw_row(fx->table, rows[0].key.bytes, rows[0].key.len, "rate", &raw), 0);
  if (!native->no_value_text) assert_string_equal(raw.text, "0.1");
  if (native->narrow_columns) return;
  assert_int_equal(native->raw_row(fx->table, rows[1].key.bytes, rows[1].key.len, "trips", &raw),
                   0);
  assert_false(raw.has_created);
  if (native->keeps_micros) { /* -0.5 s exactly */
    assert_int_equal(raw.event_ts, -1);
    assert_int_equal(raw.event_us, 500000);
  } else {
    assert_int_equal(raw.event_ts, 0); /* -0.5 s truncates toward zero, as int() does */
  }
}

/* Long keys, names and values: stored whole, or (MySQL's narrow columns)
 * refused with INVALID_ARGUMENT naming the field, never stored cut short. */
static void long_keys_names_and_values(void **state) {
  struct fixture *fx = *state;
  char long_name[301];
  memset(long_name, 'n', 300);
  long_name[300] = '\0';
  uint8_t *long_key = ldr_arena_alloc(&arena, 300);
  memset(long_key, 7, 300);
  Feast__Types__Value big = FEAST__TYPES__VALUE__INIT;
  big.val_case = FEAST__TYPES__VALUE__VAL_BYTES_VAL;
  big.bytes_val.len = 70000;
  big.bytes_val.data = ldr_arena_calloc(&arena, 70000, 1);
  uint8_t *big_bytes = ldr_arena_alloc(&arena, 70010);
  struct ldr_write_feature f_name = int_feature(long_name, 1), f_small = int_feature("f", 1);
  struct ldr_write_feature f_big = {"big", &big, big_bytes,
                                    feast__types__value__pack(&big, big_bytes)};
  const struct {
    struct ldr_key key;
    struct ldr_write_feature *f;
    const char *field;
  } cases[] = {
      {{long_key, 300}, &f_small, "rows[0].entity_key"},
      {key_of(1), &f_name, "rows[0].features[0]"},
      {key_of(2), &f_big, "rows[0].features[0]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ldr_write_row row = {
        .key = cases[i].key, .features = cases[i].f, .n_features = 1, .event_ts = {1000, 0}};
    struct ldr_err err;
    ldr_err_clear(&err);
    enum ldr_rc rc = write1(fx->table, &row, 1, &err);
    struct ldr_read_row out;
    if (native->narrow_columns) {
      assert_int_equal(rc, LDR_INVALID);
      assert_non_null(strstr(err.msg, cases[i].field));
    } else {
      if (rc != LDR_OK) fail_msg("case %zu: %s", i, err.msg);
      assert_int_equal(read1(fx->table, &row.key, 1, NULL, 0, &out, &err), LDR_OK);
      assert_true(out.found);
      assert_string_equal(out.features[0].name, cases[i].f->name);
      assert_int_equal(out.features[0].value_len, cases[i].f->len);
    }
  }
}

/* Names and values on either side of a backend's row buffers (MySQL binds 256
 * and 1,024 bytes; wider ones are fetched again) come back byte for byte, in
 * one read where rows that fit, fill and overflow a buffer follow each other. */
static void names_and_values_around_row_buffers(void **state) {
  struct fixture *fx = *state;
  /* Wire lengths 1,023, 1,024, 1,025 (a tag and two bytes of length before the bytes). */
  static const size_t value_sizes[] = {1, 1020, 1021, 1022, 3000, 60000};
  static const size_t name_lens[] = {255, 256, 1, 20, 100, 30};
  enum { N = sizeof value_sizes / sizeof value_sizes[0] };
  struct ldr_write_feature fs[N + 1];
  char names[N + 1][512];
  for (size_t i = 0; i < N; i++) {
    Feast__Types__Value *v = ldr_arena_alloc(&arena, sizeof *v);
    feast__types__value__init(v);
    v->val_case = FEAST__TYPES__VALUE__VAL_BYTES_VAL;
    v->bytes_val.len = value_sizes[i];
    v->bytes_val.data = ldr_arena_alloc(&arena, value_sizes[i]);
    for (size_t j = 0; j < value_sizes[i]; j++) v->bytes_val.data[j] = (uint8_t)(j * 7 + i);
    uint8_t *b = ldr_arena_alloc(&arena, value_sizes[i] + 16);
    memset(names[i], 'a' + (int)i, name_lens[i]);
    names[i][name_lens[i]] = '\0';
    fs[i] = (struct ldr_write_feature){names[i], v, b, feast__types__value__pack(v, b)};
  }
  /* A name of 250 two-byte characters: 500 bytes, within a VARCHAR(256) of utf8mb4. */
  for (size_t j = 0; j < 250; j++) memcpy(&names[N][2 * j], "\xc3\xa9", 2);
  names[N][500] = '\0';
  fs[N] = int_feature(names[N], 42);
  struct ldr_write_row row = {
      .key = key_of(5), .features = fs, .n_features = N + 1, .event_ts = {1000, 0}};
  struct ldr_err err;
  ldr_err_clear(&err);
  if (write1(fx->table, &row, 1, &err) != LDR_OK) fail_msg("write: %s", err.msg);
  const int64_t ids[] = {5};
  const struct ldr_read_row *out = read_keys(fx->table, ids, 1, NULL, 0);
  assert_true(out->found);
  assert_int_equal(out->n_features, N + 1);
  for (size_t i = 0; i <= N; i++) {
    const struct ldr_read_feature *f = feature_in(out, names[i]);
    if (f == NULL) fail_msg("feature %zu (%zu bytes of name) not read", i, strlen(names[i]));
    assert_int_equal(f->value_len, fs[i].len);
    assert_memory_equal(f->value, fs[i].bytes, fs[i].len);
  }
  /* Naming 4 of the 7 features: read by key (ldr_width_names), the named kept
   * by their whole names, also one wider than MySQL's name buffer. */
  const char *some[] = {names[N], names[1], names[0], names[2]};
  out = read_keys(fx->table, ids, 1, some, 4);
  assert_int_equal(out->n_features, 4);
  for (size_t i = 0; i < 4; i++) {
    const struct ldr_read_feature *f = feature_in(out, some[i]);
    if (f == NULL) fail_msg("feature %s... (%zu bytes of name) not read", some[i], strlen(some[i]));
  }
  assert_int_equal(int_value(feature_in(out, names[N])), 42);
}

/* The stored key is the serialization of the configured version (vectors.json). */
static void key_versions(void **state) {
  struct fixture *fx = *state;
  json_object *root = ldr_test_json_file(ldr_test_data("vectors.json"));
  json_object *recs = ldr_test_get(root, "entity_key_cases");
  int checked = 0;
  for (size_t i = 0; i < json_object_array_length(recs); i++) {
    json_object *rec = json_object_array_get_idx(recs, i);
    int version = json_object_get_int(ldr_test_get(rec, "version"));
    json_object *hex = ldr_test_get(rec, "serialized_hex");
    if (hex == NULL || (version != 2 && version != 3)) continue;
    if (json_object_array_length(ldr_test_get(rec, "join_keys")) == 0) continue;
    Feast__Types__EntityKey *ek = ldr_test_key_from_record(rec, &arena);
    struct ldr_key k;
    struct ldr_err err;
    ldr_err_clear(&err);
    assert_int_equal(ldr_entity_key_serialize(ek, version, &arena, &k, &err), LDR_OK);
    struct ldr_write_feature f = int_feature("f", (int64_t)i);
    struct ldr_write_row row = {.key = k, .features = &f, .n_features = 1, .event_ts = {1, 0}};
    assert_int_equal(write1(fx->table, &row, 1, &err), LDR_OK);
    struct raw_row raw;
    assert_int_equal(native->raw_row(fx->table, k.bytes, k.len, "f", &raw), 0);
    assert_true(raw.found);
    assert_string_equal(ldr_test_hex(&arena, raw.key, raw.key_len), json_object_get_string(hex));
    struct ldr_read_row out;
    assert_int_equal(read1(fx->table, &k, 1, NULL, 0, &out, &err), LDR_OK);
    assert_true(out.found);
    assert_int_equal(int_value(&out.features[0]), (int64_t)i);
    checked++;
  }
  assert_true(checked >= 38); /* 19 keys with join keys, versions 2 and 3 */
  json_object_put(root);
}

/* Key counts across every statement size, past the largest one. */
static void many_keys(void **state) {
  struct fixture *fx = *state;
  enum { N = 9000 };
  struct ldr_write_feature *fs = ldr_arena_alloc(&arena, N * sizeof *fs);
  struct ldr_write_row *rows = ldr_arena_alloc(&arena, N * sizeof *rows);
  for (int i = 0; i < N; i++) {
    fs[i] = int_feature("f", i);
    rows[i] = (struct ldr_write_row){
        .key = key_of(i), .features = &fs[i], .n_features = 1, .event_ts = {1000 + i, 0}};
  }
  struct ldr_err err;
  ldr_err_clear(&err);
  if (write1(fx->table, rows, N, &err) != LDR_OK) fail_msg("write: %s", err.msg);
  static const size_t counts[] = {1, 2, 7, 9, 17, 100, 1000, 8192, 8193, N};
  int64_t *ids = ldr_arena_alloc(&arena, (N + 1) * sizeof *ids);
  for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
    size_t n = counts[c];
    for (size_t i = 0; i < n; i++) ids[i] = (int64_t)((i * 7919) % (N + 50)); /* some missing */
    struct ldr_read_row *r = read_keys(fx->table, ids, n, NULL, 0);
    for (size_t i = 0; i < n; i++) {
      if (ids[i] >= N) {
        assert_false(r[i].found);
      } else {
        assert_true(r[i].found);
        assert_int_equal(int_value(&r[i].features[0]), ids[i]);
      }
    }
  }
}

/* A write that waits on a lock ends at the call's deadline. */
static void deadline_while_locked(void **state) {
  struct fixture *fx = *state;
  must_write(fx->table, 1, "f", 1, 1000);
  assert_int_equal(native->lock(fx->table), 0);
  struct ldr_err err;
  ldr_err_clear(&err);
  int64_t start = ldr_now_ns();
  backend->deadline_ns = start + 300 * 1000000LL;
  enum ldr_rc rc = write_one(fx->table, 1, "f", 2, 2000, &err);
  int64_t took = ldr_now_ns() - start;
  backend->deadline_ns = 0;
  native->unlock();
  assert_int_equal(rc, LDR_DEADLINE);
  assert_true(took >= 250 * 1000000LL && took < 3000 * 1000000LL);
  int64_t id = 1;
  assert_int_equal(int_value(&read_keys(fx->table, &id, 1, NULL, 0)->features[0]), 1);
  must_write(fx->table, 1, "f", 3, 3000);
}

/* Several views in one read: each gets its own results; a missing table fails the read. */
static void several_views_in_one_read(void **state) {
  struct fixture *fx = *state;
  char other[LDR_TABLE_NAME_MAX + 1], missing[LDR_TABLE_NAME_MAX + 1];
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_table_name(store.project, "multi_b", "v", other, &err), LDR_OK);
  assert_int_equal(ldr_table_name(store.project, "no_such_view", "v", missing, &err), LDR_OK);
  const char *keep[] = {other};
  assert_int_equal(backend->ops->update(backend, keep, 1, NULL, 0, &err), LDR_OK);
  must_write(fx->table, 1, "a", 11, 1000);
  must_write(fx->table, 2, "a", 12, 1000);
  must_write(other, 1, "b", 21, 2000);
  struct ldr_key k[3] = {key_of(1), key_of(2), key_of(3)};
  struct ldr_read_row out_a[3], out_b[2], out_a2[1];
  const char *fa[] = {"a"};
  struct ldr_read reads[3] = {{fx->table, k, 3, fa, 1, out_a},
                              {other, k, 2, NULL, 0, out_b},
                              {fx->table, k + 1, 1, NULL, 0, out_a2}};
  assert_int_equal(backend->ops->read(backend, reads, 3, &arena, &err), LDR_OK);
  assert_int_equal(out_a[0].found, 1);
  assert_int_equal(int_value(feature_in(&out_a[0], "a")), 11);
  assert_int_equal(int_value(feature_in(&out_a[1], "a")), 12);
  assert_int_equal(out_a[2].found, 0);
  assert_int_equal(out_b[0].found, 1);
  assert_int_equal(int_value(feature_in(&out_b[0], "b")), 21);
  assert_int_equal(out_b[0].event_ts.s, 2000);
  assert_int_equal(out_b[1].found, 0);
  assert_int_equal(int_value(feature_in(&out_a2[0], "a")), 12);
  struct ldr_read with_missing[2] = {{fx->table, k, 1, NULL, 0, out_a},
                                     {missing, k, 1, NULL, 0, out_b}};
  assert_int_equal(backend->ops->read(backend, with_missing, 2, &arena, &err), LDR_NOT_FOUND);
  assert_non_null(strstr(err.msg, missing));
  /* The connection is still good afterwards. */
  ldr_err_clear(&err);
  assert_int_equal(backend->ops->read(backend, reads, 2, &arena, &err), LDR_OK);
  backend->ops->teardown(backend, keep, 1, &err);
}

/* MySQL: one read over tables of different collations (made before and after
 * a server's default changed, or converted one by one) is one UNION ALL, which
 * MySQL refuses for text columns of two collations (error 1271): the columns
 * are read as bytes, and the read answers as Feast's one SELECT per table does. */
static void views_of_two_collations_in_one_read(void **state) {
  (void)state;
  if (strcmp(native->name, "mysql") != 0) skip();
  char t1[LDR_TABLE_NAME_MAX + 1], t2[LDR_TABLE_NAME_MAX + 1], sql[256];
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_table_name(store.project, "coll_a", "v", t1, &err), LDR_OK);
  assert_int_equal(ldr_table_name(store.project, "coll_b", "v", t2, &err), LDR_OK);
  const char *keep[] = {t1, t2};
  assert_int_equal(backend->ops->update(backend, keep, 2, NULL, 0, &err), LDR_OK);
  snprintf(sql, sizeof sql,
           "ALTER TABLE `%s` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci", t1);
  assert_int_equal(native->exec(sql), 0);
  snprintf(sql, sizeof sql,
           "ALTER TABLE `%s` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", t2);
  assert_int_equal(native->exec(sql), 0);
  must_write(t1, 1, "a", 11, 1000);
  must_write(t2, 1, "b", 21, 2000);
  struct ldr_key k[1] = {key_of(1)};
  struct ldr_read_row out_a[1], out_b[1];
  struct ldr_read reads[2] = {{t1, k, 1, NULL, 0, out_a}, {t2, k, 1, NULL, 0, out_b}};
  assert_int_equal(backend->ops->read(backend, reads, 2, &arena, &err), LDR_OK);
  assert_int_equal(int_value(feature_in(&out_a[0], "a")), 11);
  assert_int_equal(int_value(feature_in(&out_b[0], "b")), 21);
  backend->ops->teardown(backend, keep, 2, &err);
}

/* Reads of one table served together (MySQL puts those of several keys naming
 * the same features in one SELECT): each gets exactly its keys, in its order,
 * repeated keys included; a key two reads share goes to both; reads naming
 * other features, even as many, keep their own filter. The first two reads'
 * keys, put end to end, are out of order. */
static void reads_of_one_table_together(void **state) {
  struct fixture *fx = *state;
  for (int64_t id = 1; id <= 5; id++) {
    must_write(fx->table, id, "a", 10 * id + 1, 1000 + id);
    must_write(fx->table, id, "b", 10 * id + 2, 1000);
  }
  struct ldr_key k0[] = {key_of(3), key_of(1), key_of(5), key_of(3)};
  struct ldr_key k1[] = {key_of(4), key_of(3), key_of(99)};
  struct ldr_key k2[] = {key_of(2), key_of(3)};
  struct ldr_key k3[] = {key_of(3)};
  struct ldr_key k4[] = {key_of(1), key_of(2)};
  struct ldr_read_row o0[4], o1[3], o2[2], o3[1], o4[2];
  const char *fa[] = {"a"}, *fb[] = {"b"};
  struct ldr_read reads[] = {
      {fx->table, k0, 4, NULL, 0, o0}, {fx->table, k1, 3, NULL, 0, o1},
      {fx->table, k2, 2, fa, 1, o2},   {fx->table, k3, 1, NULL, 0, o3},
      {fx->table, k4, 2, fb, 1, o4},
  };
  struct ldr_err err;
  ldr_err_clear(&err);
  if (backend->ops->read(backend, reads, 5, &arena, &err) != LDR_OK) fail_msg("read: %s", err.msg);
  const struct {
    const struct ldr_read_row *row;
    int64_t id;       /* 0: not found */
    const char *only; /* the one feature read, or NULL for both */
  } want[] = {{&o0[0], 3, NULL}, {&o0[1], 1, NULL}, {&o0[2], 5, NULL}, {&o0[3], 3, NULL},
              {&o1[0], 4, NULL}, {&o1[1], 3, NULL}, {&o1[2], 0, NULL}, {&o2[0], 2, "a"},
              {&o2[1], 3, "a"},  {&o3[0], 3, NULL}, {&o4[0], 1, "b"},  {&o4[1], 2, "b"}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const struct ldr_read_row *r = want[i].row;
    size_t n = want[i].id == 0 ? 0 : want[i].only ? 1 : 2;
    if (r->found != (want[i].id != 0) || r->n_features != n)
      fail_msg("row %zu: found %d with %zu features, want %zu", i, r->found, r->n_features, n);
    if (want[i].id == 0) continue;
    const struct ldr_read_feature *got_a = feature_in(r, "a"), *got_b = feature_in(r, "b");
    if (want[i].only == NULL || !strcmp(want[i].only, "a")) {
      assert_non_null(got_a);
      assert_int_equal(int_value(got_a), 10 * want[i].id + 1);
      assert_int_equal(r->event_ts.s, 1000 + want[i].id);
    }
    if (want[i].only == NULL || !strcmp(want[i].only, "b")) {
      assert_non_null(got_b);
      assert_int_equal(int_value(got_b), 10 * want[i].id + 2);
    }
  }
}

/* A read stops as soon as what it has read passes result_cap. */
static void result_cap(void **state) {
  struct fixture *fx = *state;
  struct ldr_err err;
  ldr_err_clear(&err);
  for (int64_t id = 1; id <= 50; id++) must_write(fx->table, id, "f", id, 1000);
  struct ldr_key keys[50];
  struct ldr_read_row out[50];
  for (int i = 0; i < 50; i++) keys[i] = key_of(i + 1);
  struct ldr_read r = {fx->table, keys, 50, NULL, 0, out};
  backend->result_cap = 200; /* a few rows' worth */
  enum ldr_rc rc = backend->ops->read(backend, &r, 1, &arena, &err);
  backend->result_cap = 0;
  assert_int_equal(rc, LDR_EXHAUSTED);
  assert_non_null(strstr(err.msg, "max_message_bytes"));
  ldr_err_clear(&err);
  backend->result_cap = 1 << 20;
  rc = backend->ops->read(backend, &r, 1, &arena, &err);
  backend->result_cap = 0;
  assert_int_equal(rc, LDR_OK);
  assert_int_equal(int_value(feature_in(&out[49], "f")), 50);
}

/* Writes to several views are one transaction: a failing one leaves the others unwritten. */
static void several_views_in_one_write(void **state) {
  struct fixture *fx = *state;
  char other[LDR_TABLE_NAME_MAX + 1], missing[LDR_TABLE_NAME_MAX + 1];
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_table_name(store.project, "multi_w", "v", other, &err), LDR_OK);
  assert_int_equal(ldr_table_name(store.project, "no_such_view", "v", missing, &err), LDR_OK);
  const char *keep[] = {other};
  assert_int_equal(backend->ops->update(backend, keep, 1, NULL, 0, &err), LDR_OK);
  struct ldr_write_feature fa = int_feature("a", 5), fb = int_feature("b", 6);
  struct ldr_write_row ra = {
      .key = key_of(7), .features = &fa, .n_features = 1, .event_ts = {1000, 0}};
  struct ldr_write_row rb = {
      .key = key_of(7), .features = &fb, .n_features = 1, .event_ts = {1000, 0}};
  struct ldr_write bad[3] = {
      {fx->table, &ra, 1, NULL}, {other, &rb, 1, NULL}, {missing, &rb, 1, NULL}};
  assert_int_equal(backend->ops->write(backend, bad, 3, &arena, &err), LDR_NOT_FOUND);
  int64_t id = 7;
  assert_int_equal(read_keys(fx->table, &id, 1, NULL, 0)->found, 0);
  assert_int_equal(read_keys(other, &id, 1, NULL, 0)->found, 0);
  ldr_err_clear(&err);
  assert_int_equal(backend->ops->write(backend, bad, 2, &arena, &err), LDR_OK);
  assert_int_equal(int_value(feature_in(read_keys(fx->table, &id, 1, NULL, 0), "a")), 5);
  assert_int_equal(int_value(feature_in(read_keys(other, &id, 1, NULL, 0), "b")), 6);
  backend->ops->teardown(backend, keep, 1, &err);
}

static const struct native *const natives[] = {
#ifdef LDR_WITH_SQLITE
    &native_sqlite,
#endif
#ifdef LDR_WITH_POSTGRES
    &native_postgres,
#endif
#ifdef LDR_WITH_MYSQL
    &native_mysql,
#endif
    NULL,
};

#define CASE(fn) cmocka_unit_test_setup_teardown(fn, fresh_table, drop_table)

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "sqlite";
  for (size_t i = 0; natives[i] != NULL; i++)
    if (!strcmp(natives[i]->name, name)) native = natives[i];
  if (native == NULL) {
    fprintf(stderr, "no backend named %s\n", name);
    return 2;
  }
  /* A project of its own, so runs sharing a database never see each other's tables. */
  static char project[32];
  snprintf(project, sizeof project, "conf%ld", (long)getpid());
  store.project = project;
  store.key_version = 3;
  if (native->setup(&store) != 0) {
    /* No server to test against: skipped (77) unless the caller requires one. */
    const char *require = getenv("LARDER_REQUIRE_DB");
    fprintf(stderr, "no %s server to test against (start integration/services.sh)\n", name);
    return require && *require == '1' ? 1 : 77;
  }
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_backend_new(&store, &backend, &err) != LDR_OK) {
    fprintf(stderr, "open: %s\n", err.msg);
    return 1;
  }
  ldr_arena_init(&arena, 65536, 0);
  const struct CMUnitTest tests[] = {
      CASE(round_trip_every_value_kind),
      CASE(overwrite_last_write_wins),
      CASE(duplicates_in_one_batch),
      CASE(missing_keys_are_not_found),
      CASE(results_in_request_order_with_duplicates),
      CASE(requested_features_filter),
      CASE(few_features_of_a_wide_table),
      CASE(sqlite_names_features_once_the_table_is_wide),
      CASE(feature_count_limit),
      CASE(event_ts_is_the_latest),
      CASE(empty_requests_and_missing_tables),
      CASE(failing_batch_leaves_nothing),
      cmocka_unit_test(update_and_teardown),
      CASE(stored_layout),
      CASE(key_versions),
      CASE(long_keys_names_and_values),
      CASE(names_and_values_around_row_buffers),
      CASE(many_keys),
      CASE(deadline_while_locked),
      CASE(several_views_in_one_read),
      CASE(views_of_two_collations_in_one_read),
      CASE(reads_of_one_table_together),
      CASE(result_cap),
      CASE(several_views_in_one_write),
  };
  int failed = _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
  ldr_backend_free(backend);
  ldr_arena_destroy(&arena);
  native->cleanup();
  return failed;
}
