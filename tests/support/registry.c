#include "tests/support/registry.h"

#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "feast/core/Registry.pb-c.h"
#include "tests/support/store.h"

/* orphan's and odfv_orphan's tables exist too: the tests see that nothing lands there. */
const char *const ldr_test_push_views[] = {"driver_stats",
                                           "driver_live",
                                           "driver_labels",
                                           "customer_stats",
                                           "global_stats",
                                           "plain",
                                           "disabled_view",
                                           "materializing",
                                           "versioned",
                                           "odfv_stored",
                                           "orphan",
                                           "odfv_orphan",
                                           NULL};

static struct ldr_arena *A;

static void *alloc(size_t n) {
  void *p = ldr_arena_calloc(A, 1, n);
  if (p == NULL) abort();
  return p;
}

static Feast__Core__FeatureSpecV2 **specs(size_t n, const char *const *names, const int *types) {
  Feast__Core__FeatureSpecV2 **out = alloc((n + 1) * sizeof *out);
  for (size_t i = 0; i < n; i++) {
    out[i] = alloc(sizeof *out[i]);
    feast__core__feature_spec_v2__init(out[i]);
    out[i]->name = (char *)names[i];
    out[i]->value_type = (Feast__Types__ValueType__Enum)types[i];
  }
  return out;
}

static Feast__Core__Entity *entity(const char *name, const char *join_key, int type) {
  Feast__Core__Entity *e = alloc(sizeof *e);
  Feast__Core__EntitySpecV2 *s = alloc(sizeof *s);
  feast__core__entity__init(e);
  feast__core__entity_spec_v2__init(s);
  s->name = (char *)name;
  s->join_key = (char *)join_key;
  s->project = LDR_TEST_PROJECT;
  s->value_type = (Feast__Types__ValueType__Enum)type;
  e->spec = s;
  return e;
}

/* A data source; `mapping` holds n_mapping pairs (source column, feature name). */
static Feast__Core__DataSource *source(const char *name, int push, const char *ts,
                                       const char *created, size_t n_mapping,
                                       const char *const *mapping, Feast__Core__DataSource *batch) {
  Feast__Core__DataSource *d = alloc(sizeof *d);
  feast__core__data_source__init(d);
  d->name = (char *)name;
  d->project = LDR_TEST_PROJECT;
  d->type = push ? FEAST__CORE__DATA_SOURCE__SOURCE_TYPE__PUSH_SOURCE
                 : FEAST__CORE__DATA_SOURCE__SOURCE_TYPE__INVALID;
  d->timestamp_field = (char *)ts;
  d->created_timestamp_column = (char *)created;
  d->batch_source = batch;
  d->n_field_mapping = n_mapping;
  d->field_mapping = alloc((n_mapping + 1) * sizeof *d->field_mapping);
  for (size_t i = 0; i < n_mapping; i++) {
    d->field_mapping[i] = alloc(sizeof *d->field_mapping[i]);
    feast__core__data_source__field_mapping_entry__init(d->field_mapping[i]);
    d->field_mapping[i]->key = (char *)mapping[2 * i];
    d->field_mapping[i]->value = (char *)mapping[2 * i + 1];
  }
  return d;
}

static Feast__Core__FeatureView *fview(const char *name, const char *entity_name, size_t nf,
                                       const char *const *features, const int *types,
                                       Feast__Core__DataSource *batch,
                                       Feast__Core__DataSource *stream) {
  Feast__Core__FeatureView *v = alloc(sizeof *v);
  Feast__Core__FeatureViewSpec *s = alloc(sizeof *s);
  Feast__Core__FeatureViewMeta *m = alloc(sizeof *m);
  feast__core__feature_view__init(v);
  feast__core__feature_view_spec__init(s);
  feast__core__feature_view_meta__init(m);
  s->name = (char *)name;
  s->project = LDR_TEST_PROJECT;
  s->n_entities = 1;
  s->entities = alloc(sizeof *s->entities);
  s->entities[0] = (char *)entity_name;
  s->n_features = nf;
  s->features = specs(nf, features, types);
  s->batch_source = batch;
  s->stream_source = stream;
  s->online = 1;
  v->spec = s;
  v->meta = m;
  return v;
}

