/* Loading feature_store.yaml with libyaml's document API: the file, its
 * top-level keys and the defaults; each section has a file of its own. */
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

#include "config/config_int.h"

#define MAX_FILE_BYTES (16u << 20)

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

static void set_defaults(struct ldr_config *c) {
  c->store.key_version = 3;
  c->registry_cache_ttl_s = 600;
  ldr_cfg_larder_defaults(c);
}

static int load_root(struct loader *l) {
  yaml_node_t *root = yaml_document_get_root_node(&l->doc);
  const yaml_node_t **keys = NULL, **values = NULL;
  const yaml_node_t *online = NULL;
  int rc = -1;
  if (root == NULL) {
    yaml_mark_t start = {0, 0, 0};
    return ldr_cfg_fail_at(l, start, "empty file: expected a mapping with at least 'project'");
  }
  int np = ldr_cfg_pairs(l, root, "feature_store.yaml", &keys, &values);
  if (np < 0) goto out;
  int have_project = 0;
  for (int i = 0; i < np; i++) {
    const char *k = ldr_cfg_scalar(keys[i]);
    const yaml_node_t *v = values[i];
    int r = 0;
    if (!strcmp(k, "project")) {
      r = ldr_cfg_string(l, v, "project", &l->cfg->project);
      if (r == 0 && !valid_project(l->cfg->project))
        r = ldr_cfg_fail(
            l, v,
            "project: '%s' must be letters, digits and '_' only, not starting with '_' "
            "(it prefixes table names)",
            l->cfg->project);
      if (r == 0 && strlen(l->cfg->project) > 58)
        r = ldr_cfg_fail(l, v, "project: longer than 58 characters (table names are at most 60)");
      have_project = 1;
    } else if (!strcmp(k, "registry")) {
      r = ldr_cfg_load_registry(l, v);
    } else if (!strcmp(k, "provider")) {
      char *provider = NULL;
      r = ldr_cfg_is_null(v) ? 0 : ldr_cfg_string(l, v, "provider", &provider);
      free(provider);
    } else if (!strcmp(k, "online_store")) {
      online = v;
    } else if (!strcmp(k, "entity_key_serialization_version")) {
      r = ldr_cfg_int(l, v, "entity_key_serialization_version", 0, INT_MAX,
                      &l->cfg->store.key_version);
    } else if (!strcmp(k, "larder")) {
      r = ldr_cfg_load_larder(l, v);
    }
    /* Feast tolerates other top-level keys (offline_store, batch_engine, ...). */
    if (r != 0) goto out;
  }
  if (!have_project) {
    ldr_cfg_fail(l, root, "project: required");
    goto out;
  }
  if (ldr_cfg_load_online_store(l, online) != 0 || ldr_cfg_resolve_registry(l) != 0) goto out;
  if (l->cfg->http_listen != NULL && l->cfg->registry == NULL) {
    ldr_cfg_fail(l, root,
                 "larder.http_listen: Feast's HTTP endpoints need `registry` (they resolve "
                 "feature references and push sources there)");
    goto out;
  }
  l->cfg->store.project = l->cfg->project;
  l->cfg->store.read_only = l->cfg->read_only;
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

void ldr_config_free_list(char **list) {
  for (size_t i = 0; list != NULL && list[i] != NULL; i++) free(list[i]);
  free(list);
}

void ldr_config_destroy(struct ldr_config *cfg) {
  free(cfg->file);
  free(cfg->dir);
  free(cfg->project);
  free(cfg->registry);
  free(cfg->registry_path);
  free(cfg->registry_unsupported);
  ldr_cfg_larder_destroy(cfg);
  /* Every string of a store's options is heap-owned. */
  const struct ldr_store_schema *schema = cfg->store.schema;
  size_t n =
      schema != NULL && cfg->store.opts != NULL ? schema->n_fields + schema->n_larder_fields : 0;
  for (size_t i = 0; i < n; i++) {
    const struct ldr_config_field *f =
        i < schema->n_fields ? &schema->fields[i] : &schema->larder_fields[i - schema->n_fields];
    if (f->offset == LDR_NO_FIELD) continue;
    void *slot = (char *)cfg->store.opts + f->offset;
    if (f->kind == LDR_FIELD_STRING || f->kind == LDR_FIELD_PATH || f->kind == LDR_FIELD_PORTS)
      free(*(char **)slot);
    else if (f->kind == LDR_FIELD_ADDRESSES)
      ldr_config_free_list(*(char ***)slot);
  }
  free(cfg->store.opts);
  memset(cfg, 0, sizeof *cfg);
}
