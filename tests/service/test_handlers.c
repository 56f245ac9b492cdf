/*
 * service/handlers.c: the OnlineStore handlers' checks, in the order DESIGN
 * §9 gives them, each with the message it must start with, run as the server
 * runs them on a real SQLite store: limits (max_batch_rows, max_join_keys,
 * the reply's max_message_bytes), names and the table-name length, keys,
 * timestamps at their bounds, empty feature names, the index-name clash of
 * Update, read_only; then how ldr_read_jobs groups reads into statements.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "larder/v1/online_store.pb-c.h"
#include "service/service_int.h"
#include "tests/support/store.h"

#define TS_MIN (-62135596800LL)
#define TS_MAX 253402300799LL

/* Three stores: small limits; read-only; a small max_message_bytes. */
static struct ldr_test_store limits, ro, small;
static struct ldr_arena arena;

/* ---- building requests ---- */

struct key_spec {
  int join_keys; /* 0: an empty key; -1: no key at all */
  int dup;       /* the second join key repeats the first */
  int64_t id;
};

struct write_spec {
  const char *view; /* NULL: LDR_TEST_VIEW */
  int rows;
  struct key_spec key;
  int no_event_ts;
  int64_t seconds;
  int32_t nanos;
  int created; /* set created_ts */
  int32_t created_nanos;
  const char *feature; /* NULL: "f" */
  size_t value_len;    /* bytes of a bytes_val; 0: an int64 */
};

static const char *const join_names[] = {"driver_id", "customer", "store", "region"};

/* An entity key in the arena (ids differ per row through `id`). */
static Feast__Types__EntityKey *make_key(const struct key_spec *k, int64_t id) {
  if (k->join_keys < 0) return NULL;
  Feast__Types__EntityKey *ek = ldr_arena_calloc(&arena, 1, sizeof *ek);
  feast__types__entity_key__init(ek);
  size_t n = (size_t)k->join_keys;
  ek->n_join_keys = ek->n_entity_values = n;
  ek->join_keys = ldr_arena_calloc(&arena, n + 1, sizeof(char *));
  ek->entity_values = ldr_arena_calloc(&arena, n + 1, sizeof(Feast__Types__Value *));
  for (size_t i = 0; i < n; i++) {
    ek->join_keys[i] = (char *)join_names[k->dup && i == 1 ? 0 : i];
    Feast__Types__Value *v = ldr_arena_calloc(&arena, 1, sizeof *v);
    feast__types__value__init(v);
    v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    v->int64_val = id + (int64_t)i;
    ek->entity_values[i] = v;
  }
  return ek;
}

static uint8_t *packed(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *b = ldr_arena_alloc(&arena, *len + 1);
  protobuf_c_message_pack(m, b);
  return b;
}

static uint8_t *write_bytes(const struct write_spec *s, size_t *len) {
  Larder__V1__OnlineWriteBatchRequest req = LARDER__V1__ONLINE_WRITE_BATCH_REQUEST__INIT;
  size_t n = (size_t)s->rows;
  Larder__V1__WriteRow **rows = ldr_arena_calloc(&arena, n + 1, sizeof *rows);
  for (size_t i = 0; i < n; i++) {
    Larder__V1__WriteRow *r = ldr_arena_calloc(&arena, 1, sizeof *r);
    larder__v1__write_row__init(r);
    r->entity_key = make_key(&s->key, s->key.id + 100 * (int64_t)i);
    /* Only the last row carries the timestamp faults: earlier rows are fine. */
    int last = i + 1 == n;
    if (!(s->no_event_ts && last)) {
      Google__Protobuf__Timestamp *ts = ldr_arena_calloc(&arena, 1, sizeof *ts);
      google__protobuf__timestamp__init(ts);
      ts->seconds = last && s->seconds ? s->seconds : 1700000000;
      ts->nanos = last ? s->nanos : 0;
      r->event_ts = ts;
    }
    if (s->created && last) {
      Google__Protobuf__Timestamp *ts = ldr_arena_calloc(&arena, 1, sizeof *ts);
      google__protobuf__timestamp__init(ts);
      ts->seconds = 1700000000;
      ts->nanos = s->created_nanos;
      r->created_ts = ts;
    }
    Larder__V1__WriteRow__FeaturesEntry *e = ldr_arena_calloc(&arena, 1, sizeof *e);
    larder__v1__write_row__features_entry__init(e);
    e->key = (char *)(s->feature ? s->feature : "f");
    Feast__Types__Value *v = ldr_arena_calloc(&arena, 1, sizeof *v);
    feast__types__value__init(v);
    if (s->value_len) {
      v->val_case = FEAST__TYPES__VALUE__VAL_BYTES_VAL;
      v->bytes_val.len = s->value_len;
      v->bytes_val.data = ldr_arena_calloc(&arena, s->value_len, 1);
    } else {
      v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
      v->int64_val = 7;
    }
    e->value = v;
    r->n_features = 1;
    r->features = ldr_arena_calloc(&arena, 1, sizeof *r->features);
    r->features[0] = e;
    rows[i] = r;
  }
  req.feature_view = (char *)(s->view ? s->view : LDR_TEST_VIEW);
  req.n_rows = n;
  req.rows = rows;
  return packed(&req.base, len);
}

