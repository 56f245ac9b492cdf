/*
 * Frames into rows (serving/ingest.c, HTTP.md §6-§7): pandas' ISO 8601 times
 * (every accepted form with its exact seconds and nanoseconds, and the
 * refusals); then ldr_ingest_push and ldr_ingest_write on a real SQLite store
 * with tests/support/registry.c's registry, each case read back from the
 * tables with SQL: every view a push source feeds written in one transaction
 * (a failing view leaves nothing in the others), field_mapping renames, the
 * batch source's timestamp and created columns and Feast's fallbacks, null
 * event times refused, views whose features are all null skipped, missing
 * columns refused with nothing written, read_only, unknown push sources and
 * views with their faults, on-demand views (transform_on_write refused; else
 * stored with the time of the write), entity-less views keyed by the dummy
 * key, versioned tables.
 *
 * The frame here is JSON, as HTTP's: an object of arrays. A time cell is ISO
 * text, an integer of nanoseconds, or (this test's own form) a number with a
 * fraction, read as seconds, to reach times pandas cannot write.
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
#include "serving/ingest.h"
#include "tests/support/registry.h"
#include "tests/support/store.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static struct ldr_arena arena;

/* ---- ldr_parse_iso8601 ---- */

static void iso8601_accepted(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int64_t s;
    int32_t ns;
  } cases[] = {
      {"2024-05-01", 1714521600, 0},
      {"2024-05-01T12:00", 1714564800, 0},
      {"2024-05-01 12:00", 1714564800, 0},
      {"2024-05-01T12:00:30", 1714564830, 0},
      {"2024-05-01 12:00:30", 1714564830, 0},
      {"2024-05-01T12:00:00Z", 1714564800, 0},
      {"2024-05-01T12:00Z", 1714564800, 0},
      {"2024-05-01Z", 1714521600, 0},
      {"2024-05-01T12:00:00.5", 1714564800, 500000000},
      {"2024-05-01T12:00:00.5Z", 1714564800, 500000000},
      {"2024-05-01T12:00:00,25", 1714564800, 250000000},
      {"2024-05-01T12:00:00.123", 1714564800, 123000000},
      {"2024-05-01T12:00:00.123456", 1714564800, 123456000},
      {"2024-05-01T12:00:00.123456789", 1714564800, 123456789},
      {"2024-05-01T12:00:00.000000001Z", 1714564800, 1},
      {"2024-05-01T12:00:00.999999999+00:00", 1714564800, 999999999},
      /* Offsets: the time is local to them. */
      {"2024-05-01T12:00:00+02:00", 1714557600, 0},
      {"2024-05-01T12:00:00+0200", 1714557600, 0},
      {"2024-05-01T12:00:00-05:30", 1714584600, 0},
      {"2024-05-01T12:00:00.25-0530", 1714584600, 250000000},
      {"2024-05-01T12:00+01:00", 1714561200, 0},
      {"2024-05-01T00:30:00+01:00", 1714519800, 0}, /* the day before in UTC */
      {"2024-05-01T12:00:00+23:59", 1714478460, 0},
      {"2024-05-01T12:00:00-00:00", 1714564800, 0},
      /* Days and leap years. */
      {"1970-01-01", 0, 0},
      {"1969-12-31T23:59:59", -1, 0},
      {"1969-12-31T23:59:59.5", -1, 500000000},
      {"2024-02-29", 1709164800, 0},
      {"2000-02-29T23:59:59Z", 951868799, 0},
      {"2023-12-31T23:59:59Z", 1704067199, 0},
      {"2100-03-01", 4107542400, 0},
      {"0001-01-01T00:00:00Z", -62135596800LL, 0},
      {"9999-12-31T23:59:59.999999999Z", 253402300799LL, 999999999},
      {"1600-02-29", -11670998400LL, 0},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    size_t n = strlen(cases[i].text);
    /* An exact copy without a NUL: ASan sees any read past the text. */
    char *p = malloc(n);
    memcpy(p, cases[i].text, n);
    struct ldr_ts ts = {-7, -7};
    int r = ldr_parse_iso8601(p, n, &ts);
    free(p);
    if (r != 0 || ts.s != cases[i].s || ts.ns != cases[i].ns)
      fail_msg("%s: %d, %lld.%09d, want %lld.%09d", cases[i].text, r, (long long)ts.s, ts.ns,
               (long long)cases[i].s, cases[i].ns);
  }
}

static void iso8601_refused(void **state) {
  (void)state;
  static const char *const cases[] = {
      "",
      "2024",
      "2024-05",
      "2024-5-01",
      "2024-05-1",
      "24-05-01",
      "0000-01-01",
      "10000-01-01",
      "+2024-05-01",
      "2024-00-10",
      "2024-13-01",
      "2024-01-00",
      "2024-01-32",
      "2024-02-30",
      "2023-02-29",
      "1900-02-29",
      "2024-04-31",
      "2024-05-01T",
      "2024-05-01T12",
      "2024-05-01T1:00",
      "2024-05-01T12:0",
      "2024-05-01T24:00",
      "2024-05-01T23:60",
      "2024-05-01T23:59:60",
      "2024-05-01T12:00:00.",
      "2024-05-01T12:00:00.1234567890",
      "2024-05-01T12:00:00.x",
      "2024-05-01T12:00.5",
      "2024-05-01t12:00",
      "2024-05-01X12:00",
      "2024-05-01T12:00:00 ",
      " 2024-05-01",
      "2024-05-01T12:00:00Zjunk",
      "2024-05-01T12:00:00z",
      "2024-05-01T12:00:00+24:00",
      "2024-05-01T12:00:00+01:60",
      "2024-05-01T12:00:00+1",
      "2024-05-01T12:00:00+01:",
      "2024-05-01T12:00:00+01:0",
      "2024-05-01T12:00:00+010",
      "2024-05-01T12:00:00+01:000",
      "2024-05-01T12:00:00 +01:00",
      "2024-05-01T12:00:00UTC",
      "2024/05/01",
      "2024-05-01\0",
      /* Out of the years 0001-9999 once the offset is applied. */
      "0001-01-01T00:00:00+00:01",
      "9999-12-31T23:59:59-00:01",
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    size_t n = strlen(cases[i]) + (strcmp(cases[i], "2024-05-01") == 0 ? 1 : 0);
    char *p = malloc(n + 1);
    memcpy(p, cases[i], n);
    struct ldr_ts ts = {-7, -7};
    int r = ldr_parse_iso8601(p, n, &ts);
    free(p);
    if (r != -1) fail_msg("'%s': %d (%lld.%09d), want -1", cases[i], r, (long long)ts.s, ts.ns);
    assert_true(ts.s == -7 && ts.ns == -7); /* untouched */
  }
  /* A NUL inside the text. */
  struct ldr_ts ts;
  assert_int_equal(ldr_parse_iso8601("2024-05-01\0", 11, &ts), -1);
}

