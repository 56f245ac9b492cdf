/*
 * The registry: Feast's own registry_example (vectors.json) decoded; every
 * kind of view and feature service of a registry built here; and the live
 * source — loads, reloads, a bad file that keeps the old registry, and
 * readers on threads holding registries while the file is replaced.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "feast/core/Registry.pb-c.h"
#include "registry/registry.h"
#include "tests/support/support.h"

static struct ldr_arena arena;

static struct ldr_registry *parse(const uint8_t *b, size_t n, const char *project) {
  struct ldr_registry *r = NULL;
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_registry_parse(b, n, project, &r, &err) != LDR_OK) fail_msg("parse: %s", err.msg);
  return r;
}

/* Feast's registry_example: one entity, one feature view, written by Feast. */
static void golden_registry_example(void **state) {
  (void)state;
  json_object *root = ldr_test_json_file(ldr_test_data("vectors.json"));
  const char *hex =
      json_object_get_string(ldr_test_get(ldr_test_get(root, "registry_example"), "proto_hex"));
  size_t n;
  uint8_t *bytes = ldr_test_unhex(&arena, hex, &n);
  json_object_put(root);
  assert_non_null(bytes);
  struct ldr_registry *r = parse(bytes, n, "my_project");
  assert_string_equal(r->version_id, "00000000-0000-0000-0000-000000000000");
  assert_int_equal(r->n_views, 1);
  const struct ldr_view *v = ldr_registry_view(r, "driver_hourly_stats", 19);
  assert_non_null(v);
  assert_null(v->unservable);
  assert_int_equal(v->kind, LDR_VIEW_BATCH);
  assert_int_equal(v->n_join_keys, 1);
  assert_string_equal(v->join_keys[0].name, "driver_id");
  assert_int_equal(v->join_keys[0].type, 4); /* INT64 */
  assert_int_equal(v->n_features, 3);
  assert_string_equal(v->features[0].name, "conv_rate");
  assert_int_equal(v->features[0].type, 6); /* FLOAT */
  assert_int_equal(ldr_view_feature(v, "avg_daily_trips")->type, 4);
  assert_null(ldr_view_feature(v, "nope"));
  assert_true(v->ttl_ns == 86400LL * 1000000000);
  assert_null(ldr_registry_view(r, "driver_hourly_stat", 18));
  assert_null(ldr_registry_view(r, "driver_hourly_stats_", 20));
  ldr_registry_free(r);
  /* Another project sees none of it. */
  r = parse(bytes, n, "other");
  assert_int_equal(r->n_views, 0);
  ldr_registry_free(r);
}

static void not_a_registry(void **state) {
  (void)state;
  static const struct {
    const char *bytes;
    size_t len;
  } cases[] = {{"", 0}, {"\xff\xff\xff", 3}, {"\x0a\x05\x0a", 3}, {"\x32\x02\x0a\x7f", 4}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ldr_registry *r = NULL;
    struct ldr_err err;
    ldr_err_clear(&err);
    assert_int_equal(
        ldr_registry_parse((const uint8_t *)cases[i].bytes, cases[i].len, "p", &r, &err),
        LDR_INVALID);
    assert_null(r);
    assert_non_null(strstr(err.msg, "registry"));
  }
}

/* ---- a registry built here with the generated types ---------------------- */

static Feast__Core__FeatureSpecV2 *spec2(const char *name, int type) {
  Feast__Core__FeatureSpecV2 *f = ldr_arena_alloc(&arena, sizeof *f);
  feast__core__feature_spec_v2__init(f);
  f->name = (char *)name;
  f->value_type = (Feast__Types__ValueType__Enum)type;
  return f;
}

static Feast__Core__Entity *entity(const char *project, const char *name, const char *join_key,
                                   int type) {
  Feast__Core__Entity *e = ldr_arena_alloc(&arena, sizeof *e);
  Feast__Core__EntitySpecV2 *s = ldr_arena_alloc(&arena, sizeof *s);
  feast__core__entity__init(e);
  feast__core__entity_spec_v2__init(s);
  s->name = (char *)name;
  s->join_key = (char *)join_key;
  s->project = (char *)project;
  s->value_type = (Feast__Types__ValueType__Enum)type;
  e->spec = s;
  return e;
}