static uint8_t *read_bytes(const char *view, int keys, struct key_spec k, size_t *len) {
  Larder__V1__OnlineReadRequest req = LARDER__V1__ONLINE_READ_REQUEST__INIT;
  req.feature_view = (char *)(view ? view : LDR_TEST_VIEW);
  req.n_entity_keys = (size_t)keys;
  req.entity_keys = ldr_arena_calloc(&arena, (size_t)keys + 1, sizeof *req.entity_keys);
  for (int i = 0; i < keys; i++) req.entity_keys[i] = make_key(&k, k.id + 100 * i);
  return packed(&req.base, len);
}

/* Lists of up to 4 names; NULL ends a list early. */
static uint8_t *update_bytes(const char *const keep[4], const char *const drop[4], size_t *len) {
  Larder__V1__UpdateRequest req = LARDER__V1__UPDATE_REQUEST__INIT;
  req.tables_to_keep = ldr_arena_calloc(&arena, 5, sizeof(char *));
  req.tables_to_delete = ldr_arena_calloc(&arena, 5, sizeof(char *));
  for (size_t i = 0; i < 4 && keep[i]; i++)
    req.tables_to_keep[req.n_tables_to_keep++] = (char *)keep[i];
  for (size_t i = 0; i < 4 && drop[i]; i++)
    req.tables_to_delete[req.n_tables_to_delete++] = (char *)drop[i];
  return packed(&req.base, len);
}

static uint8_t *teardown_bytes(const char *const tables[4], size_t *len) {
  Larder__V1__TeardownRequest req = LARDER__V1__TEARDOWN_REQUEST__INIT;
  req.tables = ldr_arena_calloc(&arena, 5, sizeof(char *));
  for (size_t i = 0; i < 4 && tables[i]; i++) req.tables[req.n_tables++] = (char *)tables[i];
  return packed(&req.base, len);
}

/* ---- running them ---- */

static const struct ldr_method *method(const char *name) {
  for (size_t i = 0; i < ldr_n_methods; i++)
    if (!strcmp(ldr_methods[i].name, name)) return &ldr_methods[i];
  fail_msg("no method %s", name);
  return NULL;
}

/* Runs `name` on `store` with the request bytes; the reply (on OK) in *reply. */
static enum ldr_rc call(struct ldr_test_store *s, const char *name, const uint8_t *req, size_t len,
                        struct ldr_err *err, grpc_slice *reply) {
  struct ldr_handler_ctx c = {
      .cfg = &s->cfg, .backend = s->backend, .arena = &arena, .req = req, .req_len = len};
  ldr_err_clear(&c.err);
  const struct ldr_method *m = method(name);
  enum ldr_rc rc;
  if (m->batched) {
    struct ldr_read_job job, *jobs[1] = {&job};
    rc = ldr_read_prepare(&c, &job);
    if (rc == LDR_OK) rc = ldr_read_jobs(&s->cfg, s->backend, jobs, 1, &arena, NULL, &c.err);
    if (rc == LDR_OK) rc = ldr_read_reply(&c, &job);
  } else {
    rc = m->fn(&c);
  }
  *err = c.err;
  if (rc == LDR_OK)
    *reply = c.reply;
  else
    *reply = grpc_empty_slice();
  return rc;
}