/* ---- a JSON frame ---- */

struct json_frame {
  struct ldr_frame f;
  const struct ldr_json *df;
};

/* How many cells of each column were converted since the last frame(). */
static size_t converted[16];

/* Cell (col, row): an array's item, or a scalar that stands for every row (as pandas). */
static const struct ldr_json *cell_of(const struct ldr_frame *f, size_t col, size_t row) {
  const struct ldr_json *c = &((const struct json_frame *)f)->df->items[col];
  if (col < sizeof converted / sizeof converted[0]) converted[col]++;
  return c->type == LDR_JSON_ARRAY ? &c->items[row] : c;
}

static int json_broadcast(const struct ldr_frame *f, size_t col) {
  return ((const struct json_frame *)f)->df->items[col].type != LDR_JSON_ARRAY;
}

static enum ldr_rc json_cell(const struct ldr_frame *f, size_t col, size_t row, int type, int key,
                             struct ldr_arena *a, Feast__Types__Value **out, struct ldr_err *err) {
  const struct ldr_json *j = cell_of(f, col, row);
  *out = NULL;
  if (j->type == LDR_JSON_NULL && !key) return LDR_OK;
  return ldr_json_to_value(j, type, key, a, out, err);
}

static enum ldr_rc json_time(const struct ldr_frame *f, size_t col, size_t row, int *has,
                             struct ldr_ts *out, struct ldr_err *err) {
  const struct ldr_json *j = cell_of(f, col, row);
  int64_t ns;
  *has = 0;
  if (j->type == LDR_JSON_NULL) return LDR_OK;
  if (j->type == LDR_JSON_STRING) {
    if (ldr_parse_iso8601(j->s, j->len, out) != 0)
      return ldr_err_set(err, LDR_INVALID, "'%s' is not an ISO 8601 time", j->s);
  } else if (j->type == LDR_JSON_NUMBER && ldr_json_int64(j, &ns) == 1) {
    *out = (struct ldr_ts){ns / 1000000000, (int32_t)(ns % 1000000000)};
    if (out->ns < 0) *out = (struct ldr_ts){out->s - 1, out->ns + 1000000000};
  } else if (j->type == LDR_JSON_NUMBER && ldr_json_integral(j, &ns)) {
    *out = (struct ldr_ts){ns, 0}; /* this test's form: seconds */
  } else {
    return ldr_err_set(err, LDR_INVALID, "not a time");
  }
  *has = 1;
  return LDR_OK;
}

static const struct ldr_frame *frame(const char *json) {
  struct ldr_json *df = NULL;
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_json_parse(json, strlen(json), &arena, 64, &df, NULL, &err) != LDR_OK)
    fail_msg("%s: %s", json, err.msg);
  assert_int_equal(df->type, LDR_JSON_OBJECT);
  struct json_frame *jf = ldr_arena_calloc(&arena, 1, sizeof *jf);
  const char **names = ldr_arena_calloc(&arena, df->n + 1, sizeof *names);
  size_t rows = 0;
  for (size_t i = 0; i < df->n; i++) {
    names[i] = df->keys[i].s;
    if (df->items[i].type == LDR_JSON_ARRAY) rows = df->items[i].n;
  }
  for (size_t i = 0; i < df->n; i++)
    if (df->items[i].type == LDR_JSON_ARRAY) assert_int_equal(df->items[i].n, rows);
  memset(converted, 0, sizeof converted);
  jf->df = df;
  jf->f = (struct ldr_frame){.n_rows = rows,
                             .n_cols = df->n,
                             .names = names,
                             .data = df,
                             .field = "df",
                             .value = json_cell,
                             .timestamp = json_time,
                             .broadcast = json_broadcast};
  return &jf->f;
}

/* ---- the store ---- */

static struct ldr_test_store st;
static const struct ldr_registry *reg;

static struct ldr_ingest_env env_of(const struct ldr_config *cfg) {
  return (struct ldr_ingest_env){cfg, reg, st.backend, &arena};
}

static enum ldr_rc push_cfg(const struct ldr_config *cfg, const char *source, const char *json,
                            struct ldr_ingest_result *res, struct ldr_err *err) {
  struct ldr_ingest_env env = env_of(cfg);
  ldr_err_clear(err);
  enum ldr_rc rc = ldr_ingest_push(&env, frame(json), source, res, err);
  assert_int_equal(rc, err->rc);
  return rc;
}

static enum ldr_rc push(const char *source, const char *json, struct ldr_ingest_result *res,
                        struct ldr_err *err) {
  return push_cfg(&st.cfg, source, json, res, err);
}

static enum ldr_rc write_cfg(const struct ldr_config *cfg, const char *view, int transform,
                             const char *json, struct ldr_ingest_result *res, struct ldr_err *err) {
  struct ldr_ingest_env env = env_of(cfg);
  ldr_err_clear(err);
  enum ldr_rc rc = ldr_ingest_write(&env, frame(json), view, transform, res, err);
  assert_int_equal(rc, err->rc);
  return rc;
}