static Feast__Core__FeatureView *fview(const char *project, const char *name, size_t ne,
                                       const char **entities, size_t nf, const char **features,
                                       int64_t ttl_s) {
  Feast__Core__FeatureView *v = ldr_arena_alloc(&arena, sizeof *v);
  Feast__Core__FeatureViewSpec *s = ldr_arena_alloc(&arena, sizeof *s);
  feast__core__feature_view__init(v);
  feast__core__feature_view_spec__init(s);
  s->name = (char *)name;
  s->project = (char *)project;
  s->n_entities = ne;
  s->entities = (char **)entities;
  s->n_features = nf;
  s->features = ldr_arena_alloc(&arena, (nf + 1) * sizeof *s->features);
  for (size_t i = 0; i < nf; i++) s->features[i] = spec2(features[i], 4);
  if (ttl_s) {
    s->ttl = ldr_arena_alloc(&arena, sizeof *s->ttl);
    google__protobuf__duration__init(s->ttl);
    s->ttl->seconds = ttl_s;
  }
  v->spec = s;
  return v;
}

/* Packs a registry of project "p" (and a view of project "q") with `extra` more views. */
static uint8_t *built_registry(size_t extra, size_t *len) {
  static const char *driver[] = {"driver"}, *two[] = {"customer", "driver"};
  static const char *dummy[] = {"__dummy"}, *ghost[] = {"ghost"};
  static const char *feats[] = {"f1", "f2", "f0"};
  Feast__Core__Registry r = FEAST__CORE__REGISTRY__INIT;
  Feast__Core__Entity *ents[] = {entity("p", "driver", "driver_id", 4),
                                 entity("p", "customer", "", 2), entity("q", "driver", "x", 2)};
  r.n_entities = 3;
  r.entities = ents;
  size_t nv = 6 + extra;
  Feast__Core__FeatureView **views = ldr_arena_alloc(&arena, nv * sizeof *views);
  views[0] = fview("p", "stats", 1, driver, 3, feats, 3600);
  views[1] = fview("p", "pair", 2, two, 1, feats, 0);
  views[2] = fview("p", "global", 1, dummy, 1, feats, 0);
  views[3] = fview("p", "haunted", 1, ghost, 1, feats, 0);
  views[4] = fview("q", "only_q", 1, driver, 1, feats, 0);
  views[5] = fview("p", "stats", 1, two, 1, feats, 0); /* a second "stats": ignored */
  for (size_t i = 0; i < extra; i++) {
    char *name = ldr_arena_alloc(&arena, 32);
    snprintf(name, 32, "extra_%zu", i);
    views[6 + i] = fview("p", name, 1, driver, 1, feats, 0);
  }
  r.n_feature_views = nv;
  r.feature_views = views;

  Feast__Core__OnDemandFeatureView odfv[2];
  Feast__Core__OnDemandFeatureViewSpec ospec[2];
  Feast__Core__OnDemandFeatureView *odfvs[2] = {&odfv[0], &odfv[1]};
  Feast__Core__FeatureSpecV2 *ratio[] = {spec2("ratio", 5)};
  for (int i = 0; i < 2; i++) {
    feast__core__on_demand_feature_view__init(&odfv[i]);
    feast__core__on_demand_feature_view_spec__init(&ospec[i]);
    ospec[i].name = i ? "stored_odfv" : "computed_odfv";
    ospec[i].project = "p";
    ospec[i].n_features = 1;
    ospec[i].features = ratio;
    ospec[i].write_to_online_store = i;
    ospec[i].n_entities = i;
    ospec[i].entities = (char **)driver;
    odfv[i].spec = &ospec[i];
  }
  r.n_on_demand_feature_views = 2;
  r.on_demand_feature_views = odfvs;

  Feast__Core__StreamFeatureView sfv = FEAST__CORE__STREAM_FEATURE_VIEW__INIT;
  Feast__Core__StreamFeatureViewSpec sspec = FEAST__CORE__STREAM_FEATURE_VIEW_SPEC__INIT;
  Feast__Core__StreamFeatureView *sfvs[] = {&sfv};
  Feast__Core__FeatureSpecV2 *clicks[] = {spec2("clicks", 4)};
  Feast__Core__FeatureSpecV2 *cols[] = {spec2("driver_id", 3)}; /* overrides the entity's type */
  sspec.name = "clicks_stream";
  sspec.project = "p";
  sspec.n_entities = 1;
  sspec.entities = (char **)driver;
  sspec.n_features = 1;
  sspec.features = clicks;
  sspec.n_entity_columns = 1;
  sspec.entity_columns = cols;
  sfv.spec = &sspec;
  r.n_stream_feature_views = 1;
  r.stream_feature_views = sfvs;

  Feast__Core__FeatureService fs = FEAST__CORE__FEATURE_SERVICE__INIT;
  Feast__Core__FeatureServiceSpec fspec = FEAST__CORE__FEATURE_SERVICE_SPEC__INIT;
  Feast__Core__FeatureViewProjection p0 = FEAST__CORE__FEATURE_VIEW_PROJECTION__INIT,
                                     p1 = FEAST__CORE__FEATURE_VIEW_PROJECTION__INIT,
                                     p2 = FEAST__CORE__FEATURE_VIEW_PROJECTION__INIT;
  Feast__Core__FeatureViewProjection *ps[] = {&p0, &p1, &p2};
  Feast__Core__FeatureViewProjection__JoinKeyMapEntry km =
      FEAST__CORE__FEATURE_VIEW_PROJECTION__JOIN_KEY_MAP_ENTRY__INIT;
  Feast__Core__FeatureViewProjection__JoinKeyMapEntry *kms[] = {&km};
  Feast__Core__FeatureSpecV2 *f2[] = {spec2("f2", 0)};
  Feast__Core__FeatureService *fss[] = {&fs};
  p0.feature_view_name = "stats";
  p0.n_feature_columns = 1;
  p0.feature_columns = f2;
  p0.feature_view_name_alias = "renamed";
  km.key = "driver_id";
  km.value = "other_driver";
  p0.n_join_key_map = 1;
  p0.join_key_map = kms;
  p1.feature_view_name = "global"; /* no feature columns: all of them */
  p2.feature_view_name = "missing";
  fspec.name = "svc";
  fspec.project = "p";
  fspec.n_features = 3;
  fspec.features = ps;
  fs.spec = &fspec;
  r.n_feature_services = 1;
  r.feature_services = fss;

  *len = feast__core__registry__get_packed_size(&r);
  uint8_t *out = ldr_arena_alloc(&arena, *len);
  feast__core__registry__pack(&r, out);
  return out;
}

