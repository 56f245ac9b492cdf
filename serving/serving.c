/*
 * Feast's serving rules (REGISTRY.md §7) over the registry and one backend
 * read. The steps, in the order of checks: the request's columns; its
 * references resolved into groups (one per view and version as columns name
 * it) while refusals that must wait for every INVALID_ARGUMENT are kept
 * aside; the output columns; the join-key columns and their values; one entity
 * key per row and group; the kept refusals; the read; the cells.
 */
#include "serving/serving.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backends/backend.h"
#include "serving/convert.h"

/* A name and where it came from, for sorting without losing the place. */
struct named {
  const char *name;
  size_t idx;
};

static int by_name(const void *x, const void *y) {
  return strcmp(((const struct named *)x)->name, ((const struct named *)y)->name);
}

/* The features read from one view (or one version of it), in request order,
 * and where their columns go. */
struct group {
  const struct ldr_view *view;       /* the current definition, or a version's */
  const char *prefix;                /* the columns' prefix with full names: "ds", "stats@v1" */
  const struct ldr_projection *proj; /* join-key renames, or NULL */
  const char *table;
  size_t n, cap;
  const char **features;
  struct named *sorted; /* the features by name; idx = their place in `features` */
  size_t first_col;
  struct ldr_key *keys; /* one per row */
};

/* A join-key column of the request: echoed, and the source of entity keys. */
struct key_column {
  const char *join_key; /* the column's name in the answer */
  size_t column;        /* its index among the request's entity columns */
  int type;             /* the declared type values are converted to; 0: none */
  const Feast__Types__Value **values;
};

/* An open-addressed set of (pointer, string) pairs, each with an index. */
struct slot {
  const void *p;
  const char *s;
  size_t idx;
  int used;
};

struct set {
  struct slot *slots;
  size_t mask;
};

struct plan {
  const struct ldr_serving_env *env;
  const struct ldr_serving_request *q;
  const struct ldr_registry *reg;
  struct ldr_arena *a;
  struct ldr_err *err;
  struct ldr_serving_result *out;
  const char *what; /* "features" or "feature_service" */
  size_t n_rows;
  struct group *groups;
  size_t n_groups;
  struct set group_set, view_set;
  struct ldr_serving_view *views;
  size_t n_views;
  /* Refusals that rank after INVALID_ARGUMENT (DESIGN §9), the first of each. */
  struct ldr_err precondition, unimplemented;
  struct key_column *keys; /* sorted by join_key */
  size_t n_keys;
  size_t *echo; /* indexes into keys, in request order */
};

static enum ldr_rc no_memory(struct plan *pl) {
  return ldr_err_set(pl->err, LDR_EXHAUSTED, "request: needs more memory than a call may use");
}

/* Keeps the first refusal of its kind for after the INVALID_ARGUMENT checks. */
__attribute__((format(printf, 3, 4))) static void defer(struct plan *pl, enum ldr_rc rc,
                                                        const char *fmt, ...) {
  struct ldr_err *e = rc == LDR_UNIMPLEMENTED ? &pl->unimplemented : &pl->precondition;
  if (e->rc != LDR_OK) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  e->rc = rc;
}

static char *arena_printf(struct ldr_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *arena_printf(struct ldr_arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *s = ldr_arena_alloc(a, (size_t)n + 1);
  if (s == NULL) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* ---- sets */

static int set_init(struct plan *pl, struct set *s, size_t items) {
  size_t n = 8;
  while (n < 2 * items + 2) n *= 2;
  s->slots = ldr_arena_calloc(pl->a, n, sizeof *s->slots);
  s->mask = n - 1;
  return s->slots != NULL;
}

static size_t hash(const void *p, const char *s) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)p;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return (size_t)(h ^ (h >> 29));
}

/* The slot of (p, s): the one holding it, or the free one where it goes. */
static struct slot *set_slot(struct set *set, const void *p, const char *s) {
  for (size_t i = hash(p, s) & set->mask;; i = (i + 1) & set->mask) {
    struct slot *sl = &set->slots[i];
    if (!sl->used || (sl->p == p && !strcmp(sl->s, s))) return sl;
  }
}

