/*
 * Feast's SQL registry in PostgreSQL, read through ldr_reader_ops. The URL
 * becomes libpq keywords (REGISTRY.md §2), its query keys passed on as they
 * are. The session is read-only (default_transaction_read_only, and each
 * snapshot a READ ONLY transaction) with a statement_timeout; every wait for
 * the server is bounded on this side too, so that a server that stops
 * answering (stopped, partitioned) holds the registry's thread, or larder's
 * shutdown, no longer than the timeout. libpq is driven asynchronously for
 * that, with the same waits as the backend (PQconnectStartParams takes the
 * same keywords PQconnectdbParams would).
 *
 * Results come in text format: numbers arrive as their decimal text, and a
 * bytea column (the protos) as hex ("\x0a1b...": the session sets
 * bytea_output), decoded here into one buffer per column.
 */
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/postgres_int.h"
#include "common/log.h"

/* How long past the statement_timeout to wait for the server's own error
 * (which names the cause) before giving up on the server. */
#define GRACE_NS (250 * 1000000LL)
/* Keywords the reader passes beside the URL's query keys, and the closing NULL. */
#define OWN_KEYWORDS 8

/* A bytea column's decoded value: the buffer is reused row after row. */
struct column {
  unsigned char *buf;
  size_t cap;
};

/* Each reader file completes this type for itself, as curl's TLS backends
 * each define their own struct ssl_backend_data. */
struct ldr_reader {
  PGconn *conn;
  char where[200]; /* "postgresql at host:port (database d, user u)", for messages */
  char *secret;    /* the password, kept only to take it out of libpq's messages */
  int timeout_s;
  int in_snapshot;
};

static void drop(struct ldr_reader *r) {
  PQfinish(r->conn);
  r->conn = NULL;
  r->in_snapshot = 0;
}

/* libpq's message, copied at once (the next call overwrites it) on one line,
 * without the password. */
static void message_of(const struct ldr_reader *r, const char *m, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", m != NULL && *m ? m : "no message");
  size_t n = strlen(buf);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = '\0';
  for (char *p = buf; *p; p++)
    if (*p == '\n') *p = ' ';
  ldr_sql_redact(buf, r->secret);
}

/* Maps a failed result, or with `res` NULL the connection's error, to a code. */
static enum ldr_rc fail(struct ldr_reader *r, const PGresult *res, const char *what,
                        struct ldr_err *err) {
  char msg[200];
  const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  /* The primary message alone: the full one adds "ERROR:" and the statement's text. */
  const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  message_of(r,
             primary != NULL ? primary
             : res != NULL   ? PQresultErrorMessage(res)
                             : PQerrorMessage(r->conn),
             msg, sizeof msg);
  if (state == NULL) state = "";
  if (PQstatus(r->conn) != CONNECTION_OK || !strncmp(state, "08", 2) ||
      !strncmp(state, "57P0", 4)) {
    enum ldr_rc rc =
        ldr_err_set(err, LDR_UNAVAILABLE, "%s: %s: lost the connection: %s", r->where, what, msg);
    drop(r);
    return rc;
  }
  if (!strcmp(state, "42P01"))
    return ldr_err_set(err, LDR_NOT_FOUND, "%s: %s: %s", r->where, what, msg);
  if (!strcmp(state, "57014"))
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: %s ran past the statement_timeout (%d s)",
                       r->where, what, r->timeout_s);
  /* A write in a read-only transaction, or a table the user may not read. */
  if (!strcmp(state, "25006") || !strcmp(state, "42501"))
    return ldr_err_set(err, LDR_DENIED, "%s: %s: %s", r->where, what, msg);
  /* Resources (53), conflicts (40), a lock not granted, the system (58): the
   * server refuses now and may not later. */
  if (!strncmp(state, "53", 2) || !strncmp(state, "40", 2) || !strcmp(state, "55P03") ||
      !strncmp(state, "58", 2))
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: %s: %s", r->where, what, msg);
  return ldr_err_set(err, LDR_INTERNAL, "%s: %s (SQLSTATE %s): %s", r->where, what,
                     *state ? state : "-", msg);
}

/*
 * Runs `sql`, waiting for its results no longer than the statement timeout
 * and a grace. `extended` sends it through the extended protocol, which runs
 * one statement only; otherwise several may follow one another. The first
 * rows it returns are kept in *out (the caller PQclear()s them) when asked.
 */
