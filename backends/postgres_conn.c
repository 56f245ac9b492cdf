/* The PostgreSQL backend's connection: connecting, waiting for the socket
 * without blocking past the call's deadline, errors, and plain queries. */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/postgres_int.h"
#include "common/log.h"

void ldr_pg_forget_stale(struct pg_conn *c) {
  for (size_t i = 0; i < c->n_stale; i++) free(c->stale[i]);
  c->n_stale = 0;
}

void ldr_pg_drop_connection(struct pg_conn *c) {
  PQfinish(c->conn);
  c->conn = NULL;
  ldr_stmt_clear(&c->stmts, free);
  ldr_pg_forget_stale(c);
  c->tag = 0;
  c->timeout_ms = -1;
  c->generic = 0;
  c->sql.host = -1;
}

static int connection_ok(const struct pg_conn *c) {
  return c->conn != NULL && PQstatus(c->conn) == CONNECTION_OK;
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

/*
 * Server notices ("relation already exists, skipping") go to the debug log,
 * not to stderr as libpq would print them. One matters: a commit whose wait
 * for a synchronous standby was cancelled (by the statement timeout, or a
 * cancel request) reports success with a warning from SyncRepWaitForLSN, yet
 * the standby may not have the transaction: the write is then not
 * acknowledged (ldr_pg_write). The routine's name is not translated; the
 * message may be.
 */
static void notice(void *arg, const PGresult *res) {
  struct pg_conn *c = arg;
  const char *routine = PQresultErrorField(res, PG_DIAG_SOURCE_FUNCTION);
  if (routine != NULL && !strcmp(routine, "SyncRepWaitForLSN")) c->unreplicated = 1;
  char msg[200];
  message_of(PQresultErrorMessage(res), msg, sizeof msg);
  ldr_log(LDR_LOG_DEBUG, "postgres: %s", msg);
}

/* The i-th item of a comma-separated list into buf: 1, or 0 past the last. */
static int nth_item(const char *list, size_t i, char *buf, size_t cap) {
  const char *p = list;
  for (; i > 0 && p != NULL; i--) {
    p = strchr(p, ',');
    if (p != NULL) p++;
  }
  if (p == NULL || cap == 0) return 0;
  size_t n = strcspn(p, ",");
  snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
  return 1;
}

int ldr_pg_host_label(const struct ldr_store_config *cfg, size_t i, char *buf, size_t cap) {
  const struct ldr_postgres_options *o = cfg->opts;
  char host[256], port[8];
  if (!nth_item(o->host, i, host, sizeof host)) return 0;
  /* One port serves every host; else each host has its own. */
  if (!nth_item(o->port, i, port, sizeof port)) nth_item(o->port, 0, port, sizeof port);
  snprintf(buf, cap, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
  return 1;
}

/* "h1:5432, h2:5433": the servers, for messages that go to the log. */
static void servers_of(const struct ldr_backend *b, char *buf, size_t cap) {
  char one[280];
  buf[0] = '\0';
  for (size_t i = 0; ldr_pg_host_label(b->cfg, i, one, sizeof one); i++)
    snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i ? ", " : "", one);
}

/* Which configured server an open connection is on (libpq says which host of the list). */
static int server_of(const struct ldr_backend *b, PGconn *conn) {
  const char *host = PQhost(conn), *port = PQport(conn);
  char label[280], want[280];
  if (host == NULL || port == NULL) return -1;
  snprintf(want, sizeof want, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
  for (size_t i = 0; ldr_pg_host_label(b->cfg, i, label, sizeof label); i++)
    if (!strcmp(label, want)) return (int)i;
  return -1;
}

/* Opens a connection to a server that is `target` (target_session_attrs),
 * waiting at most until until_ns; *out is ready for use, or NULL on failure.
 * *silent: the time ran out before the server sent a byte. */
static enum ldr_rc open_one(struct ldr_backend *b, const char *target, int64_t until_ns,
                            PGconn **out, int *silent, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  const struct ldr_postgres_options *o = options(b);
  char msg[200], servers[600];
  enum ldr_rc rc = LDR_OK;
  s->val[s->target] = target;
  PGconn *conn = PQconnectStartParams(s->kw, s->val, 0);
  *out = NULL;
  if (conn == NULL) return ldr_err_set(err, LDR_NOMEM, "postgres: out of memory");
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (PQstatus(conn) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    int w = ldr_pg_wait_socket(conn, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, until_ns);
    if (w == 0) {
      ConnStatusType cs = PQstatus(conn);
      *silent = !ldr_backend_aborting() &&
                (cs == CONNECTION_STARTED || cs == CONNECTION_MADE ||
                 cs == CONNECTION_AWAITING_RESPONSE || cs == CONNECTION_SSL_STARTUP);
      servers_of(b, servers, sizeof servers);
      rc = ldr_err_set(err, b->deadline_ns ? LDR_DEADLINE : LDR_UNAVAILABLE,
                       "postgres at %s: no connection before the %s", servers,
                       b->deadline_ns ? "call's deadline" : "connect timeout");
      goto out;
    }
    st = PQconnectPoll(conn);
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    message_of(PQerrorMessage(conn), msg, sizeof msg);
    servers_of(b, servers, sizeof servers);
    rc = ldr_err_set(err, LDR_UNAVAILABLE,
                     "cannot connect to postgres at %s (database %s, user %s%s%s): %s", servers,
                     o->database, o->user, strcmp(target, "any") ? ", a server that is " : "",
                     strcmp(target, "any") ? target : "", msg);
    goto out;
  }
  /* Binary timestamps are 64-bit microseconds only with integer_datetimes. */
  const char *idt = PQparameterStatus(conn, "integer_datetimes");
  if (idt == NULL || strcmp(idt, "on") != 0) {
    servers_of(b, servers, sizeof servers);
    rc = ldr_err_set(err, LDR_INTERNAL, "postgres at %s: integer_datetimes is off", servers);
    goto out;
  }
  PQsetnonblocking(conn, 1);
  *out = conn;
  conn = NULL;
out:
  PQfinish(conn);
  return rc;
}

/*
 * With several hosts, larder tries them one at a time rather than handing
 * libpq the list: libpq waits on a host that does not answer (a machine that
 * is gone drops the packets; a stalled server accepts and never replies) until
 * the kernel gives up, minutes later, and never reaches the next one — so a
 * dead primary's writes would wait out every call's deadline although the
 * promoted standby is next in the list.
 *
 * Each host gets at most PG_HOST_WAIT_NS. One that sent nothing back in
 * PG_QUIET_NS or more is quiet for LDR_SQL_FALLBACK_NS, for every worker:
 * tried after the others, and then for PG_QUIET_NS only, so that
 * a call whose deadline a dead host took leaves the next call to the next
 * host, and a dead host at the end of the list costs calls little. A host that
 * answers and refuses, or is not what `target` asks, costs a round trip and
 * keeps its place. When every host was tried without the call's deadline
 * passing, the answer is UNAVAILABLE (pg_connect then looks for any server
 * where a standby was preferred; backends/sql.c backs off).
 */
#define PG_HOST_WAIT_NS (2 * 1000000000LL)
#define PG_QUIET_NS (250 * 1000000LL)
#define PG_HOSTS_MAX 16
static _Atomic int64_t quiet_until_ns[PG_HOSTS_MAX];

static enum ldr_rc open_conn(struct ldr_backend *b, const char *target, int64_t until_ns,
                             PGconn **out, struct ldr_err *err) {
  struct pg_impl *s = impl(b);
  const struct ldr_postgres_options *o = options(b);
  size_t n = s->n_hosts;
  int silent = 0;
  if (n < 2 || n > PG_HOSTS_MAX || s->host_at == SIZE_MAX)
    return open_one(b, target, until_ns, out, &silent, err);
  /* libpq's prefer-standby on one host takes the primary: a standby is looked
   * for on each host, and pg_connect makes the second pass for any server. */
  if (!strcmp(target, "prefer-standby")) target = "standby";
  /* Each flag read once: other workers change them meanwhile. */
  int quiet[PG_HOSTS_MAX];
  size_t order[PG_HOSTS_MAX], k = 0;
  int64_t now = ldr_now_ns();
  for (size_t i = 0; i < n; i++) quiet[i] = atomic_load(&quiet_until_ns[i]) > now;
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < n; i++)
      if (quiet[i] == pass) order[k++] = i;
  char host[256], port[8], label[280];
  enum ldr_rc rc = LDR_UNAVAILABLE;
  for (size_t j = 0; j < n; j++) {
    size_t i = order[j];
    host[0] = port[0] = '\0';
    nth_item(o->host, i, host, sizeof host);
    if (!nth_item(o->port, i, port, sizeof port)) nth_item(o->port, 0, port, sizeof port);
    ldr_pg_host_label(b->cfg, i, label, sizeof label);
    s->val[s->host_at] = host;
    if (s->port_at != SIZE_MAX) s->val[s->port_at] = port;
    int64_t start = ldr_now_ns(), window = quiet[i] ? PG_QUIET_NS : PG_HOST_WAIT_NS;
    int64_t limit = until_ns != 0 && until_ns < start + window ? until_ns : start + window;
    silent = 0;
    ldr_err_clear(err);
    rc = open_one(b, target, limit, out, &silent, err);
    if (rc == LDR_OK) {
      atomic_store(&quiet_until_ns[i], 0);
      break;
    }
    int64_t end = ldr_now_ns();
    ldr_log(LDR_LOG_DEBUG, "postgres: %s as %s: %s after %lld ms%s", label, target, ldr_rc_str(rc),
            (long long)((end - start) / 1000000), silent ? " (nothing sent back)" : "");
    if (silent && end - start >= PG_QUIET_NS) {
      if (!quiet[i])
        ldr_log(LDR_LOG_WARN,
                "postgres: %s sent nothing in %lld ms; the other hosts come first for %d s", label,
                (long long)((end - start) / 1000000), (int)(LDR_SQL_FALLBACK_NS / 1000000000));
      atomic_store(&quiet_until_ns[i], end + LDR_SQL_FALLBACK_NS);
    }
    if (rc == LDR_NOMEM || ldr_backend_aborting()) break;
    if (until_ns != 0 && end >= until_ns) break; /* the call's own deadline: DEADLINE_EXCEEDED */
    if (rc == LDR_DEADLINE) {                    /* this host's window, not the call's deadline */
      ldr_err_clear(err);
      rc = ldr_err_set(err, LDR_UNAVAILABLE, "postgres at %s: no connection within %lld ms", label,
                       (long long)(window / 1000000));
    }
  }
  s->val[s->host_at] = o->host;
  if (s->port_at != SIZE_MAX) s->val[s->port_at] = o->port;
  return rc;
}

/* Makes `conn` the connection of `c` (whose old one, if any, is closed). */
static void install(struct ldr_backend *b, struct pg_conn *c, PGconn *conn) {
  ldr_pg_drop_connection(c);
  c->conn = conn;
  PQsetNoticeReceiver(c->conn, notice, c);
  c->sql.host = server_of(b, c->conn);
  c->sql.fallback_at_ns = 0;
  /* Reads that prefer a standby and found none among several hosts are on the
   * primary: after a while they look for a standby again (backends/sql.c).
   * PostgreSQL 14 and later report in_hot_standby; a server or pooler that
   * does not is taken as what was asked for. */
  const char *standby = PQparameterStatus(c->conn, "in_hot_standby");
  char second[8];
  if (!strcmp(c->target, "prefer-standby") && standby != NULL && !strcmp(standby, "off") &&
      ldr_pg_host_label(b->cfg, 1, second, sizeof second))
    c->sql.fallback_at_ns = ldr_now_ns();
  if (ldr_log_enabled(LDR_LOG_DEBUG))
    ldr_log(LDR_LOG_DEBUG, "postgres: %s connection on %s:%s%s", ldr_conn_role_name(c->sql.role),
            PQhost(c->conn), PQport(c->conn), c->sql.fallback_at_ns ? " (no standby found)" : "");
}

static enum ldr_rc pg_connect(struct ldr_backend *b, struct ldr_sql_conn *sc, int64_t until_ns,
                              struct ldr_err *err) {
  struct pg_conn *c = pgc(sc);
  PGconn *conn = NULL;
  ldr_pg_drop_connection(c);
  c->sql.fallback_at_ns = 0;
  enum ldr_rc rc = open_conn(b, c->target, until_ns, &conn, err);
  /* libpq's prefer-standby makes a second pass over the hosts for any server
   * only when its first pass failed in ways it retries; a standby that answers
   * "shutting down" ends it. That second pass, then, here. */
  if (rc == LDR_UNAVAILABLE && !strcmp(c->target, "prefer-standby")) {
    struct ldr_err again;
    ldr_err_clear(&again);
    if (open_conn(b, "any", until_ns, &conn, &again) == LDR_OK) {
      ldr_err_clear(err);
      rc = LDR_OK;
    }
  }
  if (rc == LDR_OK) install(b, c, conn);
  return rc;
}

/* A read connection on the primary tries a standby (a standby only); the
 * connection it has stays unless one answers. */
static enum ldr_rc pg_prefer(struct ldr_backend *b, struct ldr_sql_conn *sc, int64_t until_ns,
                             struct ldr_err *err) {
  PGconn *conn = NULL;
  enum ldr_rc rc = open_conn(b, "standby", until_ns, &conn, err);
  if (rc == LDR_OK) install(b, pgc(sc), conn);
  return rc;
}

/* A cancel request, sent from a thread of its own: libpq's PQcancel blocks
 * until the server has read it, and a server that stalls may never do. */
static void *send_cancel(void *arg) {
  char errbuf[256];
  PQcancel(arg, errbuf, sizeof errbuf);
  PQfreeCancel(arg);
  return NULL;
}

/* Gives up on a connection whose server did not answer in time: asks the
 * server (or pgbouncer, which passes it on) to cancel what it runs, so that
 * the work stops there too, then closes the connection. */
static void give_up(struct pg_conn *c) {
  PGcancel *k = c->conn != NULL && PQtransactionStatus(c->conn) == PQTRANS_ACTIVE
                    ? PQgetCancel(c->conn)
                    : NULL;
  if (k != NULL) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, send_cancel, k) != 0) PQfreeCancel(k);
    pthread_attr_destroy(&attr);
  }
  ldr_pg_drop_connection(c);
}

