/*
 * Feast's serving rules (serving/serving.c, REGISTRY.md §7) through
 * ldr_serving_get itself, on a real SQLite store with tests/support/
 * registry.c's registry, entity columns given as JSON as HTTP gives them: a
 * found entity's timestamp on its missing features, expired values kept
 * with OUTSIDE_MAX_AGE, pinned versions refused with versioning off and read
 * from their tables with it on, disabled and not-yet-online views refused
 * after every INVALID_ARGUMENT and before any read, only join-key columns
 * echoed (entity names mapped, request order), feature services with aliases
 * and join-key maps, entity-less views, label views, on-demand views, and the
 * faults HTTP turns into Feast's error classes. (service/test_serving.c
 * covers the gRPC handler and the TTL boundary; this is unit.serving.rules.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/log.h"
#include "serving/convert.h"
#include "serving/serving.h"
#include "tests/support/registry.h"
#include "tests/support/store.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define DAY 86400

static struct ldr_arena arena;
static struct ldr_test_store st;
static const struct ldr_registry *reg;
static int64_t now_s;

/* ---- rows in the store ---- */

/* Writes feature = value for the key {join_key: id} (or the dummy key when
 * join_key is NULL) of `table`, at event time `ts`. */
static void put_in(const char *table, const char *join_key, int64_t id, const char *feature,
                   const Feast__Types__Value *val, int64_t ts) {
  Feast__Types__EntityKey ek = FEAST__TYPES__ENTITY_KEY__INIT;
  Feast__Types__Value key = FEAST__TYPES__VALUE__INIT;
  Feast__Types__Value *vals[] = {&key};
  char *names[] = {join_key ? (char *)join_key : "__dummy_id"};
  if (join_key) {
    key.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    key.int64_val = id;
  } else {
    key.val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
    key.string_val = "";
  }
  ek.n_join_keys = ek.n_entity_values = 1;
  ek.join_keys = names;
  ek.entity_values = vals;
  size_t len = feast__types__value__get_packed_size(val);
  uint8_t *bytes = ldr_arena_alloc(&arena, len + 1);
  feast__types__value__pack(val, bytes);
  struct ldr_write_feature f = {feature, val, bytes, len};
  struct ldr_err err;
  ldr_err_clear(&err);
  struct ldr_write_row row = {.features = &f, .n_features = 1, .event_ts = {ts, 0}};
  assert_int_equal(ldr_entity_key_serialize(&ek, st.backend->key_version, &arena, &row.key, &err),
                   LDR_OK);
  struct ldr_write w = {table, &row, 1, NULL};
  if (st.backend->ops->write(st.backend, &w, 1, &arena, &err) != LDR_OK) fail_msg("%s", err.msg);
}

static void put(const char *view, int64_t driver, const char *feature,
                const Feast__Types__Value *val, int64_t ts) {
  char table[LDR_TABLE_NAME_MAX + 1];
  snprintf(table, sizeof table, "%s_%s", LDR_TEST_PROJECT, view);
  put_in(table, strcmp(view, "global_stats") ? "driver_id" : NULL, driver, feature, val, ts);
}

static Feast__Types__Value *i64(int64_t x) {
  Feast__Types__Value *v = ldr_arena_alloc(&arena, sizeof *v);
  feast__types__value__init(v);
  v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
  v->int64_val = x;
  return v;
}

static Feast__Types__Value *dbl(double x) {
  Feast__Types__Value *v = ldr_arena_alloc(&arena, sizeof *v);
  feast__types__value__init(v);
  v->val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
  v->double_val = x;
  return v;
}

/* ---- requests ---- */

static enum ldr_rc json_key(const struct ldr_serving_column *col, size_t row, int type,
                            struct ldr_arena *a, const Feast__Types__Value **out,
                            struct ldr_err *err) {
  const struct ldr_json *values = col->data;
  Feast__Types__Value *v = NULL;
  enum ldr_rc rc = ldr_json_to_value(&values->items[row], type, 1, a, &v, err);
  *out = v;
  return rc;
}

