/*
 * Feast's PostgreSQL online store (postgres.py) on libpq: the same schema,
 * tables and upsert. A read is one prepared statement with the keys as one
 * binary bytea[] parameter; a write is one prepared INSERT ... SELECT FROM
 * unnest(arrays) ... ON CONFLICT statement, so a whole batch is one round trip
 * and one implicit transaction. Parameters and results travel in binary.
 *
 * Every command is sent asynchronously and waited for with poll(), so a call
 * never blocks past its deadline even when the server stalls; the deadline
 * also becomes the session's statement_timeout, so the server stops the work.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend_int.h"
#include "backends/postgres.h"
#include "common/log.h"

#define STMT_CACHE 64
#define CONNECT_TIMEOUT_NS (10 * 1000000000LL)
/* How long past the deadline to wait for the server's own timeout to answer
 * before giving up on the connection. */
#define DEADLINE_GRACE_NS (50 * 1000000LL)
/* Seconds between 2000-01-01 (PostgreSQL's epoch) and 1970-01-01. */
#define PG_EPOCH_OFFSET 946684800LL

/* OIDs of the types the statements bind (pg_type.h). */
enum { OID_BYTEA = 17, OID_TEXT = 25, OID_TIMESTAMPTZ = 1184 };
enum { OID_BYTEA_ARRAY = 1001, OID_TEXT_ARRAY = 1009, OID_TIMESTAMPTZ_ARRAY = 1185 };

enum stmt_kind { ST_READ_ALL, ST_READ_SOME, ST_WRITE };

struct pg_stmt {
  int live;
  enum stmt_kind kind;
  uint64_t used;
  char name[24];
  char table[LDR_TABLE_NAME_MAX + 1];
};

struct pg_impl {
  PGconn *conn;
  /* Connection parameters: keywords and values for PQconnectStartParams. */
  const char *kw[20];
  const char *val[20];
  char port[8], keepalives_idle[16], options[200];
  struct pg_stmt stmts[STMT_CACHE];
  uint64_t tick, seq;
  long timeout_ms; /* the session's statement_timeout; -1: not known */
  int conflict;    /* the last statement lost a deadlock or a serialization race */
};

static struct pg_impl *impl(struct ldr_backend *b) { return b->impl; }

static const struct ldr_postgres_options *options(const struct ldr_backend *b) {
  return b->cfg->opts;
}

static void drop_connection(struct pg_impl *s) {
  PQfinish(s->conn);
  s->conn = NULL;
  for (size_t i = 0; i < STMT_CACHE; i++) s->stmts[i].live = 0;
  s->timeout_ms = -1;
}

static int connection_ok(const struct pg_impl *s) {
  return s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK;
}

static const char *server_name(struct ldr_backend *b, char *buf, size_t cap) {
  snprintf(buf, cap, "%s:%d", options(b)->host, options(b)->port);
  return buf;
}

/* Copies libpq's message (it is overwritten by the next call) without its newline. */
static void message_of(const char *m, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", m && *m ? m : "no message");
  size_t n = strlen(buf);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = '\0';
  for (char *p = buf; *p; p++)
    if (*p == '\n') *p = ' ';
}

/* Waits until the connection's socket is ready or the time is up: 1 ready,
 * 0 time up (or every wait aborted: ldr_backend_abort_waits), -1 error.
 * until_ns 0 waits without end. */
static int wait_socket(PGconn *conn, short events, int64_t until_ns) {
  struct pollfd pfd = {.fd = PQsocket(conn), .events = events};
  if (pfd.fd < 0) return -1;
  for (;;) {
    int ms = LDR_ABORT_CHECK_MS;
    if (ldr_backend_aborting()) return 0;
    if (until_ns != 0) {
      int64_t left = until_ns - ldr_now_ns();
      if (left <= 0) return 0;
      if (left < (int64_t)ms * 1000000) ms = (int)((left + 999999) / 1000000);
    }
    int r = poll(&pfd, 1, ms);
    if (r > 0) return 1;
    if (r == 0) continue; /* loop to recheck the clock */
    if (errno != EINTR) return -1;
  }
}

static int64_t deadline_or(struct ldr_backend *b, int64_t fallback_ns) {
  return b->deadline_ns ? b->deadline_ns : ldr_now_ns() + fallback_ns;
}

/* Server notices ("relation already exists, skipping") go to the debug log,
 * not to stderr as libpq would print them. */
static void notice(void *arg, const char *message) {
  (void)arg;
  char msg[200];
  message_of(message, msg, sizeof msg);
  ldr_log(LDR_LOG_DEBUG, "postgres: %s", msg);
}

