/* The online_store section, read through the schemas of the stores this build serves. */
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
  if (n->type != YAML_SCALAR_NODE || ldr_cfg_is_null(n))
    return ldr_cfg_fail(l, n, "%s: expected a store type such as sqlite", field);
  const char *s = ldr_cfg_scalar(n), *name = s;
  for (size_t i = 0; i < sizeof feast_store_paths / sizeof feast_store_paths[0]; i++)
    if (!strcmp(s, feast_store_paths[i].path)) name = feast_store_paths[i].name;
  for (const struct ldr_store_schema *const *st = l->stores; *st != NULL; st++)
    if (!strcmp(name, (*st)->name)) {
      l->schema = *st;
      return 0;
    }
  served_list(l, served, sizeof served);
  if (!strcasecmp(s, "none") || !strcasecmp(s, "null"))
    return ldr_cfg_fail(l, n, "%s: '%s' disables the online store, and larder serves one", field,
                        s);
  for (size_t i = 0; i < sizeof other_feast_stores / sizeof other_feast_stores[0]; i++)
    if (!strcmp(name, other_feast_stores[i]))
      return ldr_cfg_fail(
          l, n, "%s: the '%s' online store is not served by this build of larder (it serves: %s)",
          field, name, served);
  return ldr_cfg_fail(l, n, "%s: unknown online store type '%s' (this build of larder serves: %s)",
                      field, s, served);
}

static int in_list(const char *s, const char *const *list) {
  for (; *list; list++)
    if (!strcmp(s, *list)) return 1;
  return 0;
}

/* A port, or ports separated by commas, into "p1,p2" (spaces dropped). */
static int load_ports(struct loader *l, const yaml_node_t *v, const char *field, char **out) {
  char *given = NULL;
  if (ldr_cfg_string(l, v, field, &given) != 0) return -1;
  char *norm = malloc(strlen(given) + 1);
  int rc = norm == NULL ? ldr_cfg_fail(l, v, "%s: out of memory", field) : 0;
  size_t o = 0;
  for (const char *p = given; rc == 0;) {
    long port = 0;
    size_t digits = 0;
    while (*p == ' ') p++;
    for (; *p >= '0' && *p <= '9' && port <= 65535; p++, digits++) port = port * 10 + (*p - '0');
    while (*p == ' ') p++;
    if (digits == 0 || port < 1 || port > 65535 || (*p != ',' && *p != '\0')) {
      rc =
          ldr_cfg_fail(l, v, "%s: expected a port (1-65535) or ports separated by commas, not '%s'",
                       field, given);
      break;
    }
    o += (size_t)sprintf(norm + o, "%s%ld", o ? "," : "", port);
    if (*p++ == '\0') break;
  }
  free(given);
  if (rc != 0) {
    free(norm);
    return rc;
  }
  free(*out);
  *out = norm;
  return 0;
}

/* A list of "host:port" into a NULL-terminated array (an empty list: NULL). */
static int load_addresses(struct loader *l, const yaml_node_t *v, const char *field, char ***out) {
  if (v->type != YAML_SEQUENCE_NODE)
    return ldr_cfg_fail(l, v, "%s: expected a list of host:port", field);
  size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
  char **list = n ? calloc(n + 1, sizeof *list) : NULL;
  if (n && list == NULL) return ldr_cfg_fail(l, v, "%s: out of memory", field);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const yaml_node_t *item = ldr_cfg_node(l, v->data.sequence.items.start[i]);
    char name[128];
    snprintf(name, sizeof name, "%s[%zu]", field, i);
    rc = ldr_cfg_string(l, item, name, &list[i]);
    if (rc == 0 && !ldr_config_valid_listen(list[i]))
      rc = ldr_cfg_fail(l, item, "%s: expected host:port, such as 10.0.0.2:3306, not '%s'", name,
                        list[i]);
  }
  if (rc != 0) {
    for (size_t i = 0; i < n; i++) free(list[i]);
    free(list);
    return rc;
  }
  ldr_config_free_list(*out);
  *out = list;
  return 0;
}

