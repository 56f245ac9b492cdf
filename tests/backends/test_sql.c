/*
 * backends/sql.c, what the SQL backends share: the statement cache (least
 * recently used, eviction, clear), the statement timeout's 25% steps, the
 * placeholder buckets, the messages, and ldr_sql_run / ldr_sql_open driven
 * by a scripted fake driver (reconnect once, deadlock retries, back-off).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backends/sql.h"

/* ---- statement cache ---- */

static int released[LDR_STMT_CACHE + 8];
static void release(void *stmt) { released[(int *)stmt - released]++; }
static void *stmt_of(int i) { return &released[i]; }

static void cache_finds_what_it_holds(void **state) {
  (void)state;
  struct ldr_stmt_cache c;
  memset(&c, 0, sizeof c);
  memset(released, 0, sizeof released);
  int nomem = 1;
  assert_null(ldr_stmt_find(&c, "SELECT 1"));
  assert_null(ldr_stmt_put(&c, "SELECT 1", stmt_of(0), &nomem));
  assert_int_equal(nomem, 0);
  assert_null(ldr_stmt_put(&c, "SELECT 2", stmt_of(1), &nomem));
  assert_ptr_equal(ldr_stmt_find(&c, "SELECT 1"), stmt_of(0));
  assert_ptr_equal(ldr_stmt_find(&c, "SELECT 2"), stmt_of(1));
  assert_null(ldr_stmt_find(&c, "SELECT 3"));
  assert_null(ldr_stmt_find(&c, "SELECT")); /* a prefix is another text */
  /* The key is copied: the caller's buffer may change. */
  char key[] = "SELECT 4";
  assert_null(ldr_stmt_put(&c, key, stmt_of(2), &nomem));
  key[7] = '9';
  assert_ptr_equal(ldr_stmt_find(&c, "SELECT 4"), stmt_of(2));
  assert_null(ldr_stmt_find(&c, "SELECT 9"));
  ldr_stmt_clear(&c, release);
  assert_int_equal(released[0] + released[1] + released[2], 3);
  assert_null(ldr_stmt_find(&c, "SELECT 1"));
}

/* When full, the entry used least recently goes, and its statement is handed back. */
static void cache_evicts_the_least_recently_used(void **state) {
  (void)state;
  struct ldr_stmt_cache c;
  memset(&c, 0, sizeof c);
  memset(released, 0, sizeof released);
  int nomem;
  char key[32];
  for (int i = 0; i < LDR_STMT_CACHE; i++) {
    snprintf(key, sizeof key, "q%d", i);
    assert_null(ldr_stmt_put(&c, key, stmt_of(i), &nomem));
  }
  /* Use every entry but q5 and q9, q9 before q5's neighbours: q5 is the oldest. */
  for (int i = 0; i < LDR_STMT_CACHE; i++) {
    if (i == 5) continue;
    snprintf(key, sizeof key, "q%d", i);
    assert_ptr_equal(ldr_stmt_find(&c, key), stmt_of(i));
  }
  static const struct {
    const char *key;
    int stmt, evicted; /* the statement put, and the one expected back */
  } steps[] = {{"new0", LDR_STMT_CACHE, 5},
               {"new1", LDR_STMT_CACHE + 1, 0},
               {"new2", LDR_STMT_CACHE + 2, 1}};
  for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
    void *out = ldr_stmt_put(&c, steps[s].key, stmt_of(steps[s].stmt), &nomem);
    if (out != stmt_of(steps[s].evicted))
      fail_msg("step %zu: evicted %d, want q%d", s, out ? (int)((int *)out - released) : -1,
               steps[s].evicted);
    snprintf(key, sizeof key, "q%d", steps[s].evicted);
    assert_null(ldr_stmt_find(&c, key));
    assert_ptr_equal(ldr_stmt_find(&c, steps[s].key), stmt_of(steps[s].stmt));
  }
  /* Finding an entry makes it recent: q2 was the next victim, q3 goes instead. */
  assert_ptr_equal(ldr_stmt_find(&c, "q2"), stmt_of(2));
  assert_ptr_equal(ldr_stmt_put(&c, "new3", stmt_of(LDR_STMT_CACHE + 3), &nomem), stmt_of(3));
  /* Evicted statements are the caller's: clear releases only what is held. */
  ldr_stmt_clear(&c, release);
  static const int gone[] = {5, 0, 1, 3};
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) assert_int_equal(released[gone[i]], 0);
  int total = 0;
  for (size_t i = 0; i < sizeof released / sizeof released[0]; i++) total += released[i];
  assert_int_equal(total, LDR_STMT_CACHE);
  /* Clear without a release function forgets; a cleared cache is empty and usable. */
  assert_null(ldr_stmt_put(&c, "again", stmt_of(0), &nomem));
  ldr_stmt_clear(&c, NULL);
  assert_null(ldr_stmt_find(&c, "again"));
  ldr_stmt_clear(&c, release);
  assert_int_equal(released[0], 0);
}

