/*
 * feast.serving.ServingService: GetOnlineFeatures answered from Feast's
 * registry and online tables, laid out as Feast lays out its response
 * (SPEC §2.3), and GetFeastServingInfo. The same GetOnlineFeatures is served
 * at /GrpcFeatureServer/GetOnlineFeatures, the path of Feast's Python server.
 */
#include <grpc/slice.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feast/serving/ServingService.pb-c.h"
#include "registry/registry.h"
#include "service/service_int.h"
#include "service/wire.h"

/* A name and where it came from, for sorting without losing the place. */
struct named {
  const char *name;
  size_t idx;
};

static int by_name(const void *x, const void *y) {
  return strcmp(((const struct named *)x)->name, ((const struct named *)y)->name);
}

/* The features asked of one view, in request order, and where their columns go. */
struct group {
  const struct ldr_view *view;
  const char *shown; /* the view's name in column names: a feature service's alias */
  const struct ldr_projection *proj; /* join-key renames, or NULL */
  size_t n, cap;
  const char **features;
  struct named *sorted; /* the features by name, idx = their place in `features` */
  size_t first_col;
};

struct request {
  struct ldr_handler_ctx *c;
  const struct ldr_registry *reg;
  const Feast__Serving__GetOnlineFeaturesRequest *pb;
  const char *what; /* "features" or "feature_service", for messages */
  struct group *groups;
  size_t n_groups;
  size_t n_rows;
  size_t n_cols;
  struct ldr_column *cols;
};

static enum ldr_rc no_memory(struct ldr_handler_ctx *c) {
  return ldr_err_set(&c->err, LDR_EXHAUSTED, "request: needs more memory than a call may use");
}

static const char *type_name(int t) {
  static const char *const names[] = {"unset",  "BYTES", "STRING", "INT32",         "INT64",
                                      "DOUBLE", "FLOAT", "BOOL",   "UNIX_TIMESTAMP"};
  return t >= 0 && t < (int)(sizeof names / sizeof names[0]) ? names[t] : "a list or map";
}

/* The group for (view, shown), added at the end when it is new. */
static struct group *group_of(struct request *q, const struct ldr_view *v, const char *shown,
                              const struct ldr_projection *proj) {
  for (size_t i = 0; i < q->n_groups; i++)
    if (q->groups[i].view == v && !strcmp(q->groups[i].shown, shown)) return &q->groups[i];
  struct group *g = &q->groups[q->n_groups++];
  memset(g, 0, sizeof *g);
  g->view = v;
  g->shown = shown;
  g->proj = proj;
  return g;
}

static enum ldr_rc add_feature(struct request *q, struct group *g, const char *feature) {
  if (g->n == g->cap) {
    size_t cap = g->cap ? 2 * g->cap : 8;
    const char **fs = ldr_arena_alloc(q->c->arena, cap * sizeof *fs);
    if (fs == NULL) return no_memory(q->c);
    if (g->n) memcpy(fs, g->features, g->n * sizeof *fs);
    g->features = fs;
    g->cap = cap;
  }
  g->features[g->n++] = feature;
  return LDR_OK;
}

/* A view that the registry has but larder cannot read. */
static enum ldr_rc unservable(struct ldr_handler_ctx *c, const char *field,
                              const struct ldr_view *v) {
  return ldr_err_set(&c->err, v->unservable_computed ? LDR_UNIMPLEMENTED : LDR_FAILED_PRECONDITION,
                     "%s: feature view '%s' cannot be served: %s", field, v->name, v->unservable);
}

/*
 * Splits "view:feature" at the first ':'. A view part "name@latest", "name@"
 * or "name@v<N>" is the view "name" (larder serves the current version); any
 * other '@' suffix is part of the name, as in Feast.
 */