static sqlite3 *db(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/online.db", st.dir);
  sqlite3 *d = NULL;
  if (sqlite3_open_v2(path, &d, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    fail_msg("%s: %s", path, sqlite3_errmsg(d));
  sqlite3_busy_timeout(d, 5000);
  return d;
}

static void exec(const char *sql) {
  sqlite3 *d = db();
  char *msg = NULL;
  if (sqlite3_exec(d, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
  sqlite3_close(d);
}

/* An entity key as "name=value,..." (int64 as digits, strings quoted). */
static void put_key(struct ldr_sb *sb, const void *p, size_t n) {
  Feast__Types__EntityKey *ek;
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_entity_key_deserialize(p, n, &arena, &ek, &err) != LDR_OK) fail_msg("key: %s", err.msg);
  for (size_t i = 0; i < ek->n_join_keys; i++) {
    const Feast__Types__Value *v = ek->entity_values[i];
    ldr_sb_printf(sb, "%s%s=", i ? "," : "", ek->join_keys[i]);
    if (v->val_case == FEAST__TYPES__VALUE__VAL_INT64_VAL)
      ldr_sb_printf(sb, "%lld", (long long)v->int64_val);
    else if (v->val_case == FEAST__TYPES__VALUE__VAL_STRING_VAL)
      ldr_sb_printf(sb, "'%s'", v->string_val);
    else
      ldr_sb_printf(sb, "kind %d", v->val_case);
  }
}

/* A stored Value as KIND:value, "empty" for no bytes. */
static void put_stored(struct ldr_sb *sb, const void *p, size_t n) {
  if (n == 0) {
    ldr_sb_puts(sb, "empty");
    return;
  }
  Feast__Types__Value *v = feast__types__value__unpack(NULL, n, p);
  assert_non_null(v);
  switch (v->val_case) {
  case FEAST__TYPES__VALUE__VAL_INT64_VAL:
    ldr_sb_printf(sb, "INT64:%lld", (long long)v->int64_val);
    break;
  case FEAST__TYPES__VALUE__VAL_DOUBLE_VAL:
    ldr_sb_printf(sb, "DOUBLE:%.17g", v->double_val);
    break;
  case FEAST__TYPES__VALUE__VAL_FLOAT_VAL:
    ldr_sb_printf(sb, "FLOAT:%.9g", v->float_val);
    break;
  case FEAST__TYPES__VALUE__VAL_BOOL_VAL:
    ldr_sb_printf(sb, "BOOL:%s", v->bool_val ? "true" : "false");
    break;
  case FEAST__TYPES__VALUE__VAL_STRING_VAL:
    ldr_sb_printf(sb, "STRING:%s", v->string_val);
    break;
  default:
    ldr_sb_printf(sb, "kind %d", v->val_case);
    break;
  }
  feast__types__value__free_unpacked(v, NULL);
}

/* Every row of a view's table, one line each: key|feature|value|event_ts|created_ts. */
static const char *rows_of_table(const char *table) {
  sqlite3 *d = db();
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT entity_key, feature_name, value, event_ts, created_ts FROM \"%s\" "
           "ORDER BY entity_key, feature_name",
           table);
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(d, sql, -1, &q, NULL) != SQLITE_OK)
    fail_msg("%s: %s", sql, sqlite3_errmsg(d));
  struct ldr_sb sb = {0};
  while (sqlite3_step(q) == SQLITE_ROW) {
    put_key(&sb, sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0));
    ldr_sb_printf(&sb, "|%s|", (const char *)sqlite3_column_text(q, 1));
    put_stored(&sb, sqlite3_column_blob(q, 2), (size_t)sqlite3_column_bytes(q, 2));
    ldr_sb_printf(&sb, "|%lld|", (long long)sqlite3_column_int64(q, 3));
    if (sqlite3_column_type(q, 4) == SQLITE_NULL)
      ldr_sb_puts(&sb, "NULL\n");
    else
      ldr_sb_printf(&sb, "%lld\n", (long long)sqlite3_column_int64(q, 4));
  }
  sqlite3_finalize(q);
  sqlite3_close(d);
  const char *out = ldr_arena_memdup(&arena, ldr_sb_str(&sb), sb.len);
  ldr_sb_free(&sb);
  return out;
}

static const char *rows(const char *view) {
  char table[LDR_TABLE_NAME_MAX + 1];
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_table_name(LDR_TEST_PROJECT, view, "view", table, &err), LDR_OK);
  return rows_of_table(table);
}

static void expect_rows_at(int line, const char *view, const char *want) {
  const char *got = rows(view);
  if (strcmp(got, want)) fail_msg("line %d: %s holds\n%s\nwant\n%s", line, view, got, want);
}
#define EXPECT_ROWS(view, want) expect_rows_at(__LINE__, view, want)

/* Nothing in any table. */
static void expect_nothing_at(int line) {
  for (size_t i = 0; ldr_test_push_views[i] != NULL; i++)
    expect_rows_at(line, ldr_test_push_views[i], "");
}
#define EXPECT_NOTHING() expect_nothing_at(__LINE__)

static void expect_refused_at(int line, enum ldr_rc rc, const struct ldr_err *err, enum ldr_rc want,
                              const char *words) {
  if (rc != want || strstr(err->msg, words) == NULL)
    fail_msg("line %d: %s '%s', want %s '%s'", line, ldr_rc_str(rc), err->msg, ldr_rc_str(want),
             words);
}
#define EXPECT_REFUSED(rc, err, want, words) expect_refused_at(__LINE__, rc, err, want, words)

/* Empties every table before each test. */
static int clear(void **state) {
  (void)state;
  for (size_t i = 0; ldr_test_push_views[i] != NULL; i++) {
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM \"" LDR_TEST_PROJECT "_%s\"", ldr_test_push_views[i]);
    exec(sql);
  }
  ldr_arena_reset(&arena);
  return 0;
}

/* The driver_push frame of two rows most cases start from. */
#define DRIVER_FRAME(extra)                                                                        \
  "{\"driver_id\":[1001,\"1002\"],\"conv_rate\":[0.5,null],\"trips\":[3,\"4\"],"                   \
  "\"speed\":[10,11.5],\"label_ok\":[true,0],"                                                     \
  "\"event_timestamp\":[\"2023-11-14T22:13:20Z\",1700000001500000000],"                            \
  "\"created\":[null,\"2023-11-14T22:13:21+00:00\"]" extra "}"

/* ---- pushes ---- */

