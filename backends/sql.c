/* The plumbing the SQL backends share (backends/sql.h). */
#include "backends/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

#define CONNECT_TIMEOUT_NS (10 * 1000000000LL)
/* A database that refuses connections is tried again after 50 ms, doubling up
 * to a second: each worker tries at most about once a second while it is down,
 * and notices within a second that it is back. */
#define BACKOFF_FIRST_NS (50 * 1000000LL)
#define BACKOFF_MAX_NS (1000 * 1000000LL)

void **ldr_stmt_ref(struct ldr_stmt_cache *c, const char *key) {
  for (size_t i = 0; i < LDR_STMT_CACHE; i++)
    if (c->e[i].key != NULL && !strcmp(c->e[i].key, key)) {
      c->e[i].used = ++c->tick;
      return &c->e[i].stmt;
    }
  return NULL;
}

void *ldr_stmt_find(struct ldr_stmt_cache *c, const char *key) {
  void **at = ldr_stmt_ref(c, key);
  return at ? *at : NULL;
}

void *ldr_stmt_put(struct ldr_stmt_cache *c, const char *key, void *stmt, int *nomem) {
  size_t victim = 0;
  for (size_t i = 0; i < LDR_STMT_CACHE; i++) {
    if (c->e[i].key == NULL) {
      victim = i;
      break;
    }
    if (c->e[i].used < c->e[victim].used) victim = i;
  }
  *nomem = 0;
  char *copy = strdup(key);
  if (copy == NULL) {
    *nomem = 1;
    return NULL;
  }
  void *evicted = c->e[victim].key ? c->e[victim].stmt : NULL;
  free(c->e[victim].key);
  c->e[victim].key = copy;
  c->e[victim].stmt = stmt;
  c->e[victim].used = ++c->tick;
  return evicted;
}

void ldr_stmt_clear(struct ldr_stmt_cache *c, void (*release)(void *stmt)) {
  for (size_t i = 0; i < LDR_STMT_CACHE; i++) {
    if (c->e[i].key != NULL && release != NULL) release(c->e[i].stmt);
    free(c->e[i].key);
    c->e[i].key = NULL;
    c->e[i].stmt = NULL;
  }
}

int ldr_width_names(struct ldr_stmt_cache *widths, const char *table, size_t n_features) {
  uintptr_t width = (uintptr_t)ldr_stmt_find(widths, table);
  return n_features > 0 && width > 2 * (uintptr_t)n_features;
}

void ldr_width_learn(struct ldr_stmt_cache *widths, const char *table, size_t rows, size_t keys) {
  if (keys == 0 || rows == 0) return;
  uintptr_t per_key = (rows + keys - 1) / keys;
  void **known = ldr_stmt_ref(widths, table);
  if (known != NULL) {
    if (per_key > (uintptr_t)*known) *known = (void *)per_key;
    return;
  }
  int nomem; /* without memory it is learned again by a later read */
  ldr_stmt_put(widths, table, (void *)per_key, &nomem); /* what it evicts is a number */
}

long ldr_sql_timeout_ms(int64_t deadline_ns) {
  if (deadline_ns == 0) return 0;
  int64_t left = deadline_ns - ldr_now_ns();
  if (left <= 0) return -1;
  long ms = (long)(left / 1000000), step = 1;
  if (ms < 1) return 1;
  while ((long)((double)step * 1.25) + 1 <= ms) step = (long)((double)step * 1.25) + 1;
  return step;
}

int64_t ldr_sql_connect_until(const struct ldr_backend *b) {
  return b->deadline_ns ? b->deadline_ns : ldr_now_ns() + CONNECT_TIMEOUT_NS;
}

void ldr_sql_conn_init(struct ldr_sql_conn *c, enum ldr_conn_role role) {
  memset(c, 0, sizeof *c);
  c->role = role;
  c->host = -1;
}

const char *ldr_sql_conn_name(const struct ldr_sql_driver *d, const struct ldr_sql_conn *c,
                              char *buf, size_t cap) {
  if (c->role == LDR_CONN_ALL) return d->name;
  snprintf(buf, cap, "%s (%s)", d->name, c->role == LDR_CONN_READ ? "reads" : "writes");
  return buf;
}

