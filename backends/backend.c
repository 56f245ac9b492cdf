/* The list of built-in stores, instance lifetime, and checks shared by all stores. */
#include "backends/backend_int.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/mysql.h"
#include "backends/postgres.h"
#include "backends/sqlite.h"

static const struct ldr_backend_ops *const backends[] = {
#ifdef LDR_WITH_SQLITE
    &ldr_sqlite_ops,
#endif
#ifdef LDR_WITH_POSTGRES
    &ldr_postgres_ops,
#endif
#ifdef LDR_WITH_MYSQL
    &ldr_mysql_ops,
#endif
    NULL,
};

const char *const ldr_cosine_only[] = {"cosine", NULL};

#define N_BACKENDS (sizeof backends / sizeof backends[0])

const struct ldr_store_schema *const *ldr_backend_schemas(void) {
  /* Filled on every call with the same values: no first-call race. */
  static const struct ldr_store_schema *schemas[N_BACKENDS];
  for (size_t i = 0; i < N_BACKENDS; i++) schemas[i] = backends[i] ? backends[i]->schema : NULL;
  return schemas;
}

const struct ldr_reader_ops *ldr_backend_reader(const char *dialect) {
  for (size_t i = 0; backends[i] != NULL; i++) {
    const struct ldr_reader_ops *r = backends[i]->reader;
    for (size_t j = 0; r != NULL && r->dialects[j] != NULL; j++)
      if (!strcmp(r->dialects[j], dialect)) return r;
  }
  return NULL;
}

enum ldr_rc ldr_backend_new(const struct ldr_store_config *cfg, struct ldr_backend **out,
                            struct ldr_err *err) {
  *out = NULL;
  const struct ldr_backend_ops *ops = NULL;
  for (size_t i = 0; backends[i] != NULL; i++)
    if (backends[i]->schema == cfg->schema) ops = backends[i];
  if (ops == NULL)
    return ldr_err_set(err, LDR_INTERNAL, "online_store.type: %s is not built into this larder",
                       cfg->type_name);
  struct ldr_backend *b = calloc(1, sizeof *b);
  if (b == NULL) return ldr_err_set(err, LDR_NOMEM, "out of memory");
  b->ops = ops;
  b->cfg = cfg;
  b->key_version = cfg->key_version;
  b->impl = calloc(1, ops->impl_size ? ops->impl_size : 1);
  if (b->impl == NULL) {
    free(b);
    return ldr_err_set(err, LDR_NOMEM, "out of memory");
  }
  enum ldr_rc rc = ops->open(b, err);
  if (rc != LDR_OK) {
    ldr_backend_free(b);
    return rc;
  }
  *out = b;
  return LDR_OK;
}

void ldr_backend_free(struct ldr_backend *b) {
  if (b == NULL) return;
  b->ops->close(b);
  free(b->impl);
  free(b);
}

size_t ldr_backend_conns(struct ldr_backend *b, struct ldr_conn_state *out) {
  return b != NULL && b->ops->conns != NULL ? b->ops->conns(b, out) : 0;
}

const char *ldr_write_where(const struct ldr_write *w, size_t row, enum ldr_write_part part,
                            size_t feature, char *buf, size_t cap) {
  const struct ldr_write_names *n = w->names;
  if (n == NULL) {
    static const char *const grpc[] = {"entity_key", "event_ts", "created_ts", "features"};
    if (part == LDR_PART_FEATURE)
      snprintf(buf, cap, "rows[%zu].features[%zu]", row, feature);
    else
      snprintf(buf, cap, "rows[%zu].%s", row, grpc[part]);
  } else if (part == LDR_PART_KEY) {
    snprintf(buf, cap, "%s[%zu] (join keys %.200s)", n->frame, row, n->keys);
  } else {
    const char *col = part == LDR_PART_EVENT     ? n->event
                      : part == LDR_PART_CREATED ? n->created
                                                 : n->features[feature];
    snprintf(buf, cap, "%s.%.100s[%zu]", n->frame, col, row);
  }
  return buf;
}

int ldr_backend_host_label(const struct ldr_store_config *cfg, size_t i, char *buf, size_t cap) {
  for (size_t k = 0; backends[k] != NULL; k++)
    if (backends[k]->schema == cfg->schema)
      return backends[k]->host_label != NULL && backends[k]->host_label(cfg, i, buf, cap);
  return 0;
}

const char *ldr_conn_role_name(enum ldr_conn_role role) {
  return role == LDR_CONN_READ ? "read" : role == LDR_CONN_WRITE ? "write" : "all";
}

int64_t ldr_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ldr_stop_signal_pending(void) {
  sigset_t pending;
  sigemptyset(&pending);
  return sigpending(&pending) == 0 &&
         (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

/* Set once, when the server cancels the calls still in flight at shutdown. */
static atomic_int aborting;

void ldr_backend_abort_waits(void) { atomic_store(&aborting, 1); }

int ldr_backend_aborting(void) { return atomic_load_explicit(&aborting, memory_order_relaxed); }

int ldr_backend_past_deadline(const struct ldr_backend *b) {
  return ldr_backend_aborting() || (b->deadline_ns != 0 && ldr_now_ns() >= b->deadline_ns);
}

enum ldr_rc ldr_table_name_version(const char *project, const char *view, int version,
                                   const char *field, char *table, struct ldr_err *err) {
  char suffix[16] = "";
  if (version > 0) snprintf(suffix, sizeof suffix, "_v%d", version);
  size_t plen = strlen(project), vlen = strlen(view), slen = strlen(suffix);
  if (vlen == 0) return ldr_err_set(err, LDR_INVALID, "%s: empty feature view name", field);
  if (!ldr_config_identifier(view, vlen))
    return ldr_err_set(err, LDR_INVALID, "%s: feature view names are letters, digits and '_' only",
                       field);
  if (plen + 1 + vlen + slen > LDR_TABLE_NAME_MAX)
    return ldr_err_set(err, LDR_INVALID, "%s: table name %s_%s%s is longer than %d bytes", field,
                       project, vlen > 80 ? "..." : view, suffix, LDR_TABLE_NAME_MAX);
  memcpy(table, project, plen);
  table[plen] = '_';
  memcpy(table + plen + 1, view, vlen);
  memcpy(table + plen + 1 + vlen, suffix, slen + 1);
  return LDR_OK;
}

enum ldr_rc ldr_table_name(const char *project, const char *view, const char *field, char *table,
                           struct ldr_err *err) {
  return ldr_table_name_version(project, view, 0, field, table, err);
}
