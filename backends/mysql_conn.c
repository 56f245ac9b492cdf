/* The MySQL backend's connection: connecting, waiting without blocking, errors, and
 * preparing and executing statements through the shared plumbing. */
#include <errmsg.h>
#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/mysql_int.h"
#include "common/log.h"

static void close_stmt(void *st) { mysql_stmt_close(st); }

void ldr_my_drop_connection(struct my_conn *c) {
  /* Closing the connection first detaches its statements, whose closing then
   * frees memory without talking to a server that may be gone. It also sends
   * no more than COM_QUIT: rows still on their way are never read. */
  if (c->conn != NULL) mysql_close(c->conn);
  c->conn = NULL;
  ldr_stmt_clear(&c->stmts, close_stmt);
  c->timeout_ms = -1;
  c->sql.host = -1;
}

/*
 * Waits for what a non-blocking call asked for and returns the status for its
 * _cont function, or -1 once `until_ns` (0: no limit) has passed or the
 * server aborted every wait (ldr_backend_abort_waits).
 */
int ldr_my_wait_io(MYSQL *m, int status, int64_t until_ns) {
  struct pollfd pfd = {.fd = mysql_get_socket(m)};
  if (status & MYSQL_WAIT_READ) pfd.events |= POLLIN;
  if (status & MYSQL_WAIT_WRITE) pfd.events |= POLLOUT;
  if (status & MYSQL_WAIT_EXCEPT) pfd.events |= POLLPRI;
  for (;;) {
    int ms = status & MYSQL_WAIT_TIMEOUT ? (int)mysql_get_timeout_value_ms(m) : -1;
    int ours = 0;
    if (ldr_backend_aborting()) return -1;
    int64_t left = until_ns != 0 ? until_ns - ldr_now_ns() : INT64_MAX;
    if (left <= 0) return -1;
    /* Wake up now and then to notice ldr_backend_abort_waits. */
    int left_ms = left > (int64_t)LDR_ABORT_CHECK_MS * 1000000 ? LDR_ABORT_CHECK_MS
                                                               : (int)((left + 999999) / 1000000);
    if (ms < 0 || left_ms < ms) {
      ms = left_ms;
      ours = 1;
    }
    int r = poll(&pfd, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      if (ours) continue; /* recheck the clock, then give up */
      return MYSQL_WAIT_TIMEOUT;
    }
    int out = 0;
    if (pfd.revents & (POLLIN | POLLERR | POLLHUP)) out |= MYSQL_WAIT_READ;
    if (pfd.revents & POLLOUT) out |= MYSQL_WAIT_WRITE;
    if (pfd.revents & POLLPRI) out |= MYSQL_WAIT_EXCEPT;
    return out;
  }
}

/* The server's own time limit should fire first: it leaves the connection usable. */
int64_t ldr_my_command_until(struct ldr_backend *b) {
  return b->deadline_ns ? b->deadline_ns + DEADLINE_GRACE_NS : 0;
}

/* The call ran out of time inside the connector: the connection's state is unknown. */
enum ldr_rc ldr_my_timed_out(struct my_conn *c, const char *what, struct ldr_err *err) {
  ldr_my_drop_connection(c);
  return ldr_sql_deadline(err, what);
}

/* Which of `tables` a "doesn't exist" error is about: the one the server's
 * message names, else the first one information_schema does not list. */
static const char *missing_table(struct ldr_backend *b, struct my_conn *c, const char *msg,
                                 const char *const *tables, size_t n) {
  char pattern[LDR_TABLE_NAME_MAX + 8];
  for (size_t i = 0; i < n; i++) {
    snprintf(pattern, sizeof pattern, ".%s'", tables[i]);
    if (strstr(msg, pattern) != NULL) return tables[i];
  }
  for (size_t i = 0; i < n && c->conn != NULL; i++) {
    char sql[200];
    unsigned long long rows = 1;
    struct ldr_err ignored;
    ldr_err_clear(&ignored);
    snprintf(sql, sizeof sql,
             "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND "
             "table_name = '%s'",
             tables[i]);
    if (ldr_my_query(b, c, sql, "read", NULL, 0, &rows, &ignored) == LDR_OK && rows == 0)
      return tables[i];
  }
  return tables[0];
}