/* ---- deadlines ---- */

/* The steps, computed here: 1, then each 25% more (rounded down) plus one. */
static long step_at_most(long ms) {
  long s = 1;
  for (;;) {
    long next = (long)((double)s * 1.25) + 1;
    if (next > ms) return s;
    s = next;
  }
}

/* Reads naming features name them in SQL only for tables known to hold more
 * than twice as many per key; the width only grows, from reads by key. */
static void widths(void **state) {
  (void)state;
  struct ldr_stmt_cache w = {0};
  assert_false(ldr_width_names(&w, "t", 1)); /* nothing known: by key */
  ldr_width_learn(&w, "t", 0, 3);            /* no rows: nothing learned */
  ldr_width_learn(&w, "t", 5, 0);            /* no keys: nothing learned */
  assert_null(ldr_stmt_find(&w, "t"));
  ldr_width_learn(&w, "t", 13, 3); /* 13 rows of 3 keys: 5 per key, rounded up */
  assert_true(ldr_width_names(&w, "t", 2));
  assert_false(ldr_width_names(&w, "t", 3));
  assert_false(ldr_width_names(&w, "t", 0)); /* no features named: by key */
  assert_false(ldr_width_names(&w, "u", 1)); /* another table */
  ldr_width_learn(&w, "t", 4, 2);            /* fewer per key (keys missing): kept at 5 */
  assert_true(ldr_width_names(&w, "t", 2));
  ldr_width_learn(&w, "t", 70, 10); /* 7 per key */
  assert_true(ldr_width_names(&w, "t", 3));
  assert_false(ldr_width_names(&w, "t", 4));
  ldr_stmt_clear(&w, NULL);
}

static void timeout_steps(void **state) {
  (void)state;
  assert_int_equal(ldr_sql_timeout_ms(0), 0);
  assert_int_equal(ldr_sql_timeout_ms(ldr_now_ns() - 1), -1);
  assert_int_equal(ldr_sql_timeout_ms(ldr_now_ns() - 5000000000LL), -1);
  assert_int_equal(ldr_sql_timeout_ms(1), -1); /* long past */
  /* Milliseconds left -> the timeout set: the largest step not above them. */
  static const struct {
    long ms, want;
  } cases[] = {{1, 1},         {2, 2},          {3, 3},      {4, 4},       {5, 4},
               {6, 6},         {7, 6},          {10, 8},     {100, 93},    {116, 93},
               {117, 117},     {1000, 887},     {1108, 887}, {1109, 1109}, {30000, 25268},
               {60000, 49354}, {600000, 574584}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_int_equal(step_at_most(cases[i].ms), cases[i].want); /* the table itself */
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    /* Half a millisecond over, so the call sees `ms` whole milliseconds left. */
    int64_t before = ldr_now_ns();
    int64_t deadline = before + cases[i].ms * 1000000 + 500000;
    long got = ldr_sql_timeout_ms(deadline);
    long ms_after = (long)((deadline - ldr_now_ns()) / 1000000);
    if (ms_after == cases[i].ms) {
      if (got != cases[i].want)
        fail_msg("%ld ms left: timeout %ld, want %ld", cases[i].ms, got, cases[i].want);
    } else { /* a slow moment: the answer for what was left when it looked */
      assert_true(got >= step_at_most(ms_after) && got <= cases[i].want);
    }
  }
  /* Under a millisecond left: 1, never 0 (0 would mean no timeout at all). */
  assert_int_equal(ldr_sql_timeout_ms(ldr_now_ns() + 900000), 1);
  /* Never past the deadline, never more than 25% short of it (plus the step's rounding). */
  for (long ms = 1; ms < 20000; ms = ms * 3 / 2 + 1) {
    int64_t deadline = ldr_now_ns() + ms * 1000000 + 500000;
    long got = ldr_sql_timeout_ms(deadline);
    assert_true(got <= ms);
    assert_true((double)got * 1.25 + 1 > (double)(ms - 1));
  }
}

