/*
 * Feast's SQL registry's loader (REGISTRY.md §2-6), through the read-only
 * query interface of backends/backend.h.
 *
 * Noticing changes: every poll reads a fingerprint (per table, over the rows
 * of the project: COUNT, SUM and MAX of the last-updated timestamps) in one
 * query; a different fingerprint loads the registry in full in the same
 * read-only snapshot, and each such load is confirmed by one more load 5 s
 * later, which catches Feast's writes that move no timestamp and writes
 * within one second.
 *
 * Failures: the source keeps serving the last good registry; connecting
 * again backs off from 0.1 s doubling to 5 s with jitter; every wait is
 * bounded (5 s); one warning starts a failure streak, one line ends it. The
 * URL's password is never logged, and larder never writes to this database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "common/arena.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "registry/source_int.h"

#define TIMEOUT_S 5
#define CONFIRM_NS (5 * 1000000000LL)
#define BACKOFF_FIRST_NS (100 * 1000000LL)
#define BACKOFF_MAX_NS (5 * 1000000000LL)

enum table {
  T_ENTITIES,
  T_FEATURE_VIEWS,
  T_STREAM_VIEWS,
  T_ON_DEMAND_VIEWS,
  T_LABEL_VIEWS,
  T_SERVICES,
  T_VERSIONS,
  T_PROJECTS,
  T_METADATA,
  N_TABLES
};

/* Feast's tables (sql.py): each object table's name column and proto column,
 * the timestamp the fingerprint sums, and whether a load needs the table. */
static const struct {
  const char *name, *name_col, *proto_col, *ts_col;
  int required;
} tables[N_TABLES] = {
    [T_ENTITIES] = {"entities", "entity_name", "entity_proto", "last_updated_timestamp", 1},
    [T_FEATURE_VIEWS] = {"feature_views", "feature_view_name", "feature_view_proto",
                         "last_updated_timestamp", 1},
    [T_STREAM_VIEWS] = {"stream_feature_views", "feature_view_name", "feature_view_proto",
                        "last_updated_timestamp", 0},
    [T_ON_DEMAND_VIEWS] = {"on_demand_feature_views", "feature_view_name", "feature_view_proto",
                           "last_updated_timestamp", 0},
    [T_LABEL_VIEWS] = {"label_views", "feature_view_name", "feature_view_proto",
                       "last_updated_timestamp", 0},
    [T_SERVICES] = {"feature_services", "feature_service_name", "feature_service_proto",
                    "last_updated_timestamp", 1},
    [T_VERSIONS] = {"feature_view_version_history", NULL, NULL, "created_timestamp", 0},
    [T_PROJECTS] = {"projects", NULL, NULL, "last_updated_timestamp", 0},
    [T_METADATA] = {"feast_metadata", NULL, NULL, "last_updated_timestamp", 0},
};

struct sql_loader {
  struct ldr_loader base;
  struct ldr_url url;
  const struct ldr_reader_ops *ops;
  struct ldr_reader *conn;
  char *dir, *project;
  char where[300];       /* the URL without its password */
  char *fingerprint;     /* of the last load */
  int64_t confirm_at_ns; /* a load caused by a change is confirmed then; 0: none due */
  int64_t retry_at_ns, backoff_ns;
  unsigned seed;
  int failing;
  int missing_project_logged;
  unsigned present; /* the tables found by the last look, a bit each */
};

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ---- collecting rows ------------------------------------------------------ */

/* A growable array of decoded messages in the registry's arena. */
struct list {
  void **items;
  size_t n, cap;
};

static int push(struct ldr_arena *a, struct list *l, void *item) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    void **items = ldr_arena_alloc(a, cap * sizeof *items);
    if (items == NULL) return -1;
    if (l->n) memcpy(items, l->items, l->n * sizeof *items);
    l->items = items;
    l->cap = cap;
  }
  l->items[l->n++] = item;
  return 0;
}

struct load {
  struct sql_loader *l;
  struct ldr_arena *a;
  enum table table;
  struct list lists[N_TABLES];
  int project_row;
  struct ldr_sb text; /* the fingerprint */
};