/* One push writes driver_stats, driver_live and driver_labels: every view the source feeds. */
static void push_writes_every_view(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  assert_int_equal(push("driver_push", DRIVER_FRAME(",\"ignored\":[\"x\",{}]"), &res, &err),
                   LDR_OK);
  assert_int_equal(res.views_written, 3);
  assert_int_equal(res.rows_written, 6);
  assert_true(res.wrote);
  assert_int_equal(res.fault, LDR_INGEST_FAULT_NONE);
  /* A null feature is the empty Value; the row is written all the same. */
  EXPECT_ROWS("driver_stats", "driver_id=1001|conv_rate|DOUBLE:0.5|1700000000|NULL\n"
                              "driver_id=1001|trips|INT64:3|1700000000|NULL\n"
                              "driver_id=1002|conv_rate|empty|1700000001|1700000001\n"
                              "driver_id=1002|trips|INT64:4|1700000001|1700000001\n");
  EXPECT_ROWS("driver_live", "driver_id=1001|speed|DOUBLE:10|1700000000|NULL\n"
                             "driver_id=1002|speed|DOUBLE:11.5|1700000001|1700000001\n");
  EXPECT_ROWS("driver_labels", "driver_id=1001|label_ok|BOOL:true|1700000000|NULL\n"
                               "driver_id=1002|label_ok|BOOL:false|1700000001|1700000001\n");
  EXPECT_ROWS("plain", ""); /* a view on driver_file without the push source */
  EXPECT_ROWS("customer_stats", "");

  /* A second push overwrites (upsert), last write wins within a push too. */
  assert_int_equal(push("driver_push",
                        "{\"driver_id\":[1001,1001],\"conv_rate\":[1,2],\"trips\":[null,7],"
                        "\"speed\":[1,2],\"label_ok\":[1,1],"
                        "\"event_timestamp\":[\"2024-01-01\",\"2024-01-02\"]}",
                        &res, &err),
                   LDR_OK);
  EXPECT_ROWS("driver_stats", "driver_id=1001|conv_rate|DOUBLE:2|1704153600|NULL\n"
                              "driver_id=1001|trips|INT64:7|1704153600|NULL\n"
                              "driver_id=1002|conv_rate|empty|1700000001|1700000001\n"
                              "driver_id=1002|trips|INT64:4|1700000001|1700000001\n");
}

/* A scalar column stands for every row, and is converted once per view that
 * reads it, not once per row: a long value in it (a number of 3.9 MB of
 * digits) would otherwise cost its length times the rows. */
static void push_broadcasts_scalars_once(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  /* Columns 0-5: driver_id, conv_rate, trips, speed, label_ok, event_timestamp. */
  assert_int_equal(push("driver_push",
                        "{\"driver_id\":[1001,1002,1003],\"conv_rate\":0.5,\"trips\":[1,2,3],"
                        "\"speed\":2,\"label_ok\":1,\"event_timestamp\":\"2024-01-01\"}",
                        &res, &err),
                   LDR_OK);
  assert_int_equal(res.rows_written, 9);
  EXPECT_ROWS("driver_stats", "driver_id=1001|conv_rate|DOUBLE:0.5|1704067200|NULL\n"
                              "driver_id=1001|trips|INT64:1|1704067200|NULL\n"
                              "driver_id=1002|conv_rate|DOUBLE:0.5|1704067200|NULL\n"
                              "driver_id=1002|trips|INT64:2|1704067200|NULL\n"
                              "driver_id=1003|conv_rate|DOUBLE:0.5|1704067200|NULL\n"
                              "driver_id=1003|trips|INT64:3|1704067200|NULL\n");
  EXPECT_ROWS("driver_live", "driver_id=1001|speed|DOUBLE:2|1704067200|NULL\n"
                             "driver_id=1002|speed|DOUBLE:2|1704067200|NULL\n"
                             "driver_id=1003|speed|DOUBLE:2|1704067200|NULL\n");
  /* Three views read the key and time columns; one reads each feature. */
  assert_int_equal(converted[0], 9);
  assert_int_equal(converted[1], 1);
  assert_int_equal(converted[2], 3);
  assert_int_equal(converted[3], 1);
  assert_int_equal(converted[4], 1);
  assert_int_equal(converted[5], 3);
  /* A scalar join key: every row is the same key, written once (last wins). */
  assert_int_equal(push("driver_push",
                        "{\"driver_id\":1004,\"conv_rate\":[1,2],\"trips\":[5,6],"
                        "\"speed\":[1,2],\"label_ok\":[1,0],\"event_timestamp\":\"2024-01-01\"}",
                        &res, &err),
                   LDR_OK);
  assert_int_equal(converted[0], 3);
  EXPECT_ROWS("driver_labels", "driver_id=1001|label_ok|BOOL:true|1704067200|NULL\n"
                               "driver_id=1002|label_ok|BOOL:true|1704067200|NULL\n"
                               "driver_id=1003|label_ok|BOOL:true|1704067200|NULL\n"
                               "driver_id=1004|label_ok|BOOL:false|1704067200|NULL\n");
}

/* What one call stores is bounded by 16 x max_message_bytes, shared broadcast
 * values counted once per row: a 3.9 MB string given once for 10,000 rows
 * would otherwise be 78 GB for the database to write. Nothing is written. */
static void broadcast_bounded_by_what_a_call_stores(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  struct ldr_config small = st.cfg;
  small.max_message_bytes = 64; /* 1,024 bytes; an INT64 row stores 2 + 32 (its text) */
  char text[1024];
  size_t n = (size_t)snprintf(text, sizeof text, "{\"driver_id\":[1");
  for (int i = 2; i <= 40; i++) n += (size_t)snprintf(text + n, sizeof text - n, ",%d", i);
  snprintf(text + n, sizeof text - n, "],\"x\":7,\"event_timestamp\":0}");
  EXPECT_REFUSED(write_cfg(&small, "plain", 1, text, &res, &err), &err, LDR_EXHAUSTED,
                 "df: the values to store pass 16 x larder.max_message_bytes (1024 bytes)");
  assert_false(res.wrote);
  EXPECT_ROWS("plain", "");
  assert_int_equal(write_cfg(&small, "plain", 1,
                             "{\"driver_id\":[1,2,3,4,5,6,7,8,9,10],\"x\":7,\"event_timestamp\":0}",
                             &res, &err),
                   LDR_OK);
  assert_int_equal(res.rows_written, 10);
}

