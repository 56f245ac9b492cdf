/*
 * Feast's SQL registry in MySQL or MariaDB, read through ldr_reader_ops. The
 * URL's user, password, host, port and database, and its query keys charset,
 * unix_socket and ssl_ca/ssl_cert/ssl_key, set up the connection (REGISTRY.md
 * §2); other query keys (pymysql's own) are ignored. A host in the URL is
 * reached over TCP, as pymysql does, also for "localhost"; no host and no
 * unix_socket means the connector's default socket.
 *
 * The session is read-only (SET SESSION TRANSACTION READ ONLY) at REPEATABLE
 * READ, so that WITH CONSISTENT SNAPSHOT means one snapshot whatever the
 * server's default isolation. Waits are bounded three times over: the
 * server's statement time limit, the connector's connect, read and write
 * timeouts, and the non-blocking API waited on by the backend's own poll
 * (ldr_my_wait_io), which also notices ldr_backend_abort_waits at shutdown.
 * Results come in the text protocol: BLOBs as their bytes, numbers as text.
 */
#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/mysql_int.h"

/* How long past the server's statement time limit to wait for its error
 * (which names the cause) before giving up on the server. */
#define GRACE_NS (250 * 1000000LL)

/* Each reader file completes this type for itself, as curl's TLS backends
 * each define their own struct ssl_backend_data. */
struct ldr_reader {
  MYSQL *conn;
  char where[200]; /* "mysql at host:port (database d, user u)", for messages */
  char *secret;    /* the password, kept only to take it out of the connector's messages */
  int timeout_s;
  int mariadb; /* MariaDB rather than MySQL: max_statement_time, and its word order */
  int in_snapshot;
};

static void drop(struct ldr_reader *r) {
  if (r->conn != NULL) mysql_close(r->conn);
  r->conn = NULL;
  r->in_snapshot = 0;
}

/* Maps the connection's error to a code, copying its message at once (the
 * next call overwrites it) without the password. */
static enum ldr_rc fail(struct ldr_reader *r, const char *what, struct ldr_err *err) {
  char msg[200];
  unsigned no = mysql_errno(r->conn);
  enum ldr_rc rc = LDR_INTERNAL;
  snprintf(msg, sizeof msg, "%s", mysql_error(r->conn));
  ldr_sql_redact(msg, r->secret);
  switch (no) {
  case ER_NO_SUCH_TABLE:
  case ER_NO_SUCH_TABLE_IN_ENGINE:
    return ldr_err_set(err, LDR_NOT_FOUND, "%s: %s: %s", r->where, what, msg);
  case ER_STATEMENT_TIMEOUT:
  case MYSQL_ER_QUERY_TIMEOUT:
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: %s ran past the statement time limit (%d s)",
                       r->where, what, r->timeout_s);
  /* A write in a read-only transaction or to a read-only server, or a table
   * the user may not read. */
  case ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION:
  case ER_OPTION_PREVENTS_STATEMENT:
  case ER_TABLEACCESS_DENIED_ERROR:
  case ER_DBACCESS_DENIED_ERROR:
  case ER_SPECIFIC_ACCESS_DENIED_ERROR:
    return ldr_err_set(err, LDR_DENIED, "%s: %s: %s", r->where, what, msg);
  case ER_LOCK_WAIT_TIMEOUT:
  case ER_LOCK_DEADLOCK:
  case ER_CON_COUNT_ERROR:
  case ER_TOO_MANY_USER_CONNECTIONS:
  case ER_OUT_OF_RESOURCES:
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: %s: %s", r->where, what, msg);
  case ER_SERVER_SHUTDOWN:
  case ER_CONNECTION_KILLED:
    rc = LDR_UNAVAILABLE;
    break;
  default:
    /* After a client-side error (the server gone, a timeout of the
     * connector) the connection's state is not worth guessing. */
    if (no >= CR_MIN_ERROR && no <= CR_MAX_ERROR) rc = LDR_UNAVAILABLE;
    break;
  }
  if (rc == LDR_UNAVAILABLE) {
    rc = ldr_err_set(err, rc, "%s: %s: lost the connection: %s", r->where, what, msg);
    drop(r);
    return rc;
  }
  return ldr_err_set(err, rc, "%s: %s: mysql error %u: %s", r->where, what, no, msg);
}

/* The server did not answer in time (or larder is stopping): the connection's
 * state is unknown, and it is closed. */
static enum ldr_rc no_answer(struct ldr_reader *r, const char *what, struct ldr_err *err) {
  enum ldr_rc rc = ldr_err_set(err, LDR_UNAVAILABLE, "%s: %s: no answer within %d s", r->where,
                               what, r->timeout_s);
  drop(r);
  return rc;
}