/* Rows are selected by project_id; MySQL's collations compare it without
 * case, so it is compared here again, exactly. */
static int our_row(const struct load *ld, const struct ldr_row_cell *c) {
  size_t n = strlen(ld->l->project);
  return !c->null && c->len == n && !memcmp(c->data, ld->l->project, n);
}

static enum ldr_rc undecodable(struct load *ld, const struct ldr_row_cell *name,
                               struct ldr_err *err) {
  return ldr_err_set(err, ld->a->exhausted ? LDR_NOMEM : LDR_INVALID,
                     "table %s: the row of '%.*s' does not decode", tables[ld->table].name,
                     (int)(name->len > 100 ? 100 : name->len), (const char *)name->data);
}

/* The name in a decoded object's spec, or NULL without one: an empty or NULL
 * proto decodes, to a message without a spec, which the build would skip,
 * and the load would succeed without that object. */
static const char *spec_name(const ProtobufCMessage *m) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "spec");
  const ProtobufCMessage *spec =
      f != NULL ? *(ProtobufCMessage *const *)(const void *)((const char *)m + f->offset) : NULL;
  if (spec == NULL) return NULL;
  f = protobuf_c_message_descriptor_get_field_by_name(spec->descriptor, "name");
  return f != NULL && f->type == PROTOBUF_C_TYPE_STRING
             ? *(char *const *)(const void *)((const char *)spec + f->offset)
             : NULL;
}

/* (project_id, name, proto) of an object table. */
static enum ldr_rc object_row(void *arg, const struct ldr_row_cell *c, size_t n,
                              struct ldr_err *err) {
  struct load *ld = arg;
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, ld->a};
  if (n != 3 || !our_row(ld, &c[0])) return LDR_OK;
  const uint8_t *p = c[2].data;
  size_t len = c[2].null ? 0 : c[2].len;
  void *m = NULL;
  switch (ld->table) {
  case T_ENTITIES:
    m = feast__core__entity__unpack(&al, len, p);
    break;
  case T_FEATURE_VIEWS:
    m = feast__core__feature_view__unpack(&al, len, p);
    break;
  case T_STREAM_VIEWS:
    m = feast__core__stream_feature_view__unpack(&al, len, p);
    break;
  case T_ON_DEMAND_VIEWS:
    m = feast__core__on_demand_feature_view__unpack(&al, len, p);
    break;
  case T_LABEL_VIEWS:
    m = feast__core__label_view__unpack(&al, len, p);
    break;
  case T_SERVICES:
    m = feast__core__feature_service__unpack(&al, len, p);
    break;
  default:
    return LDR_OK;
  }
  const char *named = m != NULL ? spec_name(m) : NULL;
  if (named == NULL || named[0] == '\0') return undecodable(ld, &c[1], err);
  return push(ld->a, &ld->lists[ld->table], m) == 0
             ? LDR_OK
             : ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
}

static char *text_of(struct ldr_arena *a, const struct ldr_row_cell *c) {
  return ldr_arena_memdup(a, c->null ? "" : c->data, c->null ? 0 : c->len);
}

/* (project_id, feature_view_name, version_number, feature_view_type, proto). */
static enum ldr_rc version_row(void *arg, const struct ldr_row_cell *c, size_t n,
                               struct ldr_err *err) {
  struct load *ld = arg;
  if (n != 5 || !our_row(ld, &c[0])) return LDR_OK;
  Feast__Core__FeatureViewVersionRecord *r = ldr_arena_alloc(ld->a, sizeof *r);
  char *number = r ? text_of(ld->a, &c[2]) : NULL;
  if (number == NULL) return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  feast__core__feature_view_version_record__init(r);
  r->feature_view_name = text_of(ld->a, &c[1]);
  r->project_id = ld->l->project;
  r->version_number = (int32_t)strtol(number, NULL, 10);
  r->feature_view_type = text_of(ld->a, &c[3]);
  r->feature_view_proto.len = c[4].null ? 0 : c[4].len;
  r->feature_view_proto.data =
      ldr_arena_memdup(ld->a, c[4].null ? "" : c[4].data, r->feature_view_proto.len);
  if (r->feature_view_name == NULL || r->feature_view_type == NULL ||
      r->feature_view_proto.data == NULL || push(ld->a, &ld->lists[T_VERSIONS], r) != 0)
    return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  return LDR_OK;
}