static enum ldr_rc connect_once(struct ldr_backend *b, int64_t until_ns, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  char where[300], msg[200];
  drop_connection(s);
  s->conn = PQconnectStartParams(s->kw, s->val, 0);
  if (s->conn == NULL) return ldr_err_set(err, LDR_NOMEM, "postgres: out of memory");
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (PQstatus(s->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
         st != PGRES_POLLING_FAILED) {
    int w = wait_socket(s->conn, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, until_ns);
    if (w == 0) {
      drop_connection(s);
      return ldr_err_set(err, b->deadline_ns ? LDR_DEADLINE : LDR_UNAVAILABLE,
                         "postgres at %s: no connection before the %s",
                         server_name(b, where, sizeof where),
                         b->deadline_ns ? "call's deadline" : "connect timeout");
    }
    st = PQconnectPoll(s->conn);
  }
  if (PQstatus(s->conn) != CONNECTION_OK) {
    message_of(PQerrorMessage(s->conn), msg, sizeof msg);
    drop_connection(s);
    return ldr_err_set(
        err, LDR_UNAVAILABLE, "cannot connect to postgres at %s (database %s, user %s): %s",
        server_name(b, where, sizeof where), options(b)->database, options(b)->user, msg);
  }
  /* Binary timestamps are 64-bit microseconds only with integer_datetimes. */
  const char *idt = PQparameterStatus(s->conn, "integer_datetimes");
  if (idt == NULL || strcmp(idt, "on") != 0) {
    drop_connection(s);
    return ldr_err_set(err, LDR_INTERNAL, "postgres at %s: integer_datetimes is off",
                       server_name(b, where, sizeof where));
  }
  PQsetnonblocking(s->conn, 1);
  PQsetNoticeProcessor(s->conn, notice, NULL);
  return LDR_OK;
}

/* Maps a failed result (or a lost connection) to a code, copying the message. */
static enum ldr_rc result_error(struct ldr_backend *b, const PGresult *res, const char *what,
                                const char *table, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  char msg[200];
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  message_of(res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn), msg, sizeof msg);
  if (!connection_ok(s) || (state && !strncmp(state, "08", 2)) ||
      (state && (!strcmp(state, "57P01") || !strcmp(state, "57P02") || !strcmp(state, "57P03")))) {
    drop_connection(s);
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: lost the postgres connection: %s", what, msg);
  }
  if (state && !strcmp(state, "42P01") && table)
    return ldr_err_set(
        err, LDR_NOT_FOUND,
        "feature_view: table \"%s\" does not exist (create it with Update or larder apply)", table);
  if (state && !strcmp(state, "57014"))
    return ldr_err_set(err, LDR_DEADLINE, "%s: the statement ran past the call's deadline", what);
  if (state && !strcmp(state, "53100"))
    return ldr_err_set(err, LDR_EXHAUSTED, "%s: the database is full", what);
  if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01"))) {
    s->conflict = 1;
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: postgres: %s", what, msg);
  }
  if (state && !strncmp(state, "53", 2))
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: postgres: %s", what, msg);
  return ldr_err_set(err, LDR_INTERNAL, "%s: postgres (%s): %s", what, state ? state : "-", msg);
}

/*
 * Waits for the one command in progress to finish and returns its result (the
 * caller PQclear()s it), or NULL with `err` set. Past the deadline (plus a
 * grace for the server's own statement_timeout to answer) the connection is
 * given up: its state is unknown.
 */
static PGresult *await_result(struct ldr_backend *b, const char *what, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  int64_t until = b->deadline_ns ? b->deadline_ns + DEADLINE_GRACE_NS : 0;
  PGresult *res = NULL;
  for (;;) {
    int f = PQflush(s->conn);
    if (f == 0) break;
    if (f < 0 || wait_socket(s->conn, POLLOUT | POLLIN, until) <= 0 || !PQconsumeInput(s->conn))
      goto broken;
  }
  for (;;) {
    while (PQisBusy(s->conn)) {
      int w = wait_socket(s->conn, POLLIN, until);
      if (w == 0) {
        drop_connection(s);
        ldr_err_set(err, LDR_DEADLINE, "%s: postgres did not answer before the call's deadline",
                    what);
        PQclear(res);
        return NULL;
      }
      if (w < 0 || !PQconsumeInput(s->conn)) goto broken;
    }
    PGresult *r = PQgetResult(s->conn);
    if (r == NULL) break;
    if (res == NULL)
      res = r;
    else
      PQclear(r);
  }
  if (res != NULL) return res;
broken:
  PQclear(res);
  result_error(b, NULL, what, NULL, err);
  return NULL;
}