/* ---- resolution */

/* The group reading `v` (table version `table_version`) with columns
 * prefixed `prefix`; made when new. NULL when memory is short. */
static struct group *group_of(struct plan *pl, const struct ldr_view *v, const char *prefix,
                              int table_version, const struct ldr_projection *proj,
                              const char *field) {
  struct slot *sl = set_slot(&pl->group_set, v, prefix);
  if (sl->used) return &pl->groups[sl->idx];
  struct group *g = &pl->groups[pl->n_groups];
  memset(g, 0, sizeof *g);
  g->view = v;
  g->prefix = prefix;
  g->proj = proj;
  char *table = ldr_arena_alloc(pl->a, LDR_TABLE_NAME_MAX + 1);
  if (table == NULL) return NULL;
  struct ldr_err e = {0};
  if (ldr_table_name_version(pl->env->cfg->project, v->name, table_version, field, table, &e) !=
      LDR_OK)
    defer(pl, LDR_FAILED_PRECONDITION, "%s", e.msg);
  g->table = table;
  *sl = (struct slot){v, prefix, pl->n_groups, 1};
  pl->n_groups++;
  return g;
}

static enum ldr_rc add_feature(struct plan *pl, struct group *g, const char *feature) {
  if (g->n == g->cap) {
    size_t cap = g->cap ? 2 * g->cap : 8;
    const char **fs = ldr_arena_alloc(pl->a, cap * sizeof *fs);
    if (fs == NULL) return no_memory(pl);
    if (g->n) memcpy(fs, g->features, g->n * sizeof *fs);
    g->features = fs;
    g->cap = cap;
  }
  g->features[g->n++] = feature;
  return LDR_OK;
}

/* Lists a view in the answer's metadata once, by the name columns show. */
static enum ldr_rc add_view_meta(struct plan *pl, const char *name, int version) {
  struct slot *sl = set_slot(&pl->view_set, NULL, name);
  if (sl->used) return LDR_OK;
  *sl = (struct slot){NULL, name, pl->n_views, 1};
  pl->views[pl->n_views++] = (struct ldr_serving_view){name, version};
  return LDR_OK;
}

/* The refusals a view itself causes (REGISTRY.md §7.5, §7.9), kept aside. */
static void check_view(struct plan *pl, const char *field, const struct ldr_view *v,
                       const char *shown) {
  if (v->unservable_computed)
    defer(pl, LDR_UNIMPLEMENTED, "%s: feature view '%s' cannot be served: %s", field, shown,
          v->unservable);
  else if (v->unservable != NULL)
    defer(pl, LDR_FAILED_PRECONDITION, "%s: feature view '%s' cannot be served: %s", field, shown,
          v->unservable);
  if (v->disabled)
    defer(pl, LDR_FAILED_PRECONDITION,
          "%s: feature view '%s' is disabled and cannot serve features; enable it with `feast "
          "feature-views enable %s`",
          field, shown, v->name);
  else if (v->state != LDR_STATE_UNSPECIFIED && v->state != LDR_STATE_AVAILABLE_ONLINE)
    defer(pl, LDR_FAILED_PRECONDITION,
          "%s: feature view '%s' is in state '%s' and cannot serve features; only "
          "AVAILABLE_ONLINE views serve",
          field, shown, ldr_view_state_name(v->state));
}

/* A reference split (Feast's _parse_feature_ref): the view's name, whether a
 * version is pinned and which, and the feature. */
struct ref {
  const char *view;
  size_t view_len;
  int pinned;
  long version;    /* -1: more digits than any version has */
  const char *tag; /* "v2" */
  size_t tag_len;
  const char *feature;
};