static enum ldr_rc project_row(void *arg, const struct ldr_row_cell *c, size_t n,
                               struct ldr_err *err) {
  struct load *ld = arg;
  (void)err;
  if (n == 1 && our_row(ld, &c[0])) ld->project_row = 1;
  return LDR_OK;
}

static enum ldr_rc table_row(void *arg, const struct ldr_row_cell *c, size_t n,
                             struct ldr_err *err) {
  struct sql_loader *l = arg;
  (void)err;
  for (int t = 0; n == 1 && !c[0].null && t < N_TABLES; t++)
    if (strlen(tables[t].name) == c[0].len && !memcmp(tables[t].name, c[0].data, c[0].len))
      l->present |= 1u << t;
  return LDR_OK;
}

static enum ldr_rc fingerprint_row(void *arg, const struct ldr_row_cell *c, size_t n,
                                   struct ldr_err *err) {
  struct load *ld = arg;
  (void)err;
  for (size_t i = 0; i < n; i++) {
    if (!c[i].null) ldr_sb_put(&ld->text, c[i].data, c[i].len);
    ldr_sb_puts(&ld->text, i + 1 < n ? "," : ";");
  }
  return LDR_OK;
}

/* ---- the queries ----------------------------------------------------------- */

/* Runs `sql`, a statement built with the project name, which is [A-Za-z0-9_]
 * (the config checks it): quoting it as a literal needs no escaping. */
static enum ldr_rc run(struct sql_loader *l, struct ldr_sb *sql, ldr_row_fn fn, void *arg,
                       struct ldr_err *err) {
  const char *text = ldr_sb_str(sql);
  enum ldr_rc rc = text ? l->ops->query(l->conn, text, fn, arg, err)
                        : ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  ldr_sb_free(sql);
  return rc;
}

static enum ldr_rc read_fingerprint(struct sql_loader *l, struct load *ld, struct ldr_err *err) {
  struct ldr_sb sql = {0};
  int first = 1;
  for (int t = 0; t < N_TABLES; t++) {
    if (!(l->present & (1u << t)) || t == T_PROJECTS) continue;
    ldr_sb_printf(&sql,
                  "%sSELECT '%s', COUNT(*), COALESCE(SUM(%s), 0), COALESCE(MAX(%s), 0) FROM %s "
                  "WHERE project_id = '%s'",
                  first ? "" : " UNION ALL ", tables[t].name, tables[t].ts_col, tables[t].ts_col,
                  tables[t].name, l->project);
    first = 0;
  }
  return run(l, &sql, fingerprint_row, ld, err);
}

static enum ldr_rc read_objects(struct sql_loader *l, struct load *ld, struct ldr_err *err) {
  enum ldr_rc rc = LDR_OK;
  for (int t = 0; rc == LDR_OK && t <= T_SERVICES; t++) {
    if (!(l->present & (1u << t))) continue;
    struct ldr_sb sql = {0};
    ldr_sb_printf(&sql, "SELECT project_id, %s, %s FROM %s WHERE project_id = '%s'",
                  tables[t].name_col, tables[t].proto_col, tables[t].name, l->project);
    ld->table = (enum table)t;
    rc = run(l, &sql, object_row, ld, err);
  }
  if (rc == LDR_OK && (l->present & (1u << T_VERSIONS))) {
    struct ldr_sb sql = {0};
    ld->table = T_VERSIONS;
    ldr_sb_printf(&sql,
                  "SELECT project_id, feature_view_name, version_number, feature_view_type, "
                  "feature_view_proto FROM feature_view_version_history WHERE project_id = '%s'",
                  l->project);
    rc = run(l, &sql, version_row, ld, err);
  }
  if (rc == LDR_OK && (l->present & (1u << T_PROJECTS))) {
    struct ldr_sb sql = {0};
    ld->table = T_PROJECTS;
    ldr_sb_printf(&sql, "SELECT project_id FROM projects WHERE project_id = '%s'", l->project);
    rc = run(l, &sql, project_row, ld, err);
  } else {
    ld->project_row = 1; /* registries older than the projects table */
  }
  return rc;
}