/* Maps a connector or server error to a code. `tables` are those the failed
 * statement names, for a NOT_FOUND. Driver text goes only into the codes
 * the server logs instead of telling the client (UNAVAILABLE, INTERNAL). */
static enum ldr_rc db_error(struct ldr_backend *b, struct my_conn *c, unsigned no, const char *msg,
                            const char *what, const char *const *tables, size_t n_tables,
                            struct ldr_err *err) {
  switch (no) {
  case ER_NO_SUCH_TABLE:
    if (n_tables)
      return ldr_sql_not_found(err, n_tables == 1 ? tables[0]
                                                  : missing_table(b, c, msg, tables, n_tables));
    break;
  case ER_STATEMENT_TIMEOUT:
  case MYSQL_ER_QUERY_TIMEOUT:
    return ldr_sql_deadline(err, what);
  case CR_SERVER_GONE_ERROR:
  case CR_SERVER_LOST:
  case CR_SERVER_LOST_EXTENDED:
  case CR_CONNECTION_ERROR:
  case CR_CONN_HOST_ERROR:
  case ER_SERVER_SHUTDOWN:
  case ER_CONNECTION_KILLED:
    ldr_my_drop_connection(c);
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: lost the mysql connection: %s", what, msg);
  case ER_LOCK_DEADLOCK:
    c->conflict = 1;
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: mysql: %s", what, msg);
  case ER_OPTION_PREVENTS_STATEMENT:
    /* A read-only server: a primary demoted in a switchover. The connection
     * goes, so that the next one resolves `host` again and finds the server
     * that now takes writes (as PostgreSQL's 25006 does). */
    ldr_my_drop_connection(c);
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: mysql refuses writes: %s", what, msg);
  case ER_LOCK_WAIT_TIMEOUT:
  case ER_RECORD_FILE_FULL:
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: mysql: %s", what, msg);
  default:
    break;
  }
  /* After any other client-side error the connection's state is not worth guessing. */
  if (no >= CR_MIN_ERROR && no <= CR_MAX_ERROR) ldr_my_drop_connection(c);
  return ldr_err_set(err, LDR_INTERNAL, "%s: mysql error %u: %s", what, no, msg);
}

/* The connector's message is copied at once: the next call overwrites it. */
static enum ldr_rc conn_error(struct ldr_backend *b, struct my_conn *c, const char *what,
                              const char *const *tables, size_t n_tables, struct ldr_err *err) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s", mysql_error(c->conn));
  return db_error(b, c, mysql_errno(c->conn), msg, what, tables, n_tables, err);
}

enum ldr_rc ldr_my_stmt_error(struct ldr_backend *b, struct my_conn *c, MYSQL_STMT *st,
                              const char *what, const char *const *tables, size_t n_tables,
                              struct ldr_err *err) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s", mysql_stmt_error(st));
  return db_error(b, c, mysql_stmt_errno(st), msg, what, tables, n_tables, err);
}

/* Server i: 0 the primary (host, port), then larder.read_hosts. */
static int server(const struct ldr_mysql_options *o, size_t i, char *host, size_t cap,
                  unsigned *port) {
  if (i == 0) {
    snprintf(host, cap, "%s", o->host);
    *port = (unsigned)o->port;
    return 1;
  }
  size_t n = 0;
  while (o->read_hosts != NULL && o->read_hosts[n] != NULL) n++;
  if (i > n) return 0;
  /* "host:port" or "[v6]:port", checked by the loader. */
  const char *hp = o->read_hosts[i - 1], *colon = strrchr(hp, ':');
  int bracket = hp[0] == '[';
  snprintf(host, cap, "%.*s", (int)(colon - hp) - 2 * bracket, hp + bracket);
  *port = (unsigned)atoi(colon + 1);
  return 1;
}