static int parse_ref(const char *s, struct ref *r) {
  const char *colon = strchr(s, ':');
  if (colon == NULL || colon == s || colon[1] == '\0') return 0;
  memset(r, 0, sizeof *r);
  r->view = s;
  r->view_len = (size_t)(colon - s);
  r->feature = colon + 1;
  const char *at = memchr(s, '@', r->view_len);
  if (at == NULL) return 1;
  const char *t = at + 1;
  size_t tlen = (size_t)(colon - t);
  int digits = tlen > 1 && (t[0] == 'v' || t[0] == 'V');
  for (size_t k = 1; digits && k < tlen; k++) digits = t[k] >= '0' && t[k] <= '9';
  if (tlen == 0 || (tlen == 6 && !strncasecmp(t, "latest", 6))) {
    r->view_len = (size_t)(at - s);
  } else if (digits) {
    r->view_len = (size_t)(at - s);
    r->pinned = 1;
    r->tag = t;
    r->tag_len = tlen;
    for (size_t k = 1; k < tlen && r->version >= 0; k++) {
      r->version = r->version * 10 + (t[k] - '0');
      if (r->version > INT_MAX) r->version = -1;
    }
  }
  if (r->view_len == 0) return 0;
  return 1;
}

static enum ldr_rc resolve_ref(struct plan *pl, size_t i, const char *s) {
  struct ldr_err *err = pl->err;
  char field[48];
  snprintf(field, sizeof field, "features[%zu]", i);
  struct ref r;
  if (!parse_ref(s, &r))
    return ldr_err_set(err, LDR_INVALID, "%s: '%s' is not a feature reference 'view:feature'",
                       field, s);
  const struct ldr_view *cur = ldr_registry_view(pl->reg, r.view, r.view_len);
  if (cur == NULL) {
    pl->out->fault = LDR_SERVING_NO_VIEW;
    return ldr_err_set(err, LDR_INVALID, "%s: feature view %.*s does not exist in project %s",
                       field, (int)r.view_len, r.view, pl->reg->project);
  }
  const struct ldr_view *v = cur;
  const char *prefix = cur->name;
  int table_version = pl->env->cfg->registry_versioning ? cur->version : 0;
  int meta_version = cur->version;
  if (r.pinned) {
    if (!pl->env->cfg->registry_versioning) {
      defer(pl, LDR_FAILED_PRECONDITION,
            "%s: '%s' asks for a version of a feature view, and online versioning is off (set "
            "registry.enable_online_feature_view_versioning: true)",
            field, s);
      return LDR_OK;
    }
    v = r.version >= 0 ? ldr_registry_view_version(pl->reg, cur->name, (int)r.version) : NULL;
    if (v == NULL)
      return ldr_err_set(err, LDR_INVALID, "%s: feature view '%s' has no version %.*s", field,
                         cur->name, (int)r.tag_len - 1, r.tag + 1);
    table_version = meta_version = (int)r.version;
    prefix = arena_printf(pl->a, "%s@v%d", cur->name, table_version);
    if (prefix == NULL) return no_memory(pl);
  }
  if (ldr_view_feature(v, r.feature) == NULL)
    return ldr_err_set(err, LDR_INVALID, "%s: feature view '%s'%s has no feature '%s'", field,
                       cur->name, r.pinned ? " at that version" : "", r.feature);
  check_view(pl, field, v, prefix);
  struct group *g = group_of(pl, v, prefix, table_version, NULL, field);
  if (g == NULL || add_view_meta(pl, cur->name, meta_version) != LDR_OK) return no_memory(pl);
  return add_feature(pl, g, r.feature);
}

/* A feature service's projections: the current definitions of their views,
 * a version tag choosing the table (REGISTRY.md §7.4). What the registry
 * lacks is its fault, not the caller's: FAILED_PRECONDITION. */