/* The registry from what was read; a project with no row in `projects` is
 * absent, as in Feast's cache: nothing of it is served. */
static enum ldr_rc build(struct sql_loader *l, struct load *ld, struct ldr_registry_mem *mem,
                         struct ldr_registry **out, struct ldr_err *err) {
  struct ldr_registry_input in = {.scoped = 1};
  if (!ld->project_row && !l->missing_project_logged) {
    ldr_log(LDR_LOG_WARN,
            "registry %s: project %s has no row in the projects table; none of "
            "its objects is served",
            l->where, l->project);
    l->missing_project_logged = 1;
  }
  if (ld->project_row) {
    l->missing_project_logged = 0;
    in.entities = (Feast__Core__Entity **)ld->lists[T_ENTITIES].items;
    in.n_entities = ld->lists[T_ENTITIES].n;
    in.feature_views = (Feast__Core__FeatureView **)ld->lists[T_FEATURE_VIEWS].items;
    in.n_feature_views = ld->lists[T_FEATURE_VIEWS].n;
    in.stream_views = (Feast__Core__StreamFeatureView **)ld->lists[T_STREAM_VIEWS].items;
    in.n_stream_views = ld->lists[T_STREAM_VIEWS].n;
    in.on_demand_views = (Feast__Core__OnDemandFeatureView **)ld->lists[T_ON_DEMAND_VIEWS].items;
    in.n_on_demand_views = ld->lists[T_ON_DEMAND_VIEWS].n;
    in.label_views = (Feast__Core__LabelView **)ld->lists[T_LABEL_VIEWS].items;
    in.n_label_views = ld->lists[T_LABEL_VIEWS].n;
    in.services = (Feast__Core__FeatureService **)ld->lists[T_SERVICES].items;
    in.n_services = ld->lists[T_SERVICES].n;
    in.versions = (Feast__Core__FeatureViewVersionRecord **)ld->lists[T_VERSIONS].items;
    in.n_versions = ld->lists[T_VERSIONS].n;
  }
  return ldr_registry_build(&in, l->project, mem, out, err);
}

/* ---- one check ------------------------------------------------------------- */

static void failed(struct sql_loader *l, int loaded, const struct ldr_err *err) {
  if (!l->failing)
    ldr_log(LDR_LOG_WARN, "registry %s: %s; %s", l->where, err->msg,
            loaded ? "serving the registry loaded before"
                   : "ServingService answers FAILED_PRECONDITION until it loads");
  l->failing = 1;
  l->ops->close(l->conn);
  l->conn = NULL;
  l->backoff_ns = l->backoff_ns ? l->backoff_ns * 2 : BACKOFF_FIRST_NS;
  if (l->backoff_ns > BACKOFF_MAX_NS) l->backoff_ns = BACKOFF_MAX_NS;
  /* Up to a quarter less, so that replicas do not retry in step. */
  int64_t jitter = (int64_t)(rand_r(&l->seed) % 1000) * (l->backoff_ns / 4000);
  l->retry_at_ns = now_ns() + l->backoff_ns - jitter;
}

