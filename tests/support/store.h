/* A real SQLite store in a temporary folder, with Feast's registry_example
 * (tests/data/vectors.json) as its registry, for the tests that run
 * handlers as the server runs them (as fuzz/fuzz_request.c does). */
#ifndef LDR_TEST_STORE_H
#define LDR_TEST_STORE_H

#include "backends/backend.h"
#include "config/config.h"
#include "registry/registry.h"

/* registry_example's project, view and features. */
#define LDR_TEST_PROJECT "my_project"
#define LDR_TEST_VIEW "driver_hourly_stats"

struct ldr_test_store {
  char dir[64];
  struct ldr_config cfg;
  struct ldr_backend *backend;
  struct ldr_registry_source *registry; /* NULL unless asked for */
};

/*
 * Writes feature_store.yaml (project my_project, an SQLite store, and
 * `larder_yaml`, lines of the larder: section such as "  read_only: true\n",
 * or NULL) and, when `with_registry`, registry.pb; loads the config, opens
 * the backend and creates the tables of `tables` (NULL-terminated view
 * names, or NULL). Fails the test (exit 1) when any of it does not work.
 */
void ldr_test_store_open(struct ldr_test_store *s, const char *larder_yaml, int with_registry,
                         const char *const *views);

/* As ldr_test_store_open with a registry, `registry` (len bytes of a
 * serialized feast.core.Registry of LDR_TEST_PROJECT) instead of
 * registry_example. */
void ldr_test_store_open_registry(struct ldr_test_store *s, const char *larder_yaml,
                                  const uint8_t *registry, size_t len, const char *const *views);

/* Frees everything and removes the folder. */
void ldr_test_store_close(struct ldr_test_store *s);

#endif
