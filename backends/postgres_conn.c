/* The PostgreSQL backend's connection: connecting, waiting for the socket
 * without blocking past the call's deadline, errors, and plain queries. */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/postgres_int.h"
#include "common/log.h"

void ldr_pg_drop_connection(struct pg_impl *s) {
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
int ldr_pg_wait_socket(PGconn *conn, short events, int64_t until_ns) {
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
  ldr_pg_drop_connection(s);
  s->conn = PQconnectStartParams(s->kw, s->val, 0);
  if (s->conn == NULL) return ldr_err_set(err, LDR_NOMEM, "postgres: out of memory");
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (PQstatus(s->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
         st != PGRES_POLLING_FAILED) {
    int w = ldr_pg_wait_socket(s->conn, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, until_ns);
    if (w == 0) {
      ldr_pg_drop_connection(s);
      return ldr_err_set(err, b->deadline_ns ? LDR_DEADLINE : LDR_UNAVAILABLE,
                         "postgres at %s:%d: no connection before the %s", o->host, o->port,
                         b->deadline_ns ? "call's deadline" : "connect timeout");
    }
    st = PQconnectPoll(s->conn);
  }
  if (PQstatus(s->conn) != CONNECTION_OK) {
    message_of(PQerrorMessage(s->conn), msg, sizeof msg);
    ldr_pg_drop_connection(s);
    return ldr_err_set(err, LDR_UNAVAILABLE,
                       "cannot connect to postgres at %s:%d (database %s, user %s): %s", o->host,
                       o->port, o->database, o->user, msg);
  }
  /* Binary timestamps are 64-bit microseconds only with integer_datetimes. */
  const char *idt = PQparameterStatus(s->conn, "integer_datetimes");
  if (idt == NULL || strcmp(idt, "on") != 0) {
    ldr_pg_drop_connection(s);
    return ldr_err_set(err, LDR_INTERNAL, "postgres at %s:%d: integer_datetimes is off", o->host,
                       o->port);
  }
  PQsetnonblocking(s->conn, 1);
  PQsetNoticeProcessor(s->conn, notice, NULL);
  return LDR_OK;
}

/* Maps a failed result (or a lost connection) to a code, copying the message;
 * the message goes to the client only for codes that name no driver text. */
enum ldr_rc ldr_pg_result_error(struct ldr_backend *b, const PGresult *res, const char *what,
                                const char *table, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  char msg[200];
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  message_of(res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn), msg, sizeof msg);
  if (!connection_ok(s) || (state && !strncmp(state, "08", 2)) ||
      (state && (!strcmp(state, "57P01") || !strcmp(state, "57P02") || !strcmp(state, "57P03")))) {
    ldr_pg_drop_connection(s);
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
enum ldr_rc ldr_pg_flush(struct ldr_backend *b, int64_t until, const char *what,
                         struct ldr_err *err) {
  PGconn *conn = impl(b)->conn;
  for (;;) {
    int f = PQflush(conn);
    if (f == 0) return LDR_OK;
    int w = f < 0 ? -1 : ldr_pg_wait_socket(conn, POLLOUT | POLLIN, until);
    if (w == 0) {
      ldr_pg_drop_connection(impl(b));
      return ldr_sql_deadline(err, what);
    }
    if (w < 0 || !PQconsumeInput(conn)) return ldr_pg_result_error(b, NULL, what, NULL, err);
  }
}

/* The next result of the command in progress (NULL: it has no more), waiting
 * for it until `until`; *failed set when the wait itself failed (err says why). */
PGresult *ldr_pg_next_result(struct ldr_backend *b, int64_t until, const char *what, int *failed,
                             struct ldr_err *err) {
  PGconn *conn = impl(b)->conn;
  *failed = 0;
  while (PQisBusy(conn)) {
    int w = ldr_pg_wait_socket(conn, POLLIN, until);
    if (w == 0) {
      ldr_pg_drop_connection(impl(b));
      ldr_sql_deadline(err, what);
      *failed = 1;
      return NULL;
    }
    if (w < 0 || !PQconsumeInput(conn)) {
      ldr_pg_result_error(b, NULL, what, NULL, err);
      *failed = 1;
      return NULL;
    }
  }
  return PQgetResult(conn);
}

int64_t ldr_pg_command_until(const struct ldr_backend *b) {
  return b->deadline_ns ? b->deadline_ns + DEADLINE_GRACE_NS : 0;
}

/* One query outside a pipeline (text parameters, or a simple query of several
 * statements when there are none), expecting `want`; the result is kept in *out if asked. */
enum ldr_rc ldr_pg_query(struct ldr_backend *b, const char *sql, int nparams,
                         const char *const *params, ExecStatusType want, const char *what,
                         PGresult **out, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  int64_t until = ldr_pg_command_until(b);
  int failed = 0;
  int sent = nparams ? PQsendQueryParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                     : PQsendQuery(s->conn, sql);
  if (!sent) return ldr_pg_result_error(b, NULL, what, NULL, err);
  enum ldr_rc rc = ldr_pg_flush(b, until, what, err);
  PGresult *keep = NULL;
  while (rc == LDR_OK) {
    PGresult *r = ldr_pg_next_result(b, until, what, &failed, err);
    if (failed) rc = err->rc;
    if (r == NULL) break;
    if (PQresultStatus(r) != want && rc == LDR_OK) rc = ldr_pg_result_error(b, r, what, NULL, err);
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

enum ldr_rc ldr_pg_simple(struct ldr_backend *b, const char *sql, ExecStatusType want,
                          const char *what, PGresult **out, struct ldr_err *err) {
  return ldr_pg_query(b, sql, 0, NULL, want, what, out, err);
}

int ldr_pg_connected(struct ldr_backend *b) { return connection_ok(impl(b)); }

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

const struct ldr_sql_driver ldr_pg_driver = {
    .name = "postgres",
    .connected = ldr_pg_connected,
    .connect = pg_connect,
    .begin_call = no_begin,
    .conflicted = pg_conflicted,
};