static enum ldr_rc resolve_ref(struct request *q, size_t i, const char *ref) {
  struct ldr_handler_ctx *c = q->c;
  const char *colon = strchr(ref, ':');
  if (colon == NULL || colon == ref || colon[1] == '\0')
    return ldr_err_set(&c->err, LDR_INVALID,
                       "features[%zu]: '%s' is not a feature reference 'view:feature'", i, ref);
  size_t vlen = (size_t)(colon - ref);
  const char *at = memchr(ref, '@', vlen);
  if (at != NULL) {
    const char *s = at + 1;
    size_t slen = (size_t)(colon - s);
    int version = slen == 0 || (slen == 6 && !strncmp(s, "latest", 6));
    if (!version && slen > 1 && (s[0] == 'v' || s[0] == 'V')) {
      version = 1;
      for (size_t k = 1; k < slen; k++)
        if (s[k] < '0' || s[k] > '9') version = 0;
    }
    if (version) vlen = (size_t)(at - ref);
  }
  const struct ldr_view *v = ldr_registry_view(q->reg, ref, vlen);
  if (v == NULL)
    return ldr_err_set(&c->err, LDR_INVALID, "features[%zu]: no feature view '%.*s' in project %s",
                       i, (int)vlen, ref, q->reg->project);
  if (v->unservable != NULL) {
    char field[48];
    snprintf(field, sizeof field, "features[%zu]", i);
    return unservable(c, field, v);
  }
  const char *feature = colon + 1;
  if (ldr_view_feature(v, feature) == NULL)
    return ldr_err_set(&c->err, LDR_INVALID, "features[%zu]: feature view '%s' has no feature '%s'",
                       i, v->name, feature);
  return add_feature(q, group_of(q, v, v->name, NULL), feature);
}

static enum ldr_rc resolve_service(struct request *q, const char *name) {
  struct ldr_handler_ctx *c = q->c;
  const struct ldr_feature_service *fs = ldr_registry_service(q->reg, name);
  if (fs == NULL)
    return ldr_err_set(&c->err, LDR_INVALID,
                       "feature_service: no feature service '%s' in project %s", name,
                       q->reg->project);
  q->groups = ldr_arena_calloc(c->arena, fs->n_projections + 1, sizeof *q->groups);
  if (q->groups == NULL) return no_memory(c);
  for (size_t i = 0; i < fs->n_projections; i++) {
    const struct ldr_projection *p = &fs->projections[i];
    if (p->view == NULL)
      return ldr_err_set(&c->err, LDR_FAILED_PRECONDITION,
                         "feature_service: feature service '%s' names feature view '%s', which "
                         "is not in the registry",
                         name, p->view_name);
    if (p->view->unservable != NULL) return unservable(c, "feature_service", p->view);
    struct group *g = group_of(q, p->view, p->name, p);
    for (size_t j = 0; j < p->n_features; j++) {
      if (ldr_view_feature(p->view, p->features[j]) == NULL)
        return ldr_err_set(&c->err, LDR_FAILED_PRECONDITION,
                           "feature_service: feature service '%s' names feature '%s', which "
                           "feature view '%s' does not have",
                           name, p->features[j], p->view->name);
      enum ldr_rc rc = add_feature(q, g, p->features[j]);
      if (rc != LDR_OK) return rc;
    }
  }
  return LDR_OK;
}

static enum ldr_rc resolve_features(struct request *q) {
  struct ldr_handler_ctx *c = q->c;
  const Feast__Serving__GetOnlineFeaturesRequest *pb = q->pb;
  if (pb->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE) {
    q->what = "feature_service";
    return resolve_service(q, pb->feature_service);
  }
  q->what = "features";
  if (pb->kind_case != FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES ||
      pb->features->n_val == 0)
    return ldr_err_set(&c->err, LDR_INVALID,
                       "features: required (feature references, or a feature_service)");
  q->groups = ldr_arena_calloc(c->arena, pb->features->n_val + 1, sizeof *q->groups);
  if (q->groups == NULL) return no_memory(c);
  for (size_t i = 0; i < pb->features->n_val; i++) {
    enum ldr_rc rc = resolve_ref(q, i, pb->features->val[i]);
    if (rc != LDR_OK) return rc;
  }
  return LDR_OK;
}

/* A column's name as the response shows it. */
static const char *column_name(struct request *q, const struct group *g, const char *feature) {
  if (!q->pb->full_feature_names) return feature;
  size_t n = strlen(g->shown) + 2 + strlen(feature) + 1;
  char *s = ldr_arena_alloc(q->c->arena, n);
  if (s != NULL) snprintf(s, n, "%s__%s", g->shown, feature);
  return s;
}

/* Lays out the feature columns after the `first` entity columns; refuses two
 * columns of one name, as Feast does. */