static void buckets(void **state) {
  (void)state;
  static const struct {
    size_t n;
    unsigned want;
  } cases[] = {{0, 1},     {1, 1},     {2, 2},       {7, 7},       {8, 8},     {9, 16},
               {16, 16},   {17, 32},   {32, 32},     {33, 64},     {100, 128}, {255, 256},
               {256, 256}, {257, 512}, {8192, 8192}, {8193, 16384}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (ldr_sql_bucket(cases[i].n) != cases[i].want)
      fail_msg("bucket(%zu) = %u, want %u", cases[i].n, ldr_sql_bucket(cases[i].n), cases[i].want);
}

static void messages(void **state) {
  (void)state;
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_sql_not_found(&err, "p_v"), LDR_NOT_FOUND);
  assert_string_equal(err.msg, "feature_view: table \"p_v\" does not exist (create it with Update "
                               "or larder apply)");
  ldr_err_clear(&err);
  assert_int_equal(ldr_sql_deadline(&err, "read"), LDR_DEADLINE);
  assert_string_equal(err.msg, "read: the database did not answer before the call's deadline");
}

/* ---- ldr_sql_run and ldr_sql_open with a scripted driver ---- */

static struct fake {
  int connected;
  enum ldr_rc connect_rc[8]; /* what each connect returns, in turn (then LDR_OK) */
  int connects, begins, ops;
  enum ldr_rc op_rc[8]; /* what each run of the operation returns (then LDR_OK) */
  int op_drops;         /* the failing operations also drop the connection */
  int conflicted;
  int fallback;             /* connects land on a server the connection does not prefer */
  int prefers;              /* tries of a preferred server */
  enum ldr_rc prefer_rc;    /* what they return */
  int64_t prefer_budget_ns; /* the time the last one was given */
} fk;

static int fake_connected(struct ldr_backend *b, struct ldr_sql_conn *c) {
  (void)b;
  (void)c;
  return fk.connected;
}

static enum ldr_rc fake_connect(struct ldr_backend *b, struct ldr_sql_conn *c, int64_t until_ns,
                                struct ldr_err *err) {
  (void)b;
  assert_true(until_ns > ldr_now_ns());
  enum ldr_rc rc = fk.connects < 8 ? fk.connect_rc[fk.connects] : LDR_OK;
  fk.connects++;
  if (rc != LDR_OK) return ldr_err_set(err, rc, "could not connect to server db.internal:5432");
  fk.connected = 1;
  c->host = 0;
  c->fallback_at_ns = fk.fallback ? ldr_now_ns() : 0;
  return LDR_OK;
}

static void fake_disconnect(struct ldr_backend *b, struct ldr_sql_conn *c) {
  (void)b;
  (void)c;
  fk.connected = 0;
}

/* A preferred server answers (fk.prefer_rc LDR_OK) or not; the connection stays either way. */
static enum ldr_rc fake_prefer(struct ldr_backend *b, struct ldr_sql_conn *c, int64_t until_ns,
                               struct ldr_err *err) {
  (void)b;
  fk.prefers++;
  fk.prefer_budget_ns = until_ns - ldr_now_ns();
  if (fk.prefer_rc != LDR_OK) return ldr_err_set(err, fk.prefer_rc, "no replica");
  c->host = 1;
  c->fallback_at_ns = 0;
  return LDR_OK;
}

static enum ldr_rc fake_begin(struct ldr_backend *b, struct ldr_sql_conn *c, struct ldr_err *err) {
  (void)b;
  (void)c;
  (void)err;
  fk.begins++;
  return LDR_OK;
}

static int fake_conflicted(struct ldr_backend *b, struct ldr_sql_conn *c) {
  (void)b;
  (void)c;
  return fk.conflicted;
}

