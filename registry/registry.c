/*
 * Turning a project's decoded Feast objects into the lookup tables serving
 * uses. protobuf-c decodes the subset of feast.core that
 * protos/feast/core/Registry.proto declares, skipping every other field, into
 * the registry's own arena; the tables point into those decoded messages.
 */
#include "registry/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"

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
  int disabled, state, version;
  const Feast__Core__DataSource *batch, *stream; /* for pushes */
};

struct builder {
  struct ldr_arena *a;
  const char *project;
  const struct ldr_registry_input *in;
  struct ldr_err *err;
};

static enum ldr_rc no_memory(struct builder *b) {
  return ldr_err_set(b->err, LDR_NOMEM, "registry: out of memory");
}

/* Whether an object whose spec names `project` belongs to the registry. */
static int ours(const struct builder *b, const char *project) {
  return b->in->scoped || (project != NULL && !strcmp(project, b->project));
}

static const Feast__Core__EntitySpecV2 *find_entity(const struct builder *b, const char *name) {
  for (size_t i = 0; i < b->in->n_entities; i++) {
    const Feast__Core__EntitySpecV2 *e = b->in->entities[i]->spec;
    if (e != NULL && !strcmp(e->name, name) && ours(b, e->project)) return e;
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

/* A Duration's nanos lie in [0, 999999999] for a positive one; a registry that
 * says more is held to that, so the sum cannot overflow. */
static int64_t ttl_of(const Google__Protobuf__Duration *ttl) {
  if (ttl == NULL || ttl->seconds < 0 || (ttl->seconds == 0 && ttl->nanos <= 0)) return 0;
  int64_t max_s = INT64_MAX / 1000000000 - 1;
  int64_t nanos = ttl->nanos < 0 ? 0 : ttl->nanos > 999999999 ? 999999999 : ttl->nanos;
  return (ttl->seconds > max_s ? max_s : ttl->seconds) * 1000000000 + nanos;
}

/* A view's batch source (its own, else its push source's), and the push
 * source that feeds it when its stream source is one (HTTP.md §6.2, §6.3). */
static enum ldr_rc view_source(struct builder *b, const struct spec *s, struct ldr_view *v) {
  const Feast__Core__DataSource *push = s->stream;
  if (push != NULL &&
      (push->type != FEAST__CORE__DATA_SOURCE__SOURCE_TYPE__PUSH_SOURCE || push->name[0] == '\0'))
    push = NULL;
  const Feast__Core__DataSource *batch = s->batch ? s->batch : push ? push->batch_source : NULL;
  if (batch == NULL && push == NULL) return LDR_OK;
  struct ldr_view_source *t = ldr_arena_calloc(b->a, 1, sizeof *t);
  if (t == NULL) return no_memory(b);
  t->push_source = push ? push->name : NULL;
  t->timestamp_field = batch ? batch->timestamp_field : "";
  t->created_column = batch ? batch->created_timestamp_column : "";
  size_t n = batch ? batch->n_field_mapping : 0;
  const char **from = ldr_arena_calloc(b->a, n + 1, sizeof *from);
  const char **to = ldr_arena_calloc(b->a, n + 1, sizeof *to);
  if (from == NULL || to == NULL) return no_memory(b);
  for (size_t i = 0; i < n; i++) {
    from[i] = batch->field_mapping[i]->key;
    to[i] = batch->field_mapping[i]->value;
  }
  t->n_mapping = n;
  t->mapping_from = from;
  t->mapping_to = to;
  v->source = t;
  return LDR_OK;
}

static enum ldr_rc fill_view(struct builder *b, const struct spec *s, struct ldr_view *v) {
  memset(v, 0, sizeof *v);
  v->name = s->name;
  v->kind = s->kind;
  v->disabled = s->disabled;
  /* A state this larder does not know reads as unspecified (REGISTRY.md §3). */
  v->state = s->state >= 0 && s->state <= LDR_STATE_AVAILABLE_ONLINE ? s->state : 0;
  v->version = s->version;
  if (s->computed) {
    v->unservable = "it is an on-demand feature view computed at request time; larder serves "
                    "stored features only";
    v->unservable_computed = 1;
  }
  v->ttl_ns = ttl_of(s->ttl);

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
    return view_source(b, s, v);
  }
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
  return view_source(b, s, v);
}

/* The spec of each kind of view, through struct spec. */
static struct spec of_feature_view(const Feast__Core__FeatureView *fv) {
  const Feast__Core__FeatureViewSpec *v = fv->spec;
  const Feast__Core__FeatureViewMeta *m = fv->meta;
  return (struct spec){.name = v->name,
                       .project = v->project,
                       .kind = LDR_VIEW_BATCH,
                       .n_entities = v->n_entities,
                       .entities = v->entities,
                       .n_features = v->n_features,
                       .features = v->features,
                       .n_entity_columns = v->n_entity_columns,
                       .entity_columns = v->entity_columns,
                       .ttl = v->ttl,
                       .disabled = v->disabled,
                       .state = m ? (int)m->state : 0,
                       .version = m ? m->current_version_number : 0,
                       .batch = v->batch_source,
                       .stream = v->stream_source};
}

static struct spec of_stream_view(const Feast__Core__StreamFeatureView *sfv) {
  const Feast__Core__StreamFeatureViewSpec *v = sfv->spec;
  const Feast__Core__FeatureViewMeta *m = sfv->meta;
  return (struct spec){.name = v->name,
                       .project = v->project,
                       .kind = LDR_VIEW_STREAM,
                       .n_entities = v->n_entities,
                       .entities = v->entities,
                       .n_features = v->n_features,
                       .features = v->features,
                       .n_entity_columns = v->n_entity_columns,
                       .entity_columns = v->entity_columns,
                       .ttl = v->ttl,
                       .disabled = v->disabled,
                       .state = m ? (int)m->state : 0,
                       .version = m ? m->current_version_number : 0,
                       .batch = v->batch_source,
                       .stream = v->stream_source};
}

/* An on-demand view has no TTL; stored only with write_to_online_store. */
static struct spec of_on_demand_view(const Feast__Core__OnDemandFeatureView *odfv) {
  const Feast__Core__OnDemandFeatureViewSpec *v = odfv->spec;
  const Feast__Core__OnDemandFeatureViewMeta *m = odfv->meta;
  return (struct spec){.name = v->name,
                       .project = v->project,
                       .kind = LDR_VIEW_ON_DEMAND,
                       .computed = !v->write_to_online_store,
                       .n_entities = v->n_entities,
                       .entities = v->entities,
                       .n_features = v->n_features,
                       .features = v->features,
                       .n_entity_columns = v->n_entity_columns,
                       .entity_columns = v->entity_columns,
                       .disabled = v->disabled,
                       .state = m ? (int)m->state : 0,
                       .version = m ? m->current_version_number : 0};
}

/* A label view has no versions, no disabled flag and no state; its source
 * may be a push source (HTTP.md §6.2). */
static struct spec of_label_view(const Feast__Core__LabelView *lv) {
  const Feast__Core__LabelViewSpec *v = lv->spec;
  return (struct spec){.name = v->name,
                       .project = v->project,
                       .kind = LDR_VIEW_LABEL,
                       .n_entities = v->n_entities,
                       .entities = v->entities,
                       .n_features = v->n_features,
                       .features = v->features,
                       .n_entity_columns = v->n_entity_columns,
                       .entity_columns = v->entity_columns,
                       .ttl = v->ttl,
                       .stream = v->source};
}

static int by_view_name(const void *x, const void *y) {
  const struct ldr_view *a = x, *b = y;
  int c = strcmp(a->name, b->name);
  return c ? c : (int)a->kind - (int)b->kind;
}

static int by_service_name(const void *x, const void *y) {
  return strcmp(((const struct ldr_feature_service *)x)->name,
                ((const struct ldr_feature_service *)y)->name);
}

static int by_entity_name(const void *x, const void *y) {
  return strcmp(((const struct ldr_entity *)x)->name, ((const struct ldr_entity *)y)->name);
}

static int by_string(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int by_version(const void *x, const void *y) {
  const struct ldr_view_version *a = x, *b = y;
  int c = strcmp(a->name, b->name);
  return c ? c : (a->version > b->version) - (a->version < b->version);
}

static enum ldr_rc add_projection(struct builder *b, const struct ldr_registry *r,
                                  const Feast__Core__FeatureViewProjection *pb,
                                  struct ldr_projection *p) {
  p->view_name = pb->feature_view_name;
  p->view = ldr_registry_view(r, pb->feature_view_name, strlen(pb->feature_view_name));
  p->name = pb->feature_view_name_alias[0] ? pb->feature_view_name_alias : pb->feature_view_name;
  p->has_version_tag =
      pb->version_tag_set_case == FEAST__CORE__FEATURE_VIEW_PROJECTION__VERSION_TAG_SET_VERSION_TAG;
  p->version_tag = p->has_version_tag ? pb->version_tag : 0;
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

static enum ldr_rc add_views(struct builder *b, struct ldr_registry *r) {
  const struct ldr_registry_input *in = b->in;
  size_t cap = in->n_feature_views + in->n_stream_views + in->n_on_demand_views + in->n_label_views;
  struct ldr_view *views = ldr_arena_calloc(b->a, cap + 1, sizeof *views);
  if (views == NULL) return no_memory(b);
  size_t n = 0;
  enum ldr_rc rc = LDR_OK;
  for (size_t i = 0; rc == LDR_OK && i < in->n_feature_views; i++) {
    if (in->feature_views[i]->spec == NULL || !ours(b, in->feature_views[i]->spec->project))
      continue;
    struct spec s = of_feature_view(in->feature_views[i]);
    rc = fill_view(b, &s, &views[n++]);
  }
  for (size_t i = 0; rc == LDR_OK && i < in->n_stream_views; i++) {
    if (in->stream_views[i]->spec == NULL || !ours(b, in->stream_views[i]->spec->project)) continue;
    struct spec s = of_stream_view(in->stream_views[i]);
    rc = fill_view(b, &s, &views[n++]);
  }
  for (size_t i = 0; rc == LDR_OK && i < in->n_on_demand_views; i++) {
    if (in->on_demand_views[i]->spec == NULL || !ours(b, in->on_demand_views[i]->spec->project))
      continue;
    struct spec s = of_on_demand_view(in->on_demand_views[i]);
    rc = fill_view(b, &s, &views[n++]);
  }
  for (size_t i = 0; rc == LDR_OK && i < in->n_label_views; i++) {
    if (in->label_views[i]->spec == NULL || !ours(b, in->label_views[i]->spec->project)) continue;
    struct spec s = of_label_view(in->label_views[i]);
    rc = fill_view(b, &s, &views[n++]);
  }
  if (rc != LDR_OK) return rc;
  /* Sorted for lookups; of two views with one name the first kind in
   * Feast's lookup order wins (and of one kind, the first in the input). */
  qsort(views, n, sizeof *views, by_view_name);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    if (kept == 0 || strcmp(views[kept - 1].name, views[i].name)) views[kept++] = views[i];
  r->views = views;
  r->n_views = kept;
  return LDR_OK;
}

/* The version history: each record's spec decoded by its type. */
static enum ldr_rc add_versions(struct builder *b, struct ldr_registry *r) {
  const struct ldr_registry_input *in = b->in;
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, b->a};
  struct ldr_view_version *vs = ldr_arena_calloc(b->a, in->n_versions + 1, sizeof *vs);
  if (vs == NULL) return no_memory(b);
  size_t n = 0;
  for (size_t i = 0; i < in->n_versions; i++) {
    const Feast__Core__FeatureViewVersionRecord *rec = in->versions[i];
    if (!in->scoped && strcmp(rec->project_id, b->project)) continue;
    const char *type = rec->feature_view_type;
    size_t len = rec->feature_view_proto.len;
    const uint8_t *data = rec->feature_view_proto.data;
    struct spec s;
    int ok = 1;
    if (!strcmp(type, "feature_view") || type[0] == '\0') {
      Feast__Core__FeatureView *m = feast__core__feature_view__unpack(&al, len, data);
      ok = m != NULL && m->spec != NULL;
      if (ok) s = of_feature_view(m);
    } else if (!strcmp(type, "stream_feature_view")) {
      Feast__Core__StreamFeatureView *m = feast__core__stream_feature_view__unpack(&al, len, data);
      ok = m != NULL && m->spec != NULL;
      if (ok) s = of_stream_view(m);
    } else if (!strcmp(type, "on_demand_feature_view")) {
      Feast__Core__OnDemandFeatureView *m =
          feast__core__on_demand_feature_view__unpack(&al, len, data);
      ok = m != NULL && m->spec != NULL;
      if (ok) s = of_on_demand_view(m);
    } else if (!strcmp(type, "label_view")) {
      Feast__Core__LabelView *m = feast__core__label_view__unpack(&al, len, data);
      ok = m != NULL && m->spec != NULL;
      if (ok) s = of_label_view(m);
    } else {
      continue; /* a kind this larder does not know: not served by version */
    }
    if (!ok)
      return ldr_err_set(b->err, b->a->exhausted ? LDR_NOMEM : LDR_INVALID,
                         "registry: version %d of '%s' does not decode as a %s",
                         (int)rec->version_number, rec->feature_view_name, type);
    /* The snapshot's name is the history's: a rename does not move versions. */
    s.name = rec->feature_view_name;
    s.version = rec->version_number;
    vs[n].name = rec->feature_view_name;
    vs[n].version = rec->version_number;
    enum ldr_rc rc = fill_view(b, &s, &vs[n].view);
    if (rc != LDR_OK) return rc;
    n++;
  }
  qsort(vs, n, sizeof *vs, by_version);
  r->versions = vs;
  r->n_versions = n;
  return LDR_OK;
}

static enum ldr_rc add_entities(struct builder *b, struct ldr_registry *r) {
  const struct ldr_registry_input *in = b->in;
  struct ldr_entity *es = ldr_arena_calloc(b->a, in->n_entities + 1, sizeof *es);
  const char **keys = ldr_arena_calloc(b->a, in->n_entities + 1, sizeof *keys);
  if (es == NULL || keys == NULL) return no_memory(b);
  size_t n = 0;
  for (size_t i = 0; i < in->n_entities; i++) {
    const Feast__Core__EntitySpecV2 *e = in->entities[i]->spec;
    if (e == NULL || !ours(b, e->project) || !strcmp(e->name, LDR_DUMMY_ENTITY)) continue;
    es[n].name = e->name;
    es[n].join_key = e->join_key[0] ? e->join_key : e->name;
    es[n].type = (int)e->value_type;
    keys[n] = es[n].join_key;
    n++;
  }
  qsort(es, n, sizeof *es, by_entity_name);
  qsort(keys, n, sizeof *keys, by_string);
  r->entities = es;
  r->n_entities = n;
  r->join_keys = keys;
  r->n_join_keys = n;
  return LDR_OK;
}

static enum ldr_rc add_services(struct builder *b, struct ldr_registry *r) {
  const struct ldr_registry_input *in = b->in;
  struct ldr_feature_service *fs = ldr_arena_calloc(b->a, in->n_services + 1, sizeof *fs);
  if (fs == NULL) return no_memory(b);
  size_t ns = 0;
  enum ldr_rc rc = LDR_OK;
  for (size_t i = 0; rc == LDR_OK && i < in->n_services; i++) {
    const Feast__Core__FeatureServiceSpec *s = in->services[i]->spec;
    if (s == NULL || !ours(b, s->project)) continue;
    struct ldr_projection *ps = ldr_arena_calloc(b->a, s->n_features + 1, sizeof *ps);
    if (ps == NULL) return no_memory(b);
    for (size_t j = 0; rc == LDR_OK && j < s->n_features; j++)
      rc = add_projection(b, r, s->features[j], &ps[j]);
    fs[ns].name = s->name;
    fs[ns].projections = ps;
    fs[ns].n_projections = s->n_features;
    ns++;
  }
  qsort(fs, ns, sizeof *fs, by_service_name);
  r->services = fs;
  r->n_services = ns;
  return rc;
}

struct ldr_registry_mem *ldr_registry_mem_new(void) {
  struct ldr_registry_mem *mem = calloc(1, sizeof *mem);
  if (mem != NULL) ldr_arena_init(&mem->arena, 64 * 1024, 0);
  return mem;
}

struct ldr_arena *ldr_registry_mem_arena(struct ldr_registry_mem *mem) {
  return &mem->arena;
}

void ldr_registry_mem_free(struct ldr_registry_mem *mem) {
  if (mem == NULL) return;
  ldr_arena_destroy(&mem->arena);
  free(mem);
}

enum ldr_rc ldr_registry_build(const struct ldr_registry_input *in, const char *project,
                               struct ldr_registry_mem *mem, struct ldr_registry **out,
                               struct ldr_err *err) {
  *out = NULL;
  struct ldr_registry *r = calloc(1, sizeof *r);
  if (r == NULL) {
    ldr_registry_mem_free(mem);
    return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  }
  r->mem = mem;
  struct builder b = {&mem->arena, NULL, in, err};
  enum ldr_rc rc = LDR_OK;
  r->project = b.project = ldr_arena_memdup(&mem->arena, project, strlen(project));
  r->version_id = in->version_id ? in->version_id : "";
  if (r->project == NULL) rc = no_memory(&b);
  if (rc == LDR_OK) rc = add_entities(&b, r);
  if (rc == LDR_OK) rc = add_views(&b, r);
  if (rc == LDR_OK) rc = add_versions(&b, r);
  if (rc == LDR_OK) rc = add_services(&b, r);
  if (rc != LDR_OK) {
    ldr_registry_free(r);
    return rc;
  }
  *out = r;
  return LDR_OK;
}

enum ldr_rc ldr_registry_parse(const uint8_t *bytes, size_t len, const char *project,
                               struct ldr_registry **out, struct ldr_err *err) {
  *out = NULL;
  struct ldr_registry_mem *mem = ldr_registry_mem_new();
  if (mem == NULL) return ldr_err_set(err, LDR_NOMEM, "registry: out of memory");
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, &mem->arena};
  if (len == 0) {
    /* A valid empty message, but what a half-written file looks like: refused. */
    ldr_registry_mem_free(mem);
    return ldr_err_set(err, LDR_INVALID, "not a Feast registry (the file is empty)");
  }
  Feast__Core__Registry *pb = feast__core__registry__unpack(&al, len, bytes);
  if (pb == NULL) {
    enum ldr_rc rc = mem->arena.exhausted
                         ? ldr_err_set(err, LDR_NOMEM, "registry: out of memory")
                         : ldr_err_set(err, LDR_INVALID,
                                       "not a Feast registry (the bytes do not decode as "
                                       "feast.core.Registry)");
    ldr_registry_mem_free(mem);
    return rc;
  }
  const Feast__Core__FeatureViewVersionHistory *h = pb->feature_view_version_history;
  struct ldr_registry_input in = {
      .entities = pb->entities,
      .n_entities = pb->n_entities,
      .feature_views = pb->feature_views,
      .n_feature_views = pb->n_feature_views,
      .stream_views = pb->stream_feature_views,
      .n_stream_views = pb->n_stream_feature_views,
      .on_demand_views = pb->on_demand_feature_views,
      .n_on_demand_views = pb->n_on_demand_feature_views,
      .label_views = pb->label_views,
      .n_label_views = pb->n_label_views,
      .services = pb->feature_services,
      .n_services = pb->n_feature_services,
      .versions = h ? h->records : NULL,
      .n_versions = h ? h->n_records : 0,
      .version_id = pb->version_id,
  };
  return ldr_registry_build(&in, project, mem, out, err);
}

void ldr_registry_free(struct ldr_registry *r) {
  if (r == NULL) return;
  ldr_registry_mem_free(r->mem);
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

const struct ldr_view *ldr_registry_view_version(const struct ldr_registry *r, const char *name,
                                                 int version) {
  struct ldr_view_version key = {.name = name, .version = version};
  const struct ldr_view_version *hit =
      bsearch(&key, r->versions, r->n_versions, sizeof key, by_version);
  return hit ? &hit->view : NULL;
}

const struct ldr_feature_service *ldr_registry_service(const struct ldr_registry *r,
                                                       const char *name) {
  struct ldr_feature_service key = {name, 0, NULL};
  return bsearch(&key, r->services, r->n_services, sizeof key, by_service_name);
}

const struct ldr_entity *ldr_registry_entity(const struct ldr_registry *r, const char *name) {
  struct ldr_entity key = {name, NULL, 0};
  return bsearch(&key, r->entities, r->n_entities, sizeof key, by_entity_name);
}

int ldr_registry_is_join_key(const struct ldr_registry *r, const char *name) {
  return bsearch(&name, r->join_keys, r->n_join_keys, sizeof name, by_string) != NULL;
}

const struct ldr_feature *ldr_view_feature(const struct ldr_view *v, const char *name) {
  struct ldr_feature key = {name, 0};
  const struct ldr_feature *kp = &key;
  const struct ldr_feature **hit =
      bsearch(&kp, v->by_name, v->n_features, sizeof *v->by_name, by_feature_name);
  return hit ? *hit : NULL;
}

const char *ldr_view_state_name(int state) {
  static const char *const names[] = {"STATE_UNSPECIFIED", "CREATED", "GENERATED", "MATERIALIZING",
                                      "AVAILABLE_ONLINE"};
  return state >= 0 && state < 5 ? names[state] : "STATE_UNSPECIFIED";
}
