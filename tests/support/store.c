#include "tests/support/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/support.h"

static void die(const char *what, const char *msg) {
  fprintf(stderr, "test store: %s: %s\n", what, msg);
  exit(1);
}

static const char *no_env(const char *name) {
  (void)name;
  return NULL;
}

/* Opens the store, with `registry` (n bytes) as registry.pb when not NULL. */
static void store_open(struct ldr_test_store *s, const char *larder_yaml, const uint8_t *registry,
                       size_t n, const char *const *views) {
  int with_registry = registry != NULL;
  memset(s, 0, sizeof *s);
  snprintf(s->dir, sizeof s->dir, "/tmp/larder-store-XXXXXX");
  if (mkdtemp(s->dir) == NULL) die("mkdtemp", "failed");
  char path[128];
  if (with_registry) {
    snprintf(path, sizeof path, "%s/registry.pb", s->dir);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(registry, 1, n, f) != n) die(path, "cannot write");
    fclose(f);
  }
  char yaml[2048];
  snprintf(yaml, sizeof yaml,
           "project: " LDR_TEST_PROJECT "\n%s"
           "online_store:\n  type: sqlite\n  path: online.db\n"
           "larder:\n  log_level: error\n%s",
           with_registry ? "registry: registry.pb\n" : "", larder_yaml ? larder_yaml : "");
  struct ldr_config_error cerr;
  if (ldr_config_load_text("feature_store.yaml", s->dir, yaml, strlen(yaml), no_env,
                           ldr_backend_schemas(), &s->cfg, &cerr) != 0)
    die("config", cerr.msg);
  struct ldr_err err;
  ldr_err_clear(&err);
  if (ldr_backend_new(&s->cfg.store, &s->backend, &err) != LDR_OK) die("backend", err.msg);
  for (size_t i = 0; views != NULL && views[i] != NULL; i++) {
    char table[LDR_TABLE_NAME_MAX + 1];
    if (ldr_table_name(s->cfg.project, views[i], "view", table, &err) != LDR_OK)
      die("view", err.msg);
    const char *keep[] = {table};
    if (s->backend->ops->update(s->backend, keep, 1, NULL, 0, &err) != LDR_OK)
      die("update", err.msg);
  }
  struct ldr_registry_location loc = {s->cfg.registry_path, s->cfg.registry_sql, s->cfg.dir};
  if (with_registry &&
      ldr_registry_source_new(&loc, 0, s->cfg.project, 1, &s->registry, &err) != LDR_OK)
    die("registry", err.msg);
}

void ldr_test_store_open(struct ldr_test_store *s, const char *larder_yaml, int with_registry,
                         const char *const *views) {
  if (!with_registry) {
    store_open(s, larder_yaml, NULL, 0, views);
    return;
  }
  json_object *root = ldr_test_json_file(ldr_test_data("vectors.json"));
  const char *hex =
      json_object_get_string(ldr_test_get(ldr_test_get(root, "registry_example"), "proto_hex"));
  struct ldr_arena a;
  ldr_arena_init(&a, 4096, 0);
  size_t n = 0;
  uint8_t *bytes = ldr_test_unhex(&a, hex, &n);
  if (bytes == NULL) die("vectors.json", "registry_example is not hex");
  store_open(s, larder_yaml, bytes, n, views);
  ldr_arena_destroy(&a);
  json_object_put(root);
}

void ldr_test_store_open_registry(struct ldr_test_store *s, const char *larder_yaml,
                                  const uint8_t *registry, size_t len, const char *const *views) {
  store_open(s, larder_yaml, registry, len, views);
}

void ldr_test_store_close(struct ldr_test_store *s) {
  ldr_registry_source_free(s->registry);
  ldr_backend_free(s->backend);
  ldr_config_destroy(&s->cfg);
  static const char *const files[] = {"registry.pb", "online.db", "online.db-wal", "online.db-shm",
                                      "online.db-journal"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", s->dir, files[i]);
    unlink(path);
  }
  if (rmdir(s->dir) != 0) fprintf(stderr, "test store: %s is left behind\n", s->dir);
  memset(s, 0, sizeof *s);
}