int ldr_my_host_label(const struct ldr_store_config *cfg, size_t i, char *buf, size_t cap) {
  char host[256];
  unsigned port = 0;
  if (!server(cfg->opts, i, host, sizeof host, &port)) return 0;
  snprintf(buf, cap, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
  return 1;
}

/* Opens a connection to one server into *out (NULL on failure); its failure
 * messages name the server, for the log only. */
static enum ldr_rc open_conn(struct ldr_backend *b, const char *host, unsigned port,
                             int64_t until_ns, MYSQL **out, struct ldr_err *err) {
  const struct ldr_mysql_options *c = options(b);
  char msg[200];
  enum ldr_rc rc = LDR_OK;
  MYSQL *m = mysql_init(NULL);
  *out = NULL;
  if (m == NULL) return ldr_err_set(err, LDR_NOMEM, "mysql: out of memory");
  /* TCP always: for "localhost" the connector would otherwise use the socket. */
  unsigned protocol = MYSQL_PROTOCOL_TCP, connect_timeout = 10;
  my_bool off = 0;
  mysql_optionsv(m, MYSQL_OPT_NONBLOCK, 0);
  mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &protocol);
  mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_optionsv(m, MYSQL_OPT_RECONNECT, &off);
  mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  /* Timestamps in UTC whatever the server's zone; run again on every connection.
   * An IN list of entity keys is estimated from the index's statistics, not by
   * one index dive per key: reads served together list up to 256 keys, and
   * the dives cost MariaDB 10-25% of its CPU per read for the same range scan
   * (bench/analysis.md). */
  mysql_optionsv(m, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00', eq_range_index_dive_limit = 1");
  if (c->ssl_ca || c->ssl_cert || c->ssl_key) {
    my_bool on = 1;
    if (c->ssl_ca) mysql_optionsv(m, MYSQL_OPT_SSL_CA, c->ssl_ca);
    if (c->ssl_cert) mysql_optionsv(m, MYSQL_OPT_SSL_CERT, c->ssl_cert);
    if (c->ssl_key) mysql_optionsv(m, MYSQL_OPT_SSL_KEY, c->ssl_key);
    mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &on);
    if (c->ssl_ca) mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
  }
  MYSQL *ret = NULL;
  int status =
      mysql_real_connect_start(&ret, m, host, c->user, c->password, c->database, port, NULL, 0);
  while (status) {
    status = ldr_my_wait_io(m, status, until_ns);
    if (status < 0) {
      rc = ldr_err_set(err, b->deadline_ns ? LDR_DEADLINE : LDR_UNAVAILABLE,
                       "mysql at %s:%u: no connection before the %s", host, port,
                       b->deadline_ns ? "call's deadline" : "connect timeout");
      goto out;
    }
    status = mysql_real_connect_cont(&ret, m, status);
  }
  if (ret == NULL) {
    snprintf(msg, sizeof msg, "%s", mysql_error(m));
    rc = ldr_err_set(err, LDR_UNAVAILABLE,
                     "cannot connect to mysql at %s:%u (database %s, user %s): %s", host, port,
                     c->database, c->user, msg);
    goto out;
  }
  *out = m;
  m = NULL;
out:
  if (m != NULL) mysql_close(m);
  return rc;
}

/*
 * Connects `c` to the first of its `replicas` (larder.read_hosts) that
 * answers, trying them in turn from the instance's own first one so that
 * workers spread over them, then (with_primary) to the primary. On failure
 * `c` is left as it was.
 */
