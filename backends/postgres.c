/*
 * Feast's PostgreSQL online store (postgres.py) on libpq: the same schema,
 * tables and upsert. Every request is one round trip: libpq's pipeline mode
 * sends the statement timeout when it changes, the preparation of statements
 * not cached yet, one statement per feature view (a read with the keys as one
 * binary bytea[] parameter; a write as INSERT ... SELECT FROM unnest(arrays)
 * ... ON CONFLICT), and one Sync; the statements up to the Sync are one
 * implicit transaction, so a write to several views is all or nothing. Rows
 * are read one at a time (single-row mode) and counted against the call's
 * result cap as they arrive. Every table, index and schema name is qualified
 * with db_schema, never left to search_path.
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

#include "backends/postgres.h"
#include "backends/sql.h"
#include "common/log.h"

/* How long past the deadline to wait for the server's own timeout to answer
 * before giving up on the connection. */
#define DEADLINE_GRACE_NS (50 * 1000000LL)
/* Seconds between 2000-01-01 (PostgreSQL's epoch) and 1970-01-01. */
#define PG_EPOCH_OFFSET 946684800LL

/* OIDs of the types the statements bind (pg_type.h). */
enum { OID_BYTEA = 17, OID_TEXT = 25, OID_TIMESTAMPTZ = 1184 };
enum { OID_BYTEA_ARRAY = 1001, OID_TEXT_ARRAY = 1009, OID_TIMESTAMPTZ_ARRAY = 1185 };

enum stmt_kind { ST_READ_ALL, ST_READ_SOME, ST_WRITE };

struct pg_impl {
  PGconn *conn;
  /* Connection parameters: keywords and values for PQconnectStartParams. */
  const char *kw[20];
  const char *val[20];
  char port[8], keepalives_idle[16];
  char schema[200];            /* db_schema (or the user's name), quoted for SQL */
  struct ldr_stmt_cache stmts; /* statement names (malloc'd) by (kind, table) */
  char *stale[LDR_STMT_CACHE]; /* evicted from the cache: deallocated by the next pipeline */
  size_t n_stale;
  unsigned long long seq;
  long timeout_ms; /* the session's statement_timeout; -1: not known */
  int conflict;    /* the last statement lost a deadlock or a serialization race */
  struct ldr_sql_conn backoff;
};

static struct pg_impl *impl(struct ldr_backend *b) { return b->impl; }

static const struct ldr_postgres_options *options(const struct ldr_backend *b) {
  return b->cfg->opts;
}

static void drop_connection(struct pg_impl *s) {
  PQfinish(s->conn);
  s->conn = NULL;
  ldr_stmt_clear(&s->stmts, free);
  for (size_t i = 0; i < s->n_stale; i++) free(s->stale[i]);
  s->n_stale = 0;
  s->timeout_ms = -1;
}

static int connection_ok(const struct pg_impl *s) {
  return s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK;
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

/* Server notices ("relation already exists, skipping") go to the debug log,
 * not to stderr as libpq would print them. */
static void notice(void *arg, const char *message) {
  (void)arg;
  char msg[200];
  message_of(message, msg, sizeof msg);
  ldr_log(LDR_LOG_DEBUG, "postgres: %s", msg);
}

static enum ldr_rc pg_connect(struct ldr_backend *b, int64_t until_ns, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  const struct ldr_postgres_options *o = options(b);
  char msg[200];
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
                         "postgres at %s:%d: no connection before the %s", o->host, o->port,
                         b->deadline_ns ? "call's deadline" : "connect timeout");
    }
    st = PQconnectPoll(s->conn);
  }
  if (PQstatus(s->conn) != CONNECTION_OK) {
    message_of(PQerrorMessage(s->conn), msg, sizeof msg);
    drop_connection(s);
    return ldr_err_set(err, LDR_UNAVAILABLE,
                       "cannot connect to postgres at %s:%d (database %s, user %s): %s", o->host,
                       o->port, o->database, o->user, msg);
  }
  /* Binary timestamps are 64-bit microseconds only with integer_datetimes. */
  const char *idt = PQparameterStatus(s->conn, "integer_datetimes");
  if (idt == NULL || strcmp(idt, "on") != 0) {
    drop_connection(s);
    return ldr_err_set(err, LDR_INTERNAL, "postgres at %s:%d: integer_datetimes is off", o->host,
                       o->port);
  }
  PQsetnonblocking(s->conn, 1);
  PQsetNoticeProcessor(s->conn, notice, NULL);
  return LDR_OK;
}

