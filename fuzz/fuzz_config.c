/*
 * libFuzzer target for the feature_store.yaml loader: Feast's variable
 * substitution, libyaml, and every key's checks. Loading must succeed or fail
 * with "file:line:column: message"; either way everything is freed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "config/config.h"

static const char *lookup(const char *name) {
  static const char *const env[][2] = {{"A", "alpha"}, {"HOME", "/home/x"}, {"PW", "p$w:d"}};
  for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
    if (!strcmp(name, env[i][0])) return env[i][1];
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ldr_config cfg;
  struct ldr_config_error err;
  /* A folder that does not exist: loading must never touch the file system. */
  if (ldr_config_load_text("fuzz.yaml", "/nonexistent/larder-fuzz", (const char *)data, size,
                           lookup, ldr_backend_schemas(), &cfg, &err) != 0) {
    if (strncmp(err.msg, "fuzz.yaml:", 10) != 0) {
      fprintf(stderr, "error without its position: %s\n", err.msg);
      abort();
    }
  }
  ldr_config_destroy(&cfg);
  return 0;
}
