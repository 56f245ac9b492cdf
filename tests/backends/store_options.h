/* Loading a feature_store.yaml for one backend's schema, for its option tests. */
#ifndef LDR_TEST_STORE_OPTIONS_H
#define LDR_TEST_STORE_OPTIONS_H

#include <stdio.h>
#include <string.h>

#include "config/config.h"

/* Loads `text` as fs.yaml in /repo with $PGPASS = "s3cr:et$x" and only `schema` served. */
static inline int load_for(const struct ldr_store_schema *schema, const char *text,
                           struct ldr_config *cfg, struct ldr_config_error *err) {
  const struct ldr_store_schema *stores[] = {schema, NULL};
  return ldr_config_load_text("fs.yaml", "/repo", text, strlen(text), NULL, stores, cfg, err);
}

#endif