static enum ldr_rc resolve_service(struct plan *pl, const char *name) {
  struct ldr_err *err = pl->err;
  const struct ldr_feature_service *fs = ldr_registry_service(pl->reg, name);
  if (fs == NULL) {
    pl->out->fault = LDR_SERVING_NO_SERVICE;
    return ldr_err_set(err, LDR_INVALID,
                       "feature_service: feature service %s does not exist in project %s", name,
                       pl->reg->project);
  }
  int versioning = pl->env->cfg->registry_versioning;
  for (size_t i = 0; i < fs->n_projections; i++) {
    const struct ldr_projection *p = &fs->projections[i];
    const struct ldr_view *v = p->view;
    if (v == NULL) {
      defer(pl, LDR_FAILED_PRECONDITION,
            "feature_service: feature service '%s' names feature view '%s', which is not in the "
            "registry",
            name, p->view_name);
      continue;
    }
    const char *prefix = p->name;
    /* The metadata names the view's current version whatever the tag: Feast
     * reads the view's current definition for a service (REGISTRY.md §7.4). */
    int table_version = versioning ? v->version : 0;
    if (p->has_version_tag) {
      prefix = arena_printf(pl->a, "%s@v%d", p->name, p->version_tag);
      if (prefix == NULL) return no_memory(pl);
      table_version = versioning ? p->version_tag : 0;
    }
    check_view(pl, "feature_service", v, p->name);
    struct group *g = group_of(pl, v, prefix, table_version, p, "feature_service");
    if (g == NULL || add_view_meta(pl, p->name, v->version) != LDR_OK) return no_memory(pl);
    for (size_t j = 0; j < p->n_features; j++) {
      if (ldr_view_feature(v, p->features[j]) == NULL) {
        defer(pl, LDR_FAILED_PRECONDITION,
              "feature_service: feature service '%s' names feature '%s', which feature view '%s' "
              "does not have",
              name, p->features[j], v->name);
        continue;
      }
      enum ldr_rc rc = add_feature(pl, g, p->features[j]);
      if (rc != LDR_OK) return rc;
    }
  }
  return LDR_OK;
}

static enum ldr_rc resolve(struct plan *pl) {
  const struct ldr_serving_request *q = pl->q;
  size_t items = q->feature_service ? 0 : q->n_features;
  if (q->feature_service) {
    pl->what = "feature_service";
    const struct ldr_feature_service *fs = ldr_registry_service(pl->reg, q->feature_service);
    items = fs ? fs->n_projections : 0;
  } else {
    pl->what = "features";
    if (q->n_features == 0)
      return ldr_err_set(pl->err, LDR_INVALID,
                         "features: required (feature references, or a feature_service)");
  }
  pl->groups = ldr_arena_calloc(pl->a, items + 1, sizeof *pl->groups);
  pl->views = ldr_arena_calloc(pl->a, items + 1, sizeof *pl->views);
  if (pl->groups == NULL || pl->views == NULL || !set_init(pl, &pl->group_set, items) ||
      !set_init(pl, &pl->view_set, items))
    return no_memory(pl);
  if (q->feature_service) return resolve_service(pl, q->feature_service);
  for (size_t i = 0; i < q->n_features; i++) {
    enum ldr_rc rc = resolve_ref(pl, i, q->features[i]);
    if (rc != LDR_OK) return rc;
  }
  return LDR_OK;
}

/* ---- columns */

/* Checks the request's columns: each once (found by sorting a copy: a
 * client chooses how many there are), all of one length. Sets pl->n_rows to
 * that length (1 when there are no columns: entity-less views). */
static enum ldr_rc check_columns(struct plan *pl) {
  const struct ldr_serving_request *q = pl->q;
  size_t n = q->n_entities + q->n_context;
  struct named *sorted = ldr_arena_calloc(pl->a, n + 1, sizeof *sorted);
  if (sorted == NULL) return no_memory(pl);
  const struct ldr_serving_column *first = NULL;
  pl->n_rows = 1;
  for (size_t i = 0; i < n; i++) {
    int ctx = i >= q->n_entities;
    const struct ldr_serving_column *c = ctx ? &q->context[i - q->n_entities] : &q->entities[i];
    const char *field = ctx ? "request_context" : "entities";
    if (first != NULL && c->n != first->n)
      return ldr_err_set(pl->err, LDR_INVALID,
                         "%s: column '%s' has %zu values, column '%s' has %zu; every column needs "
                         "one value per entity row",
                         field, c->name, c->n, first->name, first->n);
    if (first == NULL) first = c;
    pl->n_rows = c->n;
    sorted[i] = (struct named){c->name, i};
  }
  qsort(sorted, n, sizeof *sorted, by_name);
  for (size_t i = 0; i + 1 < n; i++)
    if (!strcmp(sorted[i].name, sorted[i + 1].name))
      return ldr_err_set(pl->err, LDR_INVALID, "%s: the column '%s' is given twice",
                         sorted[i + 1].idx >= q->n_entities ? "request_context" : "entities",
                         sorted[i].name);
  return LDR_OK;
}