static enum ldr_rc plan_columns(struct request *q, size_t first) {
  struct ldr_handler_ctx *c = q->c;
  size_t n = 0;
  for (size_t i = 0; i < q->n_groups; i++) n += q->groups[i].n;
  q->n_cols = first + n;
  q->cols = ldr_arena_calloc(c->arena, q->n_cols + 1, sizeof *q->cols);
  struct named *all = ldr_arena_calloc(c->arena, n + 1, sizeof *all);
  if (q->cols == NULL || all == NULL) return no_memory(c);
  size_t col = first;
  for (size_t i = 0; i < q->n_groups; i++) {
    struct group *g = &q->groups[i];
    g->first_col = col;
    g->sorted = ldr_arena_calloc(c->arena, g->n + 1, sizeof *g->sorted);
    if (g->sorted == NULL) return no_memory(c);
    for (size_t j = 0; j < g->n; j++) {
      g->sorted[j].name = g->features[j];
      g->sorted[j].idx = j;
      q->cols[col].name = column_name(q, g, g->features[j]);
      if (q->cols[col].name == NULL) return no_memory(c);
      all[col - first].name = q->cols[col].name;
      col++;
    }
    qsort(g->sorted, g->n, sizeof *g->sorted, by_name);
  }
  qsort(all, n, sizeof *all, by_name);
  for (size_t i = 1; i < n; i++)
    if (!strcmp(all[i - 1].name, all[i].name))
      return ldr_err_set(&c->err, LDR_INVALID, "%s: the column '%s' would appear twice%s", q->what,
                         all[i].name,
                         q->pb->full_feature_names ? ""
                                                   : " (two views have a feature of that name: "
                                                     "set full_feature_names)");
  return LDR_OK;
}

/* Finds the request column named `name` among `n` map entries. */
static const Feast__Types__RepeatedValue *
find_column(Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry **e, size_t n,
            const char *name) {
  static const Feast__Types__RepeatedValue empty = FEAST__TYPES__REPEATED_VALUE__INIT;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(e[i]->key, name)) return e[i]->value ? e[i]->value : &empty;
  return NULL;
}

static int by_key(const void *x, const void *y) {
  return strcmp((*(Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *const *)x)->key,
                (*(Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *const *)y)->key);
}

/* Checks the entity (or request_context) columns: named, each once (found by
 * sorting a copy: a client chooses how many there are), all of one length.
 * Sets *rows to that length (1 when there are none). */
static enum ldr_rc check_columns(struct ldr_handler_ctx *c, const char *field,
                                 Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry **e,
                                 size_t n, size_t *rows, int *have_rows) {
  Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry **sorted =
      ldr_arena_alloc(c->arena, (n ? n : 1) * sizeof *sorted);
  if (sorted == NULL) return no_memory(c);
  if (n) memcpy(sorted, e, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, by_key);
  for (size_t i = 0; i + 1 < n; i++)
    if (!strcmp(sorted[i]->key, sorted[i + 1]->key))
      return ldr_err_set(&c->err, LDR_INVALID, "%s: the column '%s' is given twice", field,
                         sorted[i]->key);
  for (size_t i = 0; i < n; i++) {
    size_t len = e[i]->value ? e[i]->value->n_val : 0;
    if (e[i]->key[0] == '\0')
      return ldr_err_set(&c->err, LDR_INVALID, "%s[%zu]: a column without a name", field, i);
    if (*have_rows && len != *rows && i > 0)
      return ldr_err_set(&c->err, LDR_INVALID,
                         "%s: column '%s' has %zu values, column '%s' has %zu; every column needs "
                         "one value per entity row",
                         field, e[i]->key, len, e[0]->key, *rows);
    if (*have_rows && len != *rows)
      return ldr_err_set(&c->err, LDR_INVALID,
                         "%s: column '%s' has %zu values, the entity columns have %zu; every "
                         "column needs one value per entity row",
                         field, e[i]->key, len, *rows);
    *rows = len;
    *have_rows = 1;
  }
  return LDR_OK;
}

/* The request's own columns, echoed first: values as sent, PRESENT, zero timestamps. */
static enum ldr_rc echo_columns(struct request *q, size_t at,
                                Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry **e,
                                size_t n) {
  struct ldr_handler_ctx *c = q->c;
  for (size_t i = 0; i < n; i++) {
    struct ldr_column *col = &q->cols[at + i];
    col->name = e[i]->key;
    col->cells = ldr_arena_calloc(c->arena, q->n_rows + 1, sizeof *col->cells);
    if (col->cells == NULL) return no_memory(c);
    for (size_t r = 0; r < q->n_rows; r++) {
      const Feast__Types__Value *v = e[i]->value->val[r];
      size_t len = feast__types__value__get_packed_size(v);
      uint8_t *bytes = ldr_arena_alloc(c->arena, len);
      if (bytes == NULL) return no_memory(c);
      feast__types__value__pack(v, bytes);
      col->cells[r].value = bytes;
      col->cells[r].len = len;
      col->cells[r].status = LDR_FIELD_PRESENT;
    }
  }
  return LDR_OK;
}