static void expect(struct ldr_test_store *s, const char *what, const char *name, const uint8_t *req,
                   size_t len, enum ldr_rc want, const char *msg) {
  struct ldr_err err;
  grpc_slice reply;
  enum ldr_rc rc = call(s, name, req, len, &err, &reply);
  if (rc != want || strncmp(err.msg, msg, strlen(msg)))
    fail_msg("%s: %s '%s', want %s '%s...'", what, ldr_rc_str(rc), err.msg, ldr_rc_str(want), msg);
  if (rc == LDR_OK) grpc_slice_unref(reply);
  ldr_arena_reset(&arena);
}

/* A 49-character view makes a 60-byte table with "my_project_"; 50 is one too many. */
static const char view49[] = "v234567890123456789012345678901234567890123456789";
static const char view50[] = "v2345678901234567890123456789012345678901234567890";

static void write_checks(void **state) {
  (void)state;
  static const struct {
    const char *what;
    int store; /* 0 limits (3 rows, 2 join keys), 1 read-only */
    struct write_spec spec;
    enum ldr_rc rc;
    const char *msg;
  } cases[] = {
      {"two rows", 0, {.rows = 2, .key = {1, 0, 1}}, LDR_OK, ""},
      {"no rows", 0, {.rows = 0}, LDR_OK, ""},
      {"no rows, missing view",
       0,
       {.view = "nope", .rows = 0},
       LDR_NOT_FOUND,
       "feature_view: table \"my_project_nope\" does not exist"},
      {"max_batch_rows rows", 0, {.rows = 3, .key = {1, 0, 1}}, LDR_OK, ""},
      {"one row too many",
       0,
       {.rows = 4, .key = {1, 0, 1}},
       LDR_EXHAUSTED,
       "rows: 4 rows exceed larder.max_batch_rows (3)"},
      {"empty view",
       0,
       {.view = "", .rows = 1, .key = {1, 0, 1}},
       LDR_INVALID,
       "feature_view: empty feature view name"},
      {"bad view",
       0,
       {.view = "a-b", .rows = 1, .key = {1, 0, 1}},
       LDR_INVALID,
       "feature_view: feature view names are letters, digits and '_' only"},
      {"longest view",
       0,
       {.view = view49, .rows = 1, .key = {1, 0, 1}},
       LDR_NOT_FOUND,
       "feature_view: table"},
      {"view one too long",
       0,
       {.view = view50, .rows = 1, .key = {1, 0, 1}},
       LDR_INVALID,
       "feature_view: table name my_project_v2345"},
      {"max_join_keys join keys", 0, {.rows = 1, .key = {2, 0, 1}}, LDR_OK, ""},
      {"one join key too many",
       0,
       {.rows = 2, .key = {3, 0, 1}},
       LDR_INVALID,
       "rows[0].entity_key.join_keys: 3 join keys, more than larder.max_join_keys (2)"},
      {"no join keys",
       0,
       {.rows = 1, .key = {0, 0, 1}},
       LDR_INVALID,
       "rows[0].entity_key.join_keys: an entity key needs at least one join key"},
      {"no entity key",
       0,
       {.rows = 1, .key = {-1, 0, 1}},
       LDR_INVALID,
       "rows[0].entity_key: required"},
      {"repeated join key",
       0,
       {.rows = 1, .key = {2, 1, 1}},
       LDR_INVALID,
       "rows[0].entity_key.join_keys[1]: join key \"driver_id\" appears twice"},
      {"no event_ts",
       0,
       {.rows = 2, .key = {1, 0, 1}, .no_event_ts = 1},
       LDR_INVALID,
       "rows[1].event_ts: required"},
      {"nanos 999999999", 0, {.rows = 1, .key = {1, 0, 1}, .nanos = 999999999}, LDR_OK, ""},
      {"nanos 10^9",
       0,
       {.rows = 1, .key = {1, 0, 1}, .nanos = 1000000000},
       LDR_INVALID,
       "rows[0].event_ts.nanos: 1000000000 is outside [0, 999999999]"},
      {"nanos -1",
       0,
       {.rows = 2, .key = {1, 0, 1}, .nanos = -1},
       LDR_INVALID,
       "rows[1].event_ts.nanos: -1 is outside"},
      {"year 9999", 0, {.rows = 1, .key = {1, 0, 1}, .seconds = TS_MAX}, LDR_OK, ""},
      {"year 10000",
       0,
       {.rows = 1, .key = {1, 0, 1}, .seconds = TS_MAX + 1},
       LDR_INVALID,
       "rows[0].event_ts.seconds: 253402300800 is outside the years 0001 to 9999"},
      {"year 1", 0, {.rows = 1, .key = {1, 0, 1}, .seconds = TS_MIN}, LDR_OK, ""},
      {"year 0",
       0,
       {.rows = 1, .key = {1, 0, 1}, .seconds = TS_MIN - 1},
       LDR_INVALID,
       "rows[0].event_ts.seconds: -62135596801 is outside"},
      {"created_ts nanos",
       0,
       {.rows = 1, .key = {1, 0, 1}, .created = 1, .created_nanos = -5},
       LDR_INVALID,
       "rows[0].created_ts.nanos: -5 is outside"},
      {"created_ts fine", 0, {.rows = 1, .key = {1, 0, 1}, .created = 1}, LDR_OK, ""},
      {"empty feature name",
       0,
       {.rows = 1, .key = {1, 0, 1}, .feature = ""},
       LDR_INVALID,
       "rows[0].features[0]: empty feature name"},
      /* Limits and arguments are checked before read_only. */
      {"read-only",
       1,
       {.rows = 1, .key = {1, 0, 1}},
       LDR_FAILED_PRECONDITION,
       "OnlineWriteBatch: this larder serves reads only (larder.read_only: true)"},
      {"read-only, bad timestamp",
       1,
       {.rows = 1, .key = {1, 0, 1}, .nanos = -1},
       LDR_INVALID,
       "rows[0].event_ts.nanos"},
      {"read-only, bad view",
       1,
       {.view = "x y", .rows = 1, .key = {1, 0, 1}},
       LDR_INVALID,
       "feature_view:"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len;
    uint8_t *req = write_bytes(&cases[i].spec, &len);
    struct ldr_err err;
    grpc_slice reply;
    enum ldr_rc rc =
        call(cases[i].store ? &ro : &limits, "OnlineWriteBatch", req, len, &err, &reply);
    if (rc != cases[i].rc || strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)))
      fail_msg("%s: %s '%s', want %s '%s...'", cases[i].what, ldr_rc_str(rc), err.msg,
               ldr_rc_str(cases[i].rc), cases[i].msg);
    if (rc == LDR_OK) {
      /* rows_written is the number of rows in the request. */
      Larder__V1__OnlineWriteBatchResponse *r = larder__v1__online_write_batch_response__unpack(
          NULL, GRPC_SLICE_LENGTH(reply), GRPC_SLICE_START_PTR(reply));
      assert_non_null(r);
      assert_int_equal(r->rows_written, cases[i].spec.rows);
      larder__v1__online_write_batch_response__free_unpacked(r, NULL);
      grpc_slice_unref(reply);
    }
    ldr_arena_reset(&arena);
  }
}