/* Runs one command already sent and expects `want`; LDR_OK or the error. */
static enum ldr_rc finish_command(struct ldr_backend *b, ExecStatusType want, const char *what,
                                  const char *table, PGresult **out, struct ldr_err *err) {
  PGresult *res = await_result(b, what, err);
  if (res == NULL) return err->rc;
  if (PQresultStatus(res) != want) {
    enum ldr_rc rc = result_error(b, res, what, table, err);
    PQclear(res);
    return rc;
  }
  if (out)
    *out = res;
  else
    PQclear(res);
  return LDR_OK;
}

static enum ldr_rc simple_command(struct ldr_backend *b, const char *sql, const char *what,
                                  struct ldr_err *err) {
  if (!PQsendQuery(impl(b)->conn, sql)) return result_error(b, NULL, what, NULL, err);
  return finish_command(b, PGRES_COMMAND_OK, what, NULL, NULL, err);
}

/*
 * statement_timeout follows the call's deadline. Setting it costs a round
 * trip, so the value is rounded down to a step of a geometric series (each
 * 25% above the last): calls with the same timeout keep the same step, and
 * the server always stops a statement no later than the deadline.
 */
static long timeout_step(int64_t left_ns) {
  long ms = (long)(left_ns / 1000000), step = 1;
  if (ms < 1) return 1;
  while ((long)((double)step * 1.25) + 1 <= ms) step = (long)((double)step * 1.25) + 1;
  return step;
}

static enum ldr_rc set_timeout(struct ldr_backend *b, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  long want = 0;
  if (b->deadline_ns) {
    int64_t left = b->deadline_ns - ldr_now_ns();
    if (left <= 0) return ldr_err_set(err, LDR_DEADLINE, "the call's deadline passed");
    want = timeout_step(left);
  }
  if (want == s->timeout_ms) return LDR_OK;
  char sql[64];
  snprintf(sql, sizeof sql, "SET statement_timeout = %ld", want);
  enum ldr_rc rc = simple_command(b, sql, "statement_timeout", err);
  if (rc == LDR_OK) s->timeout_ms = want;
  return rc;
}

static int statement_sql(char *buf, size_t cap, enum stmt_kind kind, const char *t) {
  switch (kind) {
  case ST_READ_ALL:
    return snprintf(buf, cap,
                    "SELECT entity_key, feature_name, value, event_ts FROM \"%s\" "
                    "WHERE entity_key = ANY($1)",
                    t);
  case ST_READ_SOME:
    return snprintf(buf, cap,
                    "SELECT entity_key, feature_name, value, event_ts FROM \"%s\" "
                    "WHERE entity_key = ANY($1) AND feature_name = ANY($2)",
                    t);
  case ST_WRITE:
    /* Feast's upsert, fed from arrays so that the batch is one statement. */
    return snprintf(
        buf, cap,
        "INSERT INTO \"%s\" (\"entity_key\", \"feature_name\", \"value\", \"value_text\", "
        "\"vector_value\", \"event_ts\", \"created_ts\") "
        "SELECT k, f, v, t, NULL::bytea, e, c "
        "FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::text[], "
        "$5::timestamptz[], $6::timestamptz[]) AS r(k, f, v, t, e, c) "
        "ON CONFLICT (entity_key, feature_name) DO UPDATE SET \"value\" = EXCLUDED.\"value\", "
        "\"value_text\" = EXCLUDED.\"value_text\", \"vector_value\" = EXCLUDED.\"vector_value\", "
        "\"event_ts\" = EXCLUDED.\"event_ts\", \"created_ts\" = EXCLUDED.\"created_ts\"",
        t);
  }
  return -1;
}

