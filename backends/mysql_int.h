/*
 * What the files of the MySQL backend share: mysql_conn.c (the connection,
 * errors, preparing and executing), mysql_read.c (reads) and mysql.c (writes,
 * DDL and the ops table).
 */
#ifndef LDR_MYSQL_INT_H
#define LDR_MYSQL_INT_H

#include <mysql.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/mysql.h"
#include "backends/sql.h"

#define MAX_BUCKET 8192  /* keys of one view, or rows, bound to one SELECT or INSERT */
#define MAX_PARAMS 65535 /* placeholders in one statement: the protocol counts them in 16 bits */
/* Parameter bytes sent with one statement: under every server's default
 * max_allowed_packet (MySQL 5.7's 4 MiB is the smallest). Each parameter
 * also costs a few bytes of framing. */
#define MAX_PACKET ((size_t)4 * 1024 * 1024 - 65536)
#define PARAM_FRAMING 4
#define DEADLINE_GRACE_NS (50 * 1000000LL)
/* Column sizes of Feast's table: VARCHAR(512), VARCHAR(256) (utf8mb4), BLOB. */
#define KEY_HEX_MAX 512
#define NAME_CHARS_MAX 256
#define VALUE_MAX 65535
/* A read row's name and value buffers: wider ones are fetched column by column. */
#define ROW_NAME_BUF 256
#define ROW_VALUE_BUF 1024
/* MySQL's timestamp type: 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC. */
#define TS_MIN 1
#define TS_MAX 2147483647LL
/* ER_QUERY_TIMEOUT of MySQL (max_execution_time); MariaDB says ER_STATEMENT_TIMEOUT. */
#define MYSQL_ER_QUERY_TIMEOUT 3024

/* One connection and what lives in its session. */
struct my_conn {
  struct ldr_sql_conn sql; /* first: backends/sql.c's hooks get this struct back with a cast */
  MYSQL *conn;
  int mariadb; /* the server is MariaDB (max_statement_time) rather than MySQL */
  struct ldr_stmt_cache stmts;
  long timeout_ms; /* the session's statement time limit; -1: not known */
  int conflict;    /* the last statement lost a deadlock: it may simply run again */
  /* Where a read row's columns land. Name and value land in buffers that fit
   * what Feast stores; a wider one (the columns may have been ALTERed) reports
   * truncation and is fetched again into the arena at its true size. */
  long long part;
  char key[KEY_HEX_MAX + 1];
  char name[ROW_NAME_BUF], value[ROW_VALUE_BUF];
  unsigned long key_len, name_len, value_len;
  my_bool key_null, name_null, value_null, ts_null, name_cut, value_cut;
  MYSQL_TIME ts;
};

struct my_impl {
  /* rd serves reads; wr writes, Update and Teardown: one connection unless
   * larder.read_hosts sends reads to replicas and writes are served. */
  struct my_conn conns[LDR_CONNS_MAX];
  size_t n_conns;
  struct my_conn *rd, *wr;
  size_t first_replica;         /* the replica this instance's reads try first */
  struct ldr_stmt_cache widths; /* per table, rows per key (ldr_width_names) */
};

static inline struct my_impl *impl(struct ldr_backend *b) { return b->impl; }

static inline const struct ldr_mysql_options *options(const struct ldr_backend *b) {
  return b->cfg->opts;
}

/* The connection of a driver hook. */
static inline struct my_conn *myc(struct ldr_sql_conn *c) { return (struct my_conn *)c; }

/* Closes the connection (if any) and its statements. */
void ldr_my_drop_connection(struct my_conn *c);

/* Waits for what a non-blocking connector call asked for; the status for its
 * _cont function, or -1 past `until_ns` (0: no limit) or when waits are aborted. */
int ldr_my_wait_io(MYSQL *m, int status, int64_t until_ns);

/* When to give up on the server: the call's deadline and a grace, or 0. */
int64_t ldr_my_command_until(struct ldr_backend *b);

/* The call ran out of time inside the connector: the connection is dropped. */
enum ldr_rc ldr_my_timed_out(struct my_conn *c, const char *what, struct ldr_err *err);

/* Maps a statement's error to a code in `err` (tables: what a missing table may be). */
enum ldr_rc ldr_my_stmt_error(struct ldr_backend *b, struct my_conn *c, MYSQL_STMT *st,
                              const char *what, const char *const *tables, size_t n_tables,
                              struct ldr_err *err);

/* Runs one text query; with `rows`, it returns a result set and *rows is its size. */
enum ldr_rc ldr_my_query(struct ldr_backend *b, struct my_conn *c, const char *sql,
                         const char *what, const char *const *tables, size_t n_tables,
                         unsigned long long *rows, struct ldr_err *err);

/* Nonzero while any connection is open (ops->connected). */
int ldr_my_connected(struct ldr_backend *b);

/* ldr_sql_run on connection `c` with this backend's driver. */
enum ldr_rc ldr_my_run(struct ldr_backend *b, struct my_conn *c, ldr_sql_op op, void *arg,
                       struct ldr_err *err);

/* The statement cached under `key`, prepared from `sql` on a miss (owned by the cache). */
enum ldr_rc ldr_my_prepare(struct ldr_backend *b, struct my_conn *c, const char *key,
                           const char *sql, const char *const *tables, size_t n_tables,
                           MYSQL_STMT **out, struct ldr_err *err);

/* Binds `params` and executes `st` (rows, if any, are fetched by the caller). */
enum ldr_rc ldr_my_execute(struct ldr_backend *b, struct my_conn *c, MYSQL_STMT *st,
                           MYSQL_BIND *params, const char *what, const char *const *tables,
                           size_t n_tables, struct ldr_err *err);

/* The lowercase hex of p[0..n) in the arena (how keys are stored), or NULL. */
char *ldr_my_hex_of(struct ldr_arena *a, const uint8_t *p, size_t n);

/* A parameter bound to n bytes at p (borrowed until the statement runs). */
void ldr_my_bind_string(MYSQL_BIND *bd, const void *p, size_t n, enum enum_field_types type);

/* Whether one more item of `len` bytes, after n items of `sum` bytes, still fits
 * one statement once its bucket is padded with copies of it. */
int ldr_my_fits(size_t n, size_t sum, size_t len);

/* LDR_EXHAUSTED: the call's arena is full. */
enum ldr_rc ldr_my_too_big(struct ldr_err *err, const char *what);

/* LDR_INVALID unless `t` is a table name that may be quoted into SQL as it is. */
enum ldr_rc ldr_my_check_table(const char *t, struct ldr_err *err);

/* Sets up the connections (larder.read_hosts) and opens them (larder.wait_for_backend_s). */
enum ldr_rc ldr_my_open(struct ldr_backend *b, struct ldr_err *err);

/* The label of server i ("host:port": 0 the primary, then larder.read_hosts):
 * 1, or 0 past the last (ops->host_label). */
int ldr_my_host_label(const struct ldr_store_config *cfg, size_t i, char *buf, size_t cap);

/* ops->conns. */
size_t ldr_my_conns(struct ldr_backend *b, struct ldr_conn_state *out);

/* The ops' read (mysql_read.c). */
enum ldr_rc ldr_my_read(struct ldr_backend *b, struct ldr_read *reads, size_t n,
                        struct ldr_arena *arena, struct ldr_err *err);

#endif