/* The entity keys of a group's view, one per row, from the request's columns. */
static enum ldr_rc make_keys(struct request *q, const struct group *g, struct ldr_key *keys) {
  struct ldr_handler_ctx *c = q->c;
  const struct ldr_view *v = g->view;
  const Feast__Serving__GetOnlineFeaturesRequest *pb = q->pb;
  const Feast__Types__RepeatedValue **cols =
      ldr_arena_calloc(c->arena, v->n_join_keys + 1, sizeof *cols);
  char **names = ldr_arena_calloc(c->arena, v->n_join_keys + 1, sizeof *names);
  Feast__Types__Value **vals = ldr_arena_calloc(c->arena, v->n_join_keys + 1, sizeof *vals);
  if (cols == NULL || names == NULL || vals == NULL) return no_memory(c);
  for (size_t k = 0; k < v->n_join_keys && !v->entityless; k++) {
    const char *jk = v->join_keys[k].name, *column = jk;
    for (size_t m = 0; g->proj != NULL && m < g->proj->n_key_map; m++)
      if (!strcmp(g->proj->key_from[m], jk)) column = g->proj->key_to[m];
    cols[k] = find_column(pb->entities, pb->n_entities, column);
    if (cols[k] == NULL)
      return ldr_err_set(&c->err, LDR_INVALID,
                         "entities: no column '%s', the join key of feature view '%s'", column,
                         v->name);
    int want = v->join_keys[k].type;
    for (size_t r = 0; want != 0 && r < q->n_rows; r++) {
      int got = (int)cols[k]->val[r]->val_case;
      if (got != want)
        return ldr_err_set(&c->err, LDR_INVALID,
                           "entities[%s][%zu]: a %s value, where feature view '%s' has %s keys",
                           column, r, type_name(got), v->name, type_name(want));
    }
    names[k] = (char *)jk;
  }
  if (v->entityless) {
    Feast__Types__Value *dummy = ldr_arena_alloc(c->arena, sizeof *dummy);
    if (dummy == NULL) return no_memory(c);
    feast__types__value__init(dummy);
    dummy->val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
    dummy->string_val = (char *)"";
    names[0] = (char *)LDR_DUMMY_JOIN_KEY;
    vals[0] = dummy;
  }
  Feast__Types__EntityKey ek = FEAST__TYPES__ENTITY_KEY__INIT;
  ek.n_join_keys = ek.n_entity_values = v->n_join_keys;
  ek.join_keys = names;
  ek.entity_values = vals;
  for (size_t r = 0; r < q->n_rows; r++) {
    for (size_t k = 0; k < v->n_join_keys && !v->entityless; k++) vals[k] = cols[k]->val[r];
    enum ldr_rc rc =
        ldr_entity_key_serialize(&ek, c->backend->key_version, c->arena, &keys[r], &c->err);
    if (rc != LDR_OK) {
      ldr_err_prefix(&c->err, "entities: row %zu, feature view '%s': ", r, v->name);
      return rc;
    }
  }
  return LDR_OK;
}

/* Nonzero when a value stored at `t` is older than `ttl_ns` at `now`, in
 * seconds and nanoseconds apart: far-future timestamps cannot overflow. */
static int older_than(const struct timespec *now, struct ldr_ts t, int64_t ttl_ns) {
  int64_t age_s = (int64_t)now->tv_sec - t.s, age_ns = (int64_t)now->tv_nsec - t.ns;
  if (age_ns < 0) {
    age_ns += 1000000000;
    age_s--;
  }
  int64_t ttl_s = ttl_ns / 1000000000, ttl_rem = ttl_ns % 1000000000;
  return age_s > ttl_s || (age_s == ttl_s && age_ns > ttl_rem);
}