/* Loads one key of a store into its options; `section` is "online_store" or "larder". */
static int load_field(struct loader *l, void *opts, const struct ldr_config_field *f,
                      const yaml_node_t *v, const char *section) {
  char field[96];
  snprintf(field, sizeof field, "%s.%s", section, f->key);
  void *slot = f->offset == LDR_NO_FIELD ? NULL : (char *)opts + f->offset;
  /* Feast's optional fields accept null: the default stays (db_schema: null
   * means the user's own schema, as in Feast). */
  if (ldr_cfg_is_null(v) && !f->required) {
    if (f->null_clears && slot) {
      free(*(char **)slot);
      *(char **)slot = NULL;
    }
    return 0;
  }
  switch (f->kind) {
  case LDR_FIELD_BOOL: {
    int b = 0;
    if (ldr_cfg_bool(l, v, field, &b) != 0) return -1;
    if (slot) *(int *)slot = b;
    return 0;
  }
  case LDR_FIELD_FALSE_ONLY: {
    int b = 0;
    if (ldr_cfg_bool(l, v, field, &b) != 0) return -1;
    if (b) return ldr_cfg_fail(l, v, "%s: only false is accepted (%s in larder)", field, f->why);
    return 0;
  }
  case LDR_FIELD_INT_ONLY: {
    long x = 0;
    if (ldr_cfg_long(l, v, field, LONG_MIN, LONG_MAX, &x) != 0) return -1;
    if (f->max < f->min)
      return ldr_cfg_fail(l, v, "%s: only null is accepted (%s in larder)", field, f->why);
    if (x != f->min)
      return ldr_cfg_fail(l, v, "%s: only %ld is accepted (%s in larder)", field, f->min, f->why);
    return 0;
  }
  case LDR_FIELD_INT: {
    long x = 0;
    if (ldr_cfg_long(l, v, field, f->min, f->max, &x) != 0) return -1;
    if (slot) *(int *)slot = (int)x;
    return 0;
  }
  case LDR_FIELD_PORTS: {
    char *ports = NULL;
    if (load_ports(l, v, field, &ports) != 0) return -1;
    if (slot) {
      free(*(char **)slot);
      *(char **)slot = ports;
    } else {
      free(ports);
    }
    return 0;
  }
  case LDR_FIELD_ADDRESSES: {
    char **list = NULL;
    if (load_addresses(l, v, field, &list) != 0) return -1;
    if (slot) {
      ldr_config_free_list(*(char ***)slot);
      *(char ***)slot = list;
    } else {
      ldr_config_free_list(list);
    }
    return 0;
  }
  case LDR_FIELD_STRING:
  case LDR_FIELD_PATH: {
    char *s = NULL;
    if (ldr_cfg_string(l, v, field, &s) != 0) return -1;
    if (s[0] == '\0') {
      free(s);
      return ldr_cfg_fail(l, v, "%s: must not be empty", field);
    }
    if (f->choices && !in_list(s, f->choices)) {
      char list[160] = "";
      for (const char *const *c = f->choices; *c; c++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                 c == f->choices ? "" : ", ", *c);
      int rc =
          f->choices[1] == NULL
              ? ldr_cfg_fail(l, v, "%s: only '%s' is accepted (%s in larder)", field, list, f->why)
              : ldr_cfg_fail(l, v, "%s: '%s' is not one of: %s", field, s, list);
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

static const struct ldr_config_field *find_field(const struct ldr_config_field *fields, size_t n,
                                                 const char *key) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(fields[i].key, key)) return &fields[i];
  return NULL;
}

int ldr_cfg_store_larder_key(const struct loader *l, const char *key) {
  for (const struct ldr_store_schema *const *s = l->stores; *s != NULL; s++)
    if (find_field((*s)->larder_fields, (*s)->n_larder_fields, key)) return 1;
  return 0;
}

/* The keys of `larder:` that belong to a store: those of this store are
 * loaded, another store's are an error naming the store they belong to. */
static int load_store_larder_keys(struct loader *l) {
  const struct ldr_store_schema *schema = l->schema;
  for (int i = 0; i < l->n_store_keys; i++) {
    const char *k = ldr_cfg_scalar(l->store_keys[i]);
    const struct ldr_config_field *f =
        find_field(schema->larder_fields, schema->n_larder_fields, k);
    if (f != NULL) {
      if (load_field(l, l->cfg->store.opts, f, l->store_values[i], "larder") != 0) return -1;
      continue;
    }
    char owners[160] = "";
    for (const struct ldr_store_schema *const *s = l->stores; *s != NULL; s++)
      if (find_field((*s)->larder_fields, (*s)->n_larder_fields, k))
        snprintf(owners + strlen(owners), sizeof owners - strlen(owners), "%s%s",
                 owners[0] ? " or " : "", (*s)->name);
    return ldr_cfg_fail(l, l->store_keys[i],
                        "larder.%s: a setting of the %s store, and online_store.type is %s", k,
                        owners, schema->name);
  }
  return 0;
}

/* Gives the store its options struct with the schema's defaults. */
static int start_store(struct loader *l, const yaml_node_t *where) {
  struct ldr_store_config *s = &l->cfg->store;
  s->schema = l->schema;
  s->type_name = l->schema->name;
  s->opts = calloc(1, l->schema->size ? l->schema->size : 1);
  if (s->opts == NULL || (l->schema->defaults != NULL && l->schema->defaults(s->opts) != 0))
    return ldr_cfg_fail(l, where, "online_store: out of memory");
  return 0;
}

/* Checks required keys, joins paths and runs the schema's own checks. `where`
 * is the online_store node (missing keys point at it). */
static int finish_store(struct loader *l, const yaml_node_t *where) {
  const struct ldr_store_schema *schema = l->cfg->store.schema;
  void *opts = l->cfg->store.opts;
  for (size_t i = 0; i < schema->n_fields + schema->n_larder_fields; i++) {
    const struct ldr_config_field *f =
        i < schema->n_fields ? &schema->fields[i] : &schema->larder_fields[i - schema->n_fields];
    if (f->offset == LDR_NO_FIELD) continue;
    char **slot = (char **)((char *)opts + f->offset);
    if (f->required && (f->kind == LDR_FIELD_STRING || f->kind == LDR_FIELD_PATH) && *slot == NULL)
      return ldr_cfg_fail(l, where, "online_store.%s: required for the %s store", f->key,
                          schema->name);
    if (f->kind == LDR_FIELD_PATH && *slot != NULL) {
      char *given = *slot;
      *slot = NULL;
      int rc = ldr_cfg_join_dir(l, given, slot);
      free(given);
      if (rc != 0) return rc;
    }
  }
  char buf[200];
  const char *msg = schema->check ? schema->check(opts, buf, sizeof buf) : NULL;
  return msg ? ldr_cfg_fail(l, where, "%s", msg) : 0;
}

int ldr_cfg_load_online_store(struct loader *l, const yaml_node_t *n) {
  const yaml_node_t **keys = NULL, **values = NULL;
  int rc = -1;
  const yaml_node_t *where = n ? n : yaml_document_get_root_node(&l->doc);
  int np = 0;
  l->schema = NULL;
  if (n != NULL && n->type == YAML_SCALAR_NODE && !ldr_cfg_is_null(n)) {
    if (resolve_store_type(l, n, "online_store") != 0) return -1;
  } else if (n != NULL && !ldr_cfg_is_null(n)) {
    np = ldr_cfg_pairs(l, n, "online_store", &keys, &values);
    if (np < 0) goto out;
    for (int i = 0; i < np; i++)
      if (!strcmp(ldr_cfg_scalar(keys[i]), "type") &&
          resolve_store_type(l, values[i], "online_store.type") != 0)
        goto out;
  }
  if (l->schema == NULL) { /* Feast's default store */
    for (const struct ldr_store_schema *const *st = l->stores; *st != NULL; st++)
      if (!strcmp((*st)->name, "sqlite")) l->schema = *st;
    if (l->schema == NULL) {
      char served[160];
      served_list(l, served, sizeof served);
      ldr_cfg_fail(l, where,
                   "online_store.type: required, since this build of larder does not serve Feast's "
                   "default store, sqlite (it serves: %s)",
                   served);
      goto out;
    }
  }
  if (start_store(l, where) != 0) goto out;
  const struct ldr_store_schema *schema = l->schema;
  for (int i = 0; i < np; i++) {
    const char *k = ldr_cfg_scalar(keys[i]);
    if (!strcmp(k, "type")) continue;
    size_t j = 0;
    while (j < schema->n_fields && strcmp(schema->fields[j].key, k)) j++;
    if (j == schema->n_fields) {
      ldr_cfg_fail(l, keys[i], "online_store: unknown key '%s' for the %s store", k, schema->name);
      goto out;
    }
    if (load_field(l, l->cfg->store.opts, &schema->fields[j], values[i], "online_store") != 0)
      goto out;
  }
  if (load_store_larder_keys(l) != 0) goto out;
  rc = finish_store(l, where);
out:
  free(keys);
  free(values);
  return rc;
}