static void every_kind_of_view(void **state) {
  (void)state;
  size_t n;
  uint8_t *bytes = built_registry(0, &n);
  struct ldr_registry *r = parse(bytes, n, "p");
  /* stats, pair, global, haunted, computed_odfv, stored_odfv, clicks_stream */
  assert_int_equal(r->n_views, 7);
  const struct ldr_view *v = ldr_registry_view(r, "stats", 5);
  assert_int_equal(v->n_join_keys, 1); /* the first "stats" in the file */
  assert_true(v->ttl_ns == 3600LL * 1000000000);
  assert_int_equal(v->n_features, 3);
  assert_non_null(ldr_view_feature(v, "f0"));

  v = ldr_registry_view(r, "pair", 4);
  assert_int_equal(v->n_join_keys, 2);
  assert_string_equal(v->join_keys[0].name, "customer"); /* no join_key given: the name */
  assert_int_equal(v->join_keys[0].type, 2);
  assert_string_equal(v->join_keys[1].name, "driver_id");
  assert_true(v->ttl_ns == 0);

  v = ldr_registry_view(r, "global", 6);
  assert_true(v->entityless);
  assert_string_equal(v->join_keys[0].name, LDR_DUMMY_JOIN_KEY);

  v = ldr_registry_view(r, "haunted", 7);
  assert_non_null(v->unservable);
  assert_non_null(strstr(v->unservable, "ghost"));
  assert_false(v->unservable_computed);

  v = ldr_registry_view(r, "computed_odfv", 13);
  assert_true(v->unservable_computed);
  v = ldr_registry_view(r, "stored_odfv", 11);
  assert_null(v->unservable);
  assert_int_equal(v->kind, LDR_VIEW_ON_DEMAND);

  v = ldr_registry_view(r, "clicks_stream", 13);
  assert_int_equal(v->kind, LDR_VIEW_STREAM);
  assert_int_equal(v->join_keys[0].type, 3); /* entity_columns say INT32 */
  assert_null(ldr_registry_view(r, "only_q", 6));

  const struct ldr_feature_service *fs = ldr_registry_service(r, "svc");
  assert_non_null(fs);
  assert_null(ldr_registry_service(r, "sv"));
  assert_int_equal(fs->n_projections, 3);
  assert_ptr_equal(fs->projections[0].view, ldr_registry_view(r, "stats", 5));
  assert_string_equal(fs->projections[0].name, "renamed");
  assert_int_equal(fs->projections[0].n_features, 1);
  assert_string_equal(fs->projections[0].features[0], "f2");
  assert_int_equal(fs->projections[0].n_key_map, 1);
  assert_string_equal(fs->projections[0].key_to[0], "other_driver");
  assert_string_equal(fs->projections[1].name, "global");
  assert_int_equal(fs->projections[1].n_features, 1);
  assert_null(fs->projections[2].view);
  assert_string_equal(fs->projections[2].view_name, "missing");
  ldr_registry_free(r);
}