/* One transaction: a view whose write fails leaves nothing in the others. */
static void push_is_one_transaction(void **state) {
  (void)state;
  struct ldr_err err;
  ldr_err_clear(&err);
  /* driver_stats is written last (views in name order): without its table the push fails. */
  const char *drop[] = {LDR_TEST_PROJECT "_driver_stats"};
  assert_int_equal(st.backend->ops->update(st.backend, NULL, 0, drop, 1, &err), LDR_OK);
  struct ldr_ingest_result res;
  enum ldr_rc rc = push("driver_push", DRIVER_FRAME(""), &res, &err);
  EXPECT_REFUSED(rc, &err, LDR_NOT_FOUND, LDR_TEST_PROJECT "_driver_stats");
  assert_true(res.wrote);
  assert_int_equal(res.views_written, 0);
  EXPECT_ROWS("driver_live", "");
  EXPECT_ROWS("driver_labels", "");
  ldr_err_clear(&err);
  assert_int_equal(st.backend->ops->update(st.backend, drop, 1, NULL, 0, &err), LDR_OK);
  /* And with the table back, all three. */
  assert_int_equal(push("driver_push", DRIVER_FRAME(""), &res, &err), LDR_OK);
  assert_int_equal(res.views_written, 3);
}

/* field_mapping renames the frame's columns, join keys included; the batch source's
 * timestamp_field and created column are read, Feast's defaults ignored. */
static void push_renames_and_timestamps(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  assert_int_equal(push("customer_push",
                        "{\"cust\":[\"c1\"],\"src_rate\":[0.25],\"label\":[\"x\"],"
                        "\"ts\":[\"2024-01-01T00:00:00+01:00\"],\"created_at\":[\"2024-01-01\"],"
                        "\"event_timestamp\":[\"2000-01-01\"],\"created\":[\"2000-01-01\"]}",
                        &res, &err),
                   LDR_OK);
  assert_int_equal(res.views_written, 1);
  EXPECT_ROWS("customer_stats", "customer_id='c1'|label|STRING:x|1704063600|1704067200\n"
                                "customer_id='c1'|rate|FLOAT:0.25|1704063600|1704067200\n");
  /* Without ts and created_at: event_timestamp and created, as Feast's remote store sends. */
  assert_int_equal(push("customer_push",
                        "{\"cust\":[\"c2\"],\"src_rate\":[\"1e3\"],\"label\":[null],"
                        "\"event_timestamp\":[\"2024-02-29T12:00:00Z\"],\"created\":[null]}",
                        &res, &err),
                   LDR_OK);
  EXPECT_ROWS("customer_stats", "customer_id='c1'|label|STRING:x|1704063600|1704067200\n"
                                "customer_id='c1'|rate|FLOAT:0.25|1704063600|1704067200\n"
                                "customer_id='c2'|label|empty|1709208000|NULL\n"
                                "customer_id='c2'|rate|FLOAT:1000|1709208000|NULL\n");
  /* A frame already using the view's names needs no renaming (Feast's rename is a no-op). */
  clear(NULL);
  assert_int_equal(push("customer_push",
                        "{\"customer_id\":[\"c3\"],\"rate\":[1],\"label\":[\"y\"],\"ts\":[0]}",
                        &res, &err),
                   LDR_OK);
  EXPECT_ROWS("customer_stats", "customer_id='c3'|label|STRING:y|0|NULL\n"
                                "customer_id='c3'|rate|FLOAT:1|0|NULL\n");
  clear(NULL);
  EXPECT_REFUSED(push("customer_push",
                      "{\"cust\":[\"c1\"],\"src_rate\":[1],\"label\":[\"x\"],\"created_at\":[0]}",
                      &res, &err),
                 &err, LDR_INVALID,
                 "df: missing column 'ts', the event timestamp of feature view 'customer_stats'");
  EXPECT_NOTHING();
}

/* Event times: required, in range; created times may be null. */
static void push_time_checks(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  static const struct {
    const char *frame;
    const char *words;
  } cases[] = {
      {"{\"driver_id\":[1,2],\"conv_rate\":[1,2],\"trips\":[1,2],\"speed\":[1,2],"
       "\"label_ok\":[true,true],\"event_timestamp\":[\"2024-01-01\",null]}",
       "df.event_timestamp[1]: the event timestamp may not be null"},
      {"{\"driver_id\":[1],\"conv_rate\":[1],\"trips\":[1],\"speed\":[1],\"label_ok\":[true],"
       "\"event_timestamp\":[\"2024-02-30\"]}",
       "df.event_timestamp[0]: '2024-02-30' is not an ISO 8601 time"},
      {"{\"driver_id\":[1],\"conv_rate\":[1],\"trips\":[1],\"speed\":[1],\"label_ok\":[true],"
       "\"event_timestamp\":[-62135596801.0]}",
       "df.event_timestamp[0]: outside the years 0001 to 9999"},
      {"{\"driver_id\":[1],\"conv_rate\":[1],\"trips\":[1],\"speed\":[1],\"label_ok\":[true],"
       "\"event_timestamp\":[253402300800.0]}",
       "df.event_timestamp[0]: outside the years 0001 to 9999"},
      {"{\"driver_id\":[1],\"conv_rate\":[1],\"trips\":[1],\"speed\":[1],\"label_ok\":[true],"
       "\"event_timestamp\":[0],\"created\":[\"yesterday\"]}",
       "df.created[0]: 'yesterday' is not an ISO 8601 time"},
      {"{\"driver_id\":[1],\"conv_rate\":[1],\"trips\":[1],\"speed\":[1],\"label_ok\":[true],"
       "\"event_timestamp\":[0],\"created\":[253402300800.0]}",
       "df.created[0]: outside the years 0001 to 9999"},
      {"{\"driver_id\":[1],\"conv_rate\":[1],\"trips\":[1],\"speed\":[1],\"label_ok\":[true]}",
       "df: missing column 'event_timestamp', the event timestamp of feature view"},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    enum ldr_rc rc = push("driver_push", cases[i].frame, &res, &err);
    EXPECT_REFUSED(rc, &err, LDR_INVALID, cases[i].words);
    assert_false(res.wrote);
  }
  EXPECT_NOTHING();
  /* The edges of the range are fine. */
  assert_int_equal(push("driver_push",
                        "{\"driver_id\":[1,2],\"conv_rate\":[1,2],\"trips\":[1,2],\"speed\":[1,2],"
                        "\"label_ok\":[true,true],"
                        "\"event_timestamp\":[-62135596800.0,253402300799.0]}",
                        &res, &err),
                   LDR_OK);
  EXPECT_ROWS("driver_live", "driver_id=1|speed|DOUBLE:1|-62135596800|NULL\n"
                             "driver_id=2|speed|DOUBLE:2|253402300799|NULL\n");
}

