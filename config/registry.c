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

/* The scheme of a URL-like `path` into `out`, or 0 when `path` has none (or
 * one that does not fit in `cap`). */
static int scheme_of(const char *path, char *out, size_t cap) {
  const char *end = strstr(path, "://");
  if (end == NULL || end == path || (size_t)(end - path) >= cap) return 0;
  /* RFC 3986's scheme: a letter, then letters, digits, '+', '-', '.'. Text
   * before "://" that is not one (a password, a host, a query) is no scheme,
   * and is never quoted back. */
  for (const char *p = path; p < end; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (p > path && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))))
      return 0;
  snprintf(out, cap, "%.*s", (int)(end - path), path);
  return 1;
}

/* SQLAlchemy's schemes of the databases larder reads an SQL registry from
 * (REGISTRY.md §2); the driver part never changes which tables are read. */
static int sql_scheme(const char *scheme) {
  static const char *const known[] = {"postgresql", "postgresql+psycopg", "postgresql+psycopg2",
                                      "mysql",      "mysql+pymysql",      "sqlite"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (!strcmp(scheme, known[i])) return 1;
  return 0;
}

/*
 * `registry:` is a path or a mapping of Feast's RegistryConfig. larder reads
 * file and SQL registries; any other kind is accepted (the OnlineStore service
 * does not need it) and noted, so ServingService can say why it cannot serve.
 * Feast's other registry keys (cache_mode, schema_mode, ...) are Feast's
 * business: accepted, and not checked.
 */
int ldr_cfg_load_registry(struct loader *l, const yaml_node_t *n) {
  if (ldr_cfg_is_null(n)) return 0;
  if (n->type == YAML_SCALAR_NODE) return ldr_cfg_string(l, n, "registry", &l->cfg->registry);
  if (n->type != YAML_MAPPING_NODE)
    return ldr_cfg_fail(l, n, "registry: expected a path or a mapping");
  const yaml_node_t **keys = NULL, **values = NULL;
  char *read_path = NULL;
  int rc = 0;
  int np = ldr_cfg_pairs(l, n, "registry", &keys, &values);
  if (np < 0) rc = -1;
  for (int i = 0; rc == 0 && i < np; i++) {
    const char *k = ldr_cfg_scalar(keys[i]);
    if (!strcmp(k, "path")) {
      rc = ldr_cfg_string(l, values[i], "registry.path", &l->cfg->registry);
    } else if (!strcmp(k, "read_path") && !ldr_cfg_is_null(values[i])) {
      rc = ldr_cfg_string(l, values[i], "registry.read_path", &read_path);
    } else if (!strcmp(k, "cache_ttl_seconds")) {
      rc = ldr_cfg_int(l, values[i], "registry.cache_ttl_seconds", 0, INT_MAX,
                       &l->cfg->registry_cache_ttl_s);
    } else if (!strcmp(k, "enable_online_feature_view_versioning")) {
      rc = ldr_cfg_bool(l, values[i], "registry.enable_online_feature_view_versioning",
                        &l->cfg->registry_versioning);
    } else if (!strcmp(k, "registry_type") && !ldr_cfg_is_null(values[i])) {
      char *type = NULL;
      rc = ldr_cfg_string(l, values[i], "registry.registry_type", &type);
      if (rc == 0 && !strcmp(type, "sql"))
        l->cfg->registry_sql = 1;
      else if (rc == 0 && strcmp(type, "file"))
        rc = registry_unsupported(
            l, "registry.registry_type '%s': larder reads file and sql registries", type);
      free(type);
    }
  }
  /* larder only reads: Feast's read_path is what it connects to. */
  if (rc == 0 && read_path != NULL && l->cfg->registry_sql) {
    free(l->cfg->registry);
    l->cfg->registry = read_path;
    read_path = NULL;
  }
  free(read_path);
  free(keys);
  free(values);
  return rc;
}

/* Resolves what to read once the whole file is read. */
int ldr_cfg_resolve_registry(struct loader *l) {
  struct ldr_config *c = l->cfg;
  char scheme[24];
  if (c->registry == NULL || c->registry_unsupported != NULL) return 0;
  const char *path = c->registry;
  if (c->registry_sql) {
    /* Only the scheme in messages: the rest of a URL may hold a host, a user
     * or a password, and this text is what ServingService's callers are told. */
    if (!scheme_of(path, scheme, sizeof scheme))
      return registry_unsupported(l, "%s", "registry.path: an SQL registry needs a database URL");
    if (!sql_scheme(scheme))
      return registry_unsupported(
          l,
          "registry.path: the scheme '%s' is not a database larder reads an SQL registry "
          "from (postgresql, mysql, sqlite)",
          scheme);
    if (!strcmp(scheme, "sqlite") && !strcmp(path, "sqlite://"))
      return registry_unsupported(l, "%s", "registry.path: an in-memory SQLite registry is empty");
    c->registry_path = strdup(path);
    if (c->registry_path == NULL)
      return ldr_cfg_fail_at(l, (yaml_mark_t){0, 0, 0}, "out of memory");
    return 0;
  }
  if (!strncmp(path, "file://", 7)) path += 7;
  if (scheme_of(path, scheme, sizeof scheme))
    return registry_unsupported(
        l, "registry.path: a location of the scheme '%s' is not a registry file larder reads",
        scheme);
  return ldr_cfg_join_dir(l, path, &c->registry_path);
}