static enum ldr_rc fake_op(struct ldr_backend *b, struct ldr_sql_conn *c, void *arg,
                           struct ldr_err *err) {
  (void)b;
  (void)c;
  (void)arg;
  enum ldr_rc rc = fk.ops < 8 ? fk.op_rc[fk.ops] : LDR_OK;
  fk.ops++;
  if (rc == LDR_OK) return LDR_OK;
  if (fk.op_drops) fk.connected = 0;
  return ldr_err_set(err, rc, "op failed %d", fk.ops);
}

static const struct ldr_sql_driver fake_driver = {
    "fake", fake_connected, fake_connect, fake_disconnect, fake_prefer, fake_begin, fake_conflicted,
};

static void run_cases(void **state) {
  (void)state;
  static const struct {
    const char *name;
    int connected, op_drops, conflicted;
    enum ldr_rc connect_rc[3], op_rc[6];
    enum ldr_rc want;
    int connects, ops;
  } cases[] = {
      {"open connection", 1, 0, 0, {0}, {0}, LDR_OK, 0, 1},
      {"closed: opened first", 0, 0, 0, {0}, {0}, LDR_OK, 1, 1},
      {"lost during the op: reconnect once", 1, 1, 0, {0}, {LDR_UNAVAILABLE}, LDR_OK, 1, 2},
      {"lost twice: no third try",
       1,
       1,
       0,
       {0},
       {LDR_UNAVAILABLE, LDR_UNAVAILABLE},
       LDR_UNAVAILABLE,
       1,
       2},
      {"closed, then lost: no second connect",
       0,
       1,
       0,
       {0},
       {LDR_UNAVAILABLE},
       LDR_UNAVAILABLE,
       1,
       1},
      {"unavailable, connection still open: no retry",
       1,
       0,
       0,
       {0},
       {LDR_UNAVAILABLE},
       LDR_UNAVAILABLE,
       0,
       1},
      {"a failure that is no outage is not retried",
       1,
       1,
       0,
       {0},
       {LDR_INVALID},
       LDR_INVALID,
       0,
       1},
      {"deadlock victim: run again", 1, 0, 1, {0}, {LDR_INTERNAL, LDR_INTERNAL}, LDR_OK, 0, 3},
      {"deadlock victim: four runs at most",
       1,
       0,
       1,
       {0},
       {LDR_INTERNAL, LDR_INTERNAL, LDR_INTERNAL, LDR_INTERNAL, LDR_INTERNAL},
       LDR_INTERNAL,
       0,
       4},
      {"connect refused", 0, 0, 0, {LDR_UNAVAILABLE}, {0}, LDR_UNAVAILABLE, 1, 0},
      {"connect out of memory", 0, 0, 0, {LDR_NOMEM}, {0}, LDR_NOMEM, 1, 0},
      {"connect past the deadline", 0, 0, 0, {LDR_DEADLINE}, {0}, LDR_DEADLINE, 1, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    memset(&fk, 0, sizeof fk);
    fk.connected = cases[i].connected;
    fk.op_drops = cases[i].op_drops;
    fk.conflicted = cases[i].conflicted;
    memcpy(fk.connect_rc, cases[i].connect_rc, sizeof cases[i].connect_rc);
    memcpy(fk.op_rc, cases[i].op_rc, sizeof cases[i].op_rc);
    struct ldr_backend b = {0};
    struct ldr_sql_conn conn;
    ldr_sql_conn_init(&conn, LDR_CONN_ALL);
    struct ldr_err err;
    ldr_err_clear(&err);
    enum ldr_rc rc = ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err);
    if (rc != cases[i].want || fk.connects != cases[i].connects || fk.ops != cases[i].ops)
      fail_msg("%s: %s after %d connects and %d runs, want %s, %d and %d (%s)", cases[i].name,
               ldr_rc_str(rc), fk.connects, fk.ops, ldr_rc_str(cases[i].want), cases[i].connects,
               cases[i].ops, err.msg);
    assert_int_equal(err.rc, rc);
    if (rc != LDR_OK) assert_true(err.msg[0] != '\0');
    if (rc == LDR_DEADLINE)
      assert_string_equal(err.msg, "connect: the database did not answer before the call's "
                                   "deadline");
    /* Every run of the op was on a call readied by begin_call. */
    assert_int_equal(fk.begins, fk.ops);
  }
}