/* The columns of a JSON object of arrays. */
static struct ldr_serving_column *columns(const char *json, size_t *n) {
  *n = 0;
  if (json == NULL) return NULL;
  struct ldr_json *j = NULL;
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_json_parse(json, strlen(json), &arena, 8, &j, NULL, &err) != LDR_OK)
    fail_msg("%s: %s", json, err.msg);
  struct ldr_serving_column *cols = ldr_arena_calloc(&arena, j->n + 1, sizeof *cols);
  for (size_t i = 0; i < j->n; i++)
    cols[i] = (struct ldr_serving_column){j->keys[i].s, j->items[i].n, &j->items[i]};
  *n = j->n;
  return cols;
}

struct request {
  const char *entities; /* JSON object of arrays */
  const char *features; /* references, separated by spaces */
  const char *service;
  int full;
  const char *context; /* JSON object of arrays, or NULL */
};

static enum ldr_rc get_cfg(const struct ldr_config *cfg, const struct request *r,
                           struct ldr_serving_result *out, struct ldr_err *err) {
  struct ldr_serving_request q = {0};
  const char **refs = ldr_arena_calloc(&arena, 16, sizeof *refs);
  if (r->features) {
    char *copy = ldr_arena_memdup(&arena, r->features, strlen(r->features));
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
      refs[q.n_features++] = t;
  }
  q.features = refs;
  q.feature_service = r->service;
  q.entities = columns(r->entities, &q.n_entities);
  q.context = columns(r->context, &q.n_context);
  q.full_feature_names = r->full;
  q.value = json_key;
  struct ldr_serving_env env = {cfg, reg, st.backend, &arena};
  ldr_err_clear(err);
  enum ldr_rc rc = ldr_serving_get(&env, &q, out, err);
  assert_int_equal(rc, err->rc);
  return rc;
}

/* The answer as one string: per column "name: value status ts, ..." and "; ".
 * A value is KIND:x, "-" for no bytes; statuses P, N, O; ts in seconds, 0 for none. */
static const char *table_of(const struct ldr_serving_result *r) {
  struct ldr_sb sb = {0};
  for (size_t c = 0; c < r->n_cols; c++) {
    ldr_sb_printf(&sb, "%s%s:", c ? "; " : "", r->cols[c].name);
    for (size_t i = 0; i < r->n_rows; i++) {
      const struct ldr_cell *cell = &r->cols[c].cells[i];
      ldr_sb_puts(&sb, i ? ", " : " ");
      if (cell->len == 0) {
        ldr_sb_puts(&sb, "-");
      } else {
        Feast__Types__Value *v = feast__types__value__unpack(NULL, cell->len, cell->value);
        assert_non_null(v);
        if (v->val_case == FEAST__TYPES__VALUE__VAL_INT64_VAL)
          ldr_sb_printf(&sb, "%lld", (long long)v->int64_val);
        else if (v->val_case == FEAST__TYPES__VALUE__VAL_DOUBLE_VAL)
          ldr_sb_printf(&sb, "%g", v->double_val);
        else if (v->val_case == FEAST__TYPES__VALUE__VAL_STRING_VAL)
          ldr_sb_printf(&sb, "'%s'", v->string_val);
        else if (v->val_case == FEAST__TYPES__VALUE__VAL_BOOL_VAL)
          ldr_sb_puts(&sb, v->bool_val ? "true" : "false");
        else
          ldr_sb_printf(&sb, "kind%d", v->val_case);
        feast__types__value__free_unpacked(v, NULL);
      }
      static const char *const s[] = {"I", "P", "V", "N", "O"};
      ldr_sb_printf(&sb, " %s", cell->status >= 0 && cell->status <= 4 ? s[cell->status] : "?");
      if (cell->has_ts)
        ldr_sb_printf(&sb, " %+lld", (long long)(cell->ts.s - now_s));
      else
        ldr_sb_puts(&sb, " 0");
    }
  }
  const char *out = ldr_arena_memdup(&arena, ldr_sb_str(&sb), sb.len);
  ldr_sb_free(&sb);
  return out;
}