/* The read of a group's view: its table and the entity keys of every row. */
static enum ldr_rc prepare_group(struct request *q, struct group *g, struct ldr_read *r) {
  struct ldr_handler_ctx *c = q->c;
  const struct ldr_view *v = g->view;
  char *table = ldr_arena_alloc(c->arena, LDR_TABLE_NAME_MAX + 1);
  if (table == NULL) return no_memory(c);
  enum ldr_rc rc = ldr_table_name(c->cfg->project, v->name, "feature view", table, &c->err);
  if (rc != LDR_OK) {
    c->err.rc = LDR_FAILED_PRECONDITION;
    return rc == LDR_INVALID ? LDR_FAILED_PRECONDITION : rc;
  }
  size_t n = q->n_rows;
  struct ldr_key *keys = ldr_arena_alloc(c->arena, (n + 1) * sizeof *keys);
  struct ldr_read_row *rows = ldr_arena_alloc(c->arena, (n + 1) * sizeof *rows);
  if (keys == NULL || rows == NULL) return no_memory(c);
  rc = make_keys(q, g, keys);
  if (rc != LDR_OK) return rc;
  r->table = table;
  r->keys = keys;
  r->n_keys = n;
  r->features = g->features;
  r->n_features = g->n;
  r->out = rows;
  return LDR_OK;
}

/* Fills a group's columns from what its read returned. */
static enum ldr_rc fill_group(struct request *q, struct group *g, const struct ldr_read *r,
                              const struct timespec *now) {
  struct ldr_handler_ctx *c = q->c;
  const struct ldr_view *v = g->view;
  size_t n = q->n_rows;
  for (size_t j = 0; j < g->n; j++) {
    struct ldr_column *col = &q->cols[g->first_col + j];
    col->cells = ldr_arena_calloc(c->arena, n + 1, sizeof *col->cells);
    if (col->cells == NULL) return no_memory(c);
    for (size_t i = 0; i < n; i++) col->cells[i].status = LDR_FIELD_NOT_FOUND;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ldr_read_row *row = &r->out[i];
    if (!row->found) continue;
    int expired = c->cfg->enforce_ttl && v->ttl_ns > 0 && row->has_event_ts &&
                  older_than(now, row->event_ts, v->ttl_ns);
    for (size_t f = 0; f < row->n_features; f++) {
      const struct ldr_read_feature *rf = &row->features[f];
      struct named key = {rf->name, 0};
      const struct named *hit = bsearch(&key, g->sorted, g->n, sizeof key, by_name);
      if (hit == NULL) continue;
      struct ldr_cell *cell = &q->cols[g->first_col + hit->idx].cells[i];
      cell->status = expired ? LDR_FIELD_OUTSIDE_MAX_AGE : LDR_FIELD_PRESENT;
      if (!expired) {
        cell->value = rf->value;
        cell->len = rf->value_len;
      }
      cell->has_ts = row->has_event_ts;
      cell->ts = row->event_ts;
    }
  }
  return LDR_OK;
}

/* Every group's view read with one backend read: one round trip to a database server. */
static enum ldr_rc read_groups(struct request *q) {
  struct ldr_handler_ctx *c = q->c;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct ldr_read *reads = ldr_arena_calloc(c->arena, q->n_groups + 1, sizeof *reads);
  if (reads == NULL) return no_memory(c);
  enum ldr_rc rc = LDR_OK;
  size_t rows = 0;
  for (size_t i = 0; rc == LDR_OK && i < q->n_groups; i++) {
    rc = prepare_group(q, &q->groups[i], &reads[i]);
    rows += reads[i].n_keys;
  }
  if (rc != LDR_OK) return rc;
  int64_t t0 = ldr_now_ns();
  c->backend->result_cap = (size_t)c->cfg->max_message_bytes;
  rc = c->backend->ops->read(c->backend, reads, q->n_groups, c->arena, &c->err);
  c->backend->result_cap = 0;
  ldr_count_backend(c, t0, rc == LDR_OK ? rows : 0, 0);
  for (size_t i = 0; rc == LDR_OK && i < q->n_groups; i++)
    rc = fill_group(q, &q->groups[i], &reads[i], &now);
  return rc;
}