/* May a connect be tried now? */
static int may_connect(const struct ldr_sql_conn *c) {
  return c->failures == 0 || ldr_now_ns() >= c->retry_at_ns;
}

static void connect_failed(struct ldr_sql_conn *c) {
  c->failures++;
  c->backoff_ns = c->backoff_ns ? c->backoff_ns * 2 : BACKOFF_FIRST_NS;
  if (c->backoff_ns > BACKOFF_MAX_NS) c->backoff_ns = BACKOFF_MAX_NS;
  /* Up to a quarter less, so that workers and replicas do not retry in step. */
  if (c->seed == 0) c->seed = (unsigned)ldr_now_ns() | 1u;
  int64_t jitter = (int64_t)(rand_r(&c->seed) % 1000) * (c->backoff_ns / 4000);
  c->retry_at_ns = ldr_now_ns() + c->backoff_ns - jitter;
}

/* Opens the connection when the back-off allows; logs the reason of a
 * failure, which names the server, and answers the client without it. */
static enum ldr_rc reconnect(struct ldr_backend *b, const struct ldr_sql_driver *d,
                             struct ldr_sql_conn *c, struct ldr_err *err) {
  char name[48];
  const char *who = ldr_sql_conn_name(d, c, name, sizeof name);
  if (!may_connect(c))
    return ldr_err_set(err, LDR_UNAVAILABLE, "%s: not connected; the next attempt is in %lld ms",
                       who, (long long)((c->retry_at_ns - ldr_now_ns()) / 1000000));
  struct ldr_err e;
  ldr_err_clear(&e);
  enum ldr_rc rc = d->connect(b, c, ldr_sql_connect_until(b), &e);
  if (rc == LDR_OK) {
    if (c->failures) ldr_log(LDR_LOG_INFO, "%s: connected again", who);
    c->failures = 0;
    c->backoff_ns = 0;
    return LDR_OK;
  }
  /* A connect that ran out of the call's time says the database is slow, not
   * that it refuses: the next call tries again within its own deadline. */
  if (rc == LDR_DEADLINE) return ldr_sql_deadline(err, "connect");
  if (c->failures == 0) ldr_log(LDR_LOG_WARN, "%s: %s", who, e.msg);
  connect_failed(c);
  return ldr_err_set(err, rc == LDR_NOMEM ? LDR_NOMEM : LDR_UNAVAILABLE, "%s: %s", who, e.msg);
}

/* A connection that has been on a server it does not prefer (a read
 * connection that fell back to the primary) for a while tries a preferred
 * one, within LDR_SQL_PREFER_NS and the call's deadline: a replica that came
 * back takes its reads back, and one still away costs the call little. */
static void leave_fallback(struct ldr_backend *b, const struct ldr_sql_driver *d,
                           struct ldr_sql_conn *c) {
  int64_t now = ldr_now_ns();
  if (c->fallback_at_ns == 0 || now - c->fallback_at_ns < LDR_SQL_FALLBACK_NS ||
      !d->connected(b, c))
    return;
  int64_t until = now + LDR_SQL_PREFER_NS;
  if (b->deadline_ns != 0 && b->deadline_ns < until) until = b->deadline_ns;
  char name[48];
  struct ldr_err e;
  ldr_err_clear(&e);
  if (d->prefer(b, c, until, &e) == LDR_OK) {
    ldr_log(LDR_LOG_INFO, "%s: back on a preferred server",
            ldr_sql_conn_name(d, c, name, sizeof name));
    return;
  }
  ldr_log(LDR_LOG_DEBUG, "%s: still no preferred server: %s",
          ldr_sql_conn_name(d, c, name, sizeof name), e.msg);
  c->fallback_at_ns = ldr_now_ns(); /* look again later */
}

