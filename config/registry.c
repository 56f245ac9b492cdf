/* The registry section: where ServingService finds Feast's registry. */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "config/config_int.h"

/* Notes why larder cannot read the registry; the first reason is kept. */
static int registry_unsupported(struct loader *l, const char *fmt, const char *what) {
  if (l->cfg->registry_unsupported != NULL) return 0;
  size_t len = strlen(fmt) + strlen(what) + 1;
  l->cfg->registry_unsupported = malloc(len);
  if (l->cfg->registry_unsupported == NULL) {
    yaml_mark_t start = {0, 0, 0};
    return ldr_cfg_fail_at(l, start, "out of memory");
  }
  snprintf(l->cfg->registry_unsupported, len, fmt, what);
  return 0;
}

/*
 * `registry:` is a path or a mapping of Feast's RegistryConfig. larder reads
 * file registries only; any other kind is accepted (the OnlineStore service
 * does not need it) and noted, so ServingService can say why it cannot serve.
 * Feast's other registry keys are Feast's business and are not checked.
 */
int ldr_cfg_load_registry(struct loader *l, const yaml_node_t *n) {
  if (ldr_cfg_is_null(n)) return 0;
  if (n->type == YAML_SCALAR_NODE) return ldr_cfg_string(l, n, "registry", &l->cfg->registry);
  if (n->type != YAML_MAPPING_NODE)
    return ldr_cfg_fail(l, n, "registry: expected a path or a mapping");
  const yaml_node_t **keys = NULL, **values = NULL;
  int rc = 0;
  int np = ldr_cfg_pairs(l, n, "registry", &keys, &values);
  if (np < 0) rc = -1;
  for (int i = 0; rc == 0 && i < np; i++) {
    const char *k = ldr_cfg_scalar(keys[i]);
    if (!strcmp(k, "path")) {
      rc = ldr_cfg_string(l, values[i], "registry.path", &l->cfg->registry);
    } else if (!strcmp(k, "cache_ttl_seconds")) {
      rc = ldr_cfg_int(l, values[i], "registry.cache_ttl_seconds", 0, INT_MAX,
                       &l->cfg->registry_cache_ttl_s);
    } else if (!strcmp(k, "registry_type") && !ldr_cfg_is_null(values[i])) {
      char *type = NULL;
      rc = ldr_cfg_string(l, values[i], "registry.registry_type", &type);
      if (rc == 0 && strcmp(type, "file"))
        rc = registry_unsupported(
            l, "registry_type '%s': larder reads file registries only (registry_type: file)", type);
      free(type);
    }
  }
  free(keys);
  free(values);
  return rc;
}

/* Resolves the registry path once the whole file is read. */
int ldr_cfg_resolve_registry(struct loader *l) {
  struct ldr_config *c = l->cfg;
  if (c->registry == NULL || c->registry_unsupported != NULL) return 0;
  const char *path = c->registry;
  if (!strncmp(path, "file://", 7)) path += 7;
  const char *scheme = strstr(path, "://");
  if (scheme != NULL)
    return registry_unsupported(l, "'%s': larder reads local registry files only", path);
  return ldr_cfg_join_dir(l, path, &c->registry_path);
}