static enum ldr_rc connect_some(struct ldr_backend *b, struct my_conn *c, size_t replicas,
                                int with_primary, int64_t until_ns, struct ldr_err *err) {
  const struct ldr_mysql_options *o = options(b);
  struct ldr_err first;
  ldr_err_clear(&first);
  for (size_t k = 0; k < replicas + (with_primary ? 1 : 0); k++) {
    size_t i = k < replicas ? 1 + (impl(b)->first_replica + k) % replicas : 0;
    char host[256];
    unsigned port = 0;
    struct ldr_err e;
    MYSQL *m = NULL;
    ldr_err_clear(&e);
    server(o, i, host, sizeof host, &port);
    enum ldr_rc rc = open_conn(b, host, port, until_ns, &m, &e);
    if (rc == LDR_OK) {
      ldr_my_drop_connection(c);
      c->conflict = 0;
      c->conn = m;
      c->mariadb = strstr(mysql_get_server_info(m), "MariaDB") != NULL;
      c->sql.host = (int)i;
      c->sql.fallback_at_ns = replicas > 0 && i == 0 ? ldr_now_ns() : 0;
      if (ldr_log_enabled(LDR_LOG_DEBUG))
        ldr_log(LDR_LOG_DEBUG, "mysql: %s connection on %s:%u%s", ldr_conn_role_name(c->sql.role),
                host, port, c->sql.fallback_at_ns ? " (no replica answered)" : "");
      return LDR_OK;
    }
    if (first.rc == LDR_OK) first = e;
    /* Out of the call's time, or of memory: no point trying the next one. */
    if (rc == LDR_DEADLINE || rc == LDR_NOMEM) break;
  }
  *err = first;
  return first.rc;
}

/* The replicas a connection reads from: none for writes. */
static size_t replicas_of(struct ldr_backend *b, const struct ldr_sql_conn *sc) {
  const struct ldr_mysql_options *o = options(b);
  size_t n = 0;
  while (sc->role != LDR_CONN_WRITE && o->read_hosts != NULL && o->read_hosts[n] != NULL) n++;
  return n;
}

/*
 * The driver's connect. Writes go to the primary. Reads, when read_hosts
 * lists replicas, go to one of them, or to the primary while none answers:
 * reads go on while every replica is away, and return to a replica later
 * (backends/sql.c, my_prefer).
 */
static enum ldr_rc my_connect(struct ldr_backend *b, struct ldr_sql_conn *sc, int64_t until_ns,
                              struct ldr_err *err) {
  ldr_my_drop_connection(myc(sc));
  sc->fallback_at_ns = 0;
  return connect_some(b, myc(sc), replicas_of(b, sc), 1, until_ns, err);
}

/* Reads on the primary try the replicas again; the connection stays unless one answers. */
static enum ldr_rc my_prefer(struct ldr_backend *b, struct ldr_sql_conn *sc, int64_t until_ns,
                             struct ldr_err *err) {
  return connect_some(b, myc(sc), replicas_of(b, sc), 0, until_ns, err);
}

/* Runs one text statement; a result set is read whole (here one row or none)
 * and *rows set to its size when `rows` is not NULL. */
enum ldr_rc ldr_my_query(struct ldr_backend *b, struct my_conn *c, const char *sql,
                         const char *what, const char *const *tables, size_t n_tables,
                         unsigned long long *rows, struct ldr_err *err) {
  MYSQL *m = c->conn;
  int64_t until = ldr_my_command_until(b);
  int ret = 0;
  int status = mysql_real_query_start(&ret, m, sql, strlen(sql));
  while (status) {
    status = ldr_my_wait_io(m, status, until);
    if (status < 0) return ldr_my_timed_out(c, what, err);
    status = mysql_real_query_cont(&ret, m, status);
  }
  if (ret != 0) return conn_error(b, c, what, tables, n_tables, err);
  if (mysql_field_count(m) == 0) return LDR_OK;
  MYSQL_RES *res = NULL;
  status = mysql_store_result_start(&res, m);
  while (status) {
    status = ldr_my_wait_io(m, status, until);
    if (status < 0) return ldr_my_timed_out(c, what, err);
    status = mysql_store_result_cont(&res, m, status);
  }
  if (res == NULL) return conn_error(b, c, what, tables, n_tables, err);
  if (rows) *rows = mysql_num_rows(res);
  mysql_free_result(res); /* stored: no I/O left */
  return LDR_OK;
}

/* The driver's begin_call: the deadline becomes the session's statement time
 * limit, set only when its rounded value changes (it costs a round trip). */