static enum ldr_rc run(struct ldr_reader *r, const char *sql, int extended, const char *what,
                       PGresult **out, struct ldr_err *err) {
  PGresult *keep = NULL;
  enum ldr_rc rc = LDR_OK;
  if (r->conn == NULL)
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: %s: not connected (the connection was lost)",
                       r->where, what);
  int64_t until = ldr_now_ns() + (int64_t)r->timeout_s * 1000000000 + GRACE_NS;
  int sent = extended ? PQsendQueryParams(r->conn, sql, 0, NULL, NULL, NULL, NULL, 0)
                      : PQsendQuery(r->conn, sql);
  if (!sent) return fail(r, NULL, what, err);
  for (;;) {
    while (PQisBusy(r->conn)) {
      int w = ldr_pg_wait_socket(r->conn, POLLIN, until);
      if (w == 0) {
        rc = ldr_err_set(err, LDR_UNAVAILABLE, "%s: %s: no answer within %d s", r->where, what,
                         r->timeout_s);
        drop(r);
        goto out;
      }
      if (w < 0 || !PQconsumeInput(r->conn)) {
        rc = fail(r, NULL, what, err);
        goto out;
      }
    }
    PGresult *res = PQgetResult(r->conn);
    if (res == NULL) break;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK && keep == NULL && out != NULL) {
      keep = res;
      continue;
    }
    if (st == PGRES_FATAL_ERROR && rc == LDR_OK) rc = fail(r, res, what, err);
    PQclear(res);
    if (r->conn == NULL) goto out;
    /* COPY and the like would leave the connection in a state this reader
     * does not drive: it is closed. */
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY &&
        st != PGRES_FATAL_ERROR && st != PGRES_NONFATAL_ERROR) {
      rc = ldr_err_set(err, LDR_INTERNAL, "%s: %s: unexpected result (%s)", r->where, what,
                       PQresStatus(st));
      drop(r);
      goto out;
    }
  }
out:
  if (rc == LDR_OK && out != NULL)
    *out = keep;
  else
    PQclear(keep);
  return rc;
}

/* Server notices (a ROLLBACK with no transaction) go to the debug log, not to
 * stderr as libpq would print them. */
static void notice(void *arg, const char *message) {
  char msg[200];
  message_of(arg, message, msg, sizeof msg);
  ldr_log(LDR_LOG_DEBUG, "registry: postgresql: %s", msg);
}

/* The value of query key `key`, or NULL. */
static const char *query_value(const struct ldr_url *url, const char *key) {
  const char *v = NULL;
  for (size_t i = 0; i < url->n_query; i++)
    if (!strcmp(url->query_keys[i], key)) v = url->query_values[i];
  return v;
}

/* Names the server for messages, as the URL gives it (a query key overrides). */
static void describe(struct ldr_reader *r, const struct ldr_url *url, const char *port) {
  const char *host = query_value(url, "host") ? query_value(url, "host") : url->host;
  const char *user = query_value(url, "user") ? query_value(url, "user") : url->user;
  const char *db = query_value(url, "dbname") ? query_value(url, "dbname") : url->database;
  int v6 = host != NULL && strchr(host, ':') != NULL;
  snprintf(r->where, sizeof r->where, "postgresql at %s%s%s:%s (database %s, user %s)",
           v6 ? "[" : "", host ? host : "the local socket", v6 ? "]" : "", port, db ? db : "-",
           user ? user : "by default");
}

/* libpq's keywords and values, NULL-terminated, in the order given. */
struct params {
  const char **kw, **val;
  size_t n;
};

static void param(struct params *p, const char *keyword, const char *value) {
  p->kw[p->n] = keyword;
  p->val[p->n] = value;
  p->n++;
}