/* A view whose every feature cell is null is not written (Feast returns early). */
static void push_all_null_features(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  assert_int_equal(push("driver_push",
                        "{\"driver_id\":[1,2],\"conv_rate\":[null,null],\"trips\":[null,null],"
                        "\"speed\":[1,null],\"label_ok\":[null,null],"
                        "\"event_timestamp\":[\"2024-01-01\",\"2024-01-01\"]}",
                        &res, &err),
                   LDR_OK);
  assert_int_equal(res.views_written, 1);
  assert_int_equal(res.rows_written, 2);
  EXPECT_ROWS("driver_stats", "");
  EXPECT_ROWS("driver_labels", "");
  EXPECT_ROWS("driver_live", "driver_id=1|speed|DOUBLE:1|1704067200|NULL\n"
                             "driver_id=2|speed|empty|1704067200|NULL\n");
  /* Every feature of every view null: nothing written, and the backend not called. */
  clear(NULL);
  assert_int_equal(push("driver_push",
                        "{\"driver_id\":[1],\"conv_rate\":[null],\"trips\":[null],"
                        "\"speed\":[null],\"label_ok\":[null],\"event_timestamp\":[0]}",
                        &res, &err),
                   LDR_OK);
  assert_int_equal(res.views_written, 0);
  assert_false(res.wrote);
  /* Every feature null: Feast returns before the join keys and timestamps are
   * looked at, so a null key or no event timestamp is no error. */
  assert_int_equal(push("driver_push",
                        "{\"driver_id\":[null],\"conv_rate\":[null],\"trips\":[null],"
                        "\"speed\":[null],\"label_ok\":[null]}",
                        &res, &err),
                   LDR_OK);
  assert_false(res.wrote);
  /* No rows at all (Feast's df.empty), whatever the columns. */
  static const char *const empty[] = {
      "{\"driver_id\":[],\"conv_rate\":[],\"trips\":[],\"speed\":[],\"event_timestamp\":[]}",
      "{}",
      "{\"driver_id\":[]}",
      "{\"driver_id\":[],\"conv_rate\":[],\"trips\":[],\"speed\":[],\"label_ok\":[]}",
  };
  for (size_t i = 0; i < N_OF(empty); i++) {
    if (push("driver_push", empty[i], &res, &err) != LDR_OK) fail_msg("%s: %s", empty[i], err.msg);
    assert_false(res.wrote);
  }
  EXPECT_NOTHING();
}

/* A frame that does not fit any one view writes nothing to any of them. */
static void push_refusals_write_nothing(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  static const struct {
    const char *frame;
    const char *words;
  } cases[] = {
      /* trips missing: driver_labels and driver_live, prepared first, are not written. */
      {"{\"driver_id\":[1],\"conv_rate\":[1],\"speed\":[1],\"label_ok\":[true],"
       "\"event_timestamp\":[0]}",
       "df: missing column 'trips' for feature view 'driver_stats'"},
      {"{\"conv_rate\":[1],\"trips\":[1],\"speed\":[1],\"label_ok\":[true],"
       "\"event_timestamp\":[0]}",
       "df: missing column 'driver_id', a join key of feature view 'driver_labels'"},
      {"{\"driver_id\":[1,null],\"conv_rate\":[1,1],\"trips\":[1,1],\"speed\":[1,1],"
       "\"label_ok\":[true,true],\"event_timestamp\":[0,0]}",
       "df.driver_id[1]: null: an entity key needs a value"},
      {"{\"driver_id\":[1.5],\"conv_rate\":[1],\"trips\":[1],\"speed\":[1],\"label_ok\":[true],"
       "\"event_timestamp\":[0]}",
       "df.driver_id[0]: 1.5 is out of range for INT64, or not an integer"},
      {"{\"driver_id\":[1],\"conv_rate\":[1],\"trips\":[\"x\"],\"speed\":[1],"
       "\"label_ok\":[true],\"event_timestamp\":[0]}",
       "df.trips[0]: a JSON string cannot be a INT64 value"},
      {"{\"driver_id\":[1],\"conv_rate\":[1],\"trips\":[1],\"speed\":[1],\"label_ok\":[2],"
       "\"event_timestamp\":[0]}",
       "df.label_ok[0]: a BOOL value is true, false, 0, 1"},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    enum ldr_rc rc = push("driver_push", cases[i].frame, &res, &err);
    EXPECT_REFUSED(rc, &err, LDR_INVALID, cases[i].words);
    assert_false(res.wrote);
  }
  EXPECT_NOTHING();
}

static void push_sources_and_read_only(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  /* Not a push source any view uses: Feast's PushSourceNotFoundException. */
  static const char *const unknown[] = {"nope", "driver_file", "customer_file", "plain", ""};
  for (size_t i = 0; i < N_OF(unknown); i++) {
    EXPECT_REFUSED(push(unknown[i], DRIVER_FRAME(""), &res, &err), &err, LDR_INVALID,
                   "Unable to find push source '");
    assert_int_equal(res.fault, LDR_INGEST_NO_PUSH_SOURCE);
    assert_false(res.wrote);
  }
  EXPECT_REFUSED(push("nope", DRIVER_FRAME(""), &res, &err), &err, LDR_INVALID,
                 "Unable to find push source 'nope'.");
  /* read_only: refused, nothing written. */
  struct ldr_config ro = st.cfg;
  ro.read_only = 1;
  EXPECT_REFUSED(push_cfg(&ro, "driver_push", DRIVER_FRAME(""), &res, &err), &err,
                 LDR_FAILED_PRECONDITION,
                 "push: this larder serves reads only (larder.read_only: true)");
  assert_false(res.wrote);
  EXPECT_REFUSED(write_cfg(&ro, "plain", 1, "{\"driver_id\":[1],\"x\":[1],\"event_timestamp\":[0]}",
                           &res, &err),
                 &err, LDR_FAILED_PRECONDITION, "write-to-online-store: this larder serves reads");
  EXPECT_NOTHING();
}

/* A view whose entity is not in the registry has no join keys to key its rows
 * by, and no read could find them: a push to its source, and a write to it or
 * to such a stored on-demand view, is refused before anything is written. */
