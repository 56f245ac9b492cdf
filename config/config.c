/* Loading feature_store.yaml with libyaml's document API. */
#include "config/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define MAX_FILE_BYTES (16u << 20)

struct loader {
  const char *name;
  const char *dir;
  const struct ldr_store_schema *const *stores; /* the stores this build serves */
  const struct ldr_store_schema *schema;        /* the one online_store names */
  yaml_document_t doc;
  struct ldr_config *cfg;
  struct ldr_config_error *err;
};

static void failv(struct loader *l, const yaml_mark_t *mark, const char *fmt, va_list ap) {
  int n = snprintf(l->err->msg, sizeof l->err->msg, "%s:%zu:%zu: ", l->name, mark->line + 1,
                   mark->column + 1);
  if (n < 0 || (size_t)n >= sizeof l->err->msg) return;
  vsnprintf(l->err->msg + n, sizeof l->err->msg - (size_t)n, fmt, ap);
}

/* Records an error at `mark` and returns -1. */
static int fail_at(struct loader *l, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(struct loader *l, yaml_mark_t mark, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(l, &mark, fmt, ap);
  va_end(ap);
  return -1;
}

/* Records an error at the start of `node` and returns -1. */
static int fail(struct loader *l, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct loader *l, const yaml_node_t *node, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(l, &node->start_mark, fmt, ap);
  va_end(ap);
  return -1;
}

static yaml_node_t *node_at(struct loader *l, int id) {
  return yaml_document_get_node(&l->doc, id);
}

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int is_plain(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* YAML 1.1 null as PyYAML's safe_load resolves it. */
static int is_null(const yaml_node_t *n) {
  if (!is_plain(n)) return 0;
  const char *s = scalar(n);
  return !strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
         !strcmp(s, "NULL");
}

/* Returns 1 for a YAML 1.1 boolean scalar and sets *out; 0 otherwise. */
static int parse_bool(const yaml_node_t *n, int *out) {
  static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                   "NO",    "off",   "Off",   "OFF"};
  if (!is_plain(n)) return 0;
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (!strcmp(scalar(n), yes[i])) {
      *out = 1;
      return 1;
    }
    if (!strcmp(scalar(n), no[i])) {
      *out = 0;
      return 1;
    }
  }
  return 0;
}

static int get_string(struct loader *l, const yaml_node_t *n, const char *field, char **out) {
  if (n->type != YAML_SCALAR_NODE || is_null(n)) return fail(l, n, "%s: expected a string", field);
  if (n->data.scalar.length != strlen(scalar(n)))
    return fail(l, n, "%s: contains a NUL character", field);
  char *s = strdup(scalar(n));
  if (s == NULL) return fail(l, n, "%s: out of memory", field);
  free(*out);
  *out = s;
  return 0;
}

static int get_long(struct loader *l, const yaml_node_t *n, const char *field, long min, long max,
                    long *out) {
  if (!is_plain(n)) return fail(l, n, "%s: expected an integer", field);
  const char *s = scalar(n);
  const char *p = s;
  if (*p == '+' || *p == '-') p++;
  if (*p < '0' || *p > '9') return fail(l, n, "%s: expected an integer, not '%s'", field, s);
  for (const char *q = p; *q; q++)
    if (*q < '0' || *q > '9') return fail(l, n, "%s: expected an integer, not '%s'", field, s);
  errno = 0;
  long v = strtol(s, NULL, 10);
  if (errno == ERANGE || v < min || v > max)
    return fail(l, n, "%s: %s is out of range [%ld, %ld]", field, s, min, max);
  *out = v;
  return 0;
}

static int get_int(struct loader *l, const yaml_node_t *n, const char *field, int min, int max,
                   int *out) {
  long v;
  if (get_long(l, n, field, min, max, &v) != 0) return -1;
  *out = (int)v;
  return 0;
}

static int get_bool(struct loader *l, const yaml_node_t *n, const char *field, int *out) {
  if (!parse_bool(n, out)) return fail(l, n, "%s: expected true or false", field);
  return 0;
}

/*
 * Walks the pairs of a mapping node, rejecting non-scalar and repeated keys.
 * Returns the number of pairs or -1; keys and values land in the arrays.
 */
