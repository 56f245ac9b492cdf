/* What the files of config/ share: the loader's state and the YAML node helpers. */
#ifndef LDR_CONFIG_INT_H
#define LDR_CONFIG_INT_H

#include <stddef.h>
#include <yaml.h>

#include "config/config.h"

/* One load of one file. */
struct loader {
  const char *name;
  const char *dir;
  const struct ldr_store_schema *const *stores; /* the stores this build serves */
  const struct ldr_store_schema *schema;        /* the one online_store names */
  yaml_document_t doc;
  struct ldr_config *cfg;
  struct ldr_config_error *err;
  /* Keys of `larder:` that a store declares (ldr_store_schema.larder_fields),
   * loaded once online_store says which store it is. */
  const yaml_node_t *store_keys[8], *store_values[8];
  int n_store_keys;
};

/* Each records "file:line:column: message" (the first error only) and returns -1. */
int ldr_cfg_fail_at(struct loader *l, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ldr_cfg_fail(struct loader *l, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

yaml_node_t *ldr_cfg_node(struct loader *l, int id);
const char *ldr_cfg_scalar(const yaml_node_t *n);
/* YAML 1.1 null as PyYAML's safe_load resolves it. */
int ldr_cfg_is_null(const yaml_node_t *n);

/* Each reads a scalar for `field` (the path in messages) and returns 0, or -1
 * with the error recorded. Strings are malloc'd and replace *out. */
int ldr_cfg_string(struct loader *l, const yaml_node_t *n, const char *field, char **out);
int ldr_cfg_long(struct loader *l, const yaml_node_t *n, const char *field, long min, long max,
                 long *out);
int ldr_cfg_int(struct loader *l, const yaml_node_t *n, const char *field, int min, int max,
                int *out);
int ldr_cfg_bool(struct loader *l, const yaml_node_t *n, const char *field, int *out);

/*
 * The pairs of a mapping node, refusing non-scalar and repeated keys: returns
 * their number, or -1; *keys and *values are malloc'd arrays the caller frees
 * (also after -1).
 */
int ldr_cfg_pairs(struct loader *l, const yaml_node_t *map, const char *field,
                  const yaml_node_t ***keys, const yaml_node_t ***values);

/* `path` joined to the yaml file's folder unless absolute, malloc'd into *out. */
int ldr_cfg_join_dir(struct loader *l, const char *path, char **out);

/* The sections, each called once with its node (NULL or null when absent). */
int ldr_cfg_load_online_store(struct loader *l, const yaml_node_t *n);
int ldr_cfg_load_registry(struct loader *l, const yaml_node_t *n);
int ldr_cfg_resolve_registry(struct loader *l);
int ldr_cfg_load_larder(struct loader *l, const yaml_node_t *n);
/* Whether some store this build serves declares `key` under `larder:`. */
int ldr_cfg_store_larder_key(const struct loader *l, const char *key);
void ldr_cfg_larder_defaults(struct ldr_config *c);
void ldr_cfg_larder_destroy(struct ldr_config *c);

#endif
