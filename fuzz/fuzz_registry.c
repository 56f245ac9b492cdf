/*
 * libFuzzer target for the registry decoder: bytes read as a feast.core.Registry
 * (a file registry, or the blobs of a SQL registry's rows, which decode with
 * the same messages) and built into larder's registry for two projects, then
 * every lookup the server makes checked against what was built. A registry
 * written by another Feast, a half-written file or a hostile row may be
 * refused; it may not crash, leak, overflow or build a registry whose lookups
 * miss what it holds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what) {
  if (ok) return;
  fprintf(stderr, "fuzz_registry: %s\n", what);
  abort();
}

static void check_view(const struct ldr_view *v) {
  check(v->name != NULL, "a view without a name");
  check(v->ttl_ns >= 0, "a negative TTL");
  check(v->state >= 0 && v->state <= LDR_STATE_AVAILABLE_ONLINE, "a state out of range");
  for (size_t i = 0; i < v->n_features; i++) {
    const struct ldr_feature *f = ldr_view_feature(v, v->features[i].name);
    check(f != NULL && !strcmp(f->name, v->features[i].name), "a feature its view cannot find");
    if (i > 0) check(strcmp(v->by_name[i - 1]->name, v->by_name[i]->name) <= 0, "by_name unsorted");
  }
  for (size_t i = 0; i < v->n_join_keys; i++) check(v->join_keys[i].name != NULL, "a nameless key");
  if (v->source != NULL)
    for (size_t i = 0; i < v->source->n_mapping; i++)
      check(v->source->mapping_from[i] != NULL && v->source->mapping_to[i] != NULL,
            "a field mapping without its names");
}

static void check_registry(const struct ldr_registry *r) {
  for (size_t i = 0; i < r->n_views; i++) {
    const struct ldr_view *v = &r->views[i];
    check_view(v);
    check(ldr_registry_view(r, v->name, strlen(v->name)) == v, "a view its registry cannot find");
    if (i > 0) check(strcmp(r->views[i - 1].name, v->name) < 0, "views unsorted or repeated");
  }
  for (size_t i = 0; i < r->n_versions; i++) {
    const struct ldr_view_version *vv = &r->versions[i];
    check_view(&vv->view);
    const struct ldr_view *found = ldr_registry_view_version(r, vv->name, vv->version);
    check(found != NULL && found->version == vv->version, "a version its registry cannot find");
  }
  for (size_t i = 0; i < r->n_services; i++) {
    const struct ldr_feature_service *s = &r->services[i];
    const struct ldr_feature_service *found = ldr_registry_service(r, s->name);
    check(found != NULL && !strcmp(found->name, s->name), "a service its registry cannot find");
    for (size_t j = 0; j < s->n_projections; j++) {
      const struct ldr_projection *p = &s->projections[j];
      check(p->name != NULL && p->view_name != NULL, "a projection without a name");
      for (size_t k = 0; k < p->n_features; k++)
        check(p->features[k] != NULL, "a nameless feature");
      for (size_t k = 0; k < p->n_key_map; k++)
        check(p->key_from[k] != NULL && p->key_to[k] != NULL, "a key map without its names");
    }
  }
  for (size_t i = 0; i < r->n_entities; i++) {
    const struct ldr_entity *e = ldr_registry_entity(r, r->entities[i].name);
    check(e != NULL && !strcmp(e->name, r->entities[i].name), "an entity its registry cannot find");
    check(ldr_registry_is_join_key(r, r->entities[i].join_key), "a join key not listed");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* "demo" is the project of the HTTP vectors' registry, "my_project" that of
   * Feast's registry_example: the seeds reach their objects under both. */
  static const char *const projects[] = {"demo", "my_project"};
  for (size_t i = 0; i < sizeof projects / sizeof *projects; i++) {
    struct ldr_registry *r = NULL;
    struct ldr_err err;
    ldr_err_clear(&err);
    enum ldr_rc rc = ldr_registry_parse(data, size, projects[i], &r, &err);
    if (rc != LDR_OK) {
      check(r == NULL, "a refused registry handed out");
      check(err.msg[0] != '\0', "a refusal without a message");
      continue;
    }
    check(r != NULL && !strcmp(r->project, projects[i]), "a registry of another project");
    check_registry(r);
    ldr_registry_free(r);
  }
  return 0;
}