static int by_join_key(const void *x, const void *y) {
  return strcmp(((const struct key_column *)x)->join_key, ((const struct key_column *)y)->join_key);
}

static struct key_column *find_key(struct plan *pl, const char *join_key) {
  struct key_column k = {.join_key = join_key};
  return bsearch(&k, pl->keys, pl->n_keys, sizeof k, by_join_key);
}

/* The join key a request column stands for (REGISTRY.md §7.2, §7.6): its own
 * name when that is a join key of the project or an alias of a requested
 * projection, an entity's join key when it names the entity, else NULL. */
static const char *join_key_of(struct plan *pl, const char *column) {
  if (ldr_registry_is_join_key(pl->reg, column)) return column;
  for (size_t i = 0; i < pl->n_groups; i++) {
    const struct ldr_projection *p = pl->groups[i].proj;
    for (size_t m = 0; p != NULL && m < p->n_key_map; m++)
      if (!strcmp(p->key_to[m], column)) return column;
  }
  const struct ldr_entity *e = ldr_registry_entity(pl->reg, column);
  return e != NULL ? e->join_key : NULL;
}

/* The type a join-key column's values take: what a requested view declares
 * for it, else its entity's, else none. */
static int declared_type(struct plan *pl, const char *join_key) {
  for (size_t i = 0; i < pl->n_groups; i++) {
    const struct group *g = &pl->groups[i];
    for (size_t k = 0; k < g->view->n_join_keys; k++) {
      const char *column = g->view->join_keys[k].name;
      for (size_t m = 0; g->proj != NULL && m < g->proj->n_key_map; m++)
        if (!strcmp(g->proj->key_from[m], column)) column = g->proj->key_to[m];
      if (!strcmp(column, join_key) && g->view->join_keys[k].type != 0)
        return g->view->join_keys[k].type;
    }
  }
  for (size_t i = 0; i < pl->reg->n_entities; i++)
    if (!strcmp(pl->reg->entities[i].join_key, join_key)) return pl->reg->entities[i].type;
  return 0;
}

/* Finds the join-key columns, converts their values, and lays out the
 * answer's columns: those join keys in request order, then the features. */
static enum ldr_rc plan_columns(struct plan *pl) {
  const struct ldr_serving_request *q = pl->q;
  struct ldr_serving_result *out = pl->out;
  pl->keys = ldr_arena_calloc(pl->a, q->n_entities + 1, sizeof *pl->keys);
  pl->echo = ldr_arena_calloc(pl->a, q->n_entities + 1, sizeof *pl->echo);
  if (pl->keys == NULL || pl->echo == NULL) return no_memory(pl);
  for (size_t i = 0; i < q->n_entities; i++) {
    const char *jk = join_key_of(pl, q->entities[i].name);
    if (jk != NULL) pl->keys[pl->n_keys++] = (struct key_column){.join_key = jk, .column = i};
  }
  qsort(pl->keys, pl->n_keys, sizeof *pl->keys, by_join_key);
  for (size_t i = 0; i + 1 < pl->n_keys; i++)
    if (!strcmp(pl->keys[i].join_key, pl->keys[i + 1].join_key)) {
      size_t a = pl->keys[i].column, b = pl->keys[i + 1].column;
      return ldr_err_set(pl->err, LDR_INVALID,
                         "entities: columns '%s' and '%s' both give the join key '%s'; give it "
                         "once",
                         q->entities[a < b ? a : b].name, q->entities[a < b ? b : a].name,
                         pl->keys[i].join_key);
    }
  /* Request order for the echo. */
  for (size_t i = 0; i < pl->n_keys; i++) pl->echo[i] = i;
  for (size_t i = 1; i < pl->n_keys; i++)
    for (size_t j = i; j > 0 && pl->keys[pl->echo[j - 1]].column > pl->keys[pl->echo[j]].column;
         j--) {
      size_t t = pl->echo[j];
      pl->echo[j] = pl->echo[j - 1];
      pl->echo[j - 1] = t;
    }

