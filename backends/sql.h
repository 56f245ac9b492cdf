/*
 * What the SQL backends share (as curl's vtls.c beside its backends): a
 * statement cache, the call's deadline as a statement timeout, connecting
 * with back-off, opening with larder.wait_for_backend_s, running an operation
 * with one reconnect, the read statement's text, and the messages a client
 * sees. Each backend file keeps only what its database makes different.
 */
#ifndef LDR_SQL_H
#define LDR_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend_int.h"
#include "common/strbuf.h"

/* ---- statement cache: least recently used, keyed by text ---- */

#define LDR_STMT_CACHE 64

struct ldr_stmt_cache {
  struct {
    char *key; /* malloc'd; NULL: a free entry */
    void *stmt;
    uint64_t used;
  } e[LDR_STMT_CACHE];
  uint64_t tick;
};

/* The statement cached under `key`, or NULL. */
void *ldr_stmt_find(struct ldr_stmt_cache *c, const char *key);
/* Caches `stmt` under `key`. Returns the statement it evicted (the caller
 * releases it), or NULL; *nomem set when the key could not be copied (then
 * `stmt` is not cached and the caller releases it too). */
void *ldr_stmt_put(struct ldr_stmt_cache *c, const char *key, void *stmt, int *nomem);
/* Empties the cache, calling release(stmt) for each entry (NULL: forget them). */
void ldr_stmt_clear(struct ldr_stmt_cache *c, void (*release)(void *stmt));

/* ---- deadlines ---- */

/*
 * The statement timeout in milliseconds for a call with `deadline_ns`
 * (0: none, returns 0), rounded down to steps 25% apart so that calls with the
 * same timeout keep the same value (setting it costs a round trip) and the
 * server stops a statement no later than the deadline; -1 once it passed.
 */
long ldr_sql_timeout_ms(int64_t deadline_ns);

/* ---- the connection, with back-off ---- */

struct ldr_sql_driver {
  const char *name; /* "postgres": in log lines */
  /* Nonzero while the connection is usable. */
  int (*connected)(struct ldr_backend *b);
  /* Opens (or reopens) the connection, waiting at most until until_ns. On
   * failure the message may name the server: it goes to the log only. */
  enum ldr_rc (*connect)(struct ldr_backend *b, int64_t until_ns, struct ldr_err *err);
  /* Readies an open connection for the call (its statement timeout). */
  enum ldr_rc (*begin_call)(struct ldr_backend *b, struct ldr_err *err);
  /* Nonzero when the operation just failed lost a deadlock or a
   * serialization race, and may simply run again. */
  int (*conflicted)(struct ldr_backend *b);
};

/* Where connecting stands: after a refused connect, attempts wait 50 ms,
 * doubling up to 1 s (with jitter), and calls meanwhile fail at once. */
struct ldr_sql_conn {
  int64_t retry_at_ns;
  int64_t backoff_ns;
  unsigned failures;
  unsigned seed; /* for the jitter */
};

typedef enum ldr_rc (*ldr_sql_op)(struct ldr_backend *b, void *arg, struct ldr_err *err);

/*
 * Runs `op` on an open connection: one that is closed is opened (when the
 * back-off allows); one that breaks during `op` is reopened once and `op` runs
 * again (reads, DDL and upserts are all safe to repeat); a deadlock victim runs
 * again up to three times. Then the call fails: UNAVAILABLE, or the
 * deadline's DEADLINE_EXCEEDED, with a message that names no server.
 */
enum ldr_rc ldr_sql_run(struct ldr_backend *b, const struct ldr_sql_driver *d,
                        struct ldr_sql_conn *conn, ldr_sql_op op, void *arg, struct ldr_err *err);

/* Opens the first connection, retrying for larder.wait_for_backend_s while
 * the database is unreachable. */
enum ldr_rc ldr_sql_open(struct ldr_backend *b, const struct ldr_sql_driver *d,
                         struct ldr_sql_conn *conn, struct ldr_err *err);

/* The time a connect may take: the call's deadline, else 10 s from now. */
int64_t ldr_sql_connect_until(const struct ldr_backend *b);

/* ---- SQL text and messages ---- */

/* Placeholders are bound in sizes 1..8, then powers of two, so that few
 * statements serve every size. */
unsigned ldr_sql_bucket(size_t n);

/* LDR_NOT_FOUND naming the table, as every store says it. */
enum ldr_rc ldr_sql_not_found(struct ldr_err *err, const char *table);

/* LDR_DEADLINE: the database did not answer in time (no server named). */
enum ldr_rc ldr_sql_deadline(struct ldr_err *err, const char *what);

/* Replaces each occurrence of `secret` (NULL or empty: none) in `msg` with
 * "***": a driver's message goes to the log, and a password must not. */
void ldr_sql_redact(char *msg, const char *secret);

#endif