enum ldr_rc ldr_get_online_features(struct ldr_handler_ctx *c) {
  struct request q = {.c = c};
  struct ldr_wire_scan scan;
  enum ldr_rc rc = ldr_wire_scan(&feast__serving__get_online_features_request__descriptor, c->req,
                                 c->req_len, &scan, &c->err);
  if (rc != LDR_OK) return rc;
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, c->arena};
  Feast__Serving__GetOnlineFeaturesRequest *pb =
      feast__serving__get_online_features_request__unpack(&al, c->req_len, c->req);
  if (pb == NULL)
    return c->arena->exhausted
               ? ldr_err_set(&c->err, LDR_EXHAUSTED,
                             "request: too large to decode within the call's memory")
               : ldr_err_set(&c->err, LDR_INVALID, "request: not a valid GetOnlineFeaturesRequest");
  q.pb = pb;
  /* Limits first, then strings, then meaning (DESIGN §9). */
  for (size_t i = 0; i < pb->n_entities; i++)
    if (pb->entities[i]->value && pb->entities[i]->value->n_val > (size_t)c->cfg->max_batch_rows)
      return ldr_err_set(&c->err, LDR_EXHAUSTED,
                         "entities: %zu rows exceed larder.max_batch_rows (%ld)",
                         pb->entities[i]->value->n_val, c->cfg->max_batch_rows);
  if (scan.bad_string) {
    c->err = scan.string_err;
    return c->err.rc;
  }
  if (pb->n_entities + pb->n_request_context > (size_t)c->cfg->max_columns)
    return ldr_err_set(&c->err, LDR_INVALID,
                       "entities: %zu entity and request_context columns, more than "
                       "larder.max_columns (%d)",
                       pb->n_entities + pb->n_request_context, c->cfg->max_columns);
  int have_rows = 0;
  q.n_rows = 1; /* with no entity columns at all: one row, for entity-less views */
  rc = check_columns(c, "entities", pb->entities, pb->n_entities, &q.n_rows, &have_rows);
  if (rc == LDR_OK)
    rc = check_columns(
        c, "request_context",
        (Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry **)pb->request_context,
        pb->n_request_context, &q.n_rows, &have_rows);
  if (rc != LDR_OK) return rc;
  for (size_t i = 0; i < pb->n_entities; i++)
    for (size_t r = 0; r < q.n_rows; r++)
      if (pb->entities[i]->value->val[r]->val_case == FEAST__TYPES__VALUE__VAL__NOT_SET)
        return ldr_err_set(&c->err, LDR_INVALID, "entities[%s][%zu]: no value",
                           pb->entities[i]->key, r);

  if (c->registry == NULL)
    return ldr_err_set(&c->err, LDR_FAILED_PRECONDITION, "%s",
                       c->cfg->registry_unsupported
                           ? c->cfg->registry_unsupported
                           : "no registry: ServingService needs `registry` in feature_store.yaml");
  q.reg = ldr_registry_acquire(c->registry, c->reader, &c->err);
  if (q.reg == NULL) return c->err.rc;
  size_t first = pb->n_entities + pb->n_request_context;
  rc = resolve_features(&q);
  if (rc == LDR_OK) rc = plan_columns(&q, first);
  if (rc == LDR_OK) rc = echo_columns(&q, 0, pb->entities, pb->n_entities);
  if (rc == LDR_OK)
    rc = echo_columns(
        &q, pb->n_entities,
        (Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry **)pb->request_context,
        pb->n_request_context);
  if (rc == LDR_OK && q.n_groups > 0) rc = read_groups(&q);
  const char **views = NULL;
  size_t n_views = 0;
  if (rc == LDR_OK && pb->include_feature_view_version_metadata) {
    views = ldr_arena_calloc(c->arena, q.n_groups + 1, sizeof *views);
    if (views == NULL) rc = no_memory(c);
    for (size_t i = 0; views != NULL && i < q.n_groups; i++) views[n_views++] = q.groups[i].shown;
  }
  if (rc == LDR_OK)
    rc = ldr_serving_encode(q.cols, q.n_cols, q.n_rows, views, n_views,
                            (size_t)c->cfg->max_message_bytes, &c->reply, &c->err);
  ldr_registry_release(c->registry, c->reader);
  return rc;
}

enum ldr_rc ldr_get_feast_serving_info(struct ldr_handler_ctx *c) {
  struct ldr_wire_scan scan;
  enum ldr_rc rc = ldr_wire_scan(&feast__serving__get_feast_serving_info_request__descriptor,
                                 c->req, c->req_len, &scan, &c->err);
  if (rc != LDR_OK) return rc;
  Feast__Serving__GetFeastServingInfoResponse resp =
      FEAST__SERVING__GET_FEAST_SERVING_INFO_RESPONSE__INIT;
  resp.version = (char *)LDR_VERSION;
  size_t n = feast__serving__get_feast_serving_info_response__get_packed_size(&resp);
  c->reply = grpc_slice_malloc(n);
  feast__serving__get_feast_serving_info_response__pack(&resp, GRPC_SLICE_START_PTR(c->reply));
  return LDR_OK;
}