/* Runs `r` and compares its table; times are shown relative to now_s ("+0", "-60"). */
static void expect_table_at(int line, const struct ldr_config *cfg, const struct request *r,
                            const char *want) {
  struct ldr_serving_result out;
  struct ldr_err err;
  enum ldr_rc rc = get_cfg(cfg, r, &out, &err);
  if (rc != LDR_OK) fail_msg("line %d: %s '%s'", line, ldr_rc_str(rc), err.msg);
  const char *got = table_of(&out);
  if (strcmp(got, want)) fail_msg("line %d:\n%s\nwant\n%s", line, got, want);
}
#define EXPECT_TABLE(cfg, r, want) expect_table_at(__LINE__, cfg, r, want)

static void expect_refused_at(int line, const struct ldr_config *cfg, const struct request *r,
                              enum ldr_rc want, const char *words, enum ldr_serving_fault fault) {
  struct ldr_serving_result out;
  struct ldr_err err;
  enum ldr_rc rc = get_cfg(cfg, r, &out, &err);
  if (rc != want || strstr(err.msg, words) == NULL)
    fail_msg("line %d: %s '%s', want %s '%s'", line, ldr_rc_str(rc), err.msg, ldr_rc_str(want),
             words);
  if (out.fault != fault) fail_msg("line %d: fault %d, want %d", line, out.fault, fault);
  if (out.read) fail_msg("line %d: refused after reading", line);
}
#define EXPECT_REFUSED(cfg, r, want, words)                                                        \
  expect_refused_at(__LINE__, cfg, r, want, words, LDR_SERVING_FAULT_NONE)
#define EXPECT_FAULT(cfg, r, want, words, fault)                                                   \
  expect_refused_at(__LINE__, cfg, r, want, words, fault)

/* ---- the rules ---- */

/* §7.1: a found entity's timestamp (the latest of its rows) is on every
 * feature of the view, missing ones included; an entity not found has none. */
static void found_entity_timestamp(void **state) {
  (void)state;
  put("driver_stats", 7, "conv_rate", dbl(0.5), now_s - 60);
  put("driver_stats", 8, "conv_rate", dbl(0.25), now_s - 90);
  put("driver_stats", 8, "trips", i64(3), now_s - 30);
  struct request r = {.entities = "{\"driver_id\":[7,9999,8]}",
                      .features = "driver_stats:conv_rate driver_stats:trips"};
  EXPECT_TABLE(&st.cfg, &r,
               "driver_id: 7 P 0, 9999 P 0, 8 P 0; "
               "conv_rate: 0.5 P -60, - N 0, 0.25 P -30; "
               "trips: - N -60, - N 0, 3 P -30");
  /* A view none of whose requested features is stored for the key: not found. */
  struct request only_trips = {.entities = "{\"driver_id\":[7]}", .features = "driver_stats:trips"};
  EXPECT_TABLE(&st.cfg, &only_trips, "driver_id: 7 P 0; trips: - N 0");
}

/* §7.3: past the view's TTL, OUTSIDE_MAX_AGE with the stored value and time. */
static void expired_values_kept(void **state) {
  (void)state;
  put("driver_stats", 9, "conv_rate", dbl(0.75), now_s - 2 * DAY);
  put("driver_stats", 9, "trips", i64(4), now_s - 2 * DAY);
  put("driver_live", 9, "speed", dbl(60), now_s - 2 * DAY); /* no TTL */
  put("plain", 9, "x", i64(5), now_s - 2 * DAY);            /* 0 s and 500 ms: none (Go) */
  struct request r = {.entities = "{\"driver_id\":[9]}",
                      .features =
                          "driver_stats:conv_rate driver_stats:trips driver_live:speed plain:x"};
  EXPECT_TABLE(&st.cfg, &r,
               "driver_id: 9 P 0; conv_rate: 0.75 O -172800; trips: 4 O -172800; "
               "speed: 60 P -172800; x: 5 P -172800");
  struct ldr_config off = st.cfg;
  off.enforce_ttl = 0;
  EXPECT_TABLE(&off, &r,
               "driver_id: 9 P 0; conv_rate: 0.75 P -172800; trips: 4 P -172800; "
               "speed: 60 P -172800; x: 5 P -172800");
}

/* event_ts as any SQLite file may hold it, at the ends of int64 and beyond as
 * REAL: no overflow (UBSan), the far past expired, the far future fresh.
 * (SQLite stores a NaN as NULL, so no REAL here is one.) */