/* Runs one statement; its rows, if it returns any, are stored whole in *out
 * (the caller frees them; NULL for a statement without rows) when asked. */
static enum ldr_rc run(struct ldr_reader *r, const char *sql, const char *what, MYSQL_RES **out,
                       struct ldr_err *err) {
  int ret = 0;
  MYSQL_RES *res = NULL;
  if (out != NULL) *out = NULL;
  if (r->conn == NULL)
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: %s: not connected (the connection was lost)",
                       r->where, what);
  int64_t until = ldr_now_ns() + (int64_t)r->timeout_s * 1000000000 + GRACE_NS;
  int status = mysql_real_query_start(&ret, r->conn, sql, (unsigned long)strlen(sql));
  while (status) {
    status = ldr_my_wait_io(r->conn, status, until);
    if (status < 0) return no_answer(r, what, err);
    status = mysql_real_query_cont(&ret, r->conn, status);
  }
  if (ret != 0) return fail(r, what, err);
  if (mysql_field_count(r->conn) == 0) return LDR_OK;
  status = mysql_store_result_start(&res, r->conn);
  while (status) {
    status = ldr_my_wait_io(r->conn, status, until);
    if (status < 0) return no_answer(r, what, err);
    status = mysql_store_result_cont(&res, r->conn, status);
  }
  if (res == NULL) return fail(r, what, err);
  if (out != NULL)
    *out = res;
  else
    mysql_free_result(res); /* stored: no I/O left */
  return LDR_OK;
}

/* The value of query key `key`, or NULL. */
static const char *query_value(const struct ldr_url *url, const char *key) {
  const char *v = NULL;
  for (size_t i = 0; i < url->n_query; i++)
    if (!strcmp(url->query_keys[i], key)) v = url->query_values[i];
  return v;
}

/* Sets the connector's options from the URL; returns the socket to use or NULL. */
static const char *set_options(struct ldr_reader *r, const struct ldr_url *url) {
  MYSQL *m = r->conn;
  const char *sock = query_value(url, "unix_socket");
  const char *charset = query_value(url, "charset");
  const char *ca = query_value(url, "ssl_ca"), *cert = query_value(url, "ssl_cert"),
             *key = query_value(url, "ssl_key");
  unsigned connect_s = (unsigned)r->timeout_s, io_s = (unsigned)r->timeout_s + 1;
  my_bool off = 0, on = 1;
  mysql_optionsv(m, MYSQL_OPT_NONBLOCK, 0);
  mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
  /* A second more than the statement time limit: the server's error, which
   * names the cause, should come first. */
  mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &io_s);
  mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &io_s);
  mysql_optionsv(m, MYSQL_OPT_RECONNECT, &off);
  mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, charset != NULL ? charset : "utf8mb4");
  if (sock != NULL || url->host != NULL) {
    unsigned protocol = sock != NULL ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
    mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &protocol);
  }
  if (ca != NULL || cert != NULL || key != NULL) {
    if (ca != NULL) mysql_optionsv(m, MYSQL_OPT_SSL_CA, ca);
    if (cert != NULL) mysql_optionsv(m, MYSQL_OPT_SSL_CERT, cert);
    if (key != NULL) mysql_optionsv(m, MYSQL_OPT_SSL_KEY, key);
    mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &on);
    if (ca != NULL) mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
  }
  return sock;
}