static void read_checks(void **state) {
  (void)state;
  size_t len;
  uint8_t *req;
  /* What the writes above stored (drivers 1, 101 and 201), read back from 101:
   * 301 was never written. 3 keys is the limit. */
  req = read_bytes(NULL, 3, (struct key_spec){1, 0, 101}, &len);
  struct ldr_err err;
  grpc_slice reply;
  assert_int_equal(call(&limits, "OnlineRead", req, len, &err, &reply), LDR_OK);
  Larder__V1__OnlineReadResponse *r = larder__v1__online_read_response__unpack(
      NULL, GRPC_SLICE_LENGTH(reply), GRPC_SLICE_START_PTR(reply));
  assert_non_null(r);
  assert_int_equal(r->n_results, 3);
  assert_true(r->results[0]->found);
  assert_true(r->results[1]->found);
  assert_false(r->results[2]->found);
  larder__v1__online_read_response__free_unpacked(r, NULL);
  grpc_slice_unref(reply);
  ldr_arena_reset(&arena);

  req = read_bytes(NULL, 4, (struct key_spec){1, 0, 1}, &len);
  expect(&limits, "4 keys", "OnlineRead", req, len, LDR_EXHAUSTED,
         "entity_keys: 4 keys exceed larder.max_batch_rows (3)");
  req = read_bytes(NULL, 2, (struct key_spec){3, 0, 1}, &len);
  expect(&limits, "3 join keys", "OnlineRead", req, len, LDR_INVALID,
         "entity_keys[0].join_keys: 3 join keys, more than larder.max_join_keys (2)");
  req = read_bytes(NULL, 2, (struct key_spec){0, 0, 1}, &len);
  expect(&limits, "empty key", "OnlineRead", req, len, LDR_INVALID,
         "entity_keys[0].join_keys: an entity key needs at least one join key");
  req = read_bytes("nope", 1, (struct key_spec){1, 0, 1}, &len);
  expect(&limits, "missing view", "OnlineRead", req, len, LDR_NOT_FOUND,
         "feature_view: table \"my_project_nope\" does not exist");
  {
    /* Too many features, with a bad view name and a name that is not UTF-8:
     * the size is what is reported. */
    Larder__V1__OnlineReadRequest many = LARDER__V1__ONLINE_READ_REQUEST__INIT;
    many.feature_view = "a-b";
    many.n_requested_features = LDR_READ_FEATURES_MAX + 1;
    many.requested_features =
        ldr_arena_calloc(&arena, many.n_requested_features, sizeof *many.requested_features);
    for (size_t i = 0; i < many.n_requested_features; i++) many.requested_features[i] = (char *)"f";
    many.requested_features[7] = (char *)"\xff";
    req = packed(&many.base, &len);
    expect(&limits, "too many features and a bad view", "OnlineRead", req, len, LDR_EXHAUSTED,
           "requested_features: more than 8192 features");
  }
  req = read_bytes("nope", 0, (struct key_spec){1, 0, 1}, &len);
  expect(&limits, "missing view, no keys", "OnlineRead", req, len, LDR_NOT_FOUND,
         "feature_view: table");
  req = read_bytes(NULL, 0, (struct key_spec){1, 0, 1}, &len);
  expect(&limits, "no keys", "OnlineRead", req, len, LDR_OK, "");
  req = read_bytes(NULL, 1, (struct key_spec){1, 0, 1}, &len);
  expect(&ro, "read-only reads", "OnlineRead", req, len, LDR_OK, "");
}