  size_t n_features = 0;
  for (size_t i = 0; i < pl->n_groups; i++) n_features += pl->groups[i].n;
  out->n_rows = pl->n_rows;
  out->n_cols = pl->n_keys + n_features;
  out->cols = ldr_arena_calloc(pl->a, out->n_cols + 1, sizeof *out->cols);
  struct named *all = ldr_arena_calloc(pl->a, n_features + 1, sizeof *all);
  if (out->cols == NULL || all == NULL) return no_memory(pl);

  /* The join-key columns: values converted, checked, serialized for the echo. */
  for (size_t e = 0; e < pl->n_keys; e++) {
    struct key_column *k = &pl->keys[pl->echo[e]];
    const struct ldr_serving_column *col = &q->entities[k->column];
    k->type = declared_type(pl, k->join_key);
    k->values = ldr_arena_calloc(pl->a, pl->n_rows + 1, sizeof *k->values);
    struct ldr_column *oc = &out->cols[e];
    oc->name = k->join_key;
    oc->cells = ldr_arena_calloc(pl->a, pl->n_rows + 1, sizeof *oc->cells);
    if (k->values == NULL || oc->cells == NULL) return no_memory(pl);
    for (size_t r = 0; r < pl->n_rows; r++) {
      enum ldr_rc rc = q->value(col, r, k->type, pl->a, &k->values[r], pl->err);
      if (rc == LDR_OK &&
          (k->values[r] == NULL || k->values[r]->val_case == FEAST__TYPES__VALUE__VAL__NOT_SET))
        rc = ldr_err_set(pl->err, LDR_INVALID, "no value");
      if (rc != LDR_OK) {
        ldr_err_prefix(pl->err, "entities[%s][%zu]: ", col->name, r);
        return rc;
      }
      size_t len = feast__types__value__get_packed_size(k->values[r]);
      uint8_t *bytes = ldr_arena_alloc(pl->a, len + 1);
      if (bytes == NULL) return no_memory(pl);
      feast__types__value__pack(k->values[r], bytes);
      oc->cells[r] = (struct ldr_cell){bytes, len, LDR_FIELD_PRESENT, 0, {0, 0}};
    }
  }

  /* The feature columns; two of one name are refused, as Feast does. */
  size_t col = pl->n_keys;
  for (size_t i = 0; i < pl->n_groups; i++) {
    struct group *g = &pl->groups[i];
    g->first_col = col;
    g->sorted = ldr_arena_calloc(pl->a, g->n + 1, sizeof *g->sorted);
    if (g->sorted == NULL) return no_memory(pl);
    for (size_t j = 0; j < g->n; j++) {
      g->sorted[j] = (struct named){g->features[j], j};
      const char *name = q->full_feature_names
                             ? arena_printf(pl->a, "%s__%s", g->prefix, g->features[j])
                             : g->features[j];
      if (name == NULL) return no_memory(pl);
      out->cols[col].name = name;
      all[col - pl->n_keys] = (struct named){name, col};
      col++;
    }
    qsort(g->sorted, g->n, sizeof *g->sorted, by_name);
  }
  qsort(all, n_features, sizeof *all, by_name);
  for (size_t i = 1; i < n_features; i++)
    if (!strcmp(all[i - 1].name, all[i].name)) {
      out->fault = LDR_SERVING_COLLISION;
      return ldr_err_set(pl->err, LDR_INVALID, "%s: the column '%s' would appear twice%s", pl->what,
                         all[i].name,
                         q->full_feature_names ? ""
                                               : " (two views have a feature of that name: set "
                                                 "full_feature_names)");
    }
  return LDR_OK;
}