static enum ldr_rc pg_open(const struct ldr_url *url, const char *dir, int timeout_s,
                           struct ldr_reader **out, struct ldr_err *err) {
  struct ldr_reader *r = calloc(1, sizeof *r);
  struct params p = {0};
  char port[16], connect_timeout[16], settings[160];
  enum ldr_rc rc = LDR_OK;
  (void)dir;
  *out = r;
  if (r == NULL) return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  r->timeout_s = timeout_s > 0 ? timeout_s : 1;
  p.kw = calloc(url->n_query + OWN_KEYWORDS, sizeof *p.kw);
  p.val = calloc(url->n_query + OWN_KEYWORDS, sizeof *p.val);
  const char *password =
      query_value(url, "password") ? query_value(url, "password") : url->password;
  r->secret = password != NULL ? strdup(password) : NULL;
  if (p.kw == NULL || p.val == NULL || (password != NULL && r->secret == NULL)) {
    rc = ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    goto out;
  }
  snprintf(port, sizeof port, "%d", url->port ? url->port : 5432);
  describe(r, url, query_value(url, "port") ? query_value(url, "port") : port);
  /* Absent values are left out: libpq then uses its defaults (a host's
   * absence means the local socket). The query keys come after the URL's
   * parts, and libpq keeps the last value of a keyword: host=/dir wins. */
  param(&p, "fallback_application_name", "larder");
  if (url->host != NULL) param(&p, "host", url->host);
  param(&p, "port", port);
  param(&p, "dbname", url->database);
  if (url->user != NULL) param(&p, "user", url->user);
  if (url->password != NULL) param(&p, "password", url->password);
  /* A connect_timeout in the URL may shorten the wait, never lengthen it. */
  int wait_s = r->timeout_s;
  for (size_t i = 0; i < url->n_query; i++) {
    if (strcmp(url->query_keys[i], "connect_timeout") != 0) {
      param(&p, url->query_keys[i], url->query_values[i]);
      continue;
    }
    int v = atoi(url->query_values[i]);
    if (v > 0 && v < wait_s) wait_s = v;
  }
  snprintf(connect_timeout, sizeof connect_timeout, "%d", wait_s);
  param(&p, "connect_timeout", connect_timeout);
  param(&p, NULL, NULL);

  r->conn = PQconnectStartParams(p.kw, p.val, 0);
  if (r->conn == NULL) {
    rc = ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    goto out;
  }
  int64_t until = ldr_now_ns() + (int64_t)wait_s * 1000000000;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (PQstatus(r->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
         st != PGRES_POLLING_FAILED) {
    int w = ldr_pg_wait_socket(r->conn, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, until);
    if (w == 0) {
      rc = ldr_err_set(err, LDR_UNAVAILABLE, "cannot connect to %s: no answer within %d s",
                       r->where, wait_s);
      goto out;
    }
    if (w < 0) break; /* PQstatus says why below */
    st = PQconnectPoll(r->conn);
  }
  if (PQstatus(r->conn) != CONNECTION_OK) {
    char msg[200];
    message_of(r, PQerrorMessage(r->conn), msg, sizeof msg);
    rc = ldr_err_set(err, LDR_UNAVAILABLE, "cannot connect to %s: %s", r->where, msg);
    goto out;
  }
  PQsetNoticeProcessor(r->conn, notice, r);
  snprintf(settings, sizeof settings,
           "SET statement_timeout = %d; SET bytea_output = 'hex'; "
           "SET default_transaction_read_only = on",
           r->timeout_s * 1000);
  rc = run(r, settings, 0, "open", NULL, err);
out:
  if (rc != LDR_OK && r->conn != NULL) drop(r);
  free(p.kw);
  free(p.val);
  return rc;
}

static void pg_close(struct ldr_reader *r) {
  if (r == NULL) return;
  drop(r);
  if (r->secret != NULL) memset(r->secret, 0, strlen(r->secret));
  free(r->secret);
  free(r);
}

/* Ends the snapshot. A transaction that would not end closes the connection,
 * so that the next call fails and the caller reconnects, rather than reading
 * on in an old snapshot (a BEGIN inside a transaction is only a warning). */
static void pg_end(struct ldr_reader *r) {
  if (r == NULL || r->conn == NULL || !r->in_snapshot) return;
  struct ldr_err ignored;
  ldr_err_clear(&ignored);
  r->in_snapshot = 0;
  enum ldr_rc rc = run(r, "ROLLBACK", 0, "end", NULL, &ignored);
  if (r->conn != NULL && (rc != LDR_OK || PQtransactionStatus(r->conn) != PQTRANS_IDLE)) drop(r);
}

/* REPEATABLE READ takes its snapshot at the transaction's first statement,
 * not at BEGIN: "SELECT 1" takes it now, so that begin() is the moment it shows. */
static enum ldr_rc pg_begin(struct ldr_reader *r, struct ldr_err *err) {
  pg_end(r);
  r->in_snapshot = 1;
  enum ldr_rc rc =
      run(r, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1", 0, "begin", NULL, err);
  if (rc != LDR_OK) pg_end(r);
  return rc;
}

/* Decodes bytea's hex text ("\x0a1b") into `col`; -1 when it is not that. */
static int unhex(const char *s, size_t n, struct column *col, size_t *len) {
  if (n < 2 || s[0] != '\\' || s[1] != 'x' || n % 2 != 0) return -1;
  *len = (n - 2) / 2;
  if (*len > col->cap) {
    unsigned char *b = realloc(col->buf, *len);
    if (b == NULL) return -2;
    col->buf = b;
    col->cap = *len;
  }
  for (size_t i = 0; i < *len; i++) {
    int v = 0;
    for (size_t k = 0; k < 2; k++) {
      char c = s[2 + 2 * i + k];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    col->buf[i] = (unsigned char)v;
  }
  return 0;
}

/* Calls fn for each row of `res`, bytea columns decoded. */
static enum ldr_rc deliver(struct ldr_reader *r, const PGresult *res, ldr_row_fn fn, void *arg,
                           struct ldr_err *err) {
  int n = PQnfields(res), rows = PQntuples(res);
  size_t width = n > 0 ? (size_t)n : 1;
  struct ldr_row_cell *cells = calloc(width, sizeof *cells);
  struct column *cols = calloc(width, sizeof *cols);
  enum ldr_rc rc = LDR_OK;
  if (cells == NULL || cols == NULL) {
    rc = ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    goto out;
  }
  for (int t = 0; t < rows; t++) {
    for (int i = 0; i < n; i++) {
      struct ldr_row_cell *c = &cells[i];
      c->null = PQgetisnull(res, t, i);
      c->data = PQgetvalue(res, t, i);
      c->len = (size_t)PQgetlength(res, t, i);
      if (c->null || PQftype(res, i) != OID_BYTEA) continue;
      int u = unhex(c->data, c->len, &cols[i], &c->len);
      if (u != 0) {
        rc = u == -2 ? ldr_err_set(err, LDR_NOMEM, "registry: out of memory")
                     : ldr_err_set(err, LDR_INTERNAL, "%s: query: column %d is not hex bytea",
                                   r->where, i + 1);
        goto out;
      }
      c->data = c->len ? (const void *)cols[i].buf : "";
    }
    rc = fn(arg, cells, (size_t)n, err);
    if (rc != LDR_OK) {
      ldr_err_set(err, rc, "%s: query: a row was refused", r->where);
      goto out;
    }
  }
out:
  for (int i = 0; cols != NULL && i < n; i++) free(cols[i].buf);
  free(cols);
  free(cells);
  return rc;
}

/*
 * In a snapshot, each query runs inside a savepoint: an error (a table that
 * does not exist, which registries of older Feast releases lack) would
 * otherwise abort the whole transaction, and every later query of the
 * snapshot with it. Rolling back to the savepoint keeps the snapshot.
 */
static enum ldr_rc pg_query(struct ldr_reader *r, const char *sql, ldr_row_fn fn, void *arg,
                            struct ldr_err *err) {
  PGresult *res = NULL;
  int guarded = r->in_snapshot;
  enum ldr_rc rc = LDR_OK;
  if (guarded) rc = run(r, "SAVEPOINT ldr_query", 0, "query", NULL, err);
  if (rc != LDR_OK) return rc;
  rc = run(r, sql, 1, "query", &res, err);
  if (guarded && r->conn != NULL) {
    struct ldr_err e;
    ldr_err_clear(&e);
    const char *after = rc == LDR_OK ? "RELEASE SAVEPOINT ldr_query"
                                     : "ROLLBACK TO SAVEPOINT ldr_query; "
                                       "RELEASE SAVEPOINT ldr_query";
    if (run(r, after, 0, "query", NULL, &e) != LDR_OK) {
      /* The snapshot cannot go on: the caller reconnects. */
      if (rc == LDR_OK) rc = ldr_err_set(err, LDR_UNAVAILABLE, "%s", e.msg);
      drop(r);
    }
  }
  if (rc == LDR_OK && res != NULL) rc = deliver(r, res, fn, arg, err);
  PQclear(res);
  return rc;
}

static const char *const dialects[] = {"postgresql", NULL};

const struct ldr_reader_ops ldr_postgres_reader = {
    .dialects = dialects,
    .open = pg_open,
    .begin = pg_begin,
    .query = pg_query,
    .end = pg_end,
    .close = pg_close,
    .tables_sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                  "current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
};