/* Maps a failed result (or a lost connection) to a code, copying the message;
 * the message goes to the client only for codes that name no driver text. */
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
  if (state && !strcmp(state, "42P01") && table) return ldr_sql_not_found(err, table);
  if (state && !strcmp(state, "57014"))
    return ldr_err_set(err, LDR_DEADLINE, "%s: the statement ran past the call's deadline", what);
  if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01"))) s->conflict = 1;
  /* Conflicts, and class 53 (disk full, out of memory, too many connections):
   * the database refuses now and may not later. */
  if (state && (!strncmp(state, "53", 2) || !strncmp(state, "40", 2)))
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: postgres: %s", what, msg);
  return ldr_err_set(err, LDR_INTERNAL, "%s: postgres (%s): %s", what, state ? state : "-", msg);
}

/* Sends what libpq holds; gives up on the connection past `until`. */
static enum ldr_rc flush(struct ldr_backend *b, int64_t until, const char *what,
                         struct ldr_err *err) {
  PGconn *conn = impl(b)->conn;
  for (;;) {
    int f = PQflush(conn);
    if (f == 0) return LDR_OK;
    int w = f < 0 ? -1 : wait_socket(conn, POLLOUT | POLLIN, until);
    if (w == 0) {
      drop_connection(impl(b));
      return ldr_sql_deadline(err, what);
    }
    if (w < 0 || !PQconsumeInput(conn)) return result_error(b, NULL, what, NULL, err);
  }
}

/* The next result of the command in progress (NULL: it has no more), waiting
 * for it until `until`; *failed set when the wait itself failed (err says why). */
static PGresult *next_result(struct ldr_backend *b, int64_t until, const char *what, int *failed,
                             struct ldr_err *err) {
  PGconn *conn = impl(b)->conn;
  *failed = 0;
  while (PQisBusy(conn)) {
    int w = wait_socket(conn, POLLIN, until);
    if (w == 0) {
      drop_connection(impl(b));
      ldr_sql_deadline(err, what);
      *failed = 1;
      return NULL;
    }
    if (w < 0 || !PQconsumeInput(conn)) {
      result_error(b, NULL, what, NULL, err);
      *failed = 1;
      return NULL;
    }
  }
  return PQgetResult(conn);
}

static int64_t command_until(const struct ldr_backend *b) {
  return b->deadline_ns ? b->deadline_ns + DEADLINE_GRACE_NS : 0;
}

/* One query outside a pipeline (text parameters, or a simple query of several
 * statements when there are none), expecting `want`; the result is kept in *out if asked. */
static enum ldr_rc query(struct ldr_backend *b, const char *sql, int nparams,
                         const char *const *params, ExecStatusType want, const char *what,
                         PGresult **out, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  int64_t until = command_until(b);
  int failed = 0;
  int sent = nparams ? PQsendQueryParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                     : PQsendQuery(s->conn, sql);
  if (!sent) return result_error(b, NULL, what, NULL, err);
  enum ldr_rc rc = flush(b, until, what, err);
  PGresult *keep = NULL;
  while (rc == LDR_OK) {
    PGresult *r = next_result(b, until, what, &failed, err);
    if (failed) rc = err->rc;
    if (r == NULL) break;
    if (PQresultStatus(r) != want && rc == LDR_OK) rc = result_error(b, r, what, NULL, err);
    if (keep == NULL && rc == LDR_OK && out != NULL)
      keep = r;
    else
      PQclear(r);
  }
  if (rc == LDR_OK && out != NULL)
    *out = keep;
  else
    PQclear(keep);
  return rc;
}