static int mapping_pairs(struct loader *l, const yaml_node_t *map, const char *field,
                         const yaml_node_t ***keys, const yaml_node_t ***values) {
  if (map->type != YAML_MAPPING_NODE) return fail(l, map, "%s: expected a mapping", field);
  yaml_node_pair_t *start = map->data.mapping.pairs.start;
  int n = (int)(map->data.mapping.pairs.top - start);
  *keys = calloc((size_t)n + 1, sizeof **keys);
  *values = calloc((size_t)n + 1, sizeof **values);
  if (*keys == NULL || *values == NULL) return fail(l, map, "%s: out of memory", field);
  for (int i = 0; i < n; i++) {
    const yaml_node_t *k = node_at(l, start[i].key);
    const yaml_node_t *v = node_at(l, start[i].value);
    if (k->type != YAML_SCALAR_NODE) return fail(l, k, "%s: keys must be plain strings", field);
    for (int j = 0; j < i; j++)
      if (!strcmp(scalar((*keys)[j]), scalar(k)))
        return fail(l, k, "%s: duplicate key '%s'", field, scalar(k));
    (*keys)[i] = k;
    (*values)[i] = v;
  }
  return n;
}

int ldr_config_identifier(const char *s, size_t max) {
  size_t n = 0;
  for (; s[n] != '\0'; n++) {
    char c = s[n];
    if (n == max ||
        !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return n > 0;
}

static int valid_project(const char *s) {
  return s[0] != '_' && ldr_config_identifier(s, SIZE_MAX);
}

/* Feast's class paths of the stores it also names by a short name. */
static const struct {
  const char *path, *name;
} feast_store_paths[] = {
    {"feast.infra.online_stores.sqlite.SqliteOnlineStore", "sqlite"},
    {"feast.infra.online_stores.postgres_online_store.postgres.PostgreSQLOnlineStore", "postgres"},
    {"feast.infra.online_stores.contrib.postgres.PostgreSQLOnlineStore", "postgres"},
    {"feast.infra.online_stores.mysql_online_store.mysql.MySQLOnlineStore", "mysql"},
    {"feast.infra.online_stores.contrib.mysql_online_store.mysql.MySQLOnlineStore", "mysql"},
};

/* Feast's other online stores, so that naming one is answered as such. */
static const char *const other_feast_stores[] = {"sqlite",        "postgres",         "mysql",
                                                 "redis",         "dynamodb",         "datastore",
                                                 "bigtable",      "snowflake.online", "hbase",
                                                 "cassandra",     "scylladb",         "hazelcast",
                                                 "elasticsearch", "remote",           "singlestore",
                                                 "qdrant",        "couchbase.online", "milvus",
                                                 "mongodb",       "hybrid",           "aerospike"};

/* "sqlite, postgres" for the stores this build serves. */
static void served_list(const struct loader *l, char *buf, size_t cap) {
  buf[0] = '\0';
  for (const struct ldr_store_schema *const *s = l->stores; *s != NULL; s++)
    snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", s == l->stores ? "" : ", ", (*s)->name);
  if (buf[0] == '\0') snprintf(buf, cap, "none");
}

static int resolve_store_type(struct loader *l, const yaml_node_t *n, const char *field) {
  char served[160];
  if (n->type != YAML_SCALAR_NODE || is_null(n))
    return fail(l, n, "%s: expected a store type such as sqlite", field);
  const char *s = scalar(n), *name = s;
  for (size_t i = 0; i < sizeof feast_store_paths / sizeof feast_store_paths[0]; i++)
    if (!strcmp(s, feast_store_paths[i].path)) name = feast_store_paths[i].name;
  for (const struct ldr_store_schema *const *st = l->stores; *st != NULL; st++)
    if (!strcmp(name, (*st)->name)) {
      l->schema = *st;
      return 0;
    }
  served_list(l, served, sizeof served);
  if (!strcasecmp(s, "none") || !strcasecmp(s, "null"))
    return fail(l, n, "%s: '%s' disables the online store, and larder serves one", field, s);
  for (size_t i = 0; i < sizeof other_feast_stores / sizeof other_feast_stores[0]; i++)
    if (!strcmp(name, other_feast_stores[i]))
      return fail(l, n,
                  "%s: the '%s' online store is not served by this build of larder (it serves: %s)",
                  field, name, served);
  return fail(l, n, "%s: unknown online store type '%s' (this build of larder serves: %s)", field,
              s, served);
}

static int in_list(const char *s, const char *const *list) {
  for (; *list; list++)
    if (!strcmp(s, *list)) return 1;
  return 0;
}

static int load_field(struct loader *l, void *opts, const struct ldr_config_field *f,
                      const yaml_node_t *v) {
  char field[96];
  snprintf(field, sizeof field, "online_store.%s", f->key);
  void *slot = f->offset == LDR_NO_FIELD ? NULL : (char *)opts + f->offset;
  /* Feast's optional fields accept null: the default stays (db_schema: null
   * means the user's own schema, as in Feast). */
  if (is_null(v) && !f->required) {
    if (f->null_clears && slot) {
      free(*(char **)slot);
      *(char **)slot = NULL;
    }
    return 0;
  }
  switch (f->kind) {
  case LDR_FIELD_BOOL: {
    int b = 0;
    if (get_bool(l, v, field, &b) != 0) return -1;
    if (slot) *(int *)slot = b;
    return 0;
  }
  case LDR_FIELD_FALSE_ONLY: {
    int b = 0;
    if (get_bool(l, v, field, &b) != 0) return -1;
    if (b) return fail(l, v, "%s: only false is accepted (%s in larder)", field, f->why);
    return 0;
  }
  case LDR_FIELD_INT: {
    long x = 0;
    if (get_long(l, v, field, f->min, f->max, &x) != 0) return -1;
    if (slot) *(int *)slot = (int)x;
    return 0;
  }
  case LDR_FIELD_STRING:
  case LDR_FIELD_PATH: {
    char *s = NULL;
    if (get_string(l, v, field, &s) != 0) return -1;
    if (s[0] == '\0') {
      free(s);
      return fail(l, v, "%s: must not be empty", field);
    }
    if (f->choices && !in_list(s, f->choices)) {
      char list[160] = "";
      for (const char *const *c = f->choices; *c; c++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                 c == f->choices ? "" : ", ", *c);
      int rc = f->choices[1] == NULL
                   ? fail(l, v, "%s: only '%s' is accepted (%s in larder)", field, list, f->why)
                   : fail(l, v, "%s: '%s' is not one of: %s", field, s, list);
      free(s);
      return rc;
    }
    if (slot) {
      free(*(char **)slot);
      *(char **)slot = s;
    } else {
      free(s);
    }
    return 0;
  }
  }
  return -1;
}

static int join_dir(struct loader *l, const char *path, char **out) {
  if (path[0] == '/') {
    *out = strdup(path);
  } else {
    size_t len = strlen(l->dir) + 1 + strlen(path) + 1;
    *out = malloc(len);
    if (*out != NULL) snprintf(*out, len, "%s/%s", l->dir, path);
  }
  if (*out != NULL) return 0;
  yaml_mark_t start = {0, 0, 0};
  return fail_at(l, start, "out of memory");
}

/* Gives the store its options struct with the schema's defaults. */
static int start_store(struct loader *l, const yaml_node_t *where) {
  struct ldr_store_config *s = &l->cfg->store;
  s->schema = l->schema;
  s->type_name = l->schema->name;
  s->opts = calloc(1, l->schema->size ? l->schema->size : 1);
  if (s->opts == NULL || (l->schema->defaults != NULL && l->schema->defaults(s->opts) != 0))
    return fail(l, where, "online_store: out of memory");
  return 0;
}

/* Checks required keys, joins paths and runs the schema's own checks. `where`
 * is the online_store node (missing keys point at it). */
static int finish_store(struct loader *l, const yaml_node_t *where) {
  const struct ldr_store_schema *schema = l->cfg->store.schema;
  void *opts = l->cfg->store.opts;
  for (size_t i = 0; i < schema->n_fields; i++) {
    const struct ldr_config_field *f = &schema->fields[i];
    if (f->offset == LDR_NO_FIELD) continue;
    char **slot = (char **)((char *)opts + f->offset);
    if (f->required && (f->kind == LDR_FIELD_STRING || f->kind == LDR_FIELD_PATH) && *slot == NULL)
      return fail(l, where, "online_store.%s: required for the %s store", f->key, schema->name);
    if (f->kind == LDR_FIELD_PATH && *slot != NULL) {
      char *given = *slot;
      *slot = NULL;
      int rc = join_dir(l, given, slot);
      free(given);
      if (rc != 0) return rc;
    }
  }
  char buf[200];
  const char *msg = schema->check ? schema->check(opts, buf, sizeof buf) : NULL;
  return msg ? fail(l, where, "%s", msg) : 0;
}

static int load_online_store(struct loader *l, const yaml_node_t *n) {
  const yaml_node_t **keys = NULL, **values = NULL;
  int rc = -1;
  const yaml_node_t *where = n ? n : yaml_document_get_root_node(&l->doc);
  int np = 0;
  l->schema = NULL;
  if (n != NULL && n->type == YAML_SCALAR_NODE && !is_null(n)) {
    if (resolve_store_type(l, n, "online_store") != 0) return -1;
  } else if (n != NULL && !is_null(n)) {
    np = mapping_pairs(l, n, "online_store", &keys, &values);
    if (np < 0) goto out;
    for (int i = 0; i < np; i++)
      if (!strcmp(scalar(keys[i]), "type") &&
          resolve_store_type(l, values[i], "online_store.type") != 0)
        goto out;
  }
  if (l->schema == NULL) { /* Feast's default store */
    for (const struct ldr_store_schema *const *st = l->stores; *st != NULL; st++)
      if (!strcmp((*st)->name, "sqlite")) l->schema = *st;
    if (l->schema == NULL) {
      char served[160];
      served_list(l, served, sizeof served);
      fail(l, where,
           "online_store.type: required, since this build of larder does not serve Feast's "
           "default store, sqlite (it serves: %s)",
           served);
      goto out;
    }
  }
  if (start_store(l, where) != 0) goto out;
  const struct ldr_store_schema *schema = l->schema;
  for (int i = 0; i < np; i++) {
    const char *k = scalar(keys[i]);
    if (!strcmp(k, "type")) continue;
    size_t j = 0;
    while (j < schema->n_fields && strcmp(schema->fields[j].key, k)) j++;
    if (j == schema->n_fields) {
      fail(l, keys[i], "online_store: unknown key '%s' for the %s store", k, schema->name);
      goto out;
    }
    if (load_field(l, l->cfg->store.opts, &schema->fields[j], values[i]) != 0) goto out;
  }
  rc = finish_store(l, where);
out:
  free(keys);
  free(values);
  return rc;
}

/* Notes why larder cannot read the registry; the first reason is kept. */
static int registry_unsupported(struct loader *l, const char *fmt, const char *what) {
  if (l->cfg->registry_unsupported != NULL) return 0;
  size_t len = strlen(fmt) + strlen(what) + 1;
  l->cfg->registry_unsupported = malloc(len);
  if (l->cfg->registry_unsupported == NULL) {
    yaml_mark_t start = {0, 0, 0};
    return fail_at(l, start, "out of memory");
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
static int load_registry(struct loader *l, const yaml_node_t *n) {
  if (is_null(n)) return 0;
  if (n->type == YAML_SCALAR_NODE) return get_string(l, n, "registry", &l->cfg->registry);
  if (n->type != YAML_MAPPING_NODE) return fail(l, n, "registry: expected a path or a mapping");
  const yaml_node_t **keys = NULL, **values = NULL;
  int rc = 0;
  int np = mapping_pairs(l, n, "registry", &keys, &values);
  if (np < 0) rc = -1;
  for (int i = 0; rc == 0 && i < np; i++) {
    const char *k = scalar(keys[i]);
    if (!strcmp(k, "path")) {
      rc = get_string(l, values[i], "registry.path", &l->cfg->registry);
    } else if (!strcmp(k, "cache_ttl_seconds")) {
      rc = get_int(l, values[i], "registry.cache_ttl_seconds", 0, INT_MAX,
                   &l->cfg->registry_cache_ttl_s);
    } else if (!strcmp(k, "registry_type") && !is_null(values[i])) {
      char *type = NULL;
      rc = get_string(l, values[i], "registry.registry_type", &type);
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
static int resolve_registry(struct loader *l) {
  struct ldr_config *c = l->cfg;
  if (c->registry == NULL || c->registry_unsupported != NULL) return 0;
  const char *path = c->registry;
  if (!strncmp(path, "file://", 7)) path += 7;
  const char *scheme = strstr(path, "://");
  if (scheme != NULL)
    return registry_unsupported(l, "'%s': larder reads local registry files only", path);
  return join_dir(l, path, &c->registry_path);
}

int ldr_config_valid_listen(const char *s) {
  const char *colon = strrchr(s, ':');
  if (colon == NULL || colon == s || colon[1] == '\0') return 0;
  if (s[0] == '[' && colon[-1] != ']') return 0;
  long port = 0;
  for (const char *p = colon + 1; *p; p++) {
    if (*p < '0' || *p > '9') return 0;
    port = port * 10 + (*p - '0');
    if (port > 65535) return 0;
  }
  return 1;
}

/* larder.tls: {cert, key, client_ca}; cert and key go together. */
static int load_tls(struct loader *l, const yaml_node_t *n) {
  const yaml_node_t **keys = NULL, **values = NULL;
  struct ldr_config *c = l->cfg;
  int rc = 0;
  if (is_null(n)) return 0;
  int np = mapping_pairs(l, n, "larder.tls", &keys, &values);
  if (np < 0) rc = -1;
  for (int i = 0; rc == 0 && i < np; i++) {
    const char *k = scalar(keys[i]);
    char *given = NULL, **out = !strcmp(k, "cert")        ? &c->tls_cert
                                : !strcmp(k, "key")       ? &c->tls_key
                                : !strcmp(k, "client_ca") ? &c->tls_client_ca
                                                          : NULL;
    if (out == NULL) {
      rc = fail(l, keys[i], "larder.tls: unknown key '%s' (cert, key, client_ca)", k);
    } else if (*out != NULL) {
      rc = fail(l, keys[i], "larder.tls.%s: given twice", k);
    } else {
      char field[32];
      snprintf(field, sizeof field, "larder.tls.%s", k);
      rc = get_string(l, values[i], field, &given);
      if (rc == 0) rc = join_dir(l, given, out);
      free(given);
    }
  }
  if (rc == 0 && (c->tls_cert == NULL) != (c->tls_key == NULL))
    rc = fail(l, n, "larder.tls: cert and key are both required");
  if (rc == 0 && c->tls_client_ca != NULL && c->tls_cert == NULL)
    rc = fail(l, n, "larder.tls: client_ca needs cert and key");
  free(keys);
  free(values);
  return rc;
}

/* larder.auth: {tokens_file, tokens_env}. */
static int load_auth(struct loader *l, const yaml_node_t *n) {
  const yaml_node_t **keys = NULL, **values = NULL;
  struct ldr_config *c = l->cfg;
  int rc = 0;
  if (is_null(n)) return 0;
  int np = mapping_pairs(l, n, "larder.auth", &keys, &values);
  if (np < 0) rc = -1;
  for (int i = 0; rc == 0 && i < np; i++) {
    const char *k = scalar(keys[i]);
    if (!strcmp(k, "tokens_file")) {
      char *given = NULL;
      rc = get_string(l, values[i], "larder.auth.tokens_file", &given);
      if (rc == 0) rc = join_dir(l, given, &c->auth_tokens_file);
      free(given);
    } else if (!strcmp(k, "tokens_env")) {
      rc = get_string(l, values[i], "larder.auth.tokens_env", &c->auth_tokens_env);
    } else {
      rc = fail(l, keys[i], "larder.auth: unknown key '%s' (tokens_file, tokens_env)", k);
    }
  }
  if (rc == 0 && c->auth_tokens_file == NULL && c->auth_tokens_env == NULL)
    rc = fail(l, n, "larder.auth: tokens_file or tokens_env is required");
  free(keys);
  free(values);
  return rc;
}

static int load_larder(struct loader *l, const yaml_node_t *n) {
  const yaml_node_t **keys = NULL, **values = NULL;
  struct ldr_config *c = l->cfg;
  int rc = -1;
  if (is_null(n)) return 0;
  int np = mapping_pairs(l, n, "larder", &keys, &values);
  if (np < 0) goto out;
  for (int i = 0; i < np; i++) {
    const char *k = scalar(keys[i]);
    const yaml_node_t *v = values[i];
    int r = 0;
    if (!strcmp(k, "listen")) {
      r = get_string(l, v, "larder.listen", &c->listen);
      if (r == 0 && !ldr_config_valid_listen(c->listen))
        r = fail(l, v, "larder.listen: expected host:port, such as 0.0.0.0:6566 or [::]:6566");
    } else if (!strcmp(k, "workers")) {
      r = get_int(l, v, "larder.workers", 0, 1024, &c->workers);
    } else if (!strcmp(k, "admin_rpcs")) {
      r = get_bool(l, v, "larder.admin_rpcs", &c->admin_rpcs);
    } else if (!strcmp(k, "max_batch_rows")) {
      r = get_long(l, v, "larder.max_batch_rows", 1, 10000000, &c->max_batch_rows);
    } else if (!strcmp(k, "max_message_bytes")) {
      r = get_long(l, v, "larder.max_message_bytes", 1024, INT_MAX, &c->max_message_bytes);
    } else if (!strcmp(k, "wait_for_backend_s")) {
      r = get_int(l, v, "larder.wait_for_backend_s", 0, 3600, &c->store.wait_for_backend_s);
    } else if (!strcmp(k, "grace_period_s")) {
      r = get_int(l, v, "larder.grace_period_s", 0, 3600, &c->grace_period_s);
    } else if (!strcmp(k, "default_deadline_s")) {
      r = get_int(l, v, "larder.default_deadline_s", 0, 86400, &c->default_deadline_s);
    } else if (!strcmp(k, "metrics_listen")) {
      r = get_string(l, v, "larder.metrics_listen", &c->metrics_listen);
      if (r == 0 && !ldr_config_valid_listen(c->metrics_listen))
        r = fail(l, v, "larder.metrics_listen: expected host:port, such as 0.0.0.0:9090");
    } else if (!strcmp(k, "log_format")) {
      if (v->type != YAML_SCALAR_NODE)
        r = fail(l, v, "larder.log_format: expected text or json");
      else if (!strcmp(scalar(v), "json") || !strcmp(scalar(v), "text"))
        c->log_json = !strcmp(scalar(v), "json");
      else
        r = fail(l, v, "larder.log_format: expected text or json, not '%s'", scalar(v));
    } else if (!strcmp(k, "tls")) {
      r = load_tls(l, v);
    } else if (!strcmp(k, "auth")) {
      r = load_auth(l, v);
    } else if (!strcmp(k, "keepalive_time_s")) {
      r = get_int(l, v, "larder.keepalive_time_s", 1, INT_MAX / 1000, &c->keepalive_time_s);
    } else if (!strcmp(k, "keepalive_timeout_s")) {
      r = get_int(l, v, "larder.keepalive_timeout_s", 1, INT_MAX / 1000, &c->keepalive_timeout_s);
    } else if (!strcmp(k, "max_connection_idle_s")) {
      r = get_int(l, v, "larder.max_connection_idle_s", 1, INT_MAX / 1000,
                  &c->max_connection_idle_s);
    } else if (!strcmp(k, "max_connection_age_s")) {
      r = get_int(l, v, "larder.max_connection_age_s", 1, INT_MAX / 1000, &c->max_connection_age_s);
    } else if (!strcmp(k, "max_connection_age_grace_s")) {
      r = get_int(l, v, "larder.max_connection_age_grace_s", 0, INT_MAX / 1000,
                  &c->max_connection_age_grace_s);
    } else if (!strcmp(k, "max_concurrent_streams")) {
      r = get_int(l, v, "larder.max_concurrent_streams", 1, INT_MAX, &c->max_concurrent_streams);
    } else if (!strcmp(k, "enforce_ttl")) {
      r = get_bool(l, v, "larder.enforce_ttl", &c->enforce_ttl);
    } else if (!strcmp(k, "log_level")) {
      static const char *const levels[] = {"debug", "info", "warn", "error"};
      r = v->type == YAML_SCALAR_NODE ? -1 : fail(l, v, "larder.log_level: expected a level");
      for (int j = 0; r == -1 && v->type == YAML_SCALAR_NODE && j < 4; j++)
        if (!strcmp(scalar(v), levels[j])) {
          c->log_level = j;
          r = 0;
        }
      if (r != 0 && v->type == YAML_SCALAR_NODE)
        r = fail(l, v, "larder.log_level: expected debug, info, warn or error, not '%s'",
                 scalar(v));
    } else {
      r = fail(l, keys[i], "larder: unknown key '%s'", k);
    }
    if (r != 0) goto out;
  }
  rc = 0;
out:
  free(keys);
  free(values);
  return rc;
}

static void set_defaults(struct ldr_config *c) {
  c->store.key_version = 3;
  c->workers = 0;
  c->admin_rpcs = 1;
  c->max_batch_rows = 10000;
  c->max_message_bytes = 4194304;
  c->grace_period_s = 10;
  c->default_deadline_s = 30;
  c->log_level = 1;
  c->enforce_ttl = 1;
  c->keepalive_time_s = c->keepalive_timeout_s = c->max_connection_idle_s = -1;
  c->max_connection_age_s = c->max_connection_age_grace_s = c->max_concurrent_streams = -1;
  c->registry_cache_ttl_s = 600;
  c->listen = strdup("0.0.0.0:6566");
}

static int load_root(struct loader *l) {
  yaml_node_t *root = yaml_document_get_root_node(&l->doc);
  const yaml_node_t **keys = NULL, **values = NULL;
  const yaml_node_t *online = NULL;
  int rc = -1;
  if (root == NULL) {
    yaml_mark_t start = {0, 0, 0};
    return fail_at(l, start, "empty file: expected a mapping with at least 'project'");
  }
  int np = mapping_pairs(l, root, "feature_store.yaml", &keys, &values);
  if (np < 0) goto out;
  int have_project = 0;
  for (int i = 0; i < np; i++) {
    const char *k = scalar(keys[i]);
    const yaml_node_t *v = values[i];
    int r = 0;
    if (!strcmp(k, "project")) {
      r = get_string(l, v, "project", &l->cfg->project);
      if (r == 0 && !valid_project(l->cfg->project))
        r = fail(l, v,
                 "project: '%s' must be letters, digits and '_' only, not starting with '_' "
                 "(it prefixes table names)",
                 l->cfg->project);
      if (r == 0 && strlen(l->cfg->project) > 58)
        r = fail(l, v, "project: longer than 58 characters (table names are at most 60)");
      have_project = 1;
    } else if (!strcmp(k, "registry")) {
      r = load_registry(l, v);
    } else if (!strcmp(k, "provider")) {
      char *provider = NULL;
      r = is_null(v) ? 0 : get_string(l, v, "provider", &provider);
      free(provider);
    } else if (!strcmp(k, "online_store")) {
      online = v;
    } else if (!strcmp(k, "entity_key_serialization_version")) {
      r = get_int(l, v, "entity_key_serialization_version", 0, INT_MAX, &l->cfg->store.key_version);
    } else if (!strcmp(k, "larder")) {
      r = load_larder(l, v);
    }
    /* Feast tolerates other top-level keys (offline_store, batch_engine, ...). */
    if (r != 0) goto out;
  }
  if (!have_project) {
    fail(l, root, "project: required");
    goto out;
  }
  if (load_online_store(l, online) != 0 || resolve_registry(l) != 0) goto out;
  l->cfg->store.project = l->cfg->project;
  rc = 0;
out:
  free(keys);
  free(values);
  return rc;
}

static int parse_text(struct loader *l, const char *text, size_t len) {
  yaml_parser_t parser;
  int rc = -1;
  if (!yaml_parser_initialize(&parser)) {
    snprintf(l->err->msg, sizeof l->err->msg, "%s: out of memory", l->name);
    return -1;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &l->doc)) {
    snprintf(l->err->msg, sizeof l->err->msg, "%s:%zu:%zu: %s%s%s", l->name,
             parser.problem_mark.line + 1, parser.problem_mark.column + 1,
             parser.problem ? parser.problem : "invalid YAML", parser.context ? " " : "",
             parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    return -1;
  }
  /* safe_load refuses a stream with a second document, and so do we. */
  yaml_document_t next;
  if (!yaml_parser_load(&parser, &next)) {
    snprintf(l->err->msg, sizeof l->err->msg, "%s:%zu:%zu: %s", l->name,
             parser.problem_mark.line + 1, parser.problem_mark.column + 1,
             parser.problem ? parser.problem : "invalid YAML");
  } else {
    yaml_node_t *second = yaml_document_get_root_node(&next);
    if (second != NULL)
      snprintf(l->err->msg, sizeof l->err->msg,
               "%s:%zu:%zu: expected a single document, found a second one", l->name,
               next.start_mark.line + 1, next.start_mark.column + 1);
    else
      rc = 0;
    yaml_document_delete(&next);
  }
  yaml_parser_delete(&parser);
  if (rc != 0) yaml_document_delete(&l->doc);
  return rc;
}

int ldr_config_load_text(const char *name, const char *dir, const char *text, size_t len,
                         const char *(*lookup)(const char *),
                         const struct ldr_store_schema *const *stores, struct ldr_config *cfg,
                         struct ldr_config_error *err) {
  static const struct ldr_store_schema *const none[] = {NULL};
  struct loader l = {
      .name = name, .dir = dir, .stores = stores ? stores : none, .cfg = cfg, .err = err};
  size_t xlen = 0;
  int rc = -1;
  memset(cfg, 0, sizeof *cfg);
  err->msg[0] = '\0';
  set_defaults(cfg);
  cfg->file = strdup(name);
  cfg->dir = strdup(dir);
  char *expanded = ldr_config_expand_vars(text, len, lookup, &xlen);
  if (cfg->file == NULL || cfg->dir == NULL || cfg->listen == NULL || expanded == NULL) {
    snprintf(err->msg, sizeof err->msg, "%s: out of memory", name);
    goto out;
  }
  if (parse_text(&l, expanded, xlen) != 0) goto out;
  rc = load_root(&l);
  yaml_document_delete(&l.doc);
out:
  free(expanded);
  return rc;
}

int ldr_config_load(const char *path, const struct ldr_store_schema *const *stores,
                    struct ldr_config *cfg, struct ldr_config_error *err) {
  FILE *f = NULL;
  char *text = NULL, *dir = NULL;
  int rc = -1;
  memset(cfg, 0, sizeof *cfg);
  f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(err->msg, sizeof err->msg, "%s: %s", path, strerror(errno));
    goto out;
  }
  text = malloc(MAX_FILE_BYTES + 1);
  if (text == NULL) {
    snprintf(err->msg, sizeof err->msg, "%s: out of memory", path);
    goto out;
  }
  size_t len = fread(text, 1, MAX_FILE_BYTES + 1, f);
  if (ferror(f)) {
    snprintf(err->msg, sizeof err->msg, "%s: %s", path, strerror(errno));
    goto out;
  }
  if (len > MAX_FILE_BYTES) {
    snprintf(err->msg, sizeof err->msg, "%s: larger than %u bytes", path, MAX_FILE_BYTES);
    goto out;
  }
  const char *slash = strrchr(path, '/');
  dir = slash == NULL   ? strdup(".")
        : slash == path ? strdup("/")
                        : strndup(path, (size_t)(slash - path));
  if (dir == NULL) {
    snprintf(err->msg, sizeof err->msg, "%s: out of memory", path);
    goto out;
  }
  rc = ldr_config_load_text(path, dir, text, len, NULL, stores, cfg, err);
out:
  if (f != NULL) fclose(f);
  free(text);
  free(dir);
  return rc;
}

void ldr_config_destroy(struct ldr_config *cfg) {
  free(cfg->file);
  free(cfg->dir);
  free(cfg->project);
  free(cfg->registry);
  free(cfg->registry_path);
  free(cfg->metrics_listen);
  free(cfg->tls_cert);
  free(cfg->tls_key);
  free(cfg->tls_client_ca);
  free(cfg->auth_tokens_file);
  free(cfg->auth_tokens_env);
  free(cfg->registry_unsupported);
  free(cfg->listen);
  /* Every string of a store's options is heap-owned. */
  const struct ldr_store_schema *schema = cfg->store.schema;
  for (size_t i = 0; schema != NULL && cfg->store.opts != NULL && i < schema->n_fields; i++) {
    const struct ldr_config_field *f = &schema->fields[i];
    if ((f->kind == LDR_FIELD_STRING || f->kind == LDR_FIELD_PATH) && f->offset != LDR_NO_FIELD)
      free(*(char **)((char *)cfg->store.opts + f->offset));
  }
  free(cfg->store.opts);
  memset(cfg, 0, sizeof *cfg);
}