/* Maps a failed result (or a lost connection) to a code, copying the message;
 * the message goes to the client only for codes that name no driver text. */
enum ldr_rc ldr_pg_result_error(struct ldr_backend *b, struct pg_conn *c, const PGresult *res,
                                const char *what, const char *table, struct ldr_err *err) {
  char msg[200];
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  message_of(res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn), msg, sizeof msg);
  if (!connection_ok(c) || (state && !strncmp(state, "08", 2)) ||
      (state && (!strcmp(state, "57P01") || !strcmp(state, "57P02") || !strcmp(state, "57P03")))) {
    ldr_pg_drop_connection(c);
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: lost the postgres connection: %s", what, msg);
  }
  /* A server that no longer takes writes (a primary turned standby): the next
   * connection looks for the one that does (target_session_attrs). */
  if (state && !strcmp(state, "25006")) {
    ldr_pg_drop_connection(c);
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: postgres refuses writes: %s", what, msg);
  }
  /* A statement larder prepared is gone from the session (26000), or a name
   * it never used there is taken (42P05): the server
   * connection under it changed, as behind a pooler that lends connections
   * per transaction (pgbouncer's pool_mode = transaction, which refuses
   * larder's startup options unless told to ignore them). The session's
   * statements and settings cannot be trusted: a new connection starts clean. */
  if (state && (!strcmp(state, "26000") || !strcmp(state, "42P05")) && impl(b)->named) {
    ldr_log(LDR_LOG_ERROR,
            "postgres: a prepared statement vanished from the session, or its name was taken: a "
            "pooler lends server connections per transaction; set "
            "larder.prepared_statements: false behind it");
    ldr_pg_drop_connection(c);
    return ldr_err_set(err, LDR_UNAVAILABLE,
                       "%s: postgres lost the session's prepared statements (behind a "
                       "transaction pooler, set larder.prepared_statements: false)",
                       what);
  }
  if (state && !strcmp(state, "42P01") && table) return ldr_sql_not_found(err, table);
  if (state && !strcmp(state, "57014"))
    return ldr_err_set(err, LDR_DEADLINE, "%s: the statement ran past the call's deadline", what);
  if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01"))) c->conflict = 1;
  /* Conflicts, and class 53 (disk full, out of memory, too many connections):
   * the database refuses now and may not later. */
  if (state && (!strncmp(state, "53", 2) || !strncmp(state, "40", 2)))
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: postgres: %s", what, msg);
  return ldr_err_set(err, LDR_INTERNAL, "%s: postgres (%s): %s", what, state ? state : "-", msg);
}