/* The name of the prepared statement for (kind, table), preparing it on a miss. */
static enum ldr_rc get_stmt(struct ldr_backend *b, enum stmt_kind kind, const char *table,
                            const char **name, struct ldr_err *err) {
  static const Oid types[][6] = {
      [ST_READ_ALL] = {OID_BYTEA_ARRAY},
      [ST_READ_SOME] = {OID_BYTEA_ARRAY, OID_TEXT_ARRAY},
      [ST_WRITE] = {OID_BYTEA_ARRAY, OID_TEXT_ARRAY, OID_BYTEA_ARRAY, OID_TEXT_ARRAY,
                    OID_TIMESTAMPTZ_ARRAY, OID_TIMESTAMPTZ_ARRAY},
  };
  static const int nparams[] = {[ST_READ_ALL] = 1, [ST_READ_SOME] = 2, [ST_WRITE] = 6};
  struct pg_impl *s = impl(b);
  struct pg_stmt *victim = &s->stmts[0];
  for (size_t i = 0; i < STMT_CACHE; i++) {
    struct pg_stmt *st = &s->stmts[i];
    if (st->live && st->kind == kind && !strcmp(st->table, table)) {
      st->used = ++s->tick;
      *name = st->name;
      return LDR_OK;
    }
    if (!st->live || (victim->live && st->used < victim->used)) victim = st;
  }
  enum ldr_rc rc;
  if (victim->live) { /* free the server's copy of the one evicted */
    char sql[48];
    snprintf(sql, sizeof sql, "DEALLOCATE %s", victim->name);
    victim->live = 0;
    rc = simple_command(b, sql, "deallocate", err);
    if (rc != LDR_OK) return rc;
  }
  char sql[1024];
  statement_sql(sql, sizeof sql, kind, table);
  snprintf(victim->name, sizeof victim->name, "ldr_%llu", (unsigned long long)++s->seq);
  if (!PQsendPrepare(s->conn, victim->name, sql, nparams[kind], types[kind]))
    return result_error(b, NULL, "prepare", table, err);
  rc = finish_command(b, PGRES_COMMAND_OK, "prepare", table, NULL, err);
  if (rc != LDR_OK) return rc;
  if (ldr_log_enabled(LDR_LOG_DEBUG))
    ldr_log(LDR_LOG_DEBUG, "postgres: prepared %s: %s", victim->name, sql);
  victim->live = 1;
  victim->kind = kind;
  victim->used = ++s->tick;
  snprintf(victim->table, sizeof victim->table, "%s", table);
  *name = victim->name;
  return LDR_OK;
}

/* ---- binary parameters --------------------------------------------------- */

static uint8_t *put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
  return p + 4;
}

