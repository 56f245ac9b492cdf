/*
 * Turning the bytes of a Feast registry into the lookup tables ServingService
 * uses. protobuf-c decodes the subset of feast.core.Registry that
 * protos/feast/core/Registry.proto declares, skipping every other field, into
 * the registry's own arena; the tables point into that decoded message.
 */
#include "registry/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "feast/core/Registry.pb-c.h"

struct ldr_registry_mem {
  struct ldr_arena arena;
};

/* A view spec of any kind, seen through the fields the tables need. */
struct spec {
  const char *name, *project;
  enum ldr_view_kind kind;
  int computed;
  size_t n_entities;
  char **entities;
  size_t n_features;
  Feast__Core__FeatureSpecV2 **features;
  size_t n_entity_columns;
  Feast__Core__FeatureSpecV2 **entity_columns;
  const Google__Protobuf__Duration *ttl;
};

struct builder {
  struct ldr_arena *a;
  const char *project;
  const Feast__Core__Registry *pb;
  struct ldr_view *views;
  size_t n_views;
  struct ldr_err *err;
};

static enum ldr_rc no_memory(struct builder *b) {
  return ldr_err_set(b->err, LDR_NOMEM, "registry: out of memory");
}

static const Feast__Core__EntitySpecV2 *find_entity(const struct builder *b, const char *name) {
  for (size_t i = 0; i < b->pb->n_entities; i++) {
    const Feast__Core__EntitySpecV2 *e = b->pb->entities[i]->spec;
    if (e != NULL && !strcmp(e->name, name) && !strcmp(e->project, b->project)) return e;
  }
  return NULL;
}

static int column_type(const struct spec *s, const char *join_key) {
  for (size_t i = 0; i < s->n_entity_columns; i++)
    if (!strcmp(s->entity_columns[i]->name, join_key)) return (int)s->entity_columns[i]->value_type;
  return 0;
}

static int by_feature_name(const void *x, const void *y) {
  return strcmp((*(const struct ldr_feature *const *)x)->name,
                (*(const struct ldr_feature *const *)y)->name);
}

static enum ldr_rc add_view(struct builder *b, const struct spec *s) {
  struct ldr_view *v = &b->views[b->n_views];
  memset(v, 0, sizeof *v);
  v->name = s->name;
  v->kind = s->kind;
  if (s->computed) {
    v->unservable = "it is an on-demand feature view computed at request time; larder serves "
                    "stored features only";
    v->unservable_computed = 1;
  }
  if (s->ttl != NULL && s->ttl->seconds > 0) {
    int64_t max_s = INT64_MAX / 1000000000 - 1;
    v->ttl_ns = (s->ttl->seconds > max_s ? max_s : s->ttl->seconds) * 1000000000 +
                (s->ttl->nanos > 0 ? s->ttl->nanos : 0);
  } else if (s->ttl != NULL && s->ttl->seconds == 0 && s->ttl->nanos > 0) {
    v->ttl_ns = s->ttl->nanos;
  }

  struct ldr_feature *fs = ldr_arena_calloc(b->a, s->n_features + 1, sizeof *fs);
  const struct ldr_feature **sorted = ldr_arena_calloc(b->a, s->n_features + 1, sizeof *sorted);
  struct ldr_join_key *jk = ldr_arena_calloc(b->a, s->n_entities + 1, sizeof *jk);
  if (fs == NULL || sorted == NULL || jk == NULL) return no_memory(b);
  for (size_t i = 0; i < s->n_features; i++) {
    fs[i].name = s->features[i]->name;
    fs[i].type = (int)s->features[i]->value_type;
    sorted[i] = &fs[i];
  }
  qsort(sorted, s->n_features, sizeof *sorted, by_feature_name);
  v->features = fs;
  v->n_features = s->n_features;
  v->by_name = sorted;

  if (s->n_entities == 1 && !strcmp(s->entities[0], LDR_DUMMY_ENTITY)) {
    v->entityless = 1;
    jk[0].name = LDR_DUMMY_JOIN_KEY;
    jk[0].type = 2; /* STRING */
    v->join_keys = jk;
    v->n_join_keys = 1;
  } else {
    for (size_t i = 0; i < s->n_entities; i++) {
      const Feast__Core__EntitySpecV2 *e = find_entity(b, s->entities[i]);
      if (e == NULL) {
        /* Kept with the reason: a request for it says what is wrong. */
        size_t cap = 64 + strlen(s->entities[i]);
        char *why = ldr_arena_alloc(b->a, cap);
        if (why == NULL) return no_memory(b);
        snprintf(why, cap, "its entity '%s' is not in the registry", s->entities[i]);
        v->unservable = why;
        jk[i].name = s->entities[i];
        continue;
      }
      jk[i].name = e->join_key[0] ? e->join_key : e->name;
      jk[i].type = column_type(s, jk[i].name);
      if (jk[i].type == 0) jk[i].type = (int)e->value_type;
    }
    v->join_keys = jk;
    v->n_join_keys = s->n_entities;
  }
  b->n_views++;
  return LDR_OK;
}