enum ldr_rc ldr_sql_run(struct ldr_backend *b, const struct ldr_sql_driver *d,
                        struct ldr_sql_conn *c, ldr_sql_op op, void *arg, struct ldr_err *err) {
  int reconnected = 0, conflicts = 0;
  leave_fallback(b, d, c);
  for (;;) {
    struct ldr_err e;
    enum ldr_rc rc = LDR_OK;
    ldr_err_clear(&e);
    if (!d->connected(b, c)) {
      if (reconnected) {
        char name[48];
        return ldr_err_set(err, LDR_UNAVAILABLE, "%s: the connection was lost again",
                           ldr_sql_conn_name(d, c, name, sizeof name));
      }
      reconnected = 1;
      rc = reconnect(b, d, c, &e);
    }
    if (rc == LDR_OK) rc = d->begin_call(b, c, &e);
    if (rc == LDR_OK) rc = op(b, c, arg, &e);
    if (rc == LDR_OK) return LDR_OK;
    /* A transaction chosen as a deadlock's victim was rolled back whole: run it again. */
    if (d->conflicted(b, c) && ++conflicts < 4 && !ldr_backend_past_deadline(b)) continue;
    if (rc == LDR_UNAVAILABLE && !d->connected(b, c) && !reconnected &&
        !ldr_backend_past_deadline(b))
      continue; /* lost during the operation: one more connection */
    *err = e;
    return rc;
  }
}

enum ldr_rc ldr_sql_open(struct ldr_backend *b, const struct ldr_sql_driver *d,
                         struct ldr_sql_conn *const *conns, size_t n, struct ldr_err *err) {
  int64_t give_up = ldr_now_ns() + (int64_t)b->cfg->wait_for_backend_s * 1000000000LL;
  for (;;) {
    struct ldr_err first, e;
    size_t open = 0, failed = 0;
    ldr_err_clear(&first);
    for (size_t i = 0; i < n; i++) {
      if (d->connected(b, conns[i])) {
        open++;
        continue;
      }
      ldr_err_clear(&e);
      enum ldr_rc rc = d->connect(b, conns[i], ldr_now_ns() + CONNECT_TIMEOUT_NS, &e);
      if (rc == LDR_DEADLINE) e.rc = rc = LDR_UNAVAILABLE; /* no call: the connect timeout */
      if (rc == LDR_OK) {
        open++;
      } else if (rc != LDR_UNAVAILABLE) {
        *err = e;
        return rc;
      } else if (failed++ == 0) {
        char name[48];
        if (n == 1)
          first = e;
        else
          ldr_err_set(&first, rc, "%s: %s", ldr_sql_conn_name(d, conns[i], name, sizeof name),
                      e.msg);
      }
    }
    if (open == n) return LDR_OK;
    if (open > 0) {
      ldr_log(LDR_LOG_WARN, "%s; starting with the other connection", first.msg);
      return LDR_OK;
    }
    if (ldr_now_ns() >= give_up) {
      *err = first;
      return first.rc;
    }
    if (ldr_stop_signal_pending()) /* Ctrl-C or a stop while waiting: not later */
      return ldr_err_set(err, LDR_UNAVAILABLE,
                         "stopped by a signal while waiting for the database "
                         "(larder.wait_for_backend_s)");
    struct timespec pause = {0, 250000000};
    nanosleep(&pause, NULL);
  }
}

unsigned ldr_sql_bucket(size_t n) {
  if (n <= 8) return n ? (unsigned)n : 1;
  unsigned k = 16;
  while (k < n) k *= 2;
  return k;
}

enum ldr_rc ldr_sql_not_found(struct ldr_err *err, const char *table) {
  return ldr_err_set(
      err, LDR_NOT_FOUND,
      "feature_view: table \"%s\" does not exist (create it with Update or larder apply)", table);
}

enum ldr_rc ldr_sql_deadline(struct ldr_err *err, const char *what) {
  return ldr_err_set(err, LDR_DEADLINE,
                     "%s: the database did not answer before the call's deadline", what);
}

void ldr_sql_redact(char *msg, const char *secret) {
  size_t n = secret != NULL ? strlen(secret) : 0;
  if (n == 0) return;
  char *p = strstr(msg, secret);
  while (p != NULL) {
    /* A secret shorter than three bytes becomes as many stars, so that the
     * message never grows past its buffer. */
    size_t stars = n < 3 ? n : 3;
    memset(p, '*', stars);
    memmove(p + stars, p + n, strlen(p + n) + 1);
    p = strstr(p + stars, secret);
  }
}