static enum ldr_rc my_begin_call(struct ldr_backend *b, struct ldr_sql_conn *sc,
                                 struct ldr_err *err) {
  struct my_conn *s = myc(sc);
  s->conflict = 0;
  long want = ldr_sql_timeout_ms(b->deadline_ns);
  if (want < 0) return ldr_sql_deadline(err, "mysql");
  if (want == s->timeout_ms) return LDR_OK;
  char sql[80];
  if (s->mariadb)
    snprintf(sql, sizeof sql, "SET SESSION max_statement_time = %ld.%03ld", want / 1000,
             want % 1000);
  else /* MySQL limits SELECT statements only */
    snprintf(sql, sizeof sql, "SET SESSION max_execution_time = %ld", want);
  enum ldr_rc rc = ldr_my_query(b, s, sql, "statement time limit", NULL, 0, NULL, err);
  if (rc == LDR_OK) s->timeout_ms = want;
  return rc;
}

int ldr_my_connected(struct ldr_backend *b) {
  struct my_impl *s = impl(b);
  int n = 0;
  for (size_t i = 0; i < s->n_conns; i++) n += s->conns[i].conn != NULL;
  return n;
}

size_t ldr_my_conns(struct ldr_backend *b, struct ldr_conn_state *out) {
  struct my_impl *s = impl(b);
  for (size_t i = 0; i < s->n_conns; i++)
    out[i] = (struct ldr_conn_state){s->conns[i].sql.role,
                                     s->conns[i].conn != NULL ? s->conns[i].sql.host : -1};
  return s->n_conns;
}

static int my_conn_ok(struct ldr_backend *b, struct ldr_sql_conn *c) {
  (void)b;
  return myc(c)->conn != NULL;
}

static void my_disconnect(struct ldr_backend *b, struct ldr_sql_conn *c) {
  (void)b;
  ldr_my_drop_connection(myc(c));
}

static int my_conflicted(struct ldr_backend *b, struct ldr_sql_conn *c) {
  (void)b;
  return myc(c)->conflict;
}

static const struct ldr_sql_driver driver = {
    .name = "mysql",
    .connected = my_conn_ok,
    .connect = my_connect,
    .disconnect = my_disconnect,
    .prefer = my_prefer,
    .begin_call = my_begin_call,
    .conflicted = my_conflicted,
};

enum ldr_rc ldr_my_run(struct ldr_backend *b, struct my_conn *c, ldr_sql_op op, void *arg,
                       struct ldr_err *err) {
  return ldr_sql_run(b, &driver, &c->sql, op, arg, err);
}

/* Prepares `sql` and caches it under `key`. */
enum ldr_rc ldr_my_prepare(struct ldr_backend *b, struct my_conn *s, const char *key,
                           const char *sql, const char *const *tables, size_t n_tables,
                           MYSQL_STMT **out, struct ldr_err *err) {
  MYSQL_STMT *st = mysql_stmt_init(s->conn);
  if (st == NULL) return ldr_err_set(err, LDR_NOMEM, "mysql: out of memory");
  int ret = 0, status = mysql_stmt_prepare_start(&ret, st, sql, strlen(sql));
  int64_t until = ldr_my_command_until(b);
  while (status) {
    status = ldr_my_wait_io(s->conn, status, until);
    if (status < 0) {
      enum ldr_rc rc = ldr_my_timed_out(s, "prepare", err); /* detaches st first */
      mysql_stmt_close(st);
      return rc;
    }
    status = mysql_stmt_prepare_cont(&ret, st, status);
  }
  if (ret != 0) {
    enum ldr_rc rc = ldr_my_stmt_error(b, s, st, "prepare", tables, n_tables, err);
    mysql_stmt_close(st);
    return rc;
  }
  if (ldr_log_enabled(LDR_LOG_DEBUG)) ldr_log(LDR_LOG_DEBUG, "mysql: prepared %.300s", sql);
  int nomem = 0;
  void *evicted = ldr_stmt_put(&s->stmts, key, st, &nomem);
  if (evicted != NULL) mysql_stmt_close(evicted);
  if (nomem) {
    mysql_stmt_close(st);
    return ldr_err_set(err, LDR_NOMEM, "mysql: out of memory");
  }
  *out = st;
  return LDR_OK;
}