static void views_without_their_entity_refused(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  static const char frame[] =
      "{\"ghost\":[1],\"driver_id\":[1],\"x\":[1],\"ratio\":[0.5],\"event_timestamp\":[0]}";
  EXPECT_REFUSED(push("ghost_push", frame, &res, &err), &err, LDR_FAILED_PRECONDITION,
                 "push source 'ghost_push' feeds feature view 'orphan', which cannot be written: "
                 "its entity 'ghost' is not in the registry");
  assert_false(res.wrote);
  EXPECT_REFUSED(write_cfg(&st.cfg, "orphan", 0, frame, &res, &err), &err, LDR_FAILED_PRECONDITION,
                 "feature_view_name: 'orphan' cannot be written: its entity 'ghost' is not in the "
                 "registry");
  assert_false(res.wrote);
  EXPECT_REFUSED(write_cfg(&st.cfg, "odfv_orphan", 0, frame, &res, &err), &err,
                 LDR_FAILED_PRECONDITION,
                 "feature_view_name: 'odfv_orphan' cannot be written: its entity 'ghost' is not "
                 "in the registry");
  assert_false(res.wrote);
  EXPECT_NOTHING();
}

/* Feast's dummy key {__dummy_id: ""} for an entity-less view. */
static void push_entityless(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  assert_int_equal(push("global_push",
                        "{\"total\":[5],\"event_timestamp\":[\"2024-01-01T00:00:00Z\"]}", &res,
                        &err),
                   LDR_OK);
  assert_int_equal(res.views_written, 1);
  EXPECT_ROWS("global_stats", "__dummy_id=''|total|INT64:5|1704067200|NULL\n");
  /* The stored key is exactly the one serving reads (ldr_entity_key_serialize of it). */
  Feast__Types__Value dummy = FEAST__TYPES__VALUE__INIT;
  dummy.val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
  dummy.string_val = "";
  Feast__Types__Value *vals[] = {&dummy};
  char *names[] = {"__dummy_id"};
  Feast__Types__EntityKey ek = FEAST__TYPES__ENTITY_KEY__INIT;
  ek.n_join_keys = ek.n_entity_values = 1;
  ek.join_keys = names;
  ek.entity_values = vals;
  struct ldr_key key;
  ldr_err_clear(&err);
  assert_int_equal(ldr_entity_key_serialize(&ek, st.backend->key_version, &arena, &key, &err),
                   LDR_OK);
  sqlite3 *d = db();
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_prepare_v2(d,
                                      "SELECT count(*) FROM " LDR_TEST_PROJECT
                                      "_global_stats WHERE entity_key = ?",
                                      -1, &q, NULL),
                   SQLITE_OK);
  sqlite3_bind_blob(q, 1, key.bytes, (int)key.len, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(q, 0), 1);
  sqlite3_finalize(q);
  sqlite3_close(d);
  /* Columns that look like keys change nothing. */
  assert_int_equal(push("global_push",
                        "{\"__dummy_id\":[\"x\"],\"total\":[6],\"event_timestamp\":[0]}", &res,
                        &err),
                   LDR_OK);
  EXPECT_ROWS("global_stats", "__dummy_id=''|total|INT64:6|0|NULL\n");
}

/* A column named twice: the last one counts (pandas reads the dict Python's json made). */
static void push_repeated_column(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  assert_int_equal(push("global_push",
                        "{\"total\":[1],\"event_timestamp\":[0],\"total\":[2],\"total\":[3]}", &res,
                        &err),
                   LDR_OK);
  EXPECT_ROWS("global_stats", "__dummy_id=''|total|INT64:3|0|NULL\n");
}

/* ---- write-to-online-store ---- */

static void write_views(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  assert_int_equal(write_cfg(&st.cfg, "plain", 1,
                             "{\"driver_id\":[7],\"x\":[70],\"event_timestamp\":[\"2024-01-01\"],"
                             "\"created\":[\"2024-01-02\"]}",
                             &res, &err),
                   LDR_OK);
  assert_int_equal(res.views_written, 1);
  assert_int_equal(res.rows_written, 1);
  EXPECT_ROWS("plain", "driver_id=7|x|INT64:70|1704067200|1704153600\n");
  /* One view only, even when a push source feeds others too. */
  assert_int_equal(write_cfg(&st.cfg, "driver_live", 1,
                             "{\"driver_id\":[8],\"speed\":[1.5],\"event_timestamp\":[0]}", &res,
                             &err),
                   LDR_OK);
  EXPECT_ROWS("driver_live", "driver_id=8|speed|DOUBLE:1.5|0|NULL\n");
  EXPECT_ROWS("driver_stats", "");
  /* Label views are not looked up; unknown views are not found. */
  static const char *const missing[] = {"driver_labels", "nope", ""};
  for (size_t i = 0; i < N_OF(missing); i++) {
    EXPECT_REFUSED(write_cfg(&st.cfg, missing[i], 0, "{\"driver_id\":[1]}", &res, &err), &err,
                   LDR_NOT_FOUND, "Can't recognize feast object with a name");
    assert_int_equal(res.fault, LDR_INGEST_NO_VIEW);
  }
  EXPECT_REFUSED(write_cfg(&st.cfg, "nope", 0, "{}", &res, &err), &err, LDR_NOT_FOUND,
                 "Can't recognize feast object with a name nope");
  /* Missing features are refused for a feature view. */
  EXPECT_REFUSED(
      write_cfg(&st.cfg, "plain", 0, "{\"driver_id\":[1],\"event_timestamp\":[0]}", &res, &err),
      &err, LDR_INVALID, "df: missing column 'x' for feature view 'plain'");
}

static int64_t wall_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec;
}

/* On-demand views: transform_on_write is refused (larder transforms nothing);
 * without it, the features given are stored, the rest empty, at the time of the write. */