static enum ldr_rc simple(struct ldr_backend *b, const char *sql, ExecStatusType want,
                          const char *what, PGresult **out, struct ldr_err *err) {
  return query(b, sql, 0, NULL, want, what, out, err);
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

/* ---- a pipeline: the commands of one request, and their results ---------- */

enum cmd_kind { CMD_TIMEOUT, CMD_DEALLOCATE, CMD_PREPARE, CMD_READ, CMD_WRITE };

struct cmd {
  enum cmd_kind kind;
  const char *table;
  size_t read; /* CMD_READ: which read */
  char *name;  /* CMD_PREPARE: the statement's name (owned by the cache once prepared) */
  char key[LDR_TABLE_NAME_MAX + 8];
};

struct pipeline {
  struct cmd *cmds;
  size_t n, cap;
  long timeout; /* CMD_TIMEOUT's value */
};

/* The statement text for (kind, table), with the schema-qualified table. */
static void statement_sql(struct ldr_sb *sql, const char *schema, enum stmt_kind kind,
                          const char *t) {
  if (kind != ST_WRITE) {
    ldr_sb_printf(sql,
                  "SELECT entity_key, feature_name, value, event_ts FROM %s.\"%s\" "
                  "WHERE entity_key = ANY($1)%s",
                  schema, t, kind == ST_READ_SOME ? " AND feature_name = ANY($2)" : "");
    return;
  }
  /* Feast's upsert, fed from arrays so that the batch is one statement. */
  ldr_sb_printf(
      sql,
      "INSERT INTO %s.\"%s\" (\"entity_key\", \"feature_name\", \"value\", \"value_text\", "
      "\"vector_value\", \"event_ts\", \"created_ts\") "
      "SELECT k, f, v, t, NULL::bytea, e, c "
      "FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::text[], "
      "$5::timestamptz[], $6::timestamptz[]) AS r(k, f, v, t, e, c) "
      "ON CONFLICT (entity_key, feature_name) DO UPDATE SET \"value\" = EXCLUDED.\"value\", "
      "\"value_text\" = EXCLUDED.\"value_text\", \"vector_value\" = EXCLUDED.\"vector_value\", "
      "\"event_ts\" = EXCLUDED.\"event_ts\", \"created_ts\" = EXCLUDED.\"created_ts\"",
      schema, t);
}

/* Queues the statement timeout when the call's deadline calls for another one. */
static enum ldr_rc queue_timeout(struct ldr_backend *b, struct pipeline *p, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  long want = ldr_sql_timeout_ms(b->deadline_ns);
  if (want < 0) return ldr_err_set(err, LDR_DEADLINE, "the call's deadline passed");
  if (want == s->timeout_ms) return LDR_OK;
  char sql[64];
  snprintf(sql, sizeof sql, "SET statement_timeout = %ld", want);
  if (!PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
    return result_error(b, NULL, "statement_timeout", NULL, err);
  p->cmds[p->n++] = (struct cmd){.kind = CMD_TIMEOUT};
  p->timeout = want;
  return LDR_OK;
}

/* The name of the statement for (kind, table): cached, or queued for preparation now. */
static enum ldr_rc statement(struct ldr_backend *b, struct pipeline *p, enum stmt_kind kind,
                             const char *table, const char **name, struct ldr_err *err) {
  static const Oid types[][6] = {
      [ST_READ_ALL] = {OID_BYTEA_ARRAY},
      [ST_READ_SOME] = {OID_BYTEA_ARRAY, OID_TEXT_ARRAY},
      [ST_WRITE] = {OID_BYTEA_ARRAY, OID_TEXT_ARRAY, OID_BYTEA_ARRAY, OID_TEXT_ARRAY,
                    OID_TIMESTAMPTZ_ARRAY, OID_TIMESTAMPTZ_ARRAY},
  };
  static const int nparams[] = {[ST_READ_ALL] = 1, [ST_READ_SOME] = 2, [ST_WRITE] = 6};
  struct pg_impl *s = impl(b);
  struct cmd c = {.kind = CMD_PREPARE, .table = table};
  snprintf(c.key, sizeof c.key, "%d:%s", (int)kind, table);
  *name = ldr_stmt_find(&s->stmts, c.key);
  if (*name != NULL) return LDR_OK;
  /* Prepared in this pipeline already (two reads of one view)? */
  for (size_t i = 0; i < p->n; i++)
    if (p->cmds[i].kind == CMD_PREPARE && !strcmp(p->cmds[i].key, c.key)) {
      *name = p->cmds[i].name;
      return LDR_OK;
    }
  struct ldr_sb sql = {0};
  statement_sql(&sql, s->schema, kind, table);
  c.name = malloc(32);
  if (c.name == NULL || ldr_sb_str(&sql) == NULL) {
    free(c.name);
    ldr_sb_free(&sql);
    return ldr_err_set(err, LDR_NOMEM, "postgres: out of memory");
  }
  snprintf(c.name, 32, "ldr_%llu", ++s->seq);
  int sent = PQsendPrepare(s->conn, c.name, ldr_sb_str(&sql), nparams[kind], types[kind]);
  if (sent && ldr_log_enabled(LDR_LOG_DEBUG))
    ldr_log(LDR_LOG_DEBUG, "postgres: prepared %s: %s", c.name, ldr_sb_str(&sql));
  ldr_sb_free(&sql);
  if (!sent) {
    free(c.name);
    return result_error(b, NULL, "prepare", table, err);
  }
  p->cmds[p->n++] = c;
  *name = c.name;
  return LDR_OK;
}

/* Sends the Sync that ends the pipeline and makes its statements one transaction. */
static enum ldr_rc sync_pipeline(struct ldr_backend *b, const char *what, struct ldr_err *err) {
  if (!PQpipelineSync(impl(b)->conn)) return result_error(b, NULL, what, NULL, err);
  return flush(b, command_until(b), what, err);
}

/* Results of the reads, routed to their collectors as they arrive. */
struct read_sink {
  struct ldr_read *reads;
  struct ldr_collector *cols;
};

/* Takes the rows of a result into their collector (copied): one row in
 * single-row mode, all of them when libpq had the result before the mode was set. */
static enum ldr_rc take_rows(const PGresult *r, struct ldr_collector *c, struct ldr_err *err) {
  enum ldr_rc rc = LDR_OK;
  for (int i = 0; rc == LDR_OK && i < PQntuples(r); i++) {
    struct ldr_ts ts;
    int has_ts = !PQgetisnull(r, i, 3) && PQgetlength(r, i, 3) == 8;
    if (has_ts) ts = from_pg_micros((int64_t)get_be64((const uint8_t *)PQgetvalue(r, i, 3)));
    rc = ldr_collect_row(c, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0), PQgetvalue(r, i, 1),
                         (size_t)PQgetlength(r, i, 1), PQgetvalue(r, i, 2),
                         (size_t)PQgetlength(r, i, 2), has_ts ? &ts : NULL, err);
  }
  return rc;
}

/*
 * Collects the results of a pipeline sent and synced, command by command, up to
 * its Sync. The first error is kept; the commands after it were skipped by
 * the server (PGRES_PIPELINE_ABORTED). Prepared statements that made it are
 * cached; the statement timeout is remembered once it took.
 */
static enum ldr_rc collect(struct ldr_backend *b, struct pipeline *p, struct read_sink *sink,
                           const char *what, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  int64_t until = command_until(b);
  enum ldr_rc rc = LDR_OK;
  int failed = 0, in_transaction_error = 0;
  for (size_t i = 0; i < p->n && s->conn != NULL; i++) {
    struct cmd *c = &p->cmds[i];
    /* Rows one at a time, as they arrive: set before the command's first result. */
    if (c->kind == CMD_READ) PQsetSingleRowMode(s->conn);
    int ok = 0;
    for (;;) {
      PGresult *r = next_result(b, until, what, &failed, err);
      if (failed) {
        rc = err->rc;
        break;
      }
      if (r == NULL) break;
      ExecStatusType st = PQresultStatus(r);
      if ((st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) && c->kind == CMD_READ &&
          rc == LDR_OK && PQntuples(r) > 0) {
        rc = take_rows(r, &sink->cols[c->read], err);
        ok = st == PGRES_TUPLES_OK;
        if (rc != LDR_OK) {
          /* Past the cap, or no memory: the rest of the rows are not read;
           * the connection is dropped rather than drained. */
          PQclear(r);
          drop_connection(s);
          break;
        }
      } else if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        ok = 1;
      } else if (st == PGRES_FATAL_ERROR) {
        in_transaction_error = 1;
        if (rc == LDR_OK) rc = result_error(b, r, what, c->table, err);
      }
      PQclear(r);
    }
    if (c->kind == CMD_PREPARE) {
      int nomem = 0;
      void *old = ok && s->conn ? ldr_stmt_put(&s->stmts, c->key, c->name, &nomem) : NULL;
      if (!ok || s->conn == NULL || nomem) free(c->name);
      c->name = NULL;
      if (old != NULL) s->stale[s->n_stale++] = old; /* deallocated by the next pipeline */
    } else if (c->kind == CMD_TIMEOUT && ok) {
      s->timeout_ms = p->timeout;
    }
    if (failed) break;
  }
  for (size_t i = 0; i < p->n; i++) /* names of preparations never collected */
    if (p->cmds[i].kind == CMD_PREPARE) free(p->cmds[i].name);
  if (s->conn == NULL)
    return rc != LDR_OK ? rc : ldr_err_set(err, LDR_UNAVAILABLE, "%s: lost the connection", what);
  /* The Sync's own result, then the pipeline is over. */
  PGresult *r = next_result(b, until, what, &failed, err);
  if (failed) return err->rc;
  if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
    PQclear(r);
    drop_connection(s);
    return rc != LDR_OK
               ? rc
               : ldr_err_set(err, LDR_INTERNAL, "%s: postgres: the pipeline lost its sync", what);
  }
  PQclear(r);
  /* A SET in a transaction that failed was rolled back with it. */
  if (in_transaction_error) s->timeout_ms = -1;
  if (!PQexitPipelineMode(s->conn)) {
    drop_connection(s);
    if (rc == LDR_OK)
      rc = ldr_err_set(err, LDR_INTERNAL, "%s: postgres: cannot leave pipeline mode", what);
  }
  return rc;
}