/* A deadlock victim is not run again once the call's deadline passed. */
static void no_retry_past_the_deadline(void **state) {
  (void)state;
  memset(&fk, 0, sizeof fk);
  fk.connected = 1;
  fk.conflicted = 1;
  fk.op_rc[0] = fk.op_rc[1] = LDR_INTERNAL;
  struct ldr_backend b = {0};
  b.deadline_ns = ldr_now_ns() - 1;
  struct ldr_sql_conn conn;
  ldr_sql_conn_init(&conn, LDR_CONN_ALL);
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_INTERNAL);
  assert_int_equal(fk.ops, 1);
  /* Nor is an operation whose connection broke. */
  memset(&fk, 0, sizeof fk);
  fk.connected = 1;
  fk.op_drops = 1;
  fk.op_rc[0] = LDR_UNAVAILABLE;
  ldr_err_clear(&err);
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_UNAVAILABLE);
  assert_int_equal(fk.ops, 1);
  assert_int_equal(fk.connects, 0);
}

/* After a refused connect, calls fail at once until the back-off has passed;
 * it starts at 50 ms, doubles up to 1 s, and up to a quarter less (jitter). */
static void back_off(void **state) {
  (void)state;
  memset(&fk, 0, sizeof fk);
  for (int i = 0; i < 8; i++) fk.connect_rc[i] = LDR_UNAVAILABLE;
  struct ldr_backend b = {0};
  struct ldr_sql_conn conn;
  ldr_sql_conn_init(&conn, LDR_CONN_ALL);
  struct ldr_err err;
  static const int64_t want_ms[] = {50, 100, 200, 400, 800, 1000, 1000};
  for (size_t i = 0; i < sizeof want_ms / sizeof want_ms[0]; i++) {
    conn.retry_at_ns = 0; /* as if the back-off had passed */
    ldr_err_clear(&err);
    int64_t t0 = ldr_now_ns();
    assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_UNAVAILABLE);
    int64_t t1 = ldr_now_ns();
    assert_int_equal(fk.connects, (int)i + 1);
    assert_int_equal(conn.failures, i + 1);
    assert_true(conn.backoff_ns == want_ms[i] * 1000000);
    /* Measured inside [t0, t1]: at most the back-off, at least three quarters of it. */
    if (conn.retry_at_ns - t1 > conn.backoff_ns || conn.retry_at_ns - t0 < conn.backoff_ns * 3 / 4)
      fail_msg("failure %zu: retry in %lld ns, backoff %lld", i, (long long)(conn.retry_at_ns - t0),
               (long long)conn.backoff_ns);
    /* Within the back-off: no connect, a message that says when. */
    ldr_err_clear(&err);
    assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_UNAVAILABLE);
    assert_int_equal(fk.connects, (int)i + 1);
    assert_non_null(strstr(err.msg, "fake: not connected; the next attempt is in"));
    assert_int_equal(fk.ops, 0);
  }
  /* A connect that works clears the back-off. */
  fk.connect_rc[fk.connects] = LDR_OK;
  conn.retry_at_ns = 0;
  ldr_err_clear(&err);
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_OK);
  assert_int_equal(conn.failures, 0);
  assert_true(conn.backoff_ns == 0);
  /* A connect that ran out of the call's time is no refusal: no back-off. */
  memset(&fk, 0, sizeof fk);
  fk.connect_rc[0] = LDR_DEADLINE;
  ldr_sql_conn_init(&conn, LDR_CONN_ALL);
  ldr_err_clear(&err);
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_DEADLINE);
  assert_int_equal(conn.failures, 0);
  ldr_err_clear(&err);
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_OK);
  assert_int_equal(fk.connects, 2);
}

