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
/* Where the entry under `key` keeps its statement (to replace it), or NULL. */
void **ldr_stmt_ref(struct ldr_stmt_cache *c, const char *key);
/* Caches `stmt` under `key`. Returns the statement it evicted (the caller
 * releases it), or NULL; *nomem set when the key could not be copied (then
 * `stmt` is not cached and the caller releases it too). */
void *ldr_stmt_put(struct ldr_stmt_cache *c, const char *key, void *stmt, int *nomem);
/* Empties the cache, calling release(stmt) for each entry (NULL: forget them). */
void ldr_stmt_clear(struct ldr_stmt_cache *c, void (*release)(void *stmt));

/* ---- how a read names its features ---- */

/*
 * A read that names features asks the database for them only where its table
 * is known to hold more than twice as many per key; otherwise its statement
 * selects by key only and the backend keeps the named rows (ldr_wanted).
 * Both PostgreSQL and MariaDB answer `feature_name IN (...)` with a probe of
 * the primary key per key and name: naming the 50 features of a 50-feature
 * table cost them 3.5-5 times the database's CPU of reading the keys' rows
 * (bench/analysis.md). `widths` keeps, per table, the most rows a key had in
 * a read by key (in its stmt field, as a number): a cache of one backend
 * instance, learned again after an eviction.
 */
int ldr_width_names(struct ldr_stmt_cache *widths, const char *table, size_t n_features);
/* After a read by key of `keys` distinct keys of `table` that returned `rows`
 * rows (or took them before it failed: fewer than the table holds, never more). */
void ldr_width_learn(struct ldr_stmt_cache *widths, const char *table, size_t rows, size_t keys);

/* ---- deadlines ---- */

/*
 * The statement timeout in milliseconds for a call with `deadline_ns`
 * (0: none, returns 0), rounded down to steps 25% apart so that calls with the
 * same timeout keep the same value (setting it costs a round trip) and the
 * server stops a statement no later than the deadline; -1 once it passed.
 */
long ldr_sql_timeout_ms(int64_t deadline_ns);

/* ---- connections, with back-off ---- */

/*
 * One connection of a backend instance and where connecting it stands. An
 * instance may hold several (one for reads and, where writes go elsewhere,
 * one for writes: ldr_conn_role); each reconnects on its own. A backend's
 * own connection struct starts with this one, so that the driver's hooks
 * get theirs back with a cast. After a refused connect, attempts wait 50 ms,
 * doubling up to 1 s (with jitter), and calls meanwhile fail at once.
 */
struct ldr_sql_conn {
  int64_t retry_at_ns;
  int64_t backoff_ns;
  unsigned failures;
  unsigned seed;           /* for the jitter */
  enum ldr_conn_role role; /* in log lines and metrics */
  int host;                /* the index of the server it is on (ldr_backend_host_label); -1: none */
  int64_t fallback_at_ns;  /* when it was opened on a server it does not prefer (a read
                              connection on the primary); 0: on a preferred one */
};

/* Readies a connection for ldr_sql_run and ldr_sql_open: not connected, no back-off. */
void ldr_sql_conn_init(struct ldr_sql_conn *c, enum ldr_conn_role role);

/* How long a connection stays on a server it does not prefer before a
 * preferred one is tried again (a replica that came back), and the most that
 * try may take of the call it runs in: a replica that does not answer at all
 * (a network partition) costs a call no more. */
#define LDR_SQL_FALLBACK_NS (10 * 1000000000LL)
#define LDR_SQL_PREFER_NS (250 * 1000000LL)

struct ldr_sql_driver {
  const char *name; /* "postgres": in log lines */
  /* Nonzero while the connection is usable. */
  int (*connected)(struct ldr_backend *b, struct ldr_sql_conn *c);
  /* Opens (or reopens) the connection, waiting at most until until_ns, and
   * sets c->host and c->fallback_at_ns. On failure the message may name the
   * server: it goes to the log only. */
  enum ldr_rc (*connect)(struct ldr_backend *b, struct ldr_sql_conn *c, int64_t until_ns,
                         struct ldr_err *err);
  /* Closes the connection, forgetting what lived in its session. */
  void (*disconnect)(struct ldr_backend *b, struct ldr_sql_conn *c);
  /* For a connection on a server it does not prefer: opens one on a
   * preferred server within until_ns and replaces it with that one; on
   * failure the connection it has stays as it is. */
  enum ldr_rc (*prefer)(struct ldr_backend *b, struct ldr_sql_conn *c, int64_t until_ns,
                        struct ldr_err *err);
  /* Readies an open connection for the call (its statement timeout). */
  enum ldr_rc (*begin_call)(struct ldr_backend *b, struct ldr_sql_conn *c, struct ldr_err *err);
  /* Nonzero when the operation just failed lost a deadlock or a
   * serialization race, and may simply run again. */
  int (*conflicted)(struct ldr_backend *b, struct ldr_sql_conn *c);
};

typedef enum ldr_rc (*ldr_sql_op)(struct ldr_backend *b, struct ldr_sql_conn *c, void *arg,
                                  struct ldr_err *err);

/*
 * Runs `op` on connection `c`, open: one that is closed is opened (when the
 * back-off allows); one that breaks during `op` is reopened once and `op` runs
 * again (reads, DDL and upserts are all safe to repeat); a deadlock victim runs
 * again up to three times; one that has been on a server it does not prefer
 * for LDR_SQL_FALLBACK_NS first tries a preferred one (ldr_sql_driver.prefer). Then the call fails:
 * UNAVAILABLE, or the deadline's DEADLINE_EXCEEDED, with a message that names
 * no server.
 */
enum ldr_rc ldr_sql_run(struct ldr_backend *b, const struct ldr_sql_driver *d,
                        struct ldr_sql_conn *c, ldr_sql_op op, void *arg, struct ldr_err *err);

/*
 * Opens an instance's connections, retrying for larder.wait_for_backend_s
 * while none of them can be opened. Once one is open the instance starts (a
 * warning names those that are not: the first call that needs one opens it),
 * so that reads start while the primary is away, and writes while the
 * replicas are. A failure that is no outage (a wrong setting) stops it.
 */
enum ldr_rc ldr_sql_open(struct ldr_backend *b, const struct ldr_sql_driver *d,
                         struct ldr_sql_conn *const *conns, size_t n, struct ldr_err *err);

/* The time a connect may take: the call's deadline, else 10 s from now. */
int64_t ldr_sql_connect_until(const struct ldr_backend *b);

/* "postgres" for a connection that serves everything, else "postgres (reads)"
 * or "postgres (writes)": how log lines and messages name it. */
const char *ldr_sql_conn_name(const struct ldr_sql_driver *d, const struct ldr_sql_conn *c,
                              char *buf, size_t cap);

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