/*
 * Starts a pipeline for `views` statements: pipeline mode, the statements the
 * cache evicted deallocated, and, when it changes, the statement timeout.
 */
static enum ldr_rc begin_pipeline(struct ldr_backend *b, struct pipeline *p, size_t views,
                                  struct ldr_arena *arena, const char *what, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  p->n = 0;
  p->cap = 1 + s->n_stale + 2 * views;
  p->cmds = ldr_arena_calloc(arena, p->cap, sizeof *p->cmds);
  if (p->cmds == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "%s: the request is larger than a call may hold", what);
  if (!PQenterPipelineMode(s->conn)) return result_error(b, NULL, what, NULL, err);
  for (; s->n_stale > 0; s->n_stale--) {
    char sql[48];
    snprintf(sql, sizeof sql, "DEALLOCATE %s", s->stale[s->n_stale - 1]);
    free(s->stale[s->n_stale - 1]);
    if (!PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
      return result_error(b, NULL, what, NULL, err);
    p->cmds[p->n++] = (struct cmd){.kind = CMD_DEALLOCATE};
  }
  return queue_timeout(b, p, err);
}

/* After a failure while queueing: the pipeline is abandoned with the connection. */
static enum ldr_rc abandon(struct ldr_backend *b, struct pipeline *p, enum ldr_rc rc) {
  for (size_t i = 0; i < p->n; i++)
    if (p->cmds[i].kind == CMD_PREPARE) free(p->cmds[i].name);
  drop_connection(impl(b));
  return rc;
}

/* ---- reads --------------------------------------------------------------- */

struct read_arg {
  struct ldr_read *reads;
  size_t n;
  struct ldr_collector *cols;
  struct ldr_arena *arena;
};

/* Queues the execution of one read: its distinct keys (and features) as binary arrays. */
static enum ldr_rc queue_read(struct ldr_backend *b, struct pipeline *p, struct read_arg *a,
                              size_t i, struct ldr_err *err) {
  struct ldr_read *r = &a->reads[i];
  struct ldr_collector *c = &a->cols[i];
  const char *name = NULL;
  enum ldr_rc rc =
      statement(b, p, r->n_features ? ST_READ_SOME : ST_READ_ALL, r->table, &name, err);
  if (rc != LDR_OK) return rc;
  size_t kbytes = 0, fbytes = 0;
  for (size_t k = 0; k < c->nuniq; k++) kbytes += c->uniq[k].len;
  for (size_t k = 0; k < r->n_features; k++) fbytes += strlen(r->features[k]);
  struct pg_array keys, feats;
  if (array_begin(&keys, a->arena, OID_BYTEA, c->nuniq, kbytes) != 0 ||
      array_begin(&feats, a->arena, OID_TEXT, r->n_features, fbytes) != 0)
    return ldr_err_set(err, LDR_EXHAUSTED, "read: the request is larger than a call may hold");
  for (size_t k = 0; k < c->nuniq; k++) array_put(&keys, c->uniq[k].bytes, c->uniq[k].len);
  for (size_t k = 0; k < r->n_features; k++)
    array_put(&feats, r->features[k], strlen(r->features[k]));
  const char *values[2] = {(const char *)keys.buf, (const char *)feats.buf};
  int lengths[2] = {array_end(&keys), array_end(&feats)};
  static const int formats[2] = {1, 1};
  if (!PQsendQueryPrepared(impl(b)->conn, name, r->n_features ? 2 : 1, values, lengths, formats, 1))
    return result_error(b, NULL, "read", r->table, err);
  /* The first command's mode is set now: libpq may read its result before collect() runs. */
  if (p->n == 0) PQsetSingleRowMode(impl(b)->conn);
  p->cmds[p->n++] = (struct cmd){.kind = CMD_READ, .table = r->table, .read = i};
  return LDR_OK;
}

static enum ldr_rc op_read(struct ldr_backend *b, void *varg, struct ldr_err *err) {
  struct read_arg *a = varg;
  struct pipeline pl, *p = &pl;
  for (size_t i = 0; i < a->n; i++) ldr_collect_reset(&a->cols[i]);
  enum ldr_rc rc = begin_pipeline(b, p, a->n, a->arena, "read", err);
  for (size_t i = 0; rc == LDR_OK && i < a->n; i++) rc = queue_read(b, p, a, i, err);
  if (rc == LDR_OK) rc = sync_pipeline(b, "read", err);
  if (rc != LDR_OK) return abandon(b, p, rc);
  struct read_sink sink = {a->reads, a->cols};
  return collect(b, p, &sink, "read", err);
}

static enum ldr_rc pg_read(struct ldr_backend *b, struct ldr_read *reads, size_t n,
                           struct ldr_arena *arena, struct ldr_err *err);

/* ---- writes -------------------------------------------------------------- */

struct write_arg {
  const struct ldr_write *writes;
  size_t n;
  struct ldr_flat **flat; /* per write: its (row, feature) pairs, last occurrence kept */
  size_t *nflat;
  struct ldr_arena *arena;
};

static enum ldr_rc queue_write(struct ldr_backend *b, struct pipeline *p, struct write_arg *a,
                               size_t w, struct ldr_err *err) {
  const char *table = a->writes[w].table;
  const struct ldr_flat *flat = a->flat[w];
  size_t n = a->nflat[w];
  const char *name = NULL;
  enum ldr_rc rc = statement(b, p, ST_WRITE, table, &name, err);
  if (rc != LDR_OK) return rc;
  size_t kbytes = 0, nbytes = 0, vbytes = 0, tbytes = 0;
  for (size_t i = 0; i < n; i++) {
    kbytes += flat[i].row->key.len;
    nbytes += strlen(flat[i].feature->name);
    vbytes += flat[i].feature->len;
    /* value_text is at most 32 bytes for numbers, or the string itself */
    const Feast__Types__Value *v = flat[i].feature->value;
    tbytes += v && v->val_case == FEAST__TYPES__VALUE__VAL_STRING_VAL ? strlen(v->string_val) : 32;
  }
  struct pg_array keys, names, values, texts, events, created;
  if (array_begin(&keys, a->arena, OID_BYTEA, n, kbytes) != 0 ||
      array_begin(&names, a->arena, OID_TEXT, n, nbytes) != 0 ||
      array_begin(&values, a->arena, OID_BYTEA, n, vbytes) != 0 ||
      array_begin(&texts, a->arena, OID_TEXT, n, tbytes) != 0 ||
      array_begin(&events, a->arena, OID_TIMESTAMPTZ, n, 8 * n) != 0 ||
      array_begin(&created, a->arena, OID_TIMESTAMPTZ, n, 8 * n) != 0)
    return ldr_err_set(err, LDR_EXHAUSTED, "write: the batch is larger than a call may hold");
  for (size_t i = 0; i < n; i++) {
    const struct ldr_write_row *row = flat[i].row;
    const struct ldr_write_feature *f = flat[i].feature;
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
    return result_error(b, NULL, "write", table, err);
  p->cmds[p->n++] = (struct cmd){.kind = CMD_WRITE, .table = table};
  return LDR_OK;
}

static enum ldr_rc op_write(struct ldr_backend *b, void *varg, struct ldr_err *err) {
  struct write_arg *a = varg;
  struct pipeline pl, *p = &pl;
  enum ldr_rc rc = begin_pipeline(b, p, a->n, a->arena, "write", err);
  for (size_t w = 0; rc == LDR_OK && w < a->n; w++) rc = queue_write(b, p, a, w, err);
  if (rc == LDR_OK) rc = sync_pipeline(b, "write", err);
  if (rc != LDR_OK) return abandon(b, p, rc);
  struct read_sink none = {NULL, NULL};
  return collect(b, p, &none, "write", err);
}

/* ---- DDL ----------------------------------------------------------------- */

static int quote_identifier(char *buf, size_t cap, const char *name);

/* The schema the tables live in: db_schema, or the user's name when it is null (as Feast). */
static const char *schema_of(struct ldr_backend *b) {
  return options(b)->db_schema ? options(b)->db_schema : options(b)->user;
}

/* Feast creates the schema only when information_schema says it is missing:
 * CREATE SCHEMA needs a privilege that users of an existing schema may lack. */
static enum ldr_rc ensure_schema(struct ldr_backend *b, struct ldr_err *err) {
  const char *params[1] = {schema_of(b)};
  PGresult *res = NULL;
  enum ldr_rc rc = query(b, "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", 1,
                         params, PGRES_TUPLES_OK, "update", &res, err);
  int exists = res != NULL && PQntuples(res) > 0;
  PQclear(res);
  if (rc != LDR_OK || exists) return rc;
  char user[200];
  if (quote_identifier(user, sizeof user, options(b)->user) != 0)
    return ldr_err_set(err, LDR_INVALID, "online_store.user: too long");
  struct ldr_sb sql = {0};
  ldr_sb_printf(&sql, "CREATE SCHEMA IF NOT EXISTS %s AUTHORIZATION %s", impl(b)->schema, user);
  rc = ldr_sb_str(&sql)
           ? simple(b, ldr_sb_str(&sql), PGRES_COMMAND_OK, "update: create schema", NULL, err)
           : ldr_err_set(err, LDR_NOMEM, "update: out of memory");
  ldr_sb_free(&sql);
  return rc;
}

struct ddl_arg {
  const char *const *keep, *const *drop;
  size_t n_keep, n_drop;
};

/*
 * A table to create must not take the name of another table's index, nor its
 * index the name of a table: PostgreSQL keeps both in one namespace. What
 * exists is asked of pg_class in the schema.
 */
static enum ldr_rc check_clash(struct ldr_backend *b, const struct ddl_arg *a,
                               struct ldr_err *err) {
  /* Table names are [A-Za-z0-9_] (ldr_table_name): an array literal needs no escaping. */
  struct ldr_sb names = {0};
  ldr_sb_puts(&names, "{");
  for (size_t i = 0; i < a->n_keep; i++)
    ldr_sb_printf(&names, "%s%s,%s_ek", i ? "," : "", a->keep[i], a->keep[i]);
  ldr_sb_puts(&names, "}");
  const char *params[2] = {schema_of(b), ldr_sb_str(&names)};
  PGresult *res = NULL;
  enum ldr_rc rc = params[1] ? query(b,
                                     "SELECT c.relname, c.relkind FROM pg_catalog.pg_class c JOIN "
                                     "pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                     "WHERE n.nspname = $1 AND c.relname = ANY($2::text[])",
                                     2, params, PGRES_TUPLES_OK, "update", &res, err)
                             : ldr_err_set(err, LDR_NOMEM, "update: out of memory");
  ldr_sb_free(&names);
  if (rc != LDR_OK) return rc;
  for (int r = 0; rc == LDR_OK && res != NULL && r < PQntuples(res); r++) {
    const char *name = PQgetvalue(res, r, 0), kind = PQgetvalue(res, r, 1)[0];
    for (size_t i = 0; i < a->n_keep; i++) {
      size_t len = strlen(a->keep[i]);
      /* keep[i]'s own index is fine; a table (or other relation) named like it is not */
      if (kind != 'i' && !strncmp(name, a->keep[i], len) && !strcmp(name + len, "_ek"))
        rc = ldr_err_set(err, LDR_FAILED_PRECONDITION,
                         "tables_to_keep[%zu]: the index of table %s would be %s, which is a table",
                         i, a->keep[i], name);
      else if (kind == 'i' && !strcmp(name, a->keep[i]))
        rc = ldr_err_set(err, LDR_FAILED_PRECONDITION,
                         "tables_to_keep[%zu]: %s is the index of another table", i, a->keep[i]);
    }
  }
  PQclear(res);
  return rc;
}

static enum ldr_rc op_update(struct ldr_backend *b, void *varg, struct ldr_err *err) {
  struct ddl_arg *a = varg;
  const char *sc = impl(b)->schema;
  enum ldr_rc rc = a->n_keep ? ensure_schema(b, err) : LDR_OK;
  if (rc == LDR_OK && a->n_keep) rc = check_clash(b, a, err);
  if (rc != LDR_OK) return rc;
  /* One simple query of several statements runs as one transaction. */
  struct ldr_sb sql = {0};
  for (size_t i = 0; i < a->n_keep; i++) {
    const char *t = a->keep[i];
    ldr_sb_printf(
        &sql,
        "CREATE TABLE IF NOT EXISTS %s.\"%s\"\n(\n    entity_key BYTEA,\n    feature_name TEXT,\n"
        "    value BYTEA,\n    value_text TEXT NULL,\n    vector_value BYTEA NULL,\n"
        "    event_ts TIMESTAMPTZ,\n    created_ts TIMESTAMPTZ,\n"
        "    PRIMARY KEY(entity_key, feature_name)\n);\n"
        "CREATE INDEX IF NOT EXISTS \"%s_ek\" ON %s.\"%s\" (entity_key);\n",
        sc, t, t, sc, t);
  }
  for (size_t i = 0; i < a->n_drop; i++)
    ldr_sb_printf(&sql, "DROP TABLE IF EXISTS %s.\"%s\"; DROP INDEX IF EXISTS %s.\"%s_ek\";\n", sc,
                  a->drop[i], sc, a->drop[i]);
  if (ldr_sb_str(&sql) == NULL)
    rc = ldr_err_set(err, LDR_NOMEM, "update: out of memory");
  else if (sql.len > 0)
    rc = simple(b, ldr_sb_str(&sql), PGRES_COMMAND_OK, "update", NULL, err);
  ldr_sb_free(&sql);
  /* Statements of dropped tables are stale; the next use prepares them again. */
  if (rc == LDR_OK && a->n_drop &&
      simple(b, "DEALLOCATE ALL", PGRES_COMMAND_OK, "update", NULL, err) == LDR_OK)
    ldr_stmt_clear(&impl(b)->stmts, free);
  return rc;
}

static enum ldr_rc op_ping(struct ldr_backend *b, void *arg, struct ldr_err *err) {
  (void)arg;
  return simple(b, "SELECT 1", PGRES_TUPLES_OK, "ping", NULL, err);
}

/* ---- the operations, through the shared plumbing --------------------------- */

static int pg_connected(struct ldr_backend *b) { return connection_ok(impl(b)); }

static enum ldr_rc no_begin(struct ldr_backend *b, struct ldr_err *err) {
  /* The statement timeout travels in each request's pipeline. */
  (void)b;
  (void)err;
  return LDR_OK;
}

static int pg_conflicted(struct ldr_backend *b) {
  int c = impl(b)->conflict;
  impl(b)->conflict = 0;
  return c;
}

static const struct ldr_sql_driver driver = {
    .name = "postgres",
    .connected = pg_connected,
    .connect = pg_connect,
    .begin_call = no_begin,
    .conflicted = pg_conflicted,
};

static enum ldr_rc pg_read(struct ldr_backend *b, struct ldr_read *reads, size_t n,
                           struct ldr_arena *arena, struct ldr_err *err) {
  struct ldr_collector *cols = ldr_arena_calloc(arena, n + 1, sizeof *cols);
  if (cols == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "read: the request is larger than a call may hold");
  size_t budget = ldr_read_budget(b);
  enum ldr_rc rc = LDR_OK;
  for (size_t i = 0; rc == LDR_OK && i < n; i++)
    rc = ldr_collect_begin(&cols[i], arena, reads[i].keys, reads[i].n_keys, &budget, err);
  struct read_arg a = {reads, n, cols, arena};
  if (rc == LDR_OK) rc = ldr_sql_run(b, &driver, &impl(b)->backoff, op_read, &a, err);
  for (size_t i = 0; rc == LDR_OK && i < n; i++) rc = ldr_collect_end(&cols[i], reads[i].out, err);
  return rc;
}

static enum ldr_rc pg_write(struct ldr_backend *b, const struct ldr_write *writes, size_t n,
                            struct ldr_arena *arena, struct ldr_err *err) {
  struct write_arg a = {writes, n, ldr_arena_calloc(arena, n + 1, sizeof *a.flat),
                        ldr_arena_calloc(arena, n + 1, sizeof *a.nflat), arena};
  if (a.flat == NULL || a.nflat == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "write: the batch is larger than a call may hold");
  /* One statement may not update a row twice: keep the last of each (key, feature). */
  enum ldr_rc rc = LDR_OK;
  for (size_t w = 0; rc == LDR_OK && w < n; w++)
    rc = ldr_flatten_last_wins(writes[w].rows, writes[w].n_rows, arena, &a.flat[w], &a.nflat[w],
                               err);
  if (rc == LDR_OK) rc = ldr_sql_run(b, &driver, &impl(b)->backoff, op_write, &a, err);
  return rc;
}

static enum ldr_rc pg_update(struct ldr_backend *b, const char *const *keep, size_t n_keep,
                             const char *const *drop, size_t n_drop, struct ldr_err *err) {
  struct ddl_arg a = {keep, drop, n_keep, n_drop};
  return ldr_sql_run(b, &driver, &impl(b)->backoff, op_update, &a, err);
}

static enum ldr_rc pg_teardown(struct ldr_backend *b, const char *const *tables, size_t n,
                               struct ldr_err *err) {
  return pg_update(b, NULL, 0, tables, n, err);
}

static enum ldr_rc pg_ping(struct ldr_backend *b, struct ldr_err *err) {
  return ldr_sql_run(b, &driver, &impl(b)->backoff, op_ping, NULL, err);
}

static void add_param(struct pg_impl *s, size_t *n, const char *k, const char *v) {
  if (v == NULL) return;
  s->kw[*n] = k;
  s->val[*n] = v;
  (*n)++;
}

/* `name` as a quoted SQL identifier ("" doubled inside). */
static int quote_identifier(char *buf, size_t cap, const char *name) {
  size_t o = 0;
  if (cap < 3) return -1;
  buf[o++] = '"';
  for (const char *p = name; *p; p++) {
    if (o + 3 >= cap) return -1;
    if (*p == '"') buf[o++] = '"';
    buf[o++] = *p;
  }
  buf[o++] = '"';
  buf[o] = '\0';
  return 0;
}

static enum ldr_rc pg_open(struct ldr_backend *b, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  const struct ldr_postgres_options *c = options(b);
  size_t n = 0;
  s->timeout_ms = -1;
  if (quote_identifier(s->schema, sizeof s->schema, schema_of(b)) != 0)
    return ldr_err_set(err, LDR_INVALID, "online_store.user: too long to name a schema");
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
  /* UTC for the session, so timestamps never depend on the server's time
   * zone. No search_path: every name is qualified with the schema. */
  add_param(s, &n, "options", "-c TimeZone=UTC");
  add_param(s, &n, "application_name", "larder");
  add_param(s, &n, "client_encoding", "UTF8");
  add_param(s, &n, "keepalives", "1");
  if (c->keepalives_idle > 0) {
    snprintf(s->keepalives_idle, sizeof s->keepalives_idle, "%d", c->keepalives_idle);
    add_param(s, &n, "keepalives_idle", s->keepalives_idle);
  }
  s->kw[n] = s->val[n] = NULL;
  return ldr_sql_open(b, &driver, &s->backoff, err);
}

static void pg_close(struct ldr_backend *b) { drop_connection(impl(b)); }

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
    .write = pg_write,
    .read = pg_read,
    .ping = pg_ping,
    .connected = pg_connected,
};