/* The reply's size against max_message_bytes (1024): a key not found takes two
 * bytes of reply and nothing of the store's budget, so 512 of them fit and 513 do not. */
static void reply_size(void **state) {
  (void)state;
  static const struct {
    int keys;
    enum ldr_rc rc;
    const char *msg;
  } cases[] = {
      {512, LDR_OK, ""},
      {513, LDR_EXHAUSTED,
       "entity_keys: the reply would be 1026 bytes, more than "
       "larder.max_message_bytes (1024)"},
      {900, LDR_EXHAUSTED, "entity_keys: the reply would be 1800 bytes"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len;
    uint8_t *req = read_bytes(NULL, cases[i].keys, (struct key_spec){1, 0, 500000}, &len);
    expect(&small, "reply size", "OnlineRead", req, len, cases[i].rc, cases[i].msg);
  }
}

static void update_and_teardown_checks(void **state) {
  (void)state;
  static const struct {
    const char *what;
    int store;
    const char *keep[4], *drop[4];
    enum ldr_rc rc;
    const char *msg;
  } updates[] = {
      {"two views", 0, {"u_a", "u_b"}, {NULL}, LDR_OK, ""},
      {"keep and drop", 0, {"u_a"}, {"u_b"}, LDR_OK, ""},
      {"an index name",
       0,
       {"u_a", "u_a_ek"},
       {NULL},
       LDR_INVALID,
       "tables_to_keep[1]: table my_project_u_a_ek would take the name of the index of "
       "tables_to_keep[0] (my_project_u_a)"},
      {"an index name first",
       0,
       {"u_c_ek", "u_x", "u_c"},
       {NULL},
       LDR_INVALID,
       "tables_to_keep[0]: table my_project_u_c_ek would take the name of the index of "
       "tables_to_keep[2]"},
      {"a prefix is no clash", 0, {"u_d", "u_d_e", "u_dek"}, {NULL}, LDR_OK, ""},
      {"bad name to keep", 0, {"u_a", "u a"}, {NULL}, LDR_INVALID, "tables_to_keep[1]:"},
      {"bad name to drop",
       0,
       {"u_a"},
       {"u_b", ""},
       LDR_INVALID,
       "tables_to_delete[1]: empty feature view name"},
      {"more than max_batch_rows",
       0,
       {"u_a", "u_b"},
       {"u_c", "u_d"},
       LDR_EXHAUSTED,
       "tables_to_keep, tables_to_delete: 2 tables to keep and 2 to delete exceed "
       "larder.max_batch_rows (3)"},
      {"more to keep than max_batch_rows",
       0,
       {"u_a", "u_b", "u_c", "u_d"},
       {NULL},
       LDR_EXHAUSTED,
       "tables_to_keep: 4 tables to keep and 0 to delete"},
      {"too many tables comes before a name that is not UTF-8",
       0,
       {"u_a", "u_b", "u_c", "u_\xff"},
       {NULL},
       LDR_EXHAUSTED,
       "tables_to_keep: 4 tables to keep and 0 to delete"},
      {"more to delete than max_batch_rows",
       0,
       {NULL},
       {"u_a", "u_b", "u_c", "u_d"},
       LDR_EXHAUSTED,
       "tables_to_delete: 0 tables to keep and 4 to delete"},
      {"read-only",
       1,
       {"u_a"},
       {NULL},
       LDR_FAILED_PRECONDITION,
       "Update: this larder serves reads only"},
      {"read-only, clash first", 1, {"u_a", "u_a_ek"}, {NULL}, LDR_INVALID, "tables_to_keep[1]:"},
  };
  for (size_t i = 0; i < sizeof updates / sizeof updates[0]; i++) {
    size_t len;
    uint8_t *req = update_bytes(updates[i].keep, updates[i].drop, &len);
    expect(updates[i].store ? &ro : &limits, updates[i].what, "Update", req, len, updates[i].rc,
           updates[i].msg);
  }
  static const struct {
    const char *what;
    int store;
    const char *tables[4];
    enum ldr_rc rc;
    const char *msg;
  } teardowns[] = {
      {"one missing, one there", 0, {"u_never", "u_d_e"}, LDR_OK, ""},
      {"bad name", 0, {"u_a", "-"}, LDR_INVALID, "tables[1]: feature view names are"},
      {"more than max_batch_rows",
       0,
       {"a", "b", "c", "d"},
       LDR_EXHAUSTED,
       "tables: 4 tables exceed larder.max_batch_rows (3)"},
      {"read-only", 1, {"u_a"}, LDR_FAILED_PRECONDITION, "Teardown: this larder serves reads only"},
  };
  for (size_t i = 0; i < sizeof teardowns / sizeof teardowns[0]; i++) {
    size_t len;
    uint8_t *req = teardown_bytes(teardowns[i].tables, &len);
    expect(teardowns[i].store ? &ro : &limits, teardowns[i].what, "Teardown", req, len,
           teardowns[i].rc, teardowns[i].msg);
  }
}

/* ---- ldr_read_jobs: which jobs share a statement ---- */

static struct ldr_backend_ops counting_ops;
static size_t reads_seen, keys_seen[8];

static enum ldr_rc counting_read(struct ldr_backend *b, struct ldr_read *reads, size_t n,
                                 struct ldr_arena *a, struct ldr_err *err) {
  (void)b;
  (void)a;
  (void)err;
  reads_seen = n;
  for (size_t i = 0; i < n; i++) {
    if (i < 8) keys_seen[i] = reads[i].n_keys;
    /* Key k of a read answers found when its first byte is odd. */
    for (size_t k = 0; k < reads[i].n_keys; k++) {
      memset(&reads[i].out[k], 0, sizeof reads[i].out[k]);
      reads[i].out[k].found = reads[i].keys[k].bytes[0] & 1;
    }
  }
  return LDR_OK;
}

static void jobs_share_statements(void **state) {
  (void)state;
  static const uint8_t odd = 1, even = 2;
  static const struct ldr_key k_odd = {&odd, 1}, k_even = {&even, 1};
  struct ldr_key many[300];
  for (size_t i = 0; i < 300; i++) many[i] = i % 2 ? k_odd : k_even;
  const char *const fa[] = {"a", "b"}, *const fb[] = {"b", "a"}, *const fc[] = {"a"};
  struct ldr_read_job jobs[6] = {
      {"p_t1", &k_odd, 1, fa, 2, NULL},  {"p_t1", &k_even, 1, fa, 2, NULL},
      {"p_t1", &k_odd, 1, fb, 2, NULL}, /* other feature order: its own statement */
      {"p_t2", &k_even, 1, fa, 2, NULL}, {"p_t2", many, 200, fc, 1, NULL},
      {"p_t2", many, 100, fc, 1, NULL}, /* 200 + 100 keys pass LDR_BATCH_KEYS (256) */
  };
  assert_true(ldr_read_job_joins(&jobs[0], &jobs[1]));
  assert_false(ldr_read_job_joins(&jobs[0], &jobs[2]));
  assert_false(ldr_read_job_joins(&jobs[0], &jobs[3]));
  assert_false(ldr_read_job_joins(&jobs[3], &jobs[4]));
  assert_true(ldr_read_job_joins(&jobs[4], &jobs[5]));
  struct ldr_read_job *ptrs[6];
  for (size_t i = 0; i < 6; i++) ptrs[i] = &jobs[i];
  struct ldr_backend b = *limits.backend;
  counting_ops = *b.ops;
  counting_ops.read = counting_read;
  b.ops = &counting_ops;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_read_jobs(&limits.cfg, &b, ptrs, 6, &arena, NULL, &err), LDR_OK);
  static const size_t want_keys[] = {2, 1, 1, 200, 100};
  assert_int_equal(reads_seen, 5);
  for (size_t i = 0; i < 5; i++) assert_int_equal(keys_seen[i], want_keys[i]);
  /* Each job's rows are its own keys' results, in order. */
  static const int want_found[] = {1, 0, 1, 0};
  for (size_t i = 0; i < 4; i++) assert_int_equal(jobs[i].rows[0].found, want_found[i]);
  for (size_t k = 0; k < 200; k++) assert_int_equal(jobs[4].rows[k].found, (int)(k % 2));
  for (size_t k = 0; k < 100; k++) assert_int_equal(jobs[5].rows[k].found, (int)(k % 2));
  /* The result cap is lifted again after the read. */
  assert_int_equal(b.result_cap, 0);
  ldr_arena_reset(&arena);
}

int main(void) {
  static const char *const views[] = {LDR_TEST_VIEW, NULL};
  ldr_log_set_level(LDR_LOG_ERROR);
  ldr_test_store_open(&limits, "  max_batch_rows: 3\n  max_join_keys: 2\n", 0, views);
  /* read_only: true would open the SQLite file read-only, and it does not exist
   * yet: the store is made writable and the handlers told it is read-only. */
  ldr_test_store_open(&ro, NULL, 0, views);
  ro.cfg.read_only = 1;
  ldr_test_store_open(&small, "  max_message_bytes: 1024\n", 0, views);
  ldr_arena_init(&arena, 65536, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(write_checks),
      cmocka_unit_test(read_checks),
      cmocka_unit_test(reply_size),
      cmocka_unit_test(update_and_teardown_checks),
      cmocka_unit_test(jobs_share_statements),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  ldr_arena_destroy(&arena);
  ldr_test_store_close(&small);
  ldr_test_store_close(&ro);
  ldr_test_store_close(&limits);
  return failed;
}
