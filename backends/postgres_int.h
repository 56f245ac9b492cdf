/*
 * What the files of the PostgreSQL backend share: postgres_conn.c (the
 * connection, waiting without blocking, errors, plain queries),
 * postgres_pipe.c (the pipeline of a request: reads and writes) and
 * postgres.c (DDL, the ops table and the options).
 */
#ifndef LDR_POSTGRES_INT_H
#define LDR_POSTGRES_INT_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/postgres.h"
#include "backends/sql.h"

/* How long past the deadline to wait for the server's own timeout to answer
 * before giving up on the connection. */
#define DEADLINE_GRACE_NS (50 * 1000000LL)
/* Seconds between 2000-01-01 (PostgreSQL's epoch) and 1970-01-01. */
#define PG_EPOCH_OFFSET 946684800LL

/* OIDs of the types the statements bind (pg_type.h). */
enum { OID_BYTEA = 17, OID_TEXT = 25, OID_TIMESTAMPTZ = 1184 };
enum { OID_BYTEA_ARRAY = 1001, OID_TEXT_ARRAY = 1009, OID_TIMESTAMPTZ_ARRAY = 1185 };

enum stmt_kind { ST_READ_ALL, ST_READ_SOME, ST_WRITE };

/* One connection and what lives in its session. */
struct pg_conn {
  struct ldr_sql_conn sql; /* first: backends/sql.c's hooks get this struct back with a cast */
  PGconn *conn;
  const char *target;          /* target_session_attrs */
  struct ldr_stmt_cache stmts; /* statement names (malloc'd) by (kind, table) */
  char *stale[LDR_STMT_CACHE]; /* evicted from the cache: deallocated by the next pipeline */
  size_t n_stale;
  unsigned long long seq;
  /* A random part of the session's statement names (0: not drawn yet): two
   * sessions that a pooler mixes up never run each other's statements. */
  unsigned long long tag;
  long timeout_ms;  /* the session's statement_timeout; -1: not known */
  int generic;      /* the session plans prepared statements once (plan_cache_mode) */
  int conflict;     /* the last statement lost a deadlock or a serialization race */
  int unreplicated; /* a commit's wait for a synchronous standby was cancelled */
};

struct pg_impl {
  /* rd serves reads; wr writes, Update and Teardown. They are one connection
   * unless reads go elsewhere (larder.read_from) and writes are served. */
  struct pg_conn conns[LDR_CONNS_MAX];
  size_t n_conns;
  struct pg_conn *rd, *wr;
  /* Connection parameters for PQconnectStartParams; target_session_attrs is
   * the connection's own, set at `target` before each connect. */
  const char *kw[24];
  const char *val[24];
  size_t target;
  /* Where host and port are in kw/val (SIZE_MAX: not given), and how many
   * servers `host` lists: with several, larder tries them one at a time
   * (postgres_conn.c, open_conn). */
  size_t host_at, port_at, n_hosts;
  char keepalives_idle[16];
  char schema[200]; /* db_schema (or the user's name), quoted for SQL */
  int named;        /* larder.prepared_statements: named statements and session settings */
  struct ldr_stmt_cache widths; /* per table, rows per key (ldr_width_names) */
};

static inline struct pg_impl *impl(struct ldr_backend *b) { return b->impl; }

static inline const struct ldr_postgres_options *options(const struct ldr_backend *b) {
  return b->cfg->opts;
}

/* The connection of a driver hook. */
static inline struct pg_conn *pgc(struct ldr_sql_conn *c) { return (struct pg_conn *)c; }

/* The driver hooks of backends/sql.c (postgres_conn.c). */
extern const struct ldr_sql_driver ldr_pg_driver;

/* Waits until the connection's socket is ready for `events` (POLLIN,
 * POLLOUT) or `until_ns` passes (0: no limit): 1 ready, 0 time up or every
 * wait aborted (ldr_backend_abort_waits), -1 error. */
int ldr_pg_wait_socket(PGconn *conn, short events, int64_t until_ns);

/* Closes the connection (if any) and forgets what lived in its session. */
void ldr_pg_drop_connection(struct pg_conn *c);

/* Frees the names of evicted statements without deallocating them: for when
 * the session no longer holds them (closed, or DEALLOCATE ALL). */
void ldr_pg_forget_stale(struct pg_conn *c);

/* Maps a failed result, or with `res` NULL the connection's error, to a code in
 * `err`; the message reaches a client only for codes that name no driver text. */
enum ldr_rc ldr_pg_result_error(struct ldr_backend *b, struct pg_conn *c, const PGresult *res,
                                const char *what, const char *table, struct ldr_err *err);

/* Sends what libpq holds, giving up on the connection past `until` (0: never). */
enum ldr_rc ldr_pg_flush(struct ldr_backend *b, struct pg_conn *c, int64_t until, const char *what,
                         struct ldr_err *err);

/* The next result of the command in progress (the caller PQclear()s it; NULL:
 * none left), waiting until `until`; *failed set when the wait failed (see err). */
PGresult *ldr_pg_next_result(struct ldr_backend *b, struct pg_conn *c, int64_t until,
                             const char *what, int *failed, struct ldr_err *err);

/* When to give up on the server: the call's deadline and a grace, or 0. */
int64_t ldr_pg_command_until(const struct ldr_backend *b);

/* One query outside a pipeline (text parameters; none: a simple query of any
 * number of statements) expecting `want`; *out, when asked, is the caller's. */
enum ldr_rc ldr_pg_query(struct ldr_backend *b, struct pg_conn *c, const char *sql, int nparams,
                         const char *const *params, ExecStatusType want, const char *what,
                         PGresult **out, struct ldr_err *err);

/* ldr_pg_query without parameters. */
enum ldr_rc ldr_pg_simple(struct ldr_backend *b, struct pg_conn *c, const char *sql,
                          ExecStatusType want, const char *what, PGresult **out,
                          struct ldr_err *err);

/* Nonzero while any connection is usable (ops->connected). */
int ldr_pg_connected(struct ldr_backend *b);

/* The label of server i of the options ("host:port"): 1, or 0 past the last (ops->host_label). */
int ldr_pg_host_label(const struct ldr_store_config *cfg, size_t i, char *buf, size_t cap);

/* The ops' read and write (postgres_pipe.c). */
enum ldr_rc ldr_pg_read(struct ldr_backend *b, struct ldr_read *reads, size_t n,
                        struct ldr_arena *arena, struct ldr_err *err);
enum ldr_rc ldr_pg_write(struct ldr_backend *b, const struct ldr_write *writes, size_t n,
                         struct ldr_arena *arena, struct ldr_err *err);

#endif