uint8_t *ldr_test_push_registry(size_t *len) {
  struct ldr_arena arena;
  ldr_arena_init(&arena, 16384, 0);
  A = &arena;
  Feast__Core__Registry r = FEAST__CORE__REGISTRY__INIT;

  Feast__Core__Entity *ents[] = {entity("driver", "driver_id", 4),
                                 entity("customer", "customer_id", 2),
                                 entity("__dummy", "__dummy_id", 2)};
  r.n_entities = 3;
  r.entities = ents;

  Feast__Core__DataSource *driver_file =
      source("driver_file", 0, "event_timestamp", "created", 0, NULL, NULL);
  Feast__Core__DataSource *driver_push =
      source("driver_push", 1, "event_timestamp", "created", 0, NULL, driver_file);
  static const char *const renames[] = {"cust", "customer_id", "src_rate", "rate"};
  Feast__Core__DataSource *customer_file =
      source("customer_file", 0, "ts", "created_at", 2, renames, NULL);
  Feast__Core__DataSource *customer_push =
      source("customer_push", 1, "ts", "created_at", 0, NULL, customer_file);
  Feast__Core__DataSource *ghost_push =
      source("ghost_push", 1, "event_timestamp", "created", 0, NULL, driver_file);
  Feast__Core__DataSource *global_push =
      source("global_push", 1, "", "", 0, NULL, source("global_file", 0, "", "", 0, NULL, NULL));

  static const char *const driver_f[] = {"conv_rate", "trips"};
  static const int driver_t[] = {5, 4};
  static const char *const customer_f[] = {"rate", "label"};
  static const int customer_t[] = {6, 2};
  static const char *const total[] = {"total"}, *const x[] = {"x"}, *const d[] = {"d"},
                           *const m[] = {"m"}, *const v[] = {"v"};
  static const int int64[] = {4};
  enum { NV = 8 };
  Feast__Core__FeatureView **views = alloc(NV * sizeof *views);
  views[0] = fview("driver_stats", "driver", 2, driver_f, driver_t, driver_file, driver_push);
  views[0]->spec->ttl = alloc(sizeof *views[0]->spec->ttl);
  google__protobuf__duration__init(views[0]->spec->ttl);
  views[0]->spec->ttl->seconds = 86400;
  static const char *const driver_id[] = {"driver_id"};
  views[0]->spec->n_entity_columns = 1;
  views[0]->spec->entity_columns = specs(1, driver_id, int64);
  views[1] =
      fview("customer_stats", "customer", 2, customer_f, customer_t, customer_file, customer_push);
  views[2] = fview("global_stats", "__dummy", 1, total, int64, NULL, global_push);
  views[3] = fview("plain", "driver", 1, x, int64, driver_file, NULL);
  views[3]->spec->ttl = alloc(sizeof *views[3]->spec->ttl); /* under a second: never expires */
  google__protobuf__duration__init(views[3]->spec->ttl);
  views[3]->spec->ttl->nanos = 500000000;
  views[4] = fview("disabled_view", "driver", 1, d, int64, driver_file, NULL);
  views[4]->spec->disabled = 1;
  views[5] = fview("materializing", "driver", 1, m, int64, driver_file, NULL);
  views[5]->meta->state = FEAST__CORE__FEATURE_VIEW_STATE__MATERIALIZING;
  views[6] = fview("versioned", "driver", 1, v, int64, driver_file, NULL);
  views[6]->meta->current_version_number = 2;
  views[7] = fview("orphan", "ghost", 1, x, int64, driver_file, ghost_push);
  r.n_feature_views = NV;
  r.feature_views = views;

  /* driver_live: a stream feature view fed by driver_push, no batch source of its own. */
  Feast__Core__StreamFeatureView *sfv = alloc(sizeof *sfv);
  Feast__Core__StreamFeatureViewSpec *ss = alloc(sizeof *ss);
  feast__core__stream_feature_view__init(sfv);
  feast__core__stream_feature_view_spec__init(ss);
  static const char *const speed[] = {"speed"};
  static const int dbl[] = {5};
  ss->name = "driver_live";
  ss->project = LDR_TEST_PROJECT;
  ss->n_entities = 1;
  ss->entities = alloc(sizeof *ss->entities);
  ss->entities[0] = "driver";
  ss->n_features = 1;
  ss->features = specs(1, speed, dbl);
  ss->stream_source = driver_push;
  ss->online = 1;
  sfv->spec = ss;
  r.n_stream_feature_views = 1;
  r.stream_feature_views = alloc(sizeof *r.stream_feature_views);
  r.stream_feature_views[0] = sfv;

  /* driver_labels: a label view whose source is driver_push. */
  Feast__Core__LabelView *lv = alloc(sizeof *lv);
  Feast__Core__LabelViewSpec *ls = alloc(sizeof *ls);
  feast__core__label_view__init(lv);
  feast__core__label_view_spec__init(ls);
  static const char *const label_ok[] = {"label_ok"};
  static const int boolean[] = {7};
  ls->name = "driver_labels";
  ls->project = LDR_TEST_PROJECT;
  ls->n_entities = 1;
  ls->entities = alloc(sizeof *ls->entities);
  ls->entities[0] = "driver";
  ls->n_features = 1;
  ls->features = specs(1, label_ok, boolean);
  ls->source = driver_push;
  ls->online = 1;
  lv->spec = ls;
  r.n_label_views = 1;
  r.label_views = alloc(sizeof *r.label_views);
  r.label_views[0] = lv;

  /* On-demand views: stored (write_to_online_store), computed, and stored
   * with an entity the registry lacks. */
  static const char *const odfv_f[] = {"ratio", "note"}, *const out_f[] = {"out"};
  static const int odfv_t[] = {5, 2};
  static const char *const odfv_names[] = {"odfv_stored", "odfv_computed", "odfv_orphan"};
  r.n_on_demand_feature_views = 3;
  r.on_demand_feature_views = alloc(3 * sizeof *r.on_demand_feature_views);
  for (int i = 0; i < 3; i++) {
    Feast__Core__OnDemandFeatureView *o = alloc(sizeof *o);
    Feast__Core__OnDemandFeatureViewSpec *os = alloc(sizeof *os);
    feast__core__on_demand_feature_view__init(o);
    feast__core__on_demand_feature_view_spec__init(os);
    os->name = (char *)odfv_names[i];
    os->project = LDR_TEST_PROJECT;
    os->write_to_online_store = i != 1;
    os->n_features = i == 1 ? 1 : 2;
    os->features = i == 1 ? specs(1, out_f, dbl) : specs(2, odfv_f, odfv_t);
    os->n_entities = 1;
    os->entities = alloc(sizeof *os->entities);
    os->entities[0] = i == 2 ? "ghost" : "driver";
    os->n_entity_columns = 1;
    os->entity_columns = specs(1, driver_id, int64);
    o->spec = os;
    r.on_demand_feature_views[i] = o;
  }

  /* svc: driver_stats' conv_rate as "ds", its driver_id from column other_id; global_stats. */
  Feast__Core__FeatureService *fs = alloc(sizeof *fs);
  Feast__Core__FeatureServiceSpec *fss = alloc(sizeof *fss);
  feast__core__feature_service__init(fs);
  feast__core__feature_service_spec__init(fss);
  Feast__Core__FeatureViewProjection **ps = alloc(2 * sizeof *ps);
  for (int i = 0; i < 2; i++) {
    ps[i] = alloc(sizeof *ps[i]);
    feast__core__feature_view_projection__init(ps[i]);
  }
  static const char *const conv[] = {"conv_rate"};
  ps[0]->feature_view_name = "driver_stats";
  ps[0]->feature_view_name_alias = "ds";
  ps[0]->n_feature_columns = 1;
  ps[0]->feature_columns = specs(1, conv, dbl);
  ps[0]->n_join_key_map = 1;
  ps[0]->join_key_map = alloc(sizeof *ps[0]->join_key_map);
  ps[0]->join_key_map[0] = alloc(sizeof *ps[0]->join_key_map[0]);
  feast__core__feature_view_projection__join_key_map_entry__init(ps[0]->join_key_map[0]);
  ps[0]->join_key_map[0]->key = "driver_id";
  ps[0]->join_key_map[0]->value = "other_id";
  ps[1]->feature_view_name = "global_stats";
  fss->name = "svc";
  fss->project = LDR_TEST_PROJECT;
  fss->n_features = 2;
  fss->features = ps;
  fs->spec = fss;
  r.n_feature_services = 1;
  r.feature_services = &fs;

  *len = feast__core__registry__get_packed_size(&r);
  uint8_t *out = malloc(*len + 1);
  if (out == NULL) abort();
  feast__core__registry__pack(&r, out);
  ldr_arena_destroy(&arena);
  A = NULL;
  return out;
}