static int by_view_name(const void *x, const void *y) {
  return strcmp(((const struct ldr_view *)x)->name, ((const struct ldr_view *)y)->name);
}

static int by_service_name(const void *x, const void *y) {
  return strcmp(((const struct ldr_feature_service *)x)->name,
                ((const struct ldr_feature_service *)y)->name);
}

static enum ldr_rc add_projection(struct builder *b, const struct ldr_registry *r,
                                  const Feast__Core__FeatureViewProjection *pb,
                                  struct ldr_projection *p) {
  p->view_name = pb->feature_view_name;
  p->view = ldr_registry_view(r, pb->feature_view_name, strlen(pb->feature_view_name));
  p->name = pb->feature_view_name_alias[0] ? pb->feature_view_name_alias : pb->feature_view_name;
  size_t nf = pb->n_feature_columns;
  if (nf == 0 && p->view != NULL) nf = p->view->n_features; /* no choice: all of them */
  const char **fs = ldr_arena_calloc(b->a, nf + 1, sizeof *fs);
  const char **from = ldr_arena_calloc(b->a, pb->n_join_key_map + 1, sizeof *from);
  const char **to = ldr_arena_calloc(b->a, pb->n_join_key_map + 1, sizeof *to);
  if (fs == NULL || from == NULL || to == NULL) return no_memory(b);
  for (size_t i = 0; i < nf; i++)
    fs[i] = pb->n_feature_columns ? pb->feature_columns[i]->name : p->view->features[i].name;
  for (size_t i = 0; i < pb->n_join_key_map; i++) {
    from[i] = pb->join_key_map[i]->key;
    to[i] = pb->join_key_map[i]->value;
  }
  p->features = fs;
  p->n_features = nf;
  p->key_from = from;
  p->key_to = to;
  p->n_key_map = pb->n_join_key_map;
  return LDR_OK;
}

static enum ldr_rc build(struct builder *b, struct ldr_registry *r) {
  const Feast__Core__Registry *pb = b->pb;
  size_t cap = pb->n_feature_views + pb->n_stream_feature_views + pb->n_on_demand_feature_views;
  b->views = ldr_arena_calloc(b->a, cap + 1, sizeof *b->views);
  if (b->views == NULL) return no_memory(b);
  enum ldr_rc rc = LDR_OK;
  for (size_t i = 0; rc == LDR_OK && i < pb->n_feature_views; i++) {
    const Feast__Core__FeatureViewSpec *v = pb->feature_views[i]->spec;
    if (v == NULL || strcmp(v->project, b->project)) continue;
    struct spec s = {v->name,
                     v->project,
                     LDR_VIEW_BATCH,
                     0,
                     v->n_entities,
                     v->entities,
                     v->n_features,
                     v->features,
                     v->n_entity_columns,
                     v->entity_columns,
                     v->ttl};
    rc = add_view(b, &s);
  }
  for (size_t i = 0; rc == LDR_OK && i < pb->n_stream_feature_views; i++) {
    const Feast__Core__StreamFeatureViewSpec *v = pb->stream_feature_views[i]->spec;
    if (v == NULL || strcmp(v->project, b->project)) continue;
    struct spec s = {v->name,
                     v->project,
                     LDR_VIEW_STREAM,
                     0,
                     v->n_entities,
                     v->entities,
                     v->n_features,
                     v->features,
                     v->n_entity_columns,
                     v->entity_columns,
                     v->ttl};
    rc = add_view(b, &s);
  }
  for (size_t i = 0; rc == LDR_OK && i < pb->n_on_demand_feature_views; i++) {
    const Feast__Core__OnDemandFeatureViewSpec *v = pb->on_demand_feature_views[i]->spec;
    if (v == NULL || strcmp(v->project, b->project)) continue;
    struct spec s = {v->name,
                     v->project,
                     LDR_VIEW_ON_DEMAND,
                     !v->write_to_online_store,
                     v->n_entities,
                     v->entities,
                     v->n_features,
                     v->features,
                     v->n_entity_columns,
                     v->entity_columns,
                     NULL};
    rc = add_view(b, &s);
  }
  if (rc != LDR_OK) return rc;
  /* Sorted for lookups; of two views with one name (Feast does not allow
   * it) the first in the file is kept. */
  qsort(b->views, b->n_views, sizeof *b->views, by_view_name);
  size_t n = 0;
  for (size_t i = 0; i < b->n_views; i++)
    if (n == 0 || strcmp(b->views[n - 1].name, b->views[i].name)) b->views[n++] = b->views[i];
  r->views = b->views;
  r->n_views = n;