/* ---- the live source ------------------------------------------------------- */

static char dir[64];

static void put_file(const char *path, const void *b, size_t n) {
  char tmp[128];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  fclose(f);
  assert_int_equal(rename(tmp, path), 0);
}

static int failing(struct ldr_registry_source *s) {
  struct ldr_registry_stats st;
  ldr_registry_source_stats(s, &st);
  return st.failing;
}

static unsigned long failures(struct ldr_registry_source *s) {
  struct ldr_registry_stats st;
  ldr_registry_source_stats(s, &st);
  return st.failures;
}

/* A source of project "p" checked every `check_s` (0: read once), over the
 * file `name` in `dir` that is not there yet: nothing to acquire. The file's
 * path goes to `path`. */
static struct ldr_registry_source *source_of_missing(const char *name, int check_s,
                                                     char path[128]) {
  snprintf(path, 128, "%s/%s", dir, name);
  struct ldr_registry_source *s = NULL;
  struct ldr_registry_location loc = {path, 0, NULL};
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_registry_source_new(&loc, check_s, "p", 1, &s, &err), LDR_OK);
  assert_null(ldr_registry_acquire(s, 0, &err));
  assert_int_equal(err.rc, LDR_FAILED_PRECONDITION);
  return s;
}

static void loads_reloads_and_keeps_the_last_good_one(void **state) {
  (void)state;
  char path[128];
  struct ldr_registry_source *s = source_of_missing("missing.db", 0, path);
  struct ldr_err err = {0};
  assert_int_equal(failing(s), 1); /* no file: a failed check */
  assert_int_equal(failures(s), 1);
  assert_int_equal(ldr_registry_source_check(s), 0);
  assert_int_equal(failures(s), 1); /* the same failure again is not counted again */

  size_t n;
  uint8_t *bytes = built_registry(0, &n);
  put_file(path, bytes, n);
  assert_int_equal(ldr_registry_source_check(s), 1);
  assert_int_equal(ldr_registry_source_check(s), 0); /* unchanged */
  ldr_err_clear(&err);
  const struct ldr_registry *r = ldr_registry_acquire(s, 0, &err);
  assert_non_null(r);
  assert_int_equal(r->n_views, 7);
  ldr_registry_release(s, 0);

  assert_int_equal(failing(s), 0);
  put_file(path, "\xff\xff", 2);
  assert_int_equal(ldr_registry_source_check(s), 0);
  r = ldr_registry_acquire(s, 0, &err);
  assert_int_equal(r->n_views, 7); /* the last good registry */
  ldr_registry_release(s, 0);
  assert_int_equal(failing(s), 1);
  assert_int_equal(failures(s), 2);
  /* The file refused, unchanged, keeps the source failing, counted once. */
  assert_int_equal(ldr_registry_source_check(s), 0);
  assert_int_equal(failing(s), 1);
  assert_int_equal(failures(s), 2);
  /* A file that is gone is a new failure. */
  unlink(path);
  assert_int_equal(ldr_registry_source_check(s), 0);
  assert_int_equal(failing(s), 1);
  assert_int_equal(failures(s), 3);

  bytes = built_registry(2, &n);
  put_file(path, bytes, n);
  assert_int_equal(ldr_registry_source_check(s), 1);
  r = ldr_registry_acquire(s, 0, &err);
  assert_int_equal(r->n_views, 9);
  ldr_registry_release(s, 0);
  assert_int_equal(failing(s), 0);
  assert_int_equal(ldr_registry_source_loads(s), 2);
  ldr_registry_source_free(s);
  unlink(path);
}