/* ---- the reply, written by hand: stored Value bytes are copied as they are */

static size_t ts_body(const struct ldr_cell *cell) {
  if (!cell->has_ts) return 0;
  return (cell->ts.s ? 1 + ldr_pb_varint_size((uint64_t)cell->ts.s) : 0) +
         (cell->ts.ns ? 1 + ldr_pb_varint_size((uint64_t)cell->ts.ns) : 0);
}

static size_t len_field(size_t body) { return 1 + ldr_pb_varint_size(body) + body; }

static size_t vector_body(const struct ldr_column *col, size_t n_rows) {
  size_t n = 0;
  for (size_t r = 0; r < n_rows; r++)
    n += len_field(col->cells[r].len) + len_field(ts_body(&col->cells[r]));
  if (n_rows) n += len_field(n_rows); /* statuses, packed: every status is one byte */
  return n;
}

static uint8_t *put_len(uint8_t *p, uint8_t tag, size_t len) {
  *p++ = tag;
  return ldr_pb_put_varint(p, len);
}

static uint8_t *put_bytes(uint8_t *p, uint8_t tag, const void *b, size_t len) {
  p = put_len(p, tag, len);
  if (len) memcpy(p, b, len);
  return p + len;
}

enum ldr_rc ldr_serving_encode(const struct ldr_column *cols, size_t n_cols, size_t n_rows,
                               const char *const *views, size_t n_views, size_t max_bytes,
                               grpc_slice *out, struct ldr_err *err) {
  /* metadata = 1 { feature_names = 1 { val = 1 ... }, feature_view_metadata = 2 { name = 1 } } */
  size_t names = 0, meta_views = 0;
  for (size_t i = 0; i < n_cols; i++) names += len_field(strlen(cols[i].name));
  for (size_t i = 0; i < n_views; i++) meta_views += len_field(len_field(strlen(views[i])));
  size_t meta = len_field(names) + meta_views;
  size_t total = len_field(meta);
  for (size_t i = 0; i < n_cols; i++) total += len_field(vector_body(&cols[i], n_rows));
  if (total > max_bytes)
    return ldr_err_set(err, LDR_EXHAUSTED,
                       "entities: the reply would be %zu bytes, more than larder.max_message_bytes "
                       "(%zu); ask for fewer entities or features",
                       total, max_bytes);
  *out = grpc_slice_malloc(total);
  uint8_t *p = GRPC_SLICE_START_PTR(*out);
  p = put_len(p, 0x0a, meta);
  p = put_len(p, 0x0a, names);
  for (size_t i = 0; i < n_cols; i++) p = put_bytes(p, 0x0a, cols[i].name, strlen(cols[i].name));
  for (size_t i = 0; i < n_views; i++) {
    p = put_len(p, 0x12, len_field(strlen(views[i])));
    p = put_bytes(p, 0x0a, views[i], strlen(views[i]));
  }
  for (size_t i = 0; i < n_cols; i++) {
    const struct ldr_column *col = &cols[i];
    p = put_len(p, 0x12, vector_body(col, n_rows)); /* results = 2 */
    for (size_t r = 0; r < n_rows; r++)
      p = put_bytes(p, 0x0a, col->cells[r].value, col->cells[r].len);
    if (n_rows) {
      p = put_len(p, 0x12, n_rows);
      for (size_t r = 0; r < n_rows; r++) *p++ = (uint8_t)col->cells[r].status;
    }
    for (size_t r = 0; r < n_rows; r++) {
      const struct ldr_cell *cell = &col->cells[r];
      p = put_len(p, 0x1a, ts_body(cell));
      if (cell->has_ts && cell->ts.s) {
        *p++ = 0x08;
        p = ldr_pb_put_varint(p, (uint64_t)cell->ts.s);
      }
      if (cell->has_ts && cell->ts.ns) {
        *p++ = 0x10;
        p = ldr_pb_put_varint(p, (uint64_t)cell->ts.ns);
      }
    }
  }
  return LDR_OK;
}