  struct ldr_feature_service *fs = ldr_arena_calloc(b->a, pb->n_feature_services + 1, sizeof *fs);
  if (fs == NULL) return no_memory(b);
  size_t ns = 0;
  for (size_t i = 0; i < pb->n_feature_services; i++) {
    const Feast__Core__FeatureServiceSpec *s = pb->feature_services[i]->spec;
    if (s == NULL || strcmp(s->project, b->project)) continue;
    struct ldr_projection *ps = ldr_arena_calloc(b->a, s->n_features + 1, sizeof *ps);
    if (ps == NULL) return no_memory(b);
    for (size_t j = 0; rc == LDR_OK && j < s->n_features; j++)
      rc = add_projection(b, r, s->features[j], &ps[j]);
    if (rc != LDR_OK) return rc;
    fs[ns].name = s->name;
    fs[ns].projections = ps;
    fs[ns].n_projections = s->n_features;
    ns++;
  }
  qsort(fs, ns, sizeof *fs, by_service_name);
  r->services = fs;
  r->n_services = ns;
  return LDR_OK;
}

enum ldr_rc ldr_registry_parse(const uint8_t *bytes, size_t len, const char *project,
                               struct ldr_registry **out, struct ldr_err *err) {
  *out = NULL;
  struct ldr_registry *r = calloc(1, sizeof *r);
  struct ldr_registry_mem *mem = calloc(1, sizeof *mem);
  if (r == NULL || mem == NULL) {
    free(r);
    free(mem);
    return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  }
  r->mem = mem;
  ldr_arena_init(&mem->arena, 64 * 1024, 0);
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, &mem->arena};
  enum ldr_rc rc;
  if (len == 0) {
    /* A valid empty message, but what a half-written file looks like: refused. */
    rc = ldr_err_set(err, LDR_INVALID, "not a Feast registry (the file is empty)");
    goto out;
  }
  Feast__Core__Registry *pb = feast__core__registry__unpack(&al, len, bytes);
  if (pb == NULL) {
    rc = mem->arena.exhausted ? ldr_err_set(err, LDR_NOMEM, "registry: out of memory")
                              : ldr_err_set(err, LDR_INVALID,
                                            "not a Feast registry (the bytes do not decode as "
                                            "feast.core.Registry)");
    goto out;
  }
  r->project = ldr_arena_memdup(&mem->arena, project, strlen(project));
  if (r->project == NULL) {
    rc = ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
    goto out;
  }
  r->version_id = pb->version_id;
  struct builder b = {&mem->arena, r->project, pb, NULL, 0, err};
  rc = build(&b, r);
out:
  if (rc != LDR_OK) {
    ldr_registry_free(r);
    return rc;
  }
  *out = r;
  return LDR_OK;
}

void ldr_registry_free(struct ldr_registry *r) {
  if (r == NULL) return;
  ldr_arena_destroy(&r->mem->arena);
  free(r->mem);
  free(r);
}

const struct ldr_view *ldr_registry_view(const struct ldr_registry *r, const char *name,
                                         size_t len) {
  size_t lo = 0, hi = r->n_views;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const char *m = r->views[mid].name;
    int c = strncmp(m, name, len);
    if (c == 0 && m[len] != '\0') c = 1;
    if (c == 0) return &r->views[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

const struct ldr_feature_service *ldr_registry_service(const struct ldr_registry *r,
                                                       const char *name) {
  struct ldr_feature_service key = {name, 0, NULL};
  return bsearch(&key, r->services, r->n_services, sizeof key, by_service_name);
}

const struct ldr_feature *ldr_view_feature(const struct ldr_view *v, const char *name) {
  struct ldr_feature key = {name, 0};
  const struct ldr_feature *kp = &key;
  const struct ldr_feature **hit =
      bsearch(&kp, v->by_name, v->n_features, sizeof *v->by_name, by_feature_name);
  return hit ? *hit : NULL;
}