/* The first connection waits for larder.wait_for_backend_s while refused. */
static void open_waits_for_the_backend(void **state) {
  (void)state;
  static const struct {
    int wait_s;
    enum ldr_rc connect_rc[3];
    enum ldr_rc want;
    int connects;
  } cases[] = {
      {0, {LDR_OK}, LDR_OK, 1},
      {0, {LDR_UNAVAILABLE}, LDR_UNAVAILABLE, 1},
      {0, {LDR_DEADLINE}, LDR_UNAVAILABLE, 1}, /* no call: a connect timeout is an outage */
      {5, {LDR_INVALID}, LDR_INVALID, 1},      /* a wrong password is not waited out */
      {5, {LDR_UNAVAILABLE, LDR_DEADLINE}, LDR_OK, 3},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    memset(&fk, 0, sizeof fk);
    memcpy(fk.connect_rc, cases[i].connect_rc, sizeof cases[i].connect_rc);
    struct ldr_store_config cfg = {.wait_for_backend_s = cases[i].wait_s};
    struct ldr_backend b = {.cfg = &cfg};
    struct ldr_sql_conn conn, *conns[1] = {&conn};
    ldr_sql_conn_init(&conn, LDR_CONN_ALL);
    struct ldr_err err;
    ldr_err_clear(&err);
    int64_t t0 = ldr_now_ns();
    enum ldr_rc rc = ldr_sql_open(&b, &fake_driver, conns, 1, &err);
    int64_t took = ldr_now_ns() - t0;
    if (rc != cases[i].want || fk.connects != cases[i].connects)
      fail_msg("case %zu: %s after %d connects, want %s after %d", i, ldr_rc_str(rc), fk.connects,
               ldr_rc_str(cases[i].want), cases[i].connects);
    assert_int_equal(err.rc, rc);
    /* Attempts are 250 ms apart. */
    int64_t pauses = (int64_t)(cases[i].connects - 1) * 250000000;
    assert_true(took >= pauses && took < pauses + 2000000000LL);
  }
}

/* A connection that has been on a server it does not prefer (reads on the
 * primary while the replicas were away) tries a preferred one after
 * LDR_SQL_FALLBACK_NS, within LDR_SQL_PREFER_NS and the call's deadline, and
 * keeps its connection when none answers. */
static void fallback_is_left(void **state) {
  (void)state;
  memset(&fk, 0, sizeof fk);
  fk.fallback = 1;
  fk.prefer_rc = LDR_UNAVAILABLE;
  struct ldr_backend b = {0};
  struct ldr_sql_conn conn;
  ldr_sql_conn_init(&conn, LDR_CONN_READ);
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_OK);
  assert_int_equal(fk.connects, 1);
  assert_true(conn.fallback_at_ns != 0);
  /* Still young: no try. */
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_OK);
  assert_int_equal(fk.prefers, 0);
  /* Old, and no replica answers: the call goes on on the primary, and the
   * next try is LDR_SQL_FALLBACK_NS later. */
  int64_t t0 = ldr_now_ns();
  conn.fallback_at_ns = t0 - LDR_SQL_FALLBACK_NS - 1;
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_OK);
  assert_int_equal(fk.prefers, 1);
  assert_true(fk.prefer_budget_ns <= LDR_SQL_PREFER_NS && fk.prefer_budget_ns > 0);
  assert_true(conn.fallback_at_ns >= t0);
  assert_int_equal(fk.connects, 1);
  assert_int_equal(fk.ops, 3);
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_OK);
  assert_int_equal(fk.prefers, 1);
  /* A call with less time left gives the try no more than that. */
  b.deadline_ns = ldr_now_ns() + 20 * 1000000LL;
  conn.fallback_at_ns = t0 - LDR_SQL_FALLBACK_NS - 1;
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_OK);
  assert_true(fk.prefer_budget_ns <= 20 * 1000000LL);
  b.deadline_ns = 0;
  /* A replica answers: the connection is on it, and tries no more. */
  fk.prefer_rc = LDR_OK;
  conn.fallback_at_ns = t0 - LDR_SQL_FALLBACK_NS - 1;
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_OK);
  assert_int_equal(fk.prefers, 3);
  assert_int_equal(conn.fallback_at_ns, 0);
  assert_int_equal(conn.host, 1);
  assert_int_equal(ldr_sql_run(&b, &fake_driver, &conn, fake_op, NULL, &err), LDR_OK);
  assert_int_equal(fk.prefers, 3);
  assert_int_equal(fk.connects, 1);
}

/* Connections with their own scripted connects, for opening several at once. */
struct fake_conn {
  struct ldr_sql_conn sql;
  int up, connects;
  enum ldr_rc rc[4]; /* what each connect returns, in turn (then LDR_OK) */
};

static int pair_connected(struct ldr_backend *b, struct ldr_sql_conn *c) {
  (void)b;
  return ((struct fake_conn *)c)->up;
}

