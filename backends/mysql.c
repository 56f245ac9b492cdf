/*
 * Feast's MySQL online store (mysql.py) on MariaDB Connector/C: the same
 * tables, with the entity key stored as the lowercase hex of its version-3
 * serialization, as Feast does whatever the config says. A read is one
 * prepared statement with an IN (...) list sized in powers of two; a write is
 * multi-row INSERT ... ON DUPLICATE KEY UPDATE statements, in one transaction
 * when the batch needs more than one.
 *
 * The connector's non-blocking API is used throughout, so a call never waits
 * past its deadline even when the server stalls; the deadline also becomes
 * the session's max_statement_time (MariaDB) or max_execution_time (MySQL).
 */
#include <errmsg.h>
#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend_int.h"
#include "backends/mysql.h"
#include "common/log.h"

#define STMT_CACHE 64
#define MAX_BUCKET 8192 /* rows or keys bound to one statement (5 placeholders a row) */
#define CONNECT_TIMEOUT_NS (10 * 1000000000LL)
#define DEADLINE_GRACE_NS (50 * 1000000LL)
/* Column sizes of Feast's table: VARCHAR(512), VARCHAR(256) (utf8mb4), BLOB. */
#define KEY_HEX_MAX 512
#define NAME_CHARS_MAX 256
#define VALUE_MAX 65535
/* MySQL's timestamp type: 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC. */
#define TS_MIN 1
#define TS_MAX 2147483647LL
/* ER_QUERY_TIMEOUT of MySQL (max_execution_time); MariaDB says ER_STATEMENT_TIMEOUT. */
#define MYSQL_ER_QUERY_TIMEOUT 3024

enum stmt_kind { ST_READ, ST_WRITE };

struct my_stmt {
  MYSQL_STMT *st;
  enum stmt_kind kind;
  unsigned kb, fb; /* read: key and feature placeholders; write: rows in kb */
  uint64_t used;
  char table[LDR_TABLE_NAME_MAX + 1];
};

struct my_impl {
  MYSQL *conn;
  int mariadb; /* the server is MariaDB (max_statement_time) rather than MySQL */
  struct my_stmt stmts[STMT_CACHE];
  uint64_t tick;
  long timeout_ms; /* the session's statement time limit; -1: not known */
  int conflict;    /* the last statement lost a deadlock: it may simply run again */
  /* Where read results land, row by row (bound once per statement). */
  char key[KEY_HEX_MAX + 1];
  char name[NAME_CHARS_MAX * 4 + 1];
  unsigned char value[VALUE_MAX];
  unsigned long key_len, name_len, value_len;
  MYSQL_TIME ts;
  my_bool ts_null;
};

static struct my_impl *impl(struct ldr_backend *b) { return b->impl; }

static const struct ldr_mysql_options *options(const struct ldr_backend *b) { return b->cfg->opts; }

static void forget_statements(struct my_impl *s) {
  for (size_t i = 0; i < STMT_CACHE; i++) {
    if (s->stmts[i].st != NULL) mysql_stmt_close(s->stmts[i].st);
    s->stmts[i].st = NULL;
  }
}

static void drop_connection(struct my_impl *s) {
  /* Closing the connection first detaches its statements, whose closing then
   * frees memory without talking to a server that may be gone. */
  if (s->conn != NULL) mysql_close(s->conn);
  s->conn = NULL;
  forget_statements(s);
  s->timeout_ms = -1;
}

static const char *server_name(struct ldr_backend *b, char *buf, size_t cap) {
  snprintf(buf, cap, "%s:%d", options(b)->host, options(b)->port);
  return buf;
}

/*
 * Waits for what a non-blocking call asked for and returns the status for its
 * _cont function, or -1 once `until_ns` (0: no limit) has passed or the
 * server aborted every wait (ldr_backend_abort_waits).
 */