static enum ldr_rc my_open(const struct ldr_url *url, const char *dir, int timeout_s,
                           struct ldr_reader **out, struct ldr_err *err) {
  struct ldr_reader *r = calloc(1, sizeof *r);
  char sql[80];
  enum ldr_rc rc = LDR_OK;
  (void)dir;
  *out = r;
  if (r == NULL) return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  r->timeout_s = timeout_s > 0 ? timeout_s : 1;
  int port = url->port ? url->port : 3306;
  const char *sock = query_value(url, "unix_socket");
  if (sock != NULL || url->host == NULL)
    snprintf(r->where, sizeof r->where, "mysql at %s (database %s, user %s)",
             sock != NULL ? sock : "the default socket", url->database,
             url->user ? url->user : "by default");
  else
    snprintf(r->where, sizeof r->where, "mysql at %s%s%s:%d (database %s, user %s)",
             strchr(url->host, ':') ? "[" : "", url->host, strchr(url->host, ':') ? "]" : "", port,
             url->database, url->user ? url->user : "by default");
  r->secret = url->password != NULL ? strdup(url->password) : NULL;
  r->conn = mysql_init(NULL);
  if (r->conn == NULL || (url->password != NULL && r->secret == NULL)) {
    rc = ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    goto out;
  }
  sock = set_options(r, url);
  MYSQL *ret = NULL;
  int64_t until = ldr_now_ns() + (int64_t)r->timeout_s * 1000000000;
  int status = mysql_real_connect_start(&ret, r->conn, url->host, url->user, url->password,
                                        url->database, (unsigned)port, sock, 0);
  while (status) {
    status = ldr_my_wait_io(r->conn, status, until);
    if (status < 0) {
      rc = ldr_err_set(err, LDR_UNAVAILABLE, "cannot connect to %s: no answer within %d s",
                       r->where, r->timeout_s);
      goto out;
    }
    status = mysql_real_connect_cont(&ret, r->conn, status);
  }
  if (ret == NULL) {
    char msg[200];
    snprintf(msg, sizeof msg, "%s", mysql_error(r->conn));
    ldr_sql_redact(msg, r->secret);
    rc = ldr_err_set(err, LDR_UNAVAILABLE, "cannot connect to %s: %s", r->where, msg);
    goto out;
  }
  r->mariadb = strstr(mysql_get_server_info(r->conn), "MariaDB") != NULL;
  if (r->mariadb)
    snprintf(sql, sizeof sql, "SET SESSION max_statement_time = %d", r->timeout_s);
  else /* MySQL limits SELECT statements only */
    snprintf(sql, sizeof sql, "SET SESSION max_execution_time = %d", r->timeout_s * 1000);
  rc = run(r, sql, "open", NULL, err);
  if (rc == LDR_OK)
    rc = run(r, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", "open", NULL,
             err);
out:
  if (rc != LDR_OK) drop(r);
  return rc;
}

static void my_close(struct ldr_reader *r) {
  if (r == NULL) return;
  drop(r);
  if (r->secret != NULL) memset(r->secret, 0, strlen(r->secret));
  free(r->secret);
  free(r);
}

/* Ends the snapshot. A transaction that would not end closes the connection,
 * so that the next call fails and the caller reconnects, rather than reading
 * on in an old snapshot. */
static void my_end(struct ldr_reader *r) {
  if (r == NULL || r->conn == NULL || !r->in_snapshot) return;
  struct ldr_err ignored;
  ldr_err_clear(&ignored);
  r->in_snapshot = 0;
  if (run(r, "ROLLBACK", "end", NULL, &ignored) != LDR_OK) drop(r);
}

static enum ldr_rc my_begin(struct ldr_reader *r, struct ldr_err *err) {
  my_end(r);
  /* The same statement in each server's documented word order; both take
   * the snapshot now, not at the first read. */
  enum ldr_rc rc = run(r,
                       r->mariadb ? "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
                                  : "START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT",
                       "begin", NULL, err);
  if (rc == LDR_OK) r->in_snapshot = 1;
  return rc;
}

static enum ldr_rc my_query(struct ldr_reader *r, const char *sql, ldr_row_fn fn, void *arg,
                            struct ldr_err *err) {
  MYSQL_RES *res = NULL;
  struct ldr_row_cell *cells = NULL;
  enum ldr_rc rc = run(r, sql, "query", &res, err);
  if (rc != LDR_OK || res == NULL) goto out;
  unsigned n = mysql_num_fields(res);
  cells = calloc(n > 0 ? n : 1, sizeof *cells);
  if (cells == NULL) {
    rc = ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    goto out;
  }
  for (;;) {
    MYSQL_ROW row = mysql_fetch_row(res); /* stored: no I/O */
    if (row == NULL) break;
    unsigned long *len = mysql_fetch_lengths(res);
    for (unsigned i = 0; i < n; i++) {
      cells[i].null = row[i] == NULL;
      cells[i].data = row[i] != NULL ? row[i] : "";
      cells[i].len = row[i] != NULL ? len[i] : 0;
    }
    rc = fn(arg, cells, n, err);
    if (rc != LDR_OK) {
      ldr_err_set(err, rc, "%s: query: a row was refused", r->where);
      goto out;
    }
  }
out:
  free(cells);
  mysql_free_result(res);
  return rc;
}

static const char *const dialects[] = {"mysql", NULL};

const struct ldr_reader_ops ldr_mysql_reader = {
    .dialects = dialects,
    .open = my_open,
    .begin = my_begin,
    .query = my_query,
    .end = my_end,
    .close = my_close,
    .tables_sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                  "DATABASE() AND table_type IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY "
                  "table_name",
};