/* Starts `s`'s checking thread, writes the registry at `path` and sees it
 * served within 3 s. */
static void waits_for_the_file(struct ldr_registry_source *s, const char *path) {
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_registry_source_start(s), 0);
  size_t n;
  uint8_t *bytes = built_registry(0, &n);
  put_file(path, bytes, n);
  const struct ldr_registry *r = NULL;
  for (int i = 0; i < 300 && r == NULL; i++) { /* within 3 s: a retry a second */
    usleep(10000);
    r = ldr_registry_acquire(s, 0, &err);
  }
  assert_non_null(r);
  assert_int_equal(r->n_views, 7);
  ldr_registry_release(s, 0);
  ldr_registry_source_free(s);
  unlink(path);
}

/* A file missing at start is waited for, a retry a second, whatever the
 * interval: with cache_ttl_seconds 0 (read once) and with Feast's 600. */
static void a_missing_file_is_waited_for(void **state) {
  (void)state;
  for (int check_s = 0; check_s <= 600; check_s += 600) {
    char path[128];
    struct ldr_registry_source *s = source_of_missing("later.db", check_s, path);
    waits_for_the_file(s, path);
  }
}

struct reader {
  struct ldr_registry_source *s;
  size_t slot;
  atomic_int *stop;
  unsigned long reads;
  int bad;
};

static void *read_loop(void *arg) {
  struct reader *rd = arg;
  while (!atomic_load(rd->stop)) {
    struct ldr_err err;
    ldr_err_clear(&err);
    const struct ldr_registry *r = ldr_registry_acquire(rd->s, rd->slot, &err);
    /* Touch everything the registry owns while holding it: a registry freed
     * too early is a use after free that AddressSanitizer reports. */
    size_t sum = 0;
    for (size_t i = 0; i < r->n_views; i++)
      sum += strlen(r->views[i].name) + r->views[i].n_features;
    if (sum == 0 || ldr_registry_view(r, "stats", 5) == NULL) rd->bad = 1;
    ldr_registry_release(rd->s, rd->slot);
    rd->reads++;
  }
  return NULL;
}