/* The entity keys of a group's view, one per row. */
static enum ldr_rc make_keys(struct plan *pl, struct group *g) {
  const struct ldr_view *v = g->view;
  size_t nk = v->n_join_keys;
  char **names = ldr_arena_calloc(pl->a, nk + 1, sizeof *names);
  Feast__Types__Value **vals = ldr_arena_calloc(pl->a, nk + 1, sizeof *vals);
  const struct key_column **cols = ldr_arena_calloc(pl->a, nk + 1, sizeof *cols);
  g->keys = ldr_arena_calloc(pl->a, pl->n_rows + 1, sizeof *g->keys);
  if (names == NULL || vals == NULL || cols == NULL || g->keys == NULL) return no_memory(pl);
  Feast__Types__Value dummy = FEAST__TYPES__VALUE__INIT;
  if (v->entityless) {
    dummy.val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
    dummy.string_val = (char *)"";
    names[0] = (char *)LDR_DUMMY_JOIN_KEY;
    vals[0] = &dummy;
  }
  for (size_t k = 0; k < nk && !v->entityless; k++) {
    const char *jk = v->join_keys[k].name, *column = jk;
    for (size_t m = 0; g->proj != NULL && m < g->proj->n_key_map; m++)
      if (!strcmp(g->proj->key_from[m], jk)) column = g->proj->key_to[m];
    cols[k] = find_key(pl, column);
    if (cols[k] == NULL)
      return ldr_err_set(pl->err, LDR_INVALID,
                         "entities: no column '%s', the join key of feature view '%s'", column,
                         v->name);
    int want = v->join_keys[k].type;
    for (size_t r = 0; want != 0 && r < pl->n_rows; r++) {
      int got = (int)cols[k]->values[r]->val_case;
      if (got != want)
        return ldr_err_set(pl->err, LDR_INVALID,
                           "entities[%s][%zu]: a %s value, where feature view '%s' has %s keys",
                           pl->q->entities[cols[k]->column].name, r,
                           got ? ldr_value_type_name(got) : "unset", v->name,
                           ldr_value_type_name(want));
    }
    names[k] = (char *)jk;
  }
  Feast__Types__EntityKey ek = FEAST__TYPES__ENTITY_KEY__INIT;
  ek.n_join_keys = ek.n_entity_values = nk;
  ek.join_keys = names;
  ek.entity_values = vals;
  for (size_t r = 0; r < pl->n_rows; r++) {
    for (size_t k = 0; k < nk && !v->entityless; k++)
      vals[k] = (Feast__Types__Value *)cols[k]->values[r];
    enum ldr_rc rc =
        ldr_entity_key_serialize(&ek, pl->env->backend->key_version, pl->a, &g->keys[r], pl->err);
    if (rc != LDR_OK) {
      ldr_err_prefix(pl->err, "entities: row %zu, feature view '%s': ", r, v->name);
      return rc;
    }
  }
  return LDR_OK;
}

/* ---- the read */

/* Nonzero when a value stored at `t` is more than `ttl_s` seconds old at
 * `now`, in whole seconds as Feast's Go server counts (REGISTRY.md §7.3:
 * `now - event_time > ttl`, the fractions of both ignored). */
static int older_than(const struct timespec *now, struct ldr_ts t, int64_t ttl_s) {
  int64_t age_s;
  /* Only a time before about -292 billion years overflows: older than any TTL. */
  if (__builtin_sub_overflow((int64_t)now->tv_sec, t.s, &age_s)) return 1;
  return age_s > ttl_s;
}

/* Fills a group's columns from its read (REGISTRY.md §7.1, §7.3): a found
 * entity's timestamp is on every column of the view, present or not; an
 * expired value keeps its bytes. */