static void write_on_demand(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  EXPECT_REFUSED(
      write_cfg(&st.cfg, "odfv_stored", 1, "{\"driver_id\":[5],\"ratio\":[0.5]}", &res, &err), &err,
      LDR_INVALID,
      "transform_on_write: larder runs no transformations; send the transformed "
      "columns of on-demand feature view 'odfv_stored' with transform_on_write: false");
  assert_int_equal(res.fault, LDR_INGEST_TRANSFORM);
  assert_false(res.wrote);
  EXPECT_REFUSED(
      write_cfg(&st.cfg, "odfv_computed", 0, "{\"driver_id\":[5],\"out\":[0.5]}", &res, &err), &err,
      LDR_FAILED_PRECONDITION,
      "feature_view_name: 'odfv_computed' is an on-demand feature view computed at "
      "request time");
  assert_int_equal(res.fault, LDR_INGEST_FAULT_NONE);
  EXPECT_NOTHING();

  int64_t before = wall_s();
  assert_int_equal(write_cfg(&st.cfg, "odfv_stored", 0,
                             "{\"driver_id\":[5,6],\"ratio\":[0.5,null],"
                             "\"event_timestamp\":[\"2000-01-01\",\"2000-01-01\"]}",
                             &res, &err),
                   LDR_OK);
  int64_t after = wall_s();
  assert_int_equal(res.rows_written, 2);
  /* Both times are now, whatever the frame says. */
  for (int64_t t = before; t <= after; t++) {
    char want[512];
    snprintf(want, sizeof want,
             "driver_id=5|note|empty|%1$lld|%1$lld\n"
             "driver_id=5|ratio|DOUBLE:0.5|%1$lld|%1$lld\n"
             "driver_id=6|note|empty|%1$lld|%1$lld\n"
             "driver_id=6|ratio|empty|%1$lld|%1$lld\n",
             (long long)t);
    if (!strcmp(rows("odfv_stored"), want)) break;
    if (t == after) fail_msg("odfv_stored holds\n%s", rows("odfv_stored"));
  }
  /* Every feature null, or absent: nothing is written, as for any view
   * (Feast: "Cannot write dataframe with empty feature columns"). */
  char *held = strdup(rows("odfv_stored"));
  assert_non_null(held);
  assert_int_equal(write_cfg(&st.cfg, "odfv_stored", 0,
                             "{\"driver_id\":[5,6],\"ratio\":[null,null]}", &res, &err),
                   LDR_OK);
  assert_int_equal(res.rows_written, 0);
  assert_int_equal(write_cfg(&st.cfg, "odfv_stored", 0, "{\"driver_id\":[5]}", &res, &err), LDR_OK);
  assert_int_equal(res.rows_written, 0);
  assert_string_equal(rows("odfv_stored"), held);
  free(held);
}

/* With versioning on, a view's rows go to the table of its current version. */
static void write_versioned(void **state) {
  (void)state;
  struct ldr_ingest_result res;
  struct ldr_err err;
  static const char frame_text[] = "{\"driver_id\":[1],\"v\":[2],\"event_timestamp\":[0]}";
  assert_int_equal(write_cfg(&st.cfg, "versioned", 0, frame_text, &res, &err), LDR_OK);
  EXPECT_ROWS("versioned", "driver_id=1|v|INT64:2|0|NULL\n");
  struct ldr_config on = st.cfg;
  on.registry_versioning = 1;
  EXPECT_REFUSED(write_cfg(&on, "versioned", 0, frame_text, &res, &err), &err, LDR_NOT_FOUND,
                 LDR_TEST_PROJECT "_versioned_v2");
  const char *keep[] = {LDR_TEST_PROJECT "_versioned_v2"};
  ldr_err_clear(&err);
  assert_int_equal(st.backend->ops->update(st.backend, keep, 1, NULL, 0, &err), LDR_OK);
  assert_int_equal(write_cfg(&on, "versioned", 0,
                             "{\"driver_id\":[1],\"v\":[3],\"event_timestamp\":[0]}", &res, &err),
                   LDR_OK);
  assert_string_equal(rows_of_table(LDR_TEST_PROJECT "_versioned_v2"),
                      "driver_id=1|v|INT64:3|0|NULL\n");
  EXPECT_ROWS("versioned", "driver_id=1|v|INT64:2|0|NULL\n");
  ldr_err_clear(&err);
  assert_int_equal(st.backend->ops->update(st.backend, NULL, 0, keep, 1, &err), LDR_OK);
}

static void check_to(void **state) {
  (void)state;
  static const struct {
    const char *to;
    int grpc;
    const char *words; /* NULL: OK */
  } cases[] = {
      {"online", 0, NULL},
      {"online", 1, NULL},
      {"", 1, NULL},
      {"", 0, "to= is not a supported push format. Please specify one of these"},
      {"offline", 0,
       "to=offline: larder has no offline store; push with to=online, and write the offline "
       "store with Feast"},
      {"online_and_offline", 1, "to=online_and_offline: larder has no offline store"},
      {"ONLINE", 0, "to=ONLINE is not a supported push format"},
      {"online ", 1, "is not a supported push format"},
  };
  for (size_t i = 0; i < N_OF(cases); i++) {
    struct ldr_err err;
    ldr_err_clear(&err);
    enum ldr_rc rc = ldr_ingest_check_to(cases[i].to, cases[i].grpc, &err);
    if (cases[i].words == NULL)
      assert_int_equal(rc, LDR_OK);
    else
      EXPECT_REFUSED(rc, &err, LDR_INVALID, cases[i].words);
  }
}

int main(void) {
  ldr_log_set_level(LDR_LOG_ERROR);
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
      cmocka_unit_test(iso8601_accepted),
      cmocka_unit_test(iso8601_refused),
      cmocka_unit_test_setup(push_writes_every_view, clear),
      cmocka_unit_test_setup(push_broadcasts_scalars_once, clear),
      cmocka_unit_test_setup(broadcast_bounded_by_what_a_call_stores, clear),
      cmocka_unit_test_setup(push_is_one_transaction, clear),
      cmocka_unit_test_setup(push_renames_and_timestamps, clear),
      cmocka_unit_test_setup(push_time_checks, clear),
      cmocka_unit_test_setup(push_all_null_features, clear),
      cmocka_unit_test_setup(push_refusals_write_nothing, clear),
      cmocka_unit_test_setup(push_sources_and_read_only, clear),
      cmocka_unit_test_setup(views_without_their_entity_refused, clear),
      cmocka_unit_test_setup(push_entityless, clear),
      cmocka_unit_test_setup(push_repeated_column, clear),
      cmocka_unit_test_setup(write_views, clear),
      cmocka_unit_test_setup(write_on_demand, clear),
      cmocka_unit_test_setup(write_versioned, clear),
      cmocka_unit_test(check_to),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  ldr_registry_release(st.registry, 0);
  ldr_test_store_close(&st);
  ldr_arena_destroy(&arena);
  return failed;
}