static int wait_io(MYSQL *m, int status, int64_t until_ns) {
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

static int64_t command_until(struct ldr_backend *b) {
  return b->deadline_ns ? b->deadline_ns + DEADLINE_GRACE_NS : 0;
}

/* The call ran out of time inside the connector: the connection's state is unknown. */
static enum ldr_rc timed_out(struct ldr_backend *b, const char *what, struct ldr_err *err) {
  drop_connection(impl(b));
  return ldr_err_set(err, LDR_DEADLINE,
                     "%s: the database did not answer before the call's deadline", what);
}

/* Maps a connector or server error to a code, copying the message at once. */
static enum ldr_rc db_error(struct ldr_backend *b, unsigned no, const char *msg, const char *what,
                            const char *table, struct ldr_err *err) {
  switch (no) {
  case ER_NO_SUCH_TABLE:
    if (table)
      return ldr_err_set(err, LDR_NOT_FOUND,
                         "feature_view: table \"%s\" does not exist (create it with Update or "
                         "larder apply)",
                         table);
    break;
  case ER_STATEMENT_TIMEOUT:
  case MYSQL_ER_QUERY_TIMEOUT:
    return ldr_err_set(err, LDR_DEADLINE, "%s: the statement ran past the call's deadline", what);
  case CR_SERVER_GONE_ERROR:
  case CR_SERVER_LOST:
  case CR_SERVER_LOST_EXTENDED:
  case CR_CONNECTION_ERROR:
  case CR_CONN_HOST_ERROR:
  case ER_SERVER_SHUTDOWN:
  case ER_CONNECTION_KILLED:
    drop_connection(impl(b));
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: lost the mysql connection: %s", what, msg);
  case ER_LOCK_DEADLOCK:
    impl(b)->conflict = 1;
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: mysql: %s", what, msg);
  case ER_LOCK_WAIT_TIMEOUT:
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: mysql: %s", what, msg);
  default:
    break;
  }
  return ldr_err_set(err, LDR_INTERNAL, "%s: mysql error %u: %s", what, no, msg);
}

static enum ldr_rc conn_error(struct ldr_backend *b, const char *what, const char *table,
                              struct ldr_err *err) {
  MYSQL *m = impl(b)->conn;
  char msg[200];
  snprintf(msg, sizeof msg, "%s", mysql_error(m));
  return db_error(b, mysql_errno(m), msg, what, table, err);
}

static enum ldr_rc stmt_error(struct ldr_backend *b, MYSQL_STMT *st, const char *what,
                              const char *table, struct ldr_err *err) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s", mysql_stmt_error(st));
  return db_error(b, mysql_stmt_errno(st), msg, what, table, err);
}