/* Reads the fingerprint, and the registry when it changed or a confirmation is due. */
static int attempt(struct sql_loader *l, struct ldr_registry **out, struct ldr_err *err) {
  struct ldr_registry_mem *mem = NULL;
  struct load ld = {.l = l};
  int result = -1;
  enum ldr_rc rc = LDR_OK;
  if (l->conn == NULL) rc = l->ops->open(&l->url, l->dir, TIMEOUT_S, &l->conn, err);
  if (rc == LDR_OK) rc = l->ops->begin(l->conn, err);
  int begun = rc == LDR_OK;
  struct ldr_sb sql = {0};
  l->present = 0;
  ldr_sb_puts(&sql, l->ops->tables_sql);
  if (rc == LDR_OK) rc = run(l, &sql, table_row, l, err);
  for (int t = 0; rc == LDR_OK && t < N_TABLES; t++)
    if (tables[t].required && !(l->present & (1u << t)))
      rc = ldr_err_set(err, LDR_NOT_FOUND, "the table %s is missing", tables[t].name);
  if (rc == LDR_OK) rc = read_fingerprint(l, &ld, err);
  if (rc == LDR_OK && ldr_sb_str(&ld.text) == NULL)
    rc = ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  int changed =
      rc == LDR_OK && (l->fingerprint == NULL || strcmp(l->fingerprint, ldr_sb_str(&ld.text)));
  int confirm = rc == LDR_OK && l->confirm_at_ns != 0 && now_ns() >= l->confirm_at_ns;
  if (rc == LDR_OK && !changed && !confirm) result = 0;
  if (rc == LDR_OK && result != 0) {
    mem = ldr_registry_mem_new();
    ld.a = mem ? ldr_registry_mem_arena(mem) : NULL;
    rc = mem ? read_objects(l, &ld, err) : ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    if (rc == LDR_OK) {
      rc = build(l, &ld, mem, out, err);
      mem = NULL; /* the registry's now, or freed */
    }
    if (rc == LDR_OK) {
      result = 1;
      free(l->fingerprint);
      l->fingerprint = strdup(ldr_sb_str(&ld.text));
      /* A load a change caused is confirmed 5 s later; a confirmation is final. */
      l->confirm_at_ns = changed ? now_ns() + CONFIRM_NS : 0;
    }
  }
  if (begun && l->conn != NULL) l->ops->end(l->conn);
  ldr_sb_free(&sql); /* run() frees it; not when the connection failed first */
  ldr_registry_mem_free(mem);
  ldr_sb_free(&ld.text);
  return rc == LDR_OK ? result : -1;
}

static int check(struct ldr_loader *base, int loaded, struct ldr_registry **out, int64_t *next_ms) {
  struct sql_loader *l = (struct sql_loader *)base;
  int64_t now = now_ns();
  if (l->failing && now < l->retry_at_ns) {
    *next_ms = (l->retry_at_ns - now) / 1000000 + 1;
    return -1;
  }
  struct ldr_err err;
  ldr_err_clear(&err);
  int r = attempt(l, out, &err);
  if (r < 0) {
    failed(l, loaded, &err);
    *next_ms = l->backoff_ns / 1000000 + 1;
    return -1;
  }
  if (l->failing) ldr_log(LDR_LOG_INFO, "registry %s: reachable again", l->where);
  l->failing = 0;
  l->backoff_ns = 0;
  if (l->confirm_at_ns != 0) *next_ms = (l->confirm_at_ns - now_ns()) / 1000000 + 1;
  return r;
}

static void loader_free(struct ldr_loader *base) {
  struct sql_loader *l = (struct sql_loader *)base;
  if (l->ops != NULL) l->ops->close(l->conn);
  ldr_url_free(&l->url);
  free(l->fingerprint);
  free(l->dir);
  free(l->project);
  free(l);
}

struct ldr_loader *ldr_sql_loader_new(const char *url, const char *dir, const char *project,
                                      struct ldr_err *err) {
  struct sql_loader *l = calloc(1, sizeof *l);
  if (l == NULL) {
    ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    return NULL;
  }
  l->base.check = check;
  l->base.free = loader_free;
  l->base.where = l->where;
  ldr_url_redacted(url, l->where, sizeof l->where);
  l->dir = strdup(dir ? dir : ".");
  l->project = strdup(project);
  l->seed = (unsigned)now_ns() | 1u;
  if (l->dir == NULL || l->project == NULL) {
    ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    loader_free(&l->base);
    return NULL;
  }
  if (ldr_url_parse(url, &l->url, err) != LDR_OK) {
    loader_free(&l->base);
    return NULL;
  }
  l->ops = ldr_backend_reader(l->url.dialect);
  if (l->ops == NULL) {
    /* Only the dialect: ServingService's callers are told this. */
    ldr_err_set(err, LDR_FAILED_PRECONDITION,
                "registry.path: this larder was built without the %s client that reads an "
                "SQL registry there",
                l->url.dialect);
    loader_free(&l->base);
    return NULL;
  }
  return &l->base;
}