static void readers_during_reloads(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/live.db", dir);
  size_t n;
  uint8_t *bytes = built_registry(0, &n);
  put_file(path, bytes, n);
  struct ldr_registry_source *s = NULL;
  struct ldr_registry_location loc = {path, 0, NULL};
  struct ldr_err err;
  ldr_err_clear(&err);
  assert_int_equal(ldr_registry_source_new(&loc, 0, "p", 4, &s, &err), LDR_OK);
  atomic_int stop = 0;
  struct reader rd[4];
  pthread_t t[4];
  for (size_t i = 0; i < 4; i++) {
    rd[i] = (struct reader){s, i, &stop, 0, 0};
    assert_int_equal(pthread_create(&t[i], NULL, read_loop, &rd[i]), 0);
  }
  int reloads = 0;
  for (size_t k = 1; k <= 40; k++) {
    bytes = built_registry(k, &n); /* a different size each time */
    put_file(path, bytes, n);
    reloads += ldr_registry_source_check(s);
  }
  stop = 1;
  unsigned long reads = 0;
  for (size_t i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    assert_false(rd[i].bad);
    reads += rd[i].reads;
  }
  assert_int_equal(reloads, 40);
  assert_true(reads > 0);
  const struct ldr_registry *r = ldr_registry_acquire(s, 0, &err);
  assert_int_equal(r->n_views, 7 + 40);
  ldr_registry_release(s, 0);
  ldr_registry_source_free(s);
  unlink(path);
}

static int reset(void **state) {
  (void)state;
  ldr_arena_reset(&arena);
  return 0;
}

/* TTLs as a registry may hold them, beyond what a Duration allows: no overflow,
 * and nanos outside [0, 1e9) held to that range. */
static void durations_out_of_range(void **state) {
  (void)state;
  static const char *driver[] = {"driver"}, *feats[] = {"f"};
  static const struct {
    int64_t seconds;
    int32_t nanos;
    int64_t ttl_ns;
  } cases[] = {
      {INT64_MAX, 2000000000, (INT64_MAX / 1000000000 - 1) * 1000000000 + 999999999},
      {INT64_MAX, -1, (INT64_MAX / 1000000000 - 1) * 1000000000},
      {1, 2000000000, 1999999999},
      {0, 2000000000, 999999999},
      {-1, 500, 0},
      {0, -7, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    Feast__Core__Registry r = FEAST__CORE__REGISTRY__INIT;
    Feast__Core__Entity *ents[] = {entity("p", "driver", "driver_id", 4)};
    Feast__Core__FeatureView *views[] = {fview("p", "v", 1, driver, 1, feats, 1)};
    views[0]->spec->ttl->seconds = cases[i].seconds;
    views[0]->spec->ttl->nanos = cases[i].nanos;
    r.n_entities = 1;
    r.entities = ents;
    r.n_feature_views = 1;
    r.feature_views = views;
    size_t n = feast__core__registry__get_packed_size(&r);
    uint8_t *bytes = ldr_arena_alloc(&arena, n);
    feast__core__registry__pack(&r, bytes);
    struct ldr_registry *reg = parse(bytes, n, "p");
    const struct ldr_view *v = ldr_registry_view(reg, "v", 1);
    assert_non_null(v);
    if (v->ttl_ns != cases[i].ttl_ns)
      fail_msg("case %zu: ttl_ns %lld, want %lld", i, (long long)v->ttl_ns,
               (long long)cases[i].ttl_ns);
    ldr_registry_free(reg);
  }
}

int main(void) {
  ldr_arena_init(&arena, 65536, 0);
  snprintf(dir, sizeof dir, "/tmp/larder-registry-XXXXXX");
  if (mkdtemp(dir) == NULL) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(golden_registry_example, reset),
      cmocka_unit_test_teardown(not_a_registry, reset),
      cmocka_unit_test_teardown(every_kind_of_view, reset),
      cmocka_unit_test_teardown(durations_out_of_range, reset),
      cmocka_unit_test_teardown(loads_reloads_and_keeps_the_last_good_one, reset),
      cmocka_unit_test_teardown(a_missing_file_is_waited_for, reset),
      cmocka_unit_test_teardown(readers_during_reloads, reset),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  rmdir(dir);
  ldr_arena_destroy(&arena);
  return failed;
}