/* Sends what libpq holds; gives up on the connection past `until`. */
enum ldr_rc ldr_pg_flush(struct ldr_backend *b, struct pg_conn *c, int64_t until, const char *what,
                         struct ldr_err *err) {
  for (;;) {
    int f = PQflush(c->conn);
    if (f == 0) return LDR_OK;
    int w = f < 0 ? -1 : ldr_pg_wait_socket(c->conn, POLLOUT | POLLIN, until);
    if (w == 0) {
      give_up(c);
      return ldr_sql_deadline(err, what);
    }
    if (w < 0 || !PQconsumeInput(c->conn)) return ldr_pg_result_error(b, c, NULL, what, NULL, err);
  }
}

/* The next result of the command in progress (NULL: it has no more), waiting
 * for it until `until`; *failed set when the wait itself failed (err says why). */
PGresult *ldr_pg_next_result(struct ldr_backend *b, struct pg_conn *c, int64_t until,
                             const char *what, int *failed, struct ldr_err *err) {
  *failed = 0;
  while (PQisBusy(c->conn)) {
    int w = ldr_pg_wait_socket(c->conn, POLLIN, until);
    if (w == 0) {
      give_up(c);
      ldr_sql_deadline(err, what);
      *failed = 1;
      return NULL;
    }
    if (w < 0 || !PQconsumeInput(c->conn)) {
      ldr_pg_result_error(b, c, NULL, what, NULL, err);
      *failed = 1;
      return NULL;
    }
  }
  return PQgetResult(c->conn);
}