static enum ldr_rc connect_once(struct ldr_backend *b, int64_t until_ns, struct ldr_err *err) {
  struct my_impl *s = impl(b);
  const struct ldr_mysql_options *c = options(b);
  char where[300], msg[200];
  drop_connection(s);
  s->conn = mysql_init(NULL);
  if (s->conn == NULL) return ldr_err_set(err, LDR_NOMEM, "mysql: out of memory");
  /* TCP always: for "localhost" the connector would otherwise use the socket. */
  unsigned protocol = MYSQL_PROTOCOL_TCP, connect_timeout = 10;
  my_bool off = 0;
  mysql_optionsv(s->conn, MYSQL_OPT_NONBLOCK, 0);
  mysql_optionsv(s->conn, MYSQL_OPT_PROTOCOL, &protocol);
  mysql_optionsv(s->conn, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_optionsv(s->conn, MYSQL_OPT_RECONNECT, &off);
  mysql_optionsv(s->conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  /* Timestamps in UTC whatever the server's zone; run again on every connection. */
  mysql_optionsv(s->conn, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
  if (c->ssl_ca || c->ssl_cert || c->ssl_key) {
    my_bool on = 1;
    if (c->ssl_ca) mysql_optionsv(s->conn, MYSQL_OPT_SSL_CA, c->ssl_ca);
    if (c->ssl_cert) mysql_optionsv(s->conn, MYSQL_OPT_SSL_CERT, c->ssl_cert);
    if (c->ssl_key) mysql_optionsv(s->conn, MYSQL_OPT_SSL_KEY, c->ssl_key);
    mysql_optionsv(s->conn, MYSQL_OPT_SSL_ENFORCE, &on);
    if (c->ssl_ca) mysql_optionsv(s->conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
  }
  MYSQL *ret = NULL;
  int status = mysql_real_connect_start(&ret, s->conn, c->host, c->user, c->password, c->database,
                                        (unsigned)c->port, NULL, 0);
  while (status) {
    status = wait_io(s->conn, status, until_ns);
    if (status < 0) {
      drop_connection(s);
      return ldr_err_set(err, b->deadline_ns ? LDR_DEADLINE : LDR_UNAVAILABLE,
                         "mysql at %s: no connection before the %s",
                         server_name(b, where, sizeof where),
                         b->deadline_ns ? "call's deadline" : "connect timeout");
    }
    status = mysql_real_connect_cont(&ret, s->conn, status);
  }
  if (ret == NULL) {
    snprintf(msg, sizeof msg, "%s", mysql_error(s->conn));
    drop_connection(s);
    return ldr_err_set(err, LDR_UNAVAILABLE,
                       "cannot connect to mysql at %s (database %s, user %s): %s",
                       server_name(b, where, sizeof where), c->database, c->user, msg);
  }
  s->mariadb = strstr(mysql_get_server_info(s->conn), "MariaDB") != NULL;
  return LDR_OK;
}

/* Runs one text query; with `rows`, it returns a result set and *rows is its size. */
static enum ldr_rc query(struct ldr_backend *b, const char *sql, const char *what,
                         const char *table, unsigned long long *rows, struct ldr_err *err) {
  MYSQL *m = impl(b)->conn;
  int64_t until = command_until(b);
  int ret = 0;
  int status = mysql_real_query_start(&ret, m, sql, strlen(sql));
  while (status) {
    status = wait_io(m, status, until);
    if (status < 0) return timed_out(b, what, err);
    status = mysql_real_query_cont(&ret, m, status);
  }
  if (ret != 0) return conn_error(b, what, table, err);
  if (mysql_field_count(m) == 0) return LDR_OK;
  MYSQL_RES *res = NULL;
  status = mysql_store_result_start(&res, m);
  while (status) {
    status = wait_io(m, status, until);
    if (status < 0) return timed_out(b, what, err);
    status = mysql_store_result_cont(&res, m, status);
  }
  if (res == NULL) return conn_error(b, what, table, err);
  if (rows) *rows = mysql_num_rows(res);
  mysql_free_result(res); /* stored: no I/O left */
  return LDR_OK;
}

/*
 * The deadline becomes the session's statement time limit, rounded down to
 * steps 25% apart so that calls with the same timeout keep the same value and
 * the server stops a statement no later than the deadline.
 */
static long timeout_step(int64_t left_ns) {
  long ms = (long)(left_ns / 1000000), step = 1;
  if (ms < 1) return 1;
  while ((long)((double)step * 1.25) + 1 <= ms) step = (long)((double)step * 1.25) + 1;
  return step;
}

static enum ldr_rc set_timeout(struct ldr_backend *b, struct ldr_err *err) {
  struct my_impl *s = impl(b);
  long want = 0;
  if (b->deadline_ns) {
    int64_t left = b->deadline_ns - ldr_now_ns();
    if (left <= 0) return ldr_err_set(err, LDR_DEADLINE, "the call's deadline passed");
    want = timeout_step(left);
  }
  if (want == s->timeout_ms) return LDR_OK;
  char sql[80];
  if (s->mariadb)
    snprintf(sql, sizeof sql, "SET SESSION max_statement_time = %ld.%03ld", want / 1000,
             want % 1000);
  else /* MySQL limits SELECT statements only */
    snprintf(sql, sizeof sql, "SET SESSION max_execution_time = %ld", want);
  enum ldr_rc rc = query(b, sql, "statement time limit", NULL, NULL, err);
  if (rc == LDR_OK) s->timeout_ms = want;
  return rc;
}

static unsigned bucket(size_t n) {
  if (n <= 8) return n ? (unsigned)n : 1;
  unsigned k = 16;
  while (k < n) k *= 2;
  return k;
}

static size_t put_list(char *p, unsigned n, const char *item) {
  char *o = p;
  size_t len = strlen(item);
  for (unsigned i = 0; i < n; i++) {
    if (i) *o++ = ',';
    memcpy(o, item, len);
    o += len;
  }
  return (size_t)(o - p);
}

/* The cached statement for (kind, table, kb, fb), preparing it on a miss. */
static enum ldr_rc get_stmt(struct ldr_backend *b, enum stmt_kind kind, const char *table,
                            unsigned kb, unsigned fb, MYSQL_STMT **out, struct ldr_err *err) {
  struct my_impl *s = impl(b);
  struct my_stmt *victim = &s->stmts[0];
  for (size_t i = 0; i < STMT_CACHE; i++) {
    struct my_stmt *c = &s->stmts[i];
    if (c->st && c->kind == kind && c->kb == kb && c->fb == fb && !strcmp(c->table, table)) {
      c->used = ++s->tick;
      *out = c->st;
      return LDR_OK;
    }
    if (c->st == NULL || (victim->st != NULL && c->used < victim->used)) victim = c;
  }
  size_t cap = 512 + (size_t)kb * 12 + (size_t)fb * 2;
  char *sql = malloc(cap);
  if (sql == NULL) return ldr_err_set(err, LDR_NOMEM, "out of memory");
  size_t n;
  if (kind == ST_READ) {
    n = (size_t)snprintf(
        sql, cap,
        "SELECT entity_key, feature_name, value, event_ts FROM `%s` WHERE entity_key IN (", table);
    n += put_list(sql + n, kb, "?");
    if (fb) {
      n += (size_t)snprintf(sql + n, cap - n, ") AND feature_name IN (");
      n += put_list(sql + n, fb, "?");
    }
    snprintf(sql + n, cap - n, ")");
  } else {
    /* The statement of Feast's batch_write path, for kb rows at once. */
    n = (size_t)snprintf(
        sql, cap,
        "INSERT INTO `%s` (entity_key, feature_name, value, event_ts, created_ts) VALUES ", table);
    n += put_list(sql + n, kb, "(?,?,?,?,?)");
    snprintf(sql + n, cap - n,
             " ON DUPLICATE KEY UPDATE value = VALUES(value), event_ts = VALUES(event_ts), "
             "created_ts = VALUES(created_ts)");
  }
  MYSQL_STMT *st = mysql_stmt_init(s->conn);
  enum ldr_rc rc = LDR_OK;
  if (st == NULL) {
    rc = ldr_err_set(err, LDR_NOMEM, "out of memory");
  } else {
    int ret = 0;
    int64_t until = command_until(b);
    int status = mysql_stmt_prepare_start(&ret, st, sql, strlen(sql));
    while (status && rc == LDR_OK) {
      status = wait_io(s->conn, status, until);
      if (status < 0)
        rc = timed_out(b, "prepare", err);
      else
        status = mysql_stmt_prepare_cont(&ret, st, status);
    }
    if (rc == LDR_OK && ret != 0) rc = stmt_error(b, st, "prepare", table, err);
  }
  if (rc == LDR_OK && ldr_log_enabled(LDR_LOG_DEBUG))
    ldr_log(LDR_LOG_DEBUG, "mysql: prepared %.300s", sql);
  free(sql);
  if (rc != LDR_OK) {
    if (st != NULL) mysql_stmt_close(st);
    return rc;
  }
  if (kind == ST_READ) {
    MYSQL_BIND res[4];
    memset(res, 0, sizeof res);
    res[0].buffer_type = MYSQL_TYPE_STRING;
    res[0].buffer = s->key;
    res[0].buffer_length = sizeof s->key;
    res[0].length = &s->key_len;
    res[1].buffer_type = MYSQL_TYPE_STRING;
    res[1].buffer = s->name;
    res[1].buffer_length = sizeof s->name;
    res[1].length = &s->name_len;
    res[2].buffer_type = MYSQL_TYPE_BLOB;
    res[2].buffer = s->value;
    res[2].buffer_length = sizeof s->value;
    res[2].length = &s->value_len;
    res[3].buffer_type = MYSQL_TYPE_TIMESTAMP;
    res[3].buffer = &s->ts;
    res[3].is_null = &s->ts_null;
    mysql_stmt_bind_result(st, res);
  }
  if (victim->st != NULL) mysql_stmt_close(victim->st);
  victim->st = st;
  victim->kind = kind;
  victim->kb = kb;
  victim->fb = fb;
  victim->used = ++s->tick;
  snprintf(victim->table, sizeof victim->table, "%s", table);
  *out = st;
  return LDR_OK;
}

/* Executes a bound statement; with `store`, its rows are read into the client. */
static enum ldr_rc execute(struct ldr_backend *b, MYSQL_STMT *st, int store, const char *what,
                           const char *table, struct ldr_err *err) {
  MYSQL *m = impl(b)->conn;
  int64_t until = command_until(b);
  int ret = 0;
  int status = mysql_stmt_execute_start(&ret, st);
  while (status) {
    status = wait_io(m, status, until);
    if (status < 0) return timed_out(b, what, err);
    status = mysql_stmt_execute_cont(&ret, st, status);
  }
  if (ret != 0) return stmt_error(b, st, what, table, err);
  if (!store) return LDR_OK;
  status = mysql_stmt_store_result_start(&ret, st);
  while (status) {
    status = wait_io(m, status, until);
    if (status < 0) return timed_out(b, what, err);
    status = mysql_stmt_store_result_cont(&ret, st, status);
  }
  return ret == 0 ? LDR_OK : stmt_error(b, st, what, table, err);
}

typedef enum ldr_rc (*my_op)(struct ldr_backend *b, void *arg, struct ldr_err *err);

/*
 * Runs `op` on an open connection. A connection found closed is opened once;
 * one that breaks during `op` is reopened once and `op` runs again (reads, DDL
 * and upserts are all safe to repeat). Then the call fails with UNAVAILABLE.
 */
static enum ldr_rc with_connection(struct ldr_backend *b, my_op op, void *arg,
                                   struct ldr_err *err) {
  struct my_impl *s = impl(b);
  int reconnected = 0, conflicts = 0;
  for (;;) {
    struct ldr_err e;
    enum ldr_rc rc = LDR_OK;
    ldr_err_clear(&e);
    if (s->conn == NULL) {
      if (reconnected)
        return ldr_err_set(err, LDR_UNAVAILABLE, "mysql: the connection was lost again");
      reconnected = 1;
      rc = connect_once(b, b->deadline_ns ? b->deadline_ns : ldr_now_ns() + CONNECT_TIMEOUT_NS, &e);
    }
    if (rc == LDR_OK) rc = set_timeout(b, &e);
    s->conflict = 0;
    if (rc == LDR_OK) rc = op(b, arg, &e);
    if (rc == LDR_OK) return LDR_OK;
    /* A transaction chosen as a deadlock's victim was rolled back whole: run it again. */
    if (s->conflict && ++conflicts < 4 && !ldr_backend_past_deadline(b)) continue;
    if (rc == LDR_UNAVAILABLE && s->conn == NULL && !reconnected && !ldr_backend_past_deadline(b)) {
      reconnected = 1;
      if (connect_once(b, b->deadline_ns ? b->deadline_ns : ldr_now_ns() + CONNECT_TIMEOUT_NS,
                       &e) == LDR_OK)
        continue;
    }
    *err = e;
    return rc;
  }
}

static char *hex_of(struct ldr_arena *a, const uint8_t *p, size_t n) {
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

static void bind_string(MYSQL_BIND *bd, const void *p, size_t n, enum enum_field_types type) {
  memset(bd, 0, sizeof *bd);
  bd->buffer_type = type;
  bd->buffer = (void *)p;
  bd->buffer_length = (unsigned long)n;
}

struct read_arg {
  const char *table;
  struct ldr_collector *c;
  const char *const *features;
  size_t n_features;
  struct ldr_arena *arena;
};

/* One statement for keys uniq[off..off+n); n = 0 checks only that the table exists. */
static enum ldr_rc read_chunk(struct ldr_backend *b, struct read_arg *a, size_t off, size_t n,
                              struct ldr_err *err) {
  struct my_impl *s = impl(b);
  const struct ldr_key_ref *uniq = a->c->uniq + off;
  unsigned kb = bucket(n), fb = a->n_features ? bucket(a->n_features) : 0;
  MYSQL_STMT *st = NULL;
  enum ldr_rc rc = get_stmt(b, ST_READ, a->table, kb, fb, &st, err);
  if (rc != LDR_OK) return rc;
  MYSQL_BIND *params = ldr_arena_calloc(a->arena, kb + fb, sizeof *params);
  if (params == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "read: the request is larger than a call may hold");
  /* Unused placeholders repeat the last key or feature. */
  for (unsigned i = 0; i < kb; i++) {
    const struct ldr_key_ref *k = n ? &uniq[i < n ? i : n - 1] : NULL;
    bind_string(&params[i], k ? (const void *)k->bytes : "", k ? k->len : 0, MYSQL_TYPE_STRING);
  }
  for (unsigned i = 0; i < fb; i++) {
    const char *f = a->features[i < a->n_features ? i : a->n_features - 1];
    bind_string(&params[kb + i], f, strlen(f), MYSQL_TYPE_STRING);
  }
  mysql_stmt_bind_param(st, params);
  rc = execute(b, st, 1, "read", a->table, err);
  if (rc != LDR_OK) return rc;
  for (;;) {
    int r = mysql_stmt_fetch(st); /* the rows are stored: no I/O */
    if (r == MYSQL_NO_DATA) break;
    if (r != 0 && r != MYSQL_DATA_TRUNCATED) {
      rc = stmt_error(b, st, "read", a->table, err);
      break;
    }
    struct ldr_ts ts = {0, 0};
    if (!s->ts_null) {
      struct tm tm = {0};
      tm.tm_year = (int)s->ts.year - 1900;
      tm.tm_mon = (int)s->ts.month - 1;
      tm.tm_mday = (int)s->ts.day;
      tm.tm_hour = (int)s->ts.hour;
      tm.tm_min = (int)s->ts.minute;
      tm.tm_sec = (int)s->ts.second;
      ts.s = (int64_t)timegm(&tm);
      ts.ns = (int32_t)s->ts.second_part * 1000;
    }
    rc = ldr_collect_row(a->c, s->key, s->key_len, s->name, s->name_len, s->value, s->value_len,
                         s->ts_null ? NULL : &ts, err);
    if (rc != LDR_OK) break;
  }
  mysql_stmt_free_result(st);
  return rc;
}

static enum ldr_rc op_read(struct ldr_backend *b, void *varg, struct ldr_err *err) {
  struct read_arg *a = varg;
  enum ldr_rc rc = LDR_OK;
  ldr_collect_reset(a->c);
  size_t off = 0;
  do {
    size_t chunk = a->c->nuniq - off > MAX_BUCKET ? MAX_BUCKET : a->c->nuniq - off;
    rc = read_chunk(b, a, off, chunk, err);
    off += chunk;
  } while (rc == LDR_OK && off < a->c->nuniq);
  return rc;
}

/* Keys travel and are stored as the lowercase hex of their bytes. */
static enum ldr_rc hex_keys(const struct ldr_key *keys, size_t n, const char *list,
                            struct ldr_arena *a, struct ldr_key *out, struct ldr_err *err) {
  for (size_t i = 0; i < n; i++) {
    if (keys[i].len * 2 > KEY_HEX_MAX)
      return ldr_err_set(
          err, LDR_INVALID,
          "%s[%zu]: the serialized key has %zu bytes; MySQL's entity_key column holds %d", list, i,
          keys[i].len, KEY_HEX_MAX / 2);
    out[i].bytes = (const uint8_t *)hex_of(a, keys[i].bytes, keys[i].len);
    out[i].len = keys[i].len * 2;
    if (out[i].bytes == NULL)
      return ldr_err_set(err, LDR_EXHAUSTED, "the request is larger than a call may hold");
  }
  return LDR_OK;
}

static enum ldr_rc my_read(struct ldr_backend *b, const char *table, const struct ldr_key *keys,
                           size_t n_keys, const char *const *features, size_t n_features,
                           struct ldr_arena *arena, struct ldr_read_row *out, struct ldr_err *err) {
  struct ldr_collector c;
  if (n_features > MAX_BUCKET)
    return ldr_err_set(err, LDR_EXHAUSTED, "requested_features: more than %d features", MAX_BUCKET);
  struct ldr_key *hex = ldr_arena_alloc(arena, (n_keys ? n_keys : 1) * sizeof *hex);
  if (hex == NULL) return ldr_err_set(err, LDR_EXHAUSTED, "read: too many keys for a call");
  enum ldr_rc rc = hex_keys(keys, n_keys, "entity_keys", arena, hex, err);
  if (rc == LDR_OK) rc = ldr_collect_begin(&c, arena, hex, n_keys, err);
  struct read_arg a = {table, &c, features, n_features, arena};
  if (rc == LDR_OK) rc = with_connection(b, op_read, &a, err);
  if (rc == LDR_OK) rc = ldr_collect_end(&c, out, err);
  return rc;
}

/* One (key, feature) to write, with its parameters. */
struct write_item {
  const char *hex;
  size_t hex_len;
  const struct ldr_write_feature *f;
  MYSQL_TIME event, created;
  my_bool created_null;
};

struct write_arg {
  const char *table;
  struct write_item *items;
  size_t n;
  struct ldr_arena *arena;
};

static void to_mysql_time(struct ldr_ts t, MYSQL_TIME *out) {
  struct tm tm;
  time_t s = (time_t)t.s; /* whole seconds, truncated as in the other stores */
  gmtime_r(&s, &tm);
  memset(out, 0, sizeof *out);
  out->year = (unsigned)tm.tm_year + 1900;
  out->month = (unsigned)tm.tm_mon + 1;
  out->day = (unsigned)tm.tm_mday;
  out->hour = (unsigned)tm.tm_hour;
  out->minute = (unsigned)tm.tm_min;
  out->second = (unsigned)tm.tm_sec;
  out->time_type = MYSQL_TIMESTAMP_DATETIME;
}

/* Binds rows items[off..off+n) to the statement for `rows` rows; `p` holds 5 * rows binds. */
static enum ldr_rc write_chunk(struct ldr_backend *b, struct write_arg *a, size_t off, size_t n,
                               MYSQL_BIND *p, struct ldr_err *err) {
  unsigned rows = bucket(n);
  MYSQL_STMT *st = NULL;
  enum ldr_rc rc = get_stmt(b, ST_WRITE, a->table, rows, 0, &st, err);
  if (rc != LDR_OK) return rc;
  memset(p, 0, (size_t)rows * 5 * sizeof *p);
  /* Unused rows repeat the last one: the same upsert again changes nothing. */
  for (unsigned r = 0; r < rows; r++) {
    struct write_item *it = &a->items[off + (r < n ? r : n - 1)];
    MYSQL_BIND *bd = &p[5 * r];
    bind_string(&bd[0], it->hex, it->hex_len, MYSQL_TYPE_STRING);
    bind_string(&bd[1], it->f->name, strlen(it->f->name), MYSQL_TYPE_STRING);
    bind_string(&bd[2], it->f->len ? (const void *)it->f->bytes : "", it->f->len, MYSQL_TYPE_BLOB);
    bd[3].buffer_type = MYSQL_TYPE_TIMESTAMP;
    bd[3].buffer = &it->event;
    bd[4].buffer_type = MYSQL_TYPE_TIMESTAMP;
    bd[4].buffer = &it->created;
    bd[4].is_null = &it->created_null;
  }
  mysql_stmt_bind_param(st, p);
  return execute(b, st, 0, "write", a->table, err);
}

static enum ldr_rc op_write(struct ldr_backend *b, void *varg, struct ldr_err *err) {
  struct write_arg *a = varg;
  /* One statement is atomic by itself; several share a transaction. */
  int several = a->n > MAX_BUCKET;
  /* One set of binds serves every statement of the batch. */
  MYSQL_BIND *binds =
      ldr_arena_alloc(a->arena, (size_t)bucket(several ? MAX_BUCKET : a->n) * 5 * sizeof *binds);
  if (binds == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "write: the batch is larger than a call may hold");
  enum ldr_rc rc = several ? query(b, "START TRANSACTION", "write", a->table, NULL, err) : LDR_OK;
  for (size_t off = 0; rc == LDR_OK && off < a->n; off += MAX_BUCKET)
    rc = write_chunk(b, a, off, a->n - off > MAX_BUCKET ? MAX_BUCKET : a->n - off, binds, err);
  if (several && rc == LDR_OK) rc = query(b, "COMMIT", "write: commit", a->table, NULL, err);
  if (several && rc != LDR_OK && impl(b)->conn != NULL) {
    struct ldr_err ignored;
    ldr_err_clear(&ignored);
    query(b, "ROLLBACK", "write: rollback", a->table, NULL, &ignored);
  }
  return rc;
}

static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
  return n;
}

static enum ldr_rc check_ts(struct ldr_ts t, size_t row, const char *field, struct ldr_err *err) {
  if (t.s < TS_MIN || t.s > TS_MAX)
    return ldr_err_set(err, LDR_INVALID,
                       "rows[%zu].%s.seconds: %lld is outside MySQL's timestamp range "
                       "(1970-01-01T00:00:01Z to 2038-01-19T03:14:07Z)",
                       row, field, (long long)t.s);
  return LDR_OK;
}

static enum ldr_rc my_write(struct ldr_backend *b, const char *table,
                            const struct ldr_write_row *rows, size_t n, struct ldr_arena *arena,
                            struct ldr_err *err) {
  /* An empty batch writes nothing, but the table must exist. */
  if (n == 0) return my_read(b, table, NULL, 0, NULL, 0, arena, NULL, err);
  /* What the columns cannot hold is refused, never stored cut short. */
  for (size_t i = 0; i < n; i++) {
    const struct ldr_write_row *r = &rows[i];
    if (r->key.len * 2 > KEY_HEX_MAX)
      return ldr_err_set(
          err, LDR_INVALID,
          "rows[%zu].entity_key: the serialized key has %zu bytes; MySQL's entity_key "
          "column holds %d",
          i, r->key.len, KEY_HEX_MAX / 2);
    enum ldr_rc rc = check_ts(r->event_ts, i, "event_ts", err);
    if (rc == LDR_OK && r->has_created) rc = check_ts(r->created_ts, i, "created_ts", err);
    if (rc != LDR_OK) return rc;
    for (size_t j = 0; j < r->n_features; j++) {
      const struct ldr_write_feature *f = &r->features[j];
      if (utf8_chars(f->name) > NAME_CHARS_MAX)
        return ldr_err_set(err, LDR_INVALID,
                           "rows[%zu].features[%zu]: the feature name is longer than MySQL's %d "
                           "characters",
                           i, j, NAME_CHARS_MAX);
      if (f->len > VALUE_MAX)
        return ldr_err_set(
            err, LDR_INVALID,
            "rows[%zu].features[%zu]: the value has %zu bytes; MySQL's BLOB column holds "
            "%d",
            i, j, f->len, VALUE_MAX);
    }
  }
  /* Rows are written in key order, as any other writer that sorts does, so
   * concurrent batches take their row locks in one order and rarely deadlock. */
  struct ldr_flat *flat = NULL;
  size_t nflat = 0;
  enum ldr_rc rc = ldr_flatten_last_wins(rows, n, arena, &flat, &nflat, err);
  if (rc != LDR_OK) return rc;
  struct write_arg a = {table, ldr_arena_calloc(arena, nflat + 1, sizeof(struct write_item)), 0,
                        arena};
  if (a.items == NULL)
    return ldr_err_set(err, LDR_EXHAUSTED, "write: the batch is larger than a call may hold");
  const struct ldr_write_row *last_row = NULL;
  const char *hex = NULL;
  for (size_t i = 0; i < nflat; i++) {
    const struct ldr_write_row *r = flat[i].row;
    if (r != last_row) {
      hex = hex_of(arena, r->key.bytes, r->key.len);
      if (hex == NULL)
        return ldr_err_set(err, LDR_EXHAUSTED, "write: the batch is larger than a call may hold");
      last_row = r;
    }
    struct write_item *it = &a.items[a.n++];
    it->hex = hex;
    it->hex_len = r->key.len * 2;
    it->f = flat[i].feature;
    to_mysql_time(r->event_ts, &it->event);
    it->created_null = !r->has_created;
    if (r->has_created) to_mysql_time(r->created_ts, &it->created);
  }
  if (a.n == 0) return my_read(b, table, NULL, 0, NULL, 0, arena, NULL, err);
  return with_connection(b, op_write, &a, err);
}

struct ddl_arg {
  const char *const *keep, *const *drop;
  size_t n_keep, n_drop;
};

static enum ldr_rc op_update(struct ldr_backend *b, void *varg, struct ldr_err *err) {
  struct ddl_arg *a = varg;
  char sql[600];
  enum ldr_rc rc = LDR_OK;
  /* MySQL commits each DDL statement by itself: Update is not one transaction here. */
  for (size_t i = 0; rc == LDR_OK && i < a->n_keep; i++) {
    const char *t = a->keep[i];
    /* Feast's DDL, whitespace included. */
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS `%s` (entity_key VARCHAR(512),\n"
             "                feature_name VARCHAR(256),\n"
             "                value BLOB,\n"
             "                event_ts timestamp NULL DEFAULT NULL,\n"
             "                created_ts timestamp NULL DEFAULT NULL,\n"
             "                PRIMARY KEY(entity_key, feature_name))",
             t);
    rc = query(b, sql, "update", NULL, NULL, err);
    unsigned long long found = 0;
    if (rc == LDR_OK) {
      snprintf(sql, sizeof sql,
               "SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() "
               "AND table_name = '%s' AND index_name = '%s_ek'",
               t, t);
      rc = query(b, sql, "update", NULL, &found, err);
    }
    if (rc == LDR_OK && found == 0) {
      snprintf(sql, sizeof sql, "ALTER TABLE `%s` ADD INDEX `%s_ek` (entity_key)", t, t);
      rc = query(b, sql, "update", NULL, NULL, err);
    }
  }
  for (size_t i = 0; rc == LDR_OK && i < a->n_drop; i++) {
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS `%s`", a->drop[i]);
    rc = query(b, sql, "update", NULL, NULL, err);
  }
  return rc;
}

static enum ldr_rc my_update(struct ldr_backend *b, const char *const *keep, size_t n_keep,
                             const char *const *drop, size_t n_drop, struct ldr_err *err) {
  struct ddl_arg a = {keep, drop, n_keep, n_drop};
  return with_connection(b, op_update, &a, err);
}

static enum ldr_rc my_teardown(struct ldr_backend *b, const char *const *tables, size_t n,
                               struct ldr_err *err) {
  return my_update(b, NULL, 0, tables, n, err);
}

static enum ldr_rc op_ping(struct ldr_backend *b, void *arg, struct ldr_err *err) {
  (void)arg;
  unsigned long long rows = 0;
  return query(b, "SELECT 1", "ping", NULL, &rows, err);
}

static enum ldr_rc my_ping(struct ldr_backend *b, struct ldr_err *err) {
  return with_connection(b, op_ping, NULL, err);
}

static enum ldr_rc my_open(struct ldr_backend *b, struct ldr_err *err) {
  struct my_impl *s = impl(b);
  s->timeout_ms = -1;
  /* Feast's MySQL store always serializes keys with version 3 (SPEC §4.3). */
  b->key_version = 3;
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

static void my_close(struct ldr_backend *b) { drop_connection(impl(b)); }

static int my_connected(struct ldr_backend *b) { return impl(b)->conn != NULL; }

#define MY_STRING(k, member) LDR_STRING_KEY(struct ldr_mysql_options, k, member, 0)

static const struct ldr_config_field fields[] = {
    MY_STRING("host", host),
    LDR_INT_KEY(struct ldr_mysql_options, "port", port, 1, 65535),
    MY_STRING("user", user),
    MY_STRING("password", password),
    MY_STRING("database", database),
    MY_STRING("ssl_ca", ssl_ca),
    MY_STRING("ssl_cert", ssl_cert),
    MY_STRING("ssl_key", ssl_key),
    /* Feast's batching switch: larder always writes a batch with multi-row statements. */
    {.key = "batch_write", .kind = LDR_FIELD_BOOL, .offset = LDR_NO_FIELD},
    {.key = "batch_size",
     .kind = LDR_FIELD_INT,
     .offset = LDR_NO_FIELD,
     .min = 1,
     .max = 1000000000},
};

/* What Feast's MySQL store ends up with when a key is not set (pymysql's defaults). */
static int defaults(void *opts) {
  struct ldr_mysql_options *o = opts;
  o->host = strdup("127.0.0.1");
  o->port = 3306;
  o->user = strdup("test");
  o->password = strdup("test");
  o->database = strdup("feast");
  return o->host && o->user && o->password && o->database ? 0 : -1;
}

const struct ldr_store_schema ldr_mysql_schema = {
    .name = "mysql",
    .size = sizeof(struct ldr_mysql_options),
    .fields = fields,
    .n_fields = sizeof fields / sizeof fields[0],
    .defaults = defaults,
};

const struct ldr_backend_ops ldr_mysql_ops = {
    .schema = &ldr_mysql_schema,
    .impl_size = sizeof(struct my_impl),
    .open = my_open,
    .close = my_close,
    .update = my_update,
    .teardown = my_teardown,
    .write_batch = my_write,
    .read = my_read,
    .ping = my_ping,
    .connected = my_connected,
};