static uint8_t *put_be64(uint8_t *p, uint64_t v) {
  return put_be32(put_be32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

/* A one-dimensional array in PostgreSQL's binary format, built element by element. */
struct pg_array {
  uint8_t *buf, *p;
  size_t n;
  int has_null;
  Oid elem;
};

static int array_begin(struct pg_array *a, struct ldr_arena *arena, Oid elem, size_t n,
                       size_t payload) {
  a->buf = ldr_arena_alloc(arena, 20 + 4 * n + payload);
  a->p = a->buf ? a->buf + 20 : NULL;
  a->n = n;
  a->has_null = 0;
  a->elem = elem;
  return a->buf ? 0 : -1;
}

static void array_put(struct pg_array *a, const void *p, size_t n) {
  a->p = put_be32(a->p, (uint32_t)n);
  if (n) memcpy(a->p, p, n);
  a->p += n;
}

static void array_null(struct pg_array *a) {
  a->p = put_be32(a->p, 0xffffffffu);
  a->has_null = 1;
}

/* Writes the header; returns the array's length in bytes. */
static int array_end(struct pg_array *a) {
  if (a->n == 0) { /* an empty array has no dimensions */
    uint8_t *h = put_be32(put_be32(a->buf, 0), 0);
    put_be32(h, a->elem);
    return 12;
  }
  uint8_t *h = put_be32(a->buf, 1);
  h = put_be32(h, (uint32_t)a->has_null);
  h = put_be32(h, a->elem);
  h = put_be32(h, (uint32_t)a->n);
  put_be32(h, 1);
  return (int)(a->p - a->buf);
}

/* Microseconds since 2000-01-01 UTC (timestamptz's binary form); the
 * nanoseconds are truncated, as Python's datetime does. */
static int64_t to_pg_micros(struct ldr_ts t) {
  return (t.s - PG_EPOCH_OFFSET) * 1000000 + t.ns / 1000;
}

static struct ldr_ts from_pg_micros(int64_t us) {
  int64_t s = us / 1000000, rem = us % 1000000;
  if (rem < 0) {
    rem += 1000000;
    s--;
  }
  struct ldr_ts t = {s + PG_EPOCH_OFFSET, (int32_t)(rem * 1000)};
  return t;
}

/* ---- the operations, each run with at most one reconnect ------------------ */

typedef enum ldr_rc (*pg_op)(struct ldr_backend *b, void *arg, struct ldr_err *err);

/*
 * Runs `op` on an open connection. A connection found closed is opened once;
 * one that breaks during `op` is reopened once and `op` runs again (reads,
 * DDL and the single-statement upsert are all safe to repeat). Then the call
 * fails with UNAVAILABLE.
 */
static enum ldr_rc with_connection(struct ldr_backend *b, pg_op op, void *arg,
                                   struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  int reconnected = 0;
  for (;;) {
    struct ldr_err e;
    enum ldr_rc rc = LDR_OK;
    ldr_err_clear(&e);
    if (!connection_ok(s)) {
      if (reconnected)
        return ldr_err_set(err, LDR_UNAVAILABLE, "postgres: the connection was lost again");
      reconnected = 1;
      rc = connect_once(b, deadline_or(b, CONNECT_TIMEOUT_NS), &e);
    }
    if (rc == LDR_OK) rc = set_timeout(b, &e);
    if (rc == LDR_OK) rc = op(b, arg, &e);
    if (rc == LDR_OK) return LDR_OK;
    if (rc == LDR_UNAVAILABLE && !connection_ok(s) && !reconnected &&
        !ldr_backend_past_deadline(b)) {
      reconnected = 1;
      if (connect_once(b, deadline_or(b, CONNECT_TIMEOUT_NS), &e) == LDR_OK) continue;
    }
    *err = e;
    return rc;
  }
}

struct read_arg {
  const char *table;
  struct ldr_collector *c;
  const char *const *features;
  size_t n_features;
  struct ldr_arena *arena;
};

static enum ldr_rc op_read(struct ldr_backend *b, void *varg, struct ldr_err *err) {
  struct read_arg *a = varg;
  struct ldr_collector *c = a->c;
  const char *name = NULL;
  enum ldr_rc rc = get_stmt(b, a->n_features ? ST_READ_SOME : ST_READ_ALL, a->table, &name, err);
  if (rc != LDR_OK) return rc;
  size_t kbytes = 0, fbytes = 0;
  for (size_t i = 0; i < c->nuniq; i++) kbytes += c->uniq[i].len;
  for (size_t i = 0; i < a->n_features; i++) fbytes += strlen(a->features[i]);
  struct pg_array keys, feats;
  if (array_begin(&keys, a->arena, OID_BYTEA, c->nuniq, kbytes) != 0 ||
      array_begin(&feats, a->arena, OID_TEXT, a->n_features, fbytes) != 0)
    return ldr_err_set(err, LDR_EXHAUSTED, "read: the request is larger than a call may hold");
  for (size_t i = 0; i < c->nuniq; i++) array_put(&keys, c->uniq[i].bytes, c->uniq[i].len);
  for (size_t i = 0; i < a->n_features; i++)
    array_put(&feats, a->features[i], strlen(a->features[i]));
  const char *values[2] = {(const char *)keys.buf, (const char *)feats.buf};
  int lengths[2] = {array_end(&keys), array_end(&feats)};
  static const int formats[2] = {1, 1};
  if (!PQsendQueryPrepared(impl(b)->conn, name, a->n_features ? 2 : 1, values, lengths, formats, 1))
    return result_error(b, NULL, "read", a->table, err);
  PGresult *res = NULL;
  rc = finish_command(b, PGRES_TUPLES_OK, "read", a->table, &res, err);
  if (rc != LDR_OK) return rc;
  /* The rows point into the result, which the arena releases when the call
   * is over: names and values are not copied a second time. */
  if (ldr_arena_on_reset(a->arena, (void (*)(void *))PQclear, res) != 0) {
    PQclear(res);
    return ldr_err_set(err, LDR_EXHAUSTED, "read: the result is larger than a call may hold");
  }
  ldr_collect_reset(c);
  int rows = PQntuples(res);
  for (int r = 0; r < rows && rc == LDR_OK; r++) {
    struct ldr_ts ts;
    int has_ts = !PQgetisnull(res, r, 3) && PQgetlength(res, r, 3) == 8;
    if (has_ts) ts = from_pg_micros((int64_t)get_be64((const uint8_t *)PQgetvalue(res, r, 3)));
    rc = ldr_collect_row_ref(c, PQgetvalue(res, r, 0), (size_t)PQgetlength(res, r, 0),
                             PQgetvalue(res, r, 1), (size_t)PQgetlength(res, r, 1),
                             PQgetvalue(res, r, 2), (size_t)PQgetlength(res, r, 2),
                             has_ts ? &ts : NULL, err);
  }
  return rc;
}

static enum ldr_rc pg_read(struct ldr_backend *b, const char *table, const struct ldr_key *keys,
                           size_t n_keys, const char *const *features, size_t n_features,
                           struct ldr_arena *arena, struct ldr_read_row *out, struct ldr_err *err) {
  struct ldr_collector c;
  enum ldr_rc rc = ldr_collect_begin(&c, arena, keys, n_keys, err);
  struct read_arg a = {table, &c, features, n_features, arena};
  if (rc == LDR_OK) rc = with_connection(b, op_read, &a, err);
  if (rc == LDR_OK) rc = ldr_collect_end(&c, out, err);
  return rc;
}

struct write_arg {
  const char *table;
  const struct ldr_flat *flat;
  size_t n;
  struct ldr_arena *arena;
};

static enum ldr_rc op_write(struct ldr_backend *b, void *varg, struct ldr_err *err) {
  struct write_arg *a = varg;
  const char *name = NULL;
  enum ldr_rc rc = get_stmt(b, ST_WRITE, a->table, &name, err);
  if (rc != LDR_OK) return rc;
  size_t kbytes = 0, nbytes = 0, vbytes = 0, tbytes = 0;
  for (size_t i = 0; i < a->n; i++) {
    kbytes += a->flat[i].row->key.len;
    nbytes += strlen(a->flat[i].feature->name);
    vbytes += a->flat[i].feature->len;
    /* value_text is at most 32 bytes for numbers, or the string itself */
    const Feast__Types__Value *v = a->flat[i].feature->value;
    tbytes += v && v->val_case == FEAST__TYPES__VALUE__VAL_STRING_VAL ? strlen(v->string_val) : 32;
  }
  struct pg_array keys, names, values, texts, events, created;
  if (array_begin(&keys, a->arena, OID_BYTEA, a->n, kbytes) != 0 ||
      array_begin(&names, a->arena, OID_TEXT, a->n, nbytes) != 0 ||
      array_begin(&values, a->arena, OID_BYTEA, a->n, vbytes) != 0 ||
      array_begin(&texts, a->arena, OID_TEXT, a->n, tbytes) != 0 ||
      array_begin(&events, a->arena, OID_TIMESTAMPTZ, a->n, 8 * a->n) != 0 ||
      array_begin(&created, a->arena, OID_TIMESTAMPTZ, a->n, 8 * a->n) != 0)
    return ldr_err_set(err, LDR_EXHAUSTED, "write: the batch is larger than a call may hold");
  for (size_t i = 0; i < a->n; i++) {
    const struct ldr_write_row *row = a->flat[i].row;
    const struct ldr_write_feature *f = a->flat[i].feature;
    char buf[32];
    const char *text;
    size_t tlen;
    uint8_t ts[8];
    array_put(&keys, row->key.bytes, row->key.len);
    array_put(&names, f->name, strlen(f->name));
    array_put(&values, f->bytes, f->len);
    if (ldr_value_text(f->value, buf, &text, &tlen))
      array_put(&texts, text, tlen);
    else
      array_null(&texts);
    put_be64(ts, (uint64_t)to_pg_micros(row->event_ts));
    array_put(&events, ts, 8);
    if (row->has_created) {
      put_be64(ts, (uint64_t)to_pg_micros(row->created_ts));
      array_put(&created, ts, 8);
    } else {
      array_null(&created);
    }
  }
  struct pg_array *arrays[6] = {&keys, &names, &values, &texts, &events, &created};
  const char *params[6];
  int lengths[6];
  static const int formats[6] = {1, 1, 1, 1, 1, 1};
  for (int i = 0; i < 6; i++) {
    lengths[i] = array_end(arrays[i]);
    params[i] = (const char *)arrays[i]->buf;
  }
  if (!PQsendQueryPrepared(impl(b)->conn, name, 6, params, lengths, formats, 1))
    return result_error(b, NULL, "write", a->table, err);
  return finish_command(b, PGRES_COMMAND_OK, "write", a->table, NULL, err);
}

static enum ldr_rc pg_write(struct ldr_backend *b, const char *table,
                            const struct ldr_write_row *rows, size_t n, struct ldr_arena *arena,
                            struct ldr_err *err) {
  struct write_arg a = {table, NULL, 0, arena};
  /* One statement may not update a row twice: keep the last of each (key, feature). */
  struct ldr_flat *flat = NULL;
  enum ldr_rc rc = ldr_flatten_last_wins(rows, n, arena, &flat, &a.n, err);
  a.flat = flat;
  if (rc == LDR_OK) rc = with_connection(b, op_write, &a, err);
  return rc;
}

struct ddl_arg {
  const char *const *keep, *const *drop;
  size_t n_keep, n_drop;
};

/* The schema the tables live in: db_schema, or the user's name when it is null (as Feast). */
static const char *schema_of(struct ldr_backend *b) {
  return options(b)->db_schema ? options(b)->db_schema : options(b)->user;
}

/* Feast creates the schema only when information_schema says it is missing:
 * CREATE SCHEMA needs a privilege that users of an existing schema may lack. */
static enum ldr_rc ensure_schema(struct ldr_backend *b, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  const char *schema = schema_of(b);
  const char *params[1] = {schema};
  if (!PQsendQueryParams(s->conn,
                         "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", 1,
                         NULL, params, NULL, NULL, 0))
    return result_error(b, NULL, "update", NULL, err);
  PGresult *res = NULL;
  enum ldr_rc rc = finish_command(b, PGRES_TUPLES_OK, "update", NULL, &res, err);
  if (rc != LDR_OK) return rc;
  int exists = PQntuples(res) > 0;
  PQclear(res);
  if (exists) return LDR_OK;
  char *user = PQescapeIdentifier(s->conn, options(b)->user, strlen(options(b)->user));
  if (user == NULL) return result_error(b, NULL, "update", NULL, err);
  char sql[256];
  snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS \"%s\" AUTHORIZATION %s", schema, user);
  PQfreemem(user);
  return simple_command(b, sql, "update: create schema", err);
}

static enum ldr_rc op_update(struct ldr_backend *b, void *varg, struct ldr_err *err) {
  struct ddl_arg *a = varg;
  enum ldr_rc rc = a->n_keep ? ensure_schema(b, err) : LDR_OK;
  if (rc != LDR_OK) return rc;
  /* One simple query of several statements runs as one transaction. */
  size_t cap = 64 + 420 * a->n_keep + 120 * a->n_drop;
  char *sql = malloc(cap), *p = sql;
  if (sql == NULL) return ldr_err_set(err, LDR_NOMEM, "update: out of memory");
  p[0] = '\0';
  for (size_t i = 0; i < a->n_keep; i++) {
    const char *t = a->keep[i];
    p += snprintf(
        p, cap - (size_t)(p - sql),
        "CREATE TABLE IF NOT EXISTS \"%s\"\n(\n    entity_key BYTEA,\n    feature_name TEXT,\n"
        "    value BYTEA,\n    value_text TEXT NULL,\n    vector_value BYTEA NULL,\n"
        "    event_ts TIMESTAMPTZ,\n    created_ts TIMESTAMPTZ,\n"
        "    PRIMARY KEY(entity_key, feature_name)\n);\n"
        "CREATE INDEX IF NOT EXISTS \"%s_ek\" ON \"%s\" (entity_key);\n",
        t, t, t);
  }
  for (size_t i = 0; i < a->n_drop; i++)
    p += snprintf(p, cap - (size_t)(p - sql),
                  "DROP TABLE IF EXISTS \"%s\"; DROP INDEX IF EXISTS \"%s_ek\";\n", a->drop[i],
                  a->drop[i]);
  rc = sql[0] ? simple_command(b, sql, "update", err) : LDR_OK;
  free(sql);
  return rc;
}

static enum ldr_rc pg_update(struct ldr_backend *b, const char *const *keep, size_t n_keep,
                             const char *const *drop, size_t n_drop, struct ldr_err *err) {
  struct ddl_arg a = {keep, drop, n_keep, n_drop};
  return with_connection(b, op_update, &a, err);
}

static enum ldr_rc pg_teardown(struct ldr_backend *b, const char *const *tables, size_t n,
                               struct ldr_err *err) {
  return pg_update(b, NULL, 0, tables, n, err);
}

static enum ldr_rc op_ping(struct ldr_backend *b, void *arg, struct ldr_err *err) {
  (void)arg;
  if (!PQsendQuery(impl(b)->conn, "SELECT 1")) return result_error(b, NULL, "ping", NULL, err);
  return finish_command(b, PGRES_TUPLES_OK, "ping", NULL, NULL, err);
}

static enum ldr_rc pg_ping(struct ldr_backend *b, struct ldr_err *err) {
  return with_connection(b, op_ping, NULL, err);
}

static void add_param(struct pg_impl *s, size_t *n, const char *k, const char *v) {
  if (v == NULL) return;
  s->kw[*n] = k;
  s->val[*n] = v;
  (*n)++;
}

static enum ldr_rc pg_open(struct ldr_backend *b, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  const struct ldr_postgres_options *c = options(b);
  size_t n = 0;
  s->timeout_ms = -1;
  /* Feast's search_path: the schema, then public; and UTC for the session, so
   * timestamps never depend on the server's time zone. */
  const char *schema = schema_of(b);
  snprintf(s->options, sizeof s->options, "-c search_path=%s%s -c TimeZone=UTC", schema,
           strcmp(schema, "public") ? ",public" : "");
  snprintf(s->port, sizeof s->port, "%d", c->port);
  add_param(s, &n, "host", c->host);
  add_param(s, &n, "port", s->port);
  add_param(s, &n, "dbname", c->database);
  add_param(s, &n, "user", c->user);
  add_param(s, &n, "password", c->password);
  add_param(s, &n, "sslmode", c->sslmode);
  add_param(s, &n, "sslkey", c->sslkey_path);
  add_param(s, &n, "sslcert", c->sslcert_path);
  add_param(s, &n, "sslrootcert", c->sslrootcert_path);
  add_param(s, &n, "options", s->options);
  add_param(s, &n, "application_name", "larder");
  add_param(s, &n, "client_encoding", "UTF8");
  add_param(s, &n, "keepalives", "1");
  if (c->keepalives_idle > 0) {
    snprintf(s->keepalives_idle, sizeof s->keepalives_idle, "%d", c->keepalives_idle);
    add_param(s, &n, "keepalives_idle", s->keepalives_idle);
  }
  s->kw[n] = s->val[n] = NULL;

  /* With larder.wait_for_backend_s, keep trying while the database starts. */
  int64_t give_up = ldr_now_ns() + (int64_t)b->cfg->wait_for_backend_s * 1000000000LL;
  for (;;) {
    struct ldr_err e;
    ldr_err_clear(&e);
    enum ldr_rc rc = connect_once(b, ldr_now_ns() + CONNECT_TIMEOUT_NS, &e);
    if (rc == LDR_OK || rc != LDR_UNAVAILABLE || ldr_now_ns() >= give_up) {
      if (rc != LDR_OK) *err = e;
      return rc;
    }
    struct timespec pause = {0, 250000000};
    nanosleep(&pause, NULL);
  }
}

static void pg_close(struct ldr_backend *b) { drop_connection(impl(b)); }

static int pg_connected(struct ldr_backend *b) {
  struct pg_impl *s = impl(b);
  return s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK;
}

#define PG_STRING(k, member, req) LDR_STRING_KEY(struct ldr_postgres_options, k, member, req)
static const char *const sslmodes[] = {"disable",   "allow",       "prefer", "require",
                                       "verify-ca", "verify-full", NULL};
static const char *const conn_types[] = {"singleton", "pool", NULL};

static const struct ldr_config_field fields[] = {
    PG_STRING("host", host, 1),
    LDR_INT_KEY(struct ldr_postgres_options, "port", port, 1, 65535),
    PG_STRING("database", database, 1),
    {.key = "db_schema",
     .kind = LDR_FIELD_STRING,
     .offset = offsetof(struct ldr_postgres_options, db_schema),
     .null_clears = 1},
    PG_STRING("user", user, 1),
    PG_STRING("password", password, 1),
    {.key = "sslmode",
     .kind = LDR_FIELD_STRING,
     .offset = offsetof(struct ldr_postgres_options, sslmode),
     .choices = sslmodes,
     .why = "libpq's sslmodes"},
    PG_STRING("sslkey_path", sslkey_path, 0),
    PG_STRING("sslcert_path", sslcert_path, 0),
    PG_STRING("sslrootcert_path", sslrootcert_path, 0),
    LDR_INT_KEY(struct ldr_postgres_options, "keepalives_idle", keepalives_idle, 1, 86400),
    /* Feast's connection pool settings: larder opens one connection per worker. */
    {.key = "min_conn", .kind = LDR_FIELD_INT, .offset = LDR_NO_FIELD, .min = 0, .max = 100000},
    {.key = "max_conn", .kind = LDR_FIELD_INT, .offset = LDR_NO_FIELD, .min = 0, .max = 100000},
    {.key = "conn_type",
     .kind = LDR_FIELD_STRING,
     .offset = LDR_NO_FIELD,
     .choices = conn_types,
     .why = "Feast's connection types"},
    LDR_VECTOR_OPTIONS,
};

static int defaults(void *opts) {
  struct ldr_postgres_options *o = opts;
  o->port = 5432;
  o->db_schema = strdup("public");
  o->sslmode = strdup("require");
  return o->db_schema && o->sslmode ? 0 : -1;
}

static const char *check(const void *opts, char *buf, size_t cap) {
  const struct ldr_postgres_options *o = opts;
  (void)buf;
  (void)cap;
  /* Quoted in every statement, and at most PostgreSQL's identifier length. */
  if (o->db_schema != NULL && !ldr_config_identifier(o->db_schema, 63))
    return "online_store.db_schema: letters, digits and '_' only, at most 63 of them";
  return NULL;
}

const struct ldr_store_schema ldr_postgres_schema = {
    .name = "postgres",
    .size = sizeof(struct ldr_postgres_options),
    .fields = fields,
    .n_fields = sizeof fields / sizeof fields[0],
    .defaults = defaults,
    .check = check,
};

const struct ldr_backend_ops ldr_postgres_ops = {
    .schema = &ldr_postgres_schema,
    .impl_size = sizeof(struct pg_impl),
    .open = pg_open,
    .close = pg_close,
    .update = pg_update,
    .teardown = pg_teardown,
    .write_batch = pg_write,
    .read = pg_read,
    .ping = pg_ping,
    .connected = pg_connected,
};