static enum ldr_rc pair_connect(struct ldr_backend *b, struct ldr_sql_conn *c, int64_t until_ns,
                                struct ldr_err *err) {
  (void)b;
  (void)until_ns;
  struct fake_conn *f = (struct fake_conn *)c;
  enum ldr_rc rc = f->connects < 4 ? f->rc[f->connects] : LDR_OK;
  f->connects++;
  if (rc != LDR_OK) return ldr_err_set(err, rc, "server %d refused", (int)c->role);
  f->up = 1;
  return LDR_OK;
}

static void pair_disconnect(struct ldr_backend *b, struct ldr_sql_conn *c) {
  (void)b;
  ((struct fake_conn *)c)->up = 0;
}

static const struct ldr_sql_driver pair_driver = {
    "fake", pair_connected, pair_connect, pair_disconnect, fake_prefer, fake_begin, fake_conflicted,
};

/* An instance with a read and a write connection starts once either opens:
 * reads start while the primary is away, writes while the replicas are. */
static void open_starts_with_either_connection(void **state) {
  (void)state;
  static const struct {
    const char *name;
    int wait_s;
    enum ldr_rc read_rc[3], write_rc[3];
    enum ldr_rc want;
    int read_up, write_up, read_connects, write_connects;
    const char *msg;
  } cases[] = {
      {"both open", 0, {0}, {0}, LDR_OK, 1, 1, 1, 1, NULL},
      {"reads only", 0, {0}, {LDR_UNAVAILABLE}, LDR_OK, 1, 0, 1, 1, NULL},
      {"writes only", 0, {LDR_UNAVAILABLE}, {0}, LDR_OK, 0, 1, 1, 1, NULL},
      {"neither",
       0,
       {LDR_UNAVAILABLE},
       {LDR_UNAVAILABLE},
       LDR_UNAVAILABLE,
       0,
       0,
       1,
       1,
       "fake (reads): server 1 refused"},
      {"a wrong setting stops it",
       5,
       {0},
       {LDR_INVALID},
       LDR_INVALID,
       1,
       0,
       1,
       1,
       "server 2 refused"},
      {"neither, then one",
       5,
       {LDR_UNAVAILABLE, LDR_UNAVAILABLE},
       {LDR_UNAVAILABLE, 0},
       LDR_OK,
       0,
       1,
       2,
       2,
       NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct fake_conn rd, wr;
    memset(&rd, 0, sizeof rd);
    memset(&wr, 0, sizeof wr);
    ldr_sql_conn_init(&rd.sql, LDR_CONN_READ);
    ldr_sql_conn_init(&wr.sql, LDR_CONN_WRITE);
    memcpy(rd.rc, cases[i].read_rc, sizeof cases[i].read_rc);
    memcpy(wr.rc, cases[i].write_rc, sizeof cases[i].write_rc);
    struct ldr_sql_conn *conns[2] = {&rd.sql, &wr.sql};
    struct ldr_store_config cfg = {.wait_for_backend_s = cases[i].wait_s};
    struct ldr_backend b = {.cfg = &cfg};
    struct ldr_err err;
    ldr_err_clear(&err);
    enum ldr_rc rc = ldr_sql_open(&b, &pair_driver, conns, 2, &err);
    if (rc != cases[i].want || rd.up != cases[i].read_up || wr.up != cases[i].write_up ||
        rd.connects != cases[i].read_connects || wr.connects != cases[i].write_connects)
      fail_msg("%s: %s, read %d (%d connects), write %d (%d connects)", cases[i].name,
               ldr_rc_str(rc), rd.up, rd.connects, wr.up, wr.connects);
    if (cases[i].msg) assert_string_equal(err.msg, cases[i].msg);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cache_finds_what_it_holds),
      cmocka_unit_test(cache_evicts_the_least_recently_used),
      cmocka_unit_test(widths),
      cmocka_unit_test(timeout_steps),
      cmocka_unit_test(buckets),
      cmocka_unit_test(messages),
      cmocka_unit_test(run_cases),
      cmocka_unit_test(no_retry_past_the_deadline),
      cmocka_unit_test(back_off),
      cmocka_unit_test(open_waits_for_the_backend),
      cmocka_unit_test(fallback_is_left),
      cmocka_unit_test(open_starts_with_either_connection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
