/* Reading libyaml nodes as Feast reads YAML: scalars, nulls, booleans, mappings, errors with their
 * marks. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "config/config_int.h"

static void failv(struct loader *l, const yaml_mark_t *mark, const char *fmt, va_list ap) {
  int n = snprintf(l->err->msg, sizeof l->err->msg, "%s:%zu:%zu: ", l->name, mark->line + 1,
                   mark->column + 1);
  if (n < 0 || (size_t)n >= sizeof l->err->msg) return;
  vsnprintf(l->err->msg + n, sizeof l->err->msg - (size_t)n, fmt, ap);
}

int ldr_cfg_fail_at(struct loader *l, yaml_mark_t mark, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(l, &mark, fmt, ap);
  va_end(ap);
  return -1;
}

int ldr_cfg_fail(struct loader *l, const yaml_node_t *node, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(l, &node->start_mark, fmt, ap);
  va_end(ap);
  return -1;
}

yaml_node_t *ldr_cfg_node(struct loader *l, int id) { return yaml_document_get_node(&l->doc, id); }

const char *ldr_cfg_scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int is_plain(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* YAML 1.1 null as PyYAML's safe_load resolves it. */
int ldr_cfg_is_null(const yaml_node_t *n) {
  if (!is_plain(n)) return 0;
  const char *s = ldr_cfg_scalar(n);
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
    if (!strcmp(ldr_cfg_scalar(n), yes[i])) {
      *out = 1;
      return 1;
    }
    if (!strcmp(ldr_cfg_scalar(n), no[i])) {
      *out = 0;
      return 1;
    }
  }
  return 0;
}

int ldr_cfg_string(struct loader *l, const yaml_node_t *n, const char *field, char **out) {
  if (n->type != YAML_SCALAR_NODE || ldr_cfg_is_null(n))
    return ldr_cfg_fail(l, n, "%s: expected a string", field);
  if (n->data.scalar.length != strlen(ldr_cfg_scalar(n)))
    return ldr_cfg_fail(l, n, "%s: contains a NUL character", field);
  char *s = strdup(ldr_cfg_scalar(n));
  if (s == NULL) return ldr_cfg_fail(l, n, "%s: out of memory", field);
  free(*out);
  *out = s;
  return 0;
}

int ldr_cfg_long(struct loader *l, const yaml_node_t *n, const char *field, long min, long max,
                 long *out) {
  if (!is_plain(n)) return ldr_cfg_fail(l, n, "%s: expected an integer", field);
  const char *s = ldr_cfg_scalar(n);
  const char *p = s;
  if (*p == '+' || *p == '-') p++;
  if (*p < '0' || *p > '9')
    return ldr_cfg_fail(l, n, "%s: expected an integer, not '%s'", field, s);
  for (const char *q = p; *q; q++)
    if (*q < '0' || *q > '9')
      return ldr_cfg_fail(l, n, "%s: expected an integer, not '%s'", field, s);
  errno = 0;
  long v = strtol(s, NULL, 10);
  if (errno == ERANGE || v < min || v > max)
    return ldr_cfg_fail(l, n, "%s: %s is out of range [%ld, %ld]", field, s, min, max);
  *out = v;
  return 0;
}

int ldr_cfg_int(struct loader *l, const yaml_node_t *n, const char *field, int min, int max,
                int *out) {
  long v = 0;
  if (ldr_cfg_long(l, n, field, min, max, &v) != 0) return -1;
  *out = (int)v;
  return 0;
}

int ldr_cfg_bool(struct loader *l, const yaml_node_t *n, const char *field, int *out) {
  if (!parse_bool(n, out)) return ldr_cfg_fail(l, n, "%s: expected true or false", field);
  return 0;
}

/*
 * Walks the pairs of a mapping node, rejecting non-scalar and repeated keys.
 * Returns the number of pairs or -1; keys and values land in the arrays.
 */
int ldr_cfg_pairs(struct loader *l, const yaml_node_t *map, const char *field,
                  const yaml_node_t ***keys, const yaml_node_t ***values) {
  if (map->type != YAML_MAPPING_NODE) return ldr_cfg_fail(l, map, "%s: expected a mapping", field);
  yaml_node_pair_t *start = map->data.mapping.pairs.start;
  int n = (int)(map->data.mapping.pairs.top - start);
  *keys = calloc((size_t)n + 1, sizeof **keys);
  *values = calloc((size_t)n + 1, sizeof **values);
  if (*keys == NULL || *values == NULL) return ldr_cfg_fail(l, map, "%s: out of memory", field);
  for (int i = 0; i < n; i++) {
    const yaml_node_t *k = ldr_cfg_node(l, start[i].key);
    const yaml_node_t *v = ldr_cfg_node(l, start[i].value);
    if (k->type != YAML_SCALAR_NODE)
      return ldr_cfg_fail(l, k, "%s: keys must be plain strings", field);
    for (int j = 0; j < i; j++)
      if (!strcmp(ldr_cfg_scalar((*keys)[j]), ldr_cfg_scalar(k)))
        return ldr_cfg_fail(l, k, "%s: duplicate key '%s'", field, ldr_cfg_scalar(k));
    (*keys)[i] = k;
    (*values)[i] = v;
  }
  return n;
}

int ldr_cfg_join_dir(struct loader *l, const char *path, char **out) {
  if (path[0] == '/') {
    *out = strdup(path);
  } else {
    size_t len = strlen(l->dir) + 1 + strlen(path) + 1;
    *out = malloc(len);
    if (*out != NULL) snprintf(*out, len, "%s/%s", l->dir, path);
  }
  if (*out != NULL) return 0;
  yaml_mark_t start = {0, 0, 0};
  return ldr_cfg_fail_at(l, start, "out of memory");
}