int64_t ldr_pg_command_until(const struct ldr_backend *b) {
  return b->deadline_ns ? b->deadline_ns + DEADLINE_GRACE_NS : 0;
}

/* One query outside a pipeline (text parameters, or a simple query of several
 * statements when there are none), expecting `want`; the result is kept in *out if asked. */
enum ldr_rc ldr_pg_query(struct ldr_backend *b, struct pg_conn *c, const char *sql, int nparams,
                         const char *const *params, ExecStatusType want, const char *what,
                         PGresult **out, struct ldr_err *err) {
  int64_t until = ldr_pg_command_until(b);
  int failed = 0;
  int sent = nparams ? PQsendQueryParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                     : PQsendQuery(c->conn, sql);
  if (!sent) return ldr_pg_result_error(b, c, NULL, what, NULL, err);
  enum ldr_rc rc = ldr_pg_flush(b, c, until, what, err);
  PGresult *keep = NULL;
  while (rc == LDR_OK) {
    PGresult *r = ldr_pg_next_result(b, c, until, what, &failed, err);
    if (failed) rc = err->rc;
    if (r == NULL) break;
    if (PQresultStatus(r) != want && rc == LDR_OK)
      rc = ldr_pg_result_error(b, c, r, what, NULL, err);
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

enum ldr_rc ldr_pg_simple(struct ldr_backend *b, struct pg_conn *c, const char *sql,
                          ExecStatusType want, const char *what, PGresult **out,
                          struct ldr_err *err) {
  return ldr_pg_query(b, c, sql, 0, NULL, want, what, out, err);
}

int ldr_pg_connected(struct ldr_backend *b) {
  struct pg_impl *s = impl(b);
  int n = 0;
  for (size_t i = 0; i < s->n_conns; i++) n += connection_ok(&s->conns[i]);
  return n;
}

static int pg_conn_ok(struct ldr_backend *b, struct ldr_sql_conn *c) {
  (void)b;
  return connection_ok(pgc(c));
}

static void pg_disconnect(struct ldr_backend *b, struct ldr_sql_conn *c) {
  (void)b;
  ldr_pg_drop_connection(pgc(c));
}

static enum ldr_rc no_begin(struct ldr_backend *b, struct ldr_sql_conn *c, struct ldr_err *err) {
  /* The statement timeout travels in each request's pipeline. */
  (void)b;
  (void)c;
  (void)err;
  return LDR_OK;
}

static int pg_conflicted(struct ldr_backend *b, struct ldr_sql_conn *c) {
  (void)b;
  int conflict = pgc(c)->conflict;
  pgc(c)->conflict = 0;
  return conflict;
}

const struct ldr_sql_driver ldr_pg_driver = {
    .name = "postgres",
    .connected = pg_conn_ok,
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .prefer = pg_prefer,
    .begin_call = no_begin,
    .conflicted = pg_conflicted,
};