static void timestamps_at_the_ends(void **state) {
  (void)state;
  static const struct {
    int64_t driver;
    const char *sql_ts;
    int status; /* of conv_rate */
  } cases[] = {
      {31, "-9223372036854775808", 4}, /* INT64_MIN: OUTSIDE_MAX_AGE */
      {32, "9223372036854775807", 1},  /* INT64_MAX: PRESENT */
      {33, "-1e300", 4},
      {34, "1e300", 1},
      {35, "-9.3e18", 4},
  };
  char path[128];
  snprintf(path, sizeof path, "%s/online.db", st.dir);
  sqlite3 *d = NULL;
  assert_int_equal(sqlite3_open_v2(path, &d, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(d, 5000);
  for (size_t i = 0; i < N_OF(cases); i++) {
    put("driver_stats", cases[i].driver, "conv_rate", dbl(0.5), now_s);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE \"" LDR_TEST_PROJECT "_driver_stats\" SET event_ts = %s",
             cases[i].sql_ts);
    assert_int_equal(sqlite3_exec(d, sql, NULL, NULL, NULL), SQLITE_OK);
    char entities[64];
    snprintf(entities, sizeof entities, "{\"driver_id\":[%lld]}", (long long)cases[i].driver);
    struct request r = {.entities = entities, .features = "driver_stats:conv_rate"};
    struct ldr_serving_result out;
    struct ldr_err err;
    assert_int_equal(get_cfg(&st.cfg, &r, &out, &err), LDR_OK);
    assert_int_equal(out.n_cols, 2);
    const struct ldr_cell *cell = &out.cols[1].cells[0];
    if (cell->status != cases[i].status)
      fail_msg("event_ts %s: status %d, want %d", cases[i].sql_ts, cell->status, cases[i].status);
    assert_true(cell->has_ts);
  }
  sqlite3_close(d);
}

/* §7.4: versions. */
static void versions(void **state) {
  (void)state;
  put("versioned", 1, "v", i64(10), now_s);
  char v2[LDR_TABLE_NAME_MAX + 1];
  snprintf(v2, sizeof v2, "%s_versioned_v2", LDR_TEST_PROJECT);
  const char *keep[] = {v2};
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(st.backend->ops->update(st.backend, keep, 1, NULL, 0, &err), LDR_OK);
  put_in(v2, "driver_id", 1, "v", i64(12), now_s);

  /* Off: the unsuffixed table whatever the version; a pinned version is refused. */
  struct request cur = {.entities = "{\"driver_id\":[1]}", .features = "versioned:v", .full = 1};
  EXPECT_TABLE(&st.cfg, &cur, "driver_id: 1 P 0; versioned__v: 10 P +0");
  struct request latest = {
      .entities = "{\"driver_id\":[1]}", .features = "versioned@LATEST:v", .full = 1};
  EXPECT_TABLE(&st.cfg, &latest, "driver_id: 1 P 0; versioned__v: 10 P +0");
  struct request pinned = {.entities = "{\"driver_id\":[1]}", .features = "versioned@v1:v"};
  EXPECT_REFUSED(&st.cfg, &pinned, LDR_FAILED_PRECONDITION,
                 "features[0]: 'versioned@v1:v' asks for a version of a feature view, and online "
                 "versioning is off (set registry.enable_online_feature_view_versioning: true)");
  /* ... after every INVALID_ARGUMENT. */
  struct request pinned_bad = {.entities = "{\"driver_id\":[1]}",
                               .features = "versioned@v1:v versioned:nope"};
  EXPECT_REFUSED(&st.cfg, &pinned_bad, LDR_INVALID, "features[1]");

  /* On: the current version's table; a version not in the history is unknown. */
  struct ldr_config on = st.cfg;
  on.registry_versioning = 1;
  EXPECT_TABLE(&on, &cur, "driver_id: 1 P 0; versioned__v: 12 P +0");
  EXPECT_REFUSED(&on, &pinned, LDR_INVALID, "feature view 'versioned' has no version 1");
  /* A view part that is no version is the whole name. */
  struct request odd = {.entities = "{\"driver_id\":[1]}", .features = "versioned@x1:v"};
  EXPECT_FAULT(&on, &odd, LDR_INVALID, "feature view versioned@x1 does not exist",
               LDR_SERVING_NO_VIEW);
  ldr_err_clear(&err);
  assert_int_equal(st.backend->ops->update(st.backend, NULL, 0, keep, 1, &err), LDR_OK);
}

/* §7.5: disabled views and views not AVAILABLE_ONLINE are refused, after every
 * INVALID_ARGUMENT and before anything is read. */
static void disabled_views(void **state) {
  (void)state;
  put("disabled_view", 1, "d", i64(1), now_s);
  struct request dis = {.entities = "{\"driver_id\":[1]}",
                        .features = "driver_stats:conv_rate disabled_view:d"};
  EXPECT_REFUSED(&st.cfg, &dis, LDR_FAILED_PRECONDITION,
                 "features[1]: feature view 'disabled_view' is disabled and cannot serve features; "
                 "enable it with `feast feature-views enable disabled_view`");
  struct request mat = {.entities = "{\"driver_id\":[1]}", .features = "materializing:m"};
  EXPECT_REFUSED(&st.cfg, &mat, LDR_FAILED_PRECONDITION,
                 "feature view 'materializing' is in state 'MATERIALIZING' and cannot serve "
                 "features; only AVAILABLE_ONLINE views serve");
  /* An INVALID_ARGUMENT found later in the request comes first. */
  struct request both = {.entities = "{\"driver_id\":[\"x\"]}", .features = "disabled_view:d"};
  EXPECT_REFUSED(&st.cfg, &both, LDR_INVALID,
                 "entities[driver_id][0]: a JSON string cannot be a INT64 value");
  struct request missing_key = {.entities = "{\"other\":[1]}", .features = "disabled_view:d"};
  EXPECT_REFUSED(&st.cfg, &missing_key, LDR_INVALID,
                 "entities: no column 'driver_id', the join key of feature view 'disabled_view'");
  /* A computed on-demand view: UNIMPLEMENTED, after FAILED_PRECONDITION. */
  struct request odfv = {.entities = "{\"driver_id\":[1]}", .features = "odfv_computed:out"};
  EXPECT_REFUSED(&st.cfg, &odfv, LDR_UNIMPLEMENTED,
                 "feature view 'odfv_computed' cannot be served: it is an on-demand feature view "
                 "computed at request time");
  struct request odfv_dis = {.entities = "{\"driver_id\":[1]}",
                             .features = "odfv_computed:out disabled_view:d"};
  EXPECT_REFUSED(&st.cfg, &odfv_dis, LDR_FAILED_PRECONDITION, "disabled_view");
  /* A stored on-demand view is served. */
  put("odfv_stored", 1, "ratio", dbl(0.5), now_s);
  struct request stored = {.entities = "{\"driver_id\":[1]}",
                           .features = "odfv_stored:ratio odfv_stored:note"};
  EXPECT_TABLE(&st.cfg, &stored, "driver_id: 1 P 0; ratio: 0.5 P +0; note: - N +0");
}

/* A reply that cannot fit max_message_bytes (3 bytes a cell at the least) is
 * refused before anything is read: rows x columns, not after a read of every
 * row of every view. Exactly at the bound it is read. */
static void reply_too_large_refused_before_reading(void **state) {
  (void)state;
  put("driver_stats", 7, "conv_rate", dbl(0.5), now_s - 60);
  struct ldr_config small = st.cfg;
  small.max_message_bytes = 59; /* 10 rows x 2 columns need 60 */
  struct request r = {.entities = "{\"driver_id\":[7,7,7,7,7,7,7,7,7,7]}",
                      .features = "driver_stats:conv_rate"};
  EXPECT_REFUSED(&small, &r, LDR_EXHAUSTED, "entities: 10 rows x 2 columns make a reply past");
  small.max_message_bytes = 60;
  struct ldr_serving_result out;
  struct ldr_err err;
  assert_int_equal(get_cfg(&small, &r, &out, &err), LDR_OK);
  assert_true(out.read);
}

/* §7.2, §7.6: only join-key columns are echoed, in request order; entity names are
 * their join keys; other columns and request_context count for lengths only. */
static void echoed_columns(void **state) {
  (void)state;
  put("driver_stats", 7, "conv_rate", dbl(0.5), now_s);
  struct request r = {.entities = "{\"not_a_key\":[\"a\",\"b\"],\"driver_id\":[7,8]}",
                      .features = "driver_stats:conv_rate",
                      .full = 0,
                      .context = "{\"rc\":[1,2]}"};
  EXPECT_TABLE(&st.cfg, &r, "driver_id: 7 P 0, 8 P 0; conv_rate: 0.5 P +0, - N 0");
  /* The entity's name, under its join key's name; digits converted to the key's type. */
  struct request by_name = {.entities = "{\"x\":[0],\"driver\":[\"7\"]}",
                            .features = "driver_stats:conv_rate"};
  EXPECT_TABLE(&st.cfg, &by_name, "driver_id: 7 P 0; conv_rate: 0.5 P +0");
  /* A join key of the project that no requested view uses is echoed too (as Python). */
  struct request other = {.entities = "{\"customer_id\":[\"c\"],\"driver_id\":[7]}",
                          .features = "driver_stats:conv_rate"};
  EXPECT_TABLE(&st.cfg, &other, "customer_id: 'c' P 0; driver_id: 7 P 0; conv_rate: 0.5 P +0");
  struct request both = {.entities = "{\"driver\":[7],\"driver_id\":[7]}",
                         .features = "driver_stats:conv_rate"};
  EXPECT_REFUSED(&st.cfg, &both, LDR_INVALID,
                 "entities: columns 'driver' and 'driver_id' both give the join key 'driver_id'");
  struct request lengths = {.entities = "{\"driver_id\":[7,8],\"not_a_key\":[1]}",
                            .features = "driver_stats:conv_rate"};
  EXPECT_REFUSED(&st.cfg, &lengths, LDR_INVALID,
                 "entities: column 'not_a_key' has 1 values, column 'driver_id' has 2");
  struct request ctx = {.entities = "{\"driver_id\":[7,8]}",
                        .features = "driver_stats:conv_rate",
                        .full = 0,
                        .context = "{\"rc\":[1,2,3]}"};
  EXPECT_REFUSED(&st.cfg, &ctx, LDR_INVALID, "request_context: column 'rc' has 3 values");
  struct request twice = {.entities = "{\"driver_id\":[7]}",
                          .features = "driver_stats:conv_rate",
                          .full = 0,
                          .context = "{\"driver_id\":[7]}"};
  EXPECT_REFUSED(&st.cfg, &twice, LDR_INVALID, "the column 'driver_id' is given twice");
  struct request no_key = {.entities = "{\"driver_id\":[null]}",
                           .features = "driver_stats:conv_rate"};
  EXPECT_REFUSED(&st.cfg, &no_key, LDR_INVALID,
                 "entities[driver_id][0]: null: an entity key needs a value");
  /* No rows: empty columns, nothing read. */
  struct request none = {.entities = "{\"driver_id\":[]}", .features = "driver_stats:conv_rate"};
  EXPECT_TABLE(&st.cfg, &none, "driver_id:; conv_rate:");
}

/* Feature services, aliases and join_key_map; entity-less and label views. */
static void services_and_view_kinds(void **state) {
  (void)state;
  put("driver_stats", 7, "conv_rate", dbl(0.5), now_s);
  put("global_stats", 0, "total", i64(42), now_s - 5);
  put("driver_labels", 7, "label_ok", i64(1), now_s);
  struct request svc = {.entities = "{\"other_id\":[7,8]}", .service = "svc", .full = 1};
  EXPECT_TABLE(&st.cfg, &svc,
               "other_id: 7 P 0, 8 P 0; ds__conv_rate: 0.5 P +0, - N 0; "
               "global_stats__total: 42 P -5, 42 P -5");
  /* The view's own join key is not the service's column. */
  struct request wrong = {.entities = "{\"driver_id\":[7]}", .service = "svc"};
  EXPECT_REFUSED(&st.cfg, &wrong, LDR_INVALID,
                 "entities: no column 'other_id', the join key of feature view 'driver_stats'");
  struct request nosvc = {.entities = "{}", .service = "nope"};
  EXPECT_FAULT(&st.cfg, &nosvc, LDR_INVALID, "nope", LDR_SERVING_NO_SERVICE);
  /* Entity-less: no column needed, one row. */
  struct request global = {.features = "global_stats:total"};
  EXPECT_TABLE(&st.cfg, &global, "total: 42 P -5");
  struct request label = {.entities = "{\"driver_id\":[7]}", .features = "driver_labels:label_ok"};
  EXPECT_TABLE(&st.cfg, &label, "driver_id: 7 P 0; label_ok: 1 P +0");
}

/* The refusals HTTP maps to Feast's classes, and references. */
static void references(void **state) {
  (void)state;
  struct request twice = {.entities = "{\"driver_id\":[1]}",
                          .features = "driver_stats:conv_rate driver_stats:conv_rate"};
  EXPECT_FAULT(&st.cfg, &twice, LDR_INVALID, "features: the column 'conv_rate' would appear twice",
               LDR_SERVING_COLLISION);
  struct request twice_full = {.entities = "{\"driver_id\":[1]}",
                               .features = "driver_stats:trips driver_stats:trips",
                               .full = 1};
  EXPECT_FAULT(&st.cfg, &twice_full, LDR_INVALID, "'driver_stats__trips' would appear twice",
               LDR_SERVING_COLLISION);
  struct request unknown = {.entities = "{\"driver_id\":[1]}",
                            .features = "driver_stats:conv_rate nope:x"};
  EXPECT_FAULT(&st.cfg, &unknown, LDR_INVALID,
               "features[1]: feature view nope does not exist in project " LDR_TEST_PROJECT,
               LDR_SERVING_NO_VIEW);
  struct request feature = {.entities = "{\"driver_id\":[1]}", .features = "driver_stats:nope"};
  EXPECT_REFUSED(&st.cfg, &feature, LDR_INVALID,
                 "features[0]: feature view 'driver_stats' has no feature 'nope'");
  static const char *const not_refs[] = {"conv_rate", ":x", "driver_stats:", "@v1:x"};
  for (size_t i = 0; i < N_OF(not_refs); i++) {
    struct request r = {.entities = "{\"driver_id\":[1]}", .features = not_refs[i]};
    EXPECT_REFUSED(&st.cfg, &r, LDR_INVALID, "is not a feature reference 'view:feature'");
  }
}

/* Empties every table before each test. */
static int clear(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/online.db", st.dir);
  sqlite3 *d = NULL;
  assert_int_equal(sqlite3_open_v2(path, &d, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(d, 5000);
  for (size_t i = 0; ldr_test_push_views[i] != NULL; i++) {
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM \"" LDR_TEST_PROJECT "_%s\"", ldr_test_push_views[i]);
    assert_int_equal(sqlite3_exec(d, sql, NULL, NULL, NULL), SQLITE_OK);
  }
  sqlite3_close(d);
  ldr_arena_reset(&arena);
  return 0;
}

int main(void) {
  ldr_log_set_level(LDR_LOG_ERROR);
  now_s = (int64_t)time(NULL);
  size_t len;
  uint8_t *bytes = ldr_test_push_registry(&len);
  ldr_test_store_open_registry(&st, NULL, bytes, len, ldr_test_push_views);
  free(bytes);
  struct ldr_err err;
  ldr_err_clear(&err);
  reg = ldr_registry_acquire(st.registry, 0, &err);
  if (reg == NULL) {
    fprintf(stderr, "registry: %s\n", err.msg);
    return 1;
  }
  ldr_arena_init(&arena, 65536, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(found_entity_timestamp, clear),
      cmocka_unit_test_setup(reply_too_large_refused_before_reading, clear),
      cmocka_unit_test_setup(expired_values_kept, clear),
      cmocka_unit_test_setup(timestamps_at_the_ends, clear),
      cmocka_unit_test_setup(versions, clear),
      cmocka_unit_test_setup(disabled_views, clear),
      cmocka_unit_test_setup(echoed_columns, clear),
      cmocka_unit_test_setup(services_and_view_kinds, clear),
      cmocka_unit_test_setup(references, clear),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  ldr_registry_release(st.registry, 0);
  ldr_test_store_close(&st);
  ldr_arena_destroy(&arena);
  return failed;
}