static enum ldr_rc fill_group(struct plan *pl, struct group *g, const struct ldr_read *r,
                              const struct timespec *now) {
  struct ldr_column *cols = pl->out->cols;
  size_t n = pl->n_rows;
  for (size_t j = 0; j < g->n; j++) {
    cols[g->first_col + j].cells = ldr_arena_calloc(pl->a, n + 1, sizeof(struct ldr_cell));
    if (cols[g->first_col + j].cells == NULL) return no_memory(pl);
  }
  /* A TTL under a second never expires, as in Go (`ttl.Seconds == 0`). */
  int64_t ttl_s = g->view->ttl_ns / 1000000000;
  int ttl = pl->env->cfg->enforce_ttl && ttl_s > 0;
  for (size_t i = 0; i < n; i++) {
    const struct ldr_read_row *row = &r->out[i];
    for (size_t j = 0; j < g->n; j++) {
      struct ldr_cell *cell = &cols[g->first_col + j].cells[i];
      cell->status = LDR_FIELD_NOT_FOUND;
      cell->has_ts = row->found && row->has_event_ts;
      cell->ts = row->event_ts;
    }
    if (!row->found) continue;
    int expired = ttl && row->has_event_ts && older_than(now, row->event_ts, ttl_s);
    for (size_t f = 0; f < row->n_features; f++) {
      const struct ldr_read_feature *rf = &row->features[f];
      struct named key = {rf->name, 0};
      const struct named *hit = bsearch(&key, g->sorted, g->n, sizeof key, by_name);
      if (hit == NULL) continue;
      /* One feature asked twice within a group is refused earlier (a collision). */
      struct ldr_cell *cell = &cols[g->first_col + hit->idx].cells[i];
      cell->status = expired ? LDR_FIELD_OUTSIDE_MAX_AGE : LDR_FIELD_PRESENT;
      cell->value = rf->value;
      cell->len = rf->value_len;
    }
  }
  return LDR_OK;
}

/* Every group's view read with one backend read: one round trip. */
static enum ldr_rc read_groups(struct plan *pl) {
  const struct ldr_serving_env *env = pl->env;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct ldr_read *reads = ldr_arena_calloc(pl->a, pl->n_groups + 1, sizeof *reads);
  if (reads == NULL) return no_memory(pl);
  for (size_t i = 0; i < pl->n_groups; i++) {
    const struct group *g = &pl->groups[i];
    reads[i] = (struct ldr_read){g->table, g->keys, pl->n_rows, g->features, g->n, NULL};
    reads[i].out = ldr_arena_calloc(pl->a, pl->n_rows + 1, sizeof *reads[i].out);
    if (reads[i].out == NULL) return no_memory(pl);
    pl->out->keys_read += pl->n_rows;
  }
  pl->out->read = 1;
  pl->out->read_start_ns = ldr_now_ns();
  size_t cap = env->backend->result_cap;
  env->backend->result_cap = (size_t)env->cfg->max_message_bytes;
  enum ldr_rc rc = env->backend->ops->read(env->backend, reads, pl->n_groups, pl->a, pl->err);
  env->backend->result_cap = cap;
  for (size_t i = 0; rc == LDR_OK && i < pl->n_groups; i++)
    rc = fill_group(pl, &pl->groups[i], &reads[i], &now);
  return rc;
}

enum ldr_rc ldr_serving_get(const struct ldr_serving_env *env, const struct ldr_serving_request *q,
                            struct ldr_serving_result *out, struct ldr_err *err) {
  memset(out, 0, sizeof *out);
  struct plan pl = {.env = env, .q = q, .reg = env->reg, .a = env->arena, .err = err, .out = out};
  enum ldr_rc rc = check_columns(&pl);
  if (rc == LDR_OK) rc = resolve(&pl);
  if (rc == LDR_OK) rc = plan_columns(&pl);
  for (size_t i = 0; rc == LDR_OK && i < pl.n_groups; i++)
    if (pl.groups[i].view->unservable == NULL) rc = make_keys(&pl, &pl.groups[i]);
  if (rc != LDR_OK) return rc;
  if (pl.precondition.rc != LDR_OK) {
    *err = pl.precondition;
    return err->rc;
  }
  if (pl.unimplemented.rc != LDR_OK) {
    *err = pl.unimplemented;
    return err->rc;
  }
  out->views = pl.views;
  out->n_views = pl.n_views;
  /* Each cell of the reply takes 3 bytes at the least (an empty Value and a
   * status): a reply that cannot fit is refused before a read of rows x views. */
  size_t most = (size_t)env->cfg->max_message_bytes / 3;
  if (out->n_cols > 0 && out->n_rows > most / out->n_cols)
    return ldr_err_set(err, LDR_EXHAUSTED,
                       "entities: %zu rows x %zu columns make a reply past "
                       "larder.max_message_bytes (%ld), 3 bytes a cell at the least",
                       out->n_rows, out->n_cols, env->cfg->max_message_bytes);
  return pl.n_groups > 0 ? read_groups(&pl) : LDR_OK;
}