enum ldr_rc ldr_my_execute(struct ldr_backend *b, struct my_conn *c, MYSQL_STMT *st,
                           MYSQL_BIND *params, const char *what, const char *const *tables,
                           size_t n_tables, struct ldr_err *err) {
  MYSQL *m = c->conn;
  int64_t until = ldr_my_command_until(b);
  int ret = 0;
  if (mysql_stmt_bind_param(st, params))
    return ldr_my_stmt_error(b, c, st, what, tables, n_tables, err);
  int status = mysql_stmt_execute_start(&ret, st);
  while (status) {
    status = ldr_my_wait_io(m, status, until);
    if (status < 0) return ldr_my_timed_out(c, what, err);
    status = mysql_stmt_execute_cont(&ret, st, status);
  }
  return ret == 0 ? LDR_OK : ldr_my_stmt_error(b, c, st, what, tables, n_tables, err);
}

char *ldr_my_hex_of(struct ldr_arena *a, const uint8_t *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  char *h = ldr_arena_alloc(a, 2 * n + 1);
  if (h == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    h[2 * i] = digits[p[i] >> 4];
    h[2 * i + 1] = digits[p[i] & 15];
  }
  h[2 * n] = '\0';
  return h;
}

void ldr_my_bind_string(MYSQL_BIND *bd, const void *p, size_t n, enum enum_field_types type) {
  memset(bd, 0, sizeof *bd);
  bd->buffer_type = type;
  bd->buffer = (void *)p;
  bd->buffer_length = (unsigned long)n;
}

/* Whether one more item of `len` bytes, after items of `sum` bytes in all,
 * still fits one statement once its bucket is padded with copies of it. */
int ldr_my_fits(size_t n, size_t sum, size_t len) {
  return n == 0 || sum + len + (ldr_sql_bucket(n + 1) - (n + 1)) * len <= MAX_PACKET;
}

/* The call's arena is full. */
enum ldr_rc ldr_my_too_big(struct ldr_err *err, const char *what) {
  return ldr_err_set(err, LDR_EXHAUSTED, "%s: the request is larger than a call may hold", what);
}

/* Names are quoted into SQL: callers check them, and so does this file. */
enum ldr_rc ldr_my_check_table(const char *t, struct ldr_err *err) {
  size_t n = strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
  if (n == 0 || t[n] != '\0' || n > LDR_TABLE_NAME_MAX)
    return ldr_err_set(err, LDR_INVALID, "feature_view: not a table name (1 to %d of [A-Za-z0-9_])",
                       LDR_TABLE_NAME_MAX);
  return LDR_OK;
}

static void init_conn(struct my_conn *c, enum ldr_conn_role role) {
  memset(c, 0, sizeof *c);
  ldr_sql_conn_init(&c->sql, role);
  c->timeout_ms = -1;
}

enum ldr_rc ldr_my_open(struct ldr_backend *b, struct ldr_err *err) {
  static atomic_uint instances;
  struct my_impl *s = impl(b);
  const struct ldr_mysql_options *o = options(b);
  /* Reads on replicas have a connection of their own, unless nothing else is served. */
  int replicas = o->read_hosts != NULL && o->read_hosts[0] != NULL;
  if (replicas && !b->cfg->read_only) {
    init_conn(&s->conns[0], LDR_CONN_READ);
    init_conn(&s->conns[1], LDR_CONN_WRITE);
    s->n_conns = 2;
  } else {
    init_conn(&s->conns[0], replicas ? LDR_CONN_READ : LDR_CONN_ALL);
    s->n_conns = 1;
  }
  s->rd = &s->conns[0];
  s->wr = &s->conns[s->n_conns - 1];
  s->first_replica = atomic_fetch_add(&instances, 1);
  struct ldr_sql_conn *conns[LDR_CONNS_MAX] = {&s->conns[0].sql, &s->conns[1].sql};
  return ldr_sql_open(b, &driver, conns, s->n_conns, err);
}
