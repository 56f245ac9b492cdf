/* larder's own section, `larder:`, which Feast ignores. */
#define _GNU_SOURCE /* sched_getaffinity */
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/config_int.h"

int ldr_config_workers(const struct ldr_config *cfg) {
  if (cfg->workers > 0) return cfg->workers;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return 1;
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

static const char *const scope_names[] = {"read", "write", "admin"};

/* A list of scope names into LDR_SCOPE_* bits; at least one. */
static int load_scopes(struct loader *l, const yaml_node_t *n, const char *field, unsigned *out) {
  if (n->type != YAML_SEQUENCE_NODE || n->data.sequence.items.top == n->data.sequence.items.start)
    return ldr_cfg_fail(l, n, "%s: expected a list of scopes: read, write, admin", field);
  *out = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    const yaml_node_t *s = ldr_cfg_node(l, *it);
    unsigned bit = 0;
    for (unsigned i = 0; s->type == YAML_SCALAR_NODE && i < 3; i++)
      if (!strcmp(ldr_cfg_scalar(s), scope_names[i])) bit = 1u << i;
    if (bit == 0)
      return ldr_cfg_fail(l, s, "%s: expected read, write or admin%s%s%s", field,
                          s->type == YAML_SCALAR_NODE ? ", not '" : "",
                          s->type == YAML_SCALAR_NODE ? ldr_cfg_scalar(s) : "",
                          s->type == YAML_SCALAR_NODE ? "'" : "");
    *out |= bit;
  }
  return 0;
}

/* Adds a source of bearer tokens with the scopes they grant. */
static int add_token_source(struct loader *l, const yaml_node_t *at, char *file, char *env,
                            unsigned scopes) {
  struct ldr_config *c = l->cfg;
  struct ldr_token_source *s =
      realloc(c->token_sources, (c->n_token_sources + 1) * sizeof *c->token_sources);
  if (s == NULL) {
    free(file);
    free(env);
    return ldr_cfg_fail(l, at, "larder.auth: out of memory");
  }
  c->token_sources = s;
  s[c->n_token_sources].file = file;
  s[c->n_token_sources].env = env;
  s[c->n_token_sources].scopes = scopes;
  c->n_token_sources++;
  return 0;
}

/* A tokens_file (joined to the file's folder) or tokens_env value. */
static int token_place(struct loader *l, const char *section, const char *k, const yaml_node_t *v,
                       char **file, char **env) {
  char field[64], *given = NULL;
  snprintf(field, sizeof field, "%s.%s", section, k);
  if (!strcmp(k, "tokens_env")) return ldr_cfg_string(l, v, field, env);
  int rc = ldr_cfg_string(l, v, field, &given);
  if (rc == 0) rc = ldr_cfg_join_dir(l, given, file);
  free(given);
  return rc;
}

/* One entry of larder.auth.scoped: {tokens_file and/or tokens_env, scopes}. */
static int load_scoped_entry(struct loader *l, const yaml_node_t *n, size_t i) {
  const yaml_node_t **keys = NULL, **values = NULL;
  char section[48], *file = NULL, *env = NULL;
  unsigned scopes = 0;
  int have_scopes = 0, rc = 0;
  snprintf(section, sizeof section, "larder.auth.scoped[%zu]", i);
  int np = ldr_cfg_pairs(l, n, section, &keys, &values);
  if (np < 0) rc = -1;
  for (int k = 0; rc == 0 && k < np; k++) {
    const char *key = ldr_cfg_scalar(keys[k]);
    if (!strcmp(key, "tokens_file") || !strcmp(key, "tokens_env")) {
      rc = token_place(l, section, key, values[k], &file, &env);
    } else if (!strcmp(key, "scopes")) {
      char field[64];
      snprintf(field, sizeof field, "%s.scopes", section);
      rc = load_scopes(l, values[k], field, &scopes);
      have_scopes = 1;
    } else {
      rc = ldr_cfg_fail(l, keys[k], "%s: unknown key '%s' (tokens_file, tokens_env, scopes)",
                        section, key);
    }
  }
  if (rc == 0 && file == NULL && env == NULL)
    rc = ldr_cfg_fail(l, n, "%s: tokens_file or tokens_env is required", section);
  if (rc == 0 && !have_scopes) rc = ldr_cfg_fail(l, n, "%s.scopes: required", section);
  if (rc == 0 && file != NULL) {
    rc = add_token_source(l, n, file, NULL, scopes);
    file = NULL;
  }
  if (rc == 0 && env != NULL) {
    rc = add_token_source(l, n, NULL, env, scopes);
    env = NULL;
  }
  free(file);
  free(env);
  free(keys);
  free(values);
  return rc;
}

/* larder.auth: {tokens_file, tokens_env} grant read and write; scoped: [...] say what they grant.
 */
static int load_auth(struct loader *l, const yaml_node_t *n) {
  const yaml_node_t **keys = NULL, **values = NULL;
  int rc = 0;
  if (ldr_cfg_is_null(n)) return 0;
  int np = ldr_cfg_pairs(l, n, "larder.auth", &keys, &values);
  if (np < 0) rc = -1;
  for (int i = 0; rc == 0 && i < np; i++) {
    const char *k = ldr_cfg_scalar(keys[i]);
    if (!strcmp(k, "tokens_file") || !strcmp(k, "tokens_env")) {
      char *file = NULL, *env = NULL;
      rc = token_place(l, "larder.auth", k, values[i], &file, &env);
      if (rc == 0) rc = add_token_source(l, values[i], file, env, LDR_SCOPE_READ | LDR_SCOPE_WRITE);
    } else if (!strcmp(k, "scoped")) {
      const yaml_node_t *seq = values[i];
      if (seq->type != YAML_SEQUENCE_NODE)
        rc = ldr_cfg_fail(l, seq,
                          "larder.auth.scoped: expected a list of {tokens_file or "
                          "tokens_env, scopes}");
      size_t j = 0;
      for (yaml_node_item_t *it = seq->data.sequence.items.start;
           rc == 0 && seq->type == YAML_SEQUENCE_NODE && it < seq->data.sequence.items.top;
           it++, j++)
        rc = load_scoped_entry(l, ldr_cfg_node(l, *it), j);
    } else {
      rc = ldr_cfg_fail(l, keys[i],
                        "larder.auth: unknown key '%s' (tokens_file, tokens_env, scoped)", k);
    }
  }
  if (rc == 0 && l->cfg->n_token_sources == 0)
    rc = ldr_cfg_fail(l, n, "larder.auth: tokens_file, tokens_env or scoped is required");
  free(keys);
  free(values);
  return rc;
}

/* larder.tls: {cert, key, client_ca, client_scopes}; cert and key go together. */
static int load_tls(struct loader *l, const yaml_node_t *n) {
  const yaml_node_t **keys = NULL, **values = NULL;
  struct ldr_config *c = l->cfg;
  int rc = 0, have_scopes = 0;
  if (ldr_cfg_is_null(n)) return 0;
  int np = ldr_cfg_pairs(l, n, "larder.tls", &keys, &values);
  if (np < 0) rc = -1;
  for (int i = 0; rc == 0 && i < np; i++) {
    const char *k = ldr_cfg_scalar(keys[i]);
    char *given = NULL, **out = !strcmp(k, "cert")        ? &c->tls_cert
                                : !strcmp(k, "key")       ? &c->tls_key
                                : !strcmp(k, "client_ca") ? &c->tls_client_ca
                                                          : NULL;
    if (!strcmp(k, "client_scopes")) {
      rc = load_scopes(l, values[i], "larder.tls.client_scopes", &c->tls_client_scopes);
      have_scopes = 1;
    } else if (out == NULL) {
      rc = ldr_cfg_fail(l, keys[i],
                        "larder.tls: unknown key '%s' (cert, key, client_ca, client_scopes)", k);
    } else {
      char field[32];
      snprintf(field, sizeof field, "larder.tls.%s", k);
      rc = ldr_cfg_string(l, values[i], field, &given);
      if (rc == 0) rc = ldr_cfg_join_dir(l, given, out);
      free(given);
    }
  }
  if (rc == 0 && (c->tls_cert == NULL) != (c->tls_key == NULL))
    rc = ldr_cfg_fail(l, n, "larder.tls: cert and key are both required");
  if (rc == 0 && c->tls_client_ca != NULL && c->tls_cert == NULL)
    rc = ldr_cfg_fail(l, n, "larder.tls: client_ca needs cert and key");
  if (rc == 0 && have_scopes && c->tls_client_ca == NULL)
    rc = ldr_cfg_fail(l, n, "larder.tls.client_scopes: needs client_ca (mutual TLS)");
  free(keys);
  free(values);
  return rc;
}

static int load_log_format(struct loader *l, const yaml_node_t *v) {
  if (v->type != YAML_SCALAR_NODE)
    return ldr_cfg_fail(l, v, "larder.log_format: expected text or json");
  const char *s = ldr_cfg_scalar(v);
  if (strcmp(s, "json") && strcmp(s, "text"))
    return ldr_cfg_fail(l, v, "larder.log_format: expected text or json, not '%s'", s);
  l->cfg->log_json = !strcmp(s, "json");
  return 0;
}

static int load_log_level(struct loader *l, const yaml_node_t *v) {
  static const char *const levels[] = {"debug", "info", "warn", "error"};
  if (v->type != YAML_SCALAR_NODE) return ldr_cfg_fail(l, v, "larder.log_level: expected a level");
  for (int j = 0; j < 4; j++)
    if (!strcmp(ldr_cfg_scalar(v), levels[j])) {
      l->cfg->log_level = j;
      return 0;
    }
  return ldr_cfg_fail(l, v, "larder.log_level: expected debug, info, warn or error, not '%s'",
                      ldr_cfg_scalar(v));
}

/* The keys of `larder:`: where each goes, and its range. */
enum key_kind { K_INT, K_LONG, K_BOOL, K_LISTEN, K_OWN };
#define AT(member) offsetof(struct ldr_config, member)

static const struct larder_key {
  const char *key;
  enum key_kind kind;
  size_t offset;
  long min, max;
  int (*load)(struct loader *l, const yaml_node_t *v); /* K_OWN */
} larder_keys[] = {
    {"listen", K_LISTEN, AT(listen), 0, 0, NULL},
    {"workers", K_INT, AT(workers), 0, 1024, NULL},
    {"admin_rpcs", K_BOOL, AT(admin_rpcs), 0, 0, NULL},
    {"max_batch_rows", K_LONG, AT(max_batch_rows), 1, 10000000, NULL},
    {"max_message_bytes", K_LONG, AT(max_message_bytes), 1024, INT_MAX, NULL},
    {"max_join_keys", K_INT, AT(max_join_keys), 1, 100000, NULL},
    {"max_columns", K_INT, AT(max_columns), 1, 1000000, NULL},
    {"wait_for_backend_s", K_INT, AT(store.wait_for_backend_s), 0, 3600, NULL},
    {"grace_period_s", K_INT, AT(grace_period_s), 0, 3600, NULL},
    {"default_deadline_s", K_INT, AT(default_deadline_s), 0, 86400, NULL},
    {"receive_timeout_s", K_INT, AT(receive_timeout_s), 1, 3600, NULL},
    {"watch_max_s", K_INT, AT(watch_max_s), 1, 7 * 86400, NULL},
    {"read_only", K_BOOL, AT(read_only), 0, 0, NULL},
    {"enforce_ttl", K_BOOL, AT(enforce_ttl), 0, 0, NULL},
    {"metrics_listen", K_LISTEN, AT(metrics_listen), 0, 0, NULL},
    {"http_listen", K_LISTEN, AT(http_listen), 0, 0, NULL},
    {"http_max_connections", K_INT, AT(http_max_connections), 1, 1000000, NULL},
    {"log_format", K_OWN, 0, 0, 0, load_log_format},
    {"log_level", K_OWN, 0, 0, 0, load_log_level},
    {"tls", K_OWN, 0, 0, 0, load_tls},
    {"auth", K_OWN, 0, 0, 0, load_auth},
    {"keepalive_time_s", K_INT, AT(keepalive_time_s), 1, INT_MAX / 1000, NULL},
    {"keepalive_timeout_s", K_INT, AT(keepalive_timeout_s), 1, INT_MAX / 1000, NULL},
    {"max_connection_idle_s", K_INT, AT(max_connection_idle_s), 1, INT_MAX / 1000, NULL},
    {"max_connection_age_s", K_INT, AT(max_connection_age_s), 1, INT_MAX / 1000, NULL},
    {"max_connection_age_grace_s", K_INT, AT(max_connection_age_grace_s), 0, INT_MAX / 1000, NULL},
    {"max_concurrent_streams", K_INT, AT(max_concurrent_streams), 1, INT_MAX, NULL},
};

static int load_key(struct loader *l, const struct larder_key *k, const yaml_node_t *v) {
  char field[64];
  void *slot = (char *)l->cfg + k->offset;
  snprintf(field, sizeof field, "larder.%s", k->key);
  /* `workers:` with no value, or null: the default (docs/configuration.md). */
  if (ldr_cfg_is_null(v)) return 0;
  switch (k->kind) {
  case K_INT:
    return ldr_cfg_int(l, v, field, (int)k->min, (int)k->max, slot);
  case K_LONG:
    return ldr_cfg_long(l, v, field, k->min, k->max, slot);
  case K_BOOL:
    return ldr_cfg_bool(l, v, field, slot);
  case K_LISTEN:
    if (ldr_cfg_string(l, v, field, slot) != 0) return -1;
    if (!ldr_config_valid_listen(*(char **)slot))
      return ldr_cfg_fail(l, v, "%s: expected host:port, such as 0.0.0.0:6566 or [::]:6566", field);
    return 0;
  case K_OWN:
    return k->load(l, v);
  }
  return -1;
}

int ldr_cfg_load_larder(struct loader *l, const yaml_node_t *n) {
  const yaml_node_t **keys = NULL, **values = NULL;
  int rc = 0;
  if (ldr_cfg_is_null(n)) return 0;
  int np = ldr_cfg_pairs(l, n, "larder", &keys, &values);
  if (np < 0) rc = -1;
  for (int i = 0; rc == 0 && i < np; i++) {
    const char *k = ldr_cfg_scalar(keys[i]);
    size_t j = 0;
    while (j < sizeof larder_keys / sizeof larder_keys[0] && strcmp(larder_keys[j].key, k)) j++;
    if (j < sizeof larder_keys / sizeof larder_keys[0]) {
      rc = load_key(l, &larder_keys[j], values[i]);
    } else if (!ldr_cfg_store_larder_key(l, k)) {
      rc = ldr_cfg_fail(l, keys[i], "larder: unknown key '%s'", k);
    } else if (l->n_store_keys == (int)(sizeof l->store_keys / sizeof l->store_keys[0])) {
      rc = ldr_cfg_fail(l, keys[i], "larder: too many store settings");
    } else {
      /* A store's own key: loaded once online_store has said which store it is. */
      l->store_keys[l->n_store_keys] = keys[i];
      l->store_values[l->n_store_keys++] = values[i];
    }
  }
  free(keys);
  free(values);
  return rc;
}

void ldr_cfg_larder_defaults(struct ldr_config *c) {
  c->workers = 0;
  c->admin_rpcs = 0;
  c->max_batch_rows = 10000;
  c->max_message_bytes = 4194304;
  c->max_join_keys = 64;
  c->max_columns = 256;
  c->grace_period_s = 10;
  c->default_deadline_s = 30;
  c->receive_timeout_s = 10;
  c->watch_max_s = 3600;
  c->log_level = 1;
  c->enforce_ttl = 1;
  c->tls_client_scopes = LDR_SCOPE_READ | LDR_SCOPE_WRITE;
  c->keepalive_time_s = c->keepalive_timeout_s = c->max_connection_idle_s = -1;
  c->max_connection_age_s = c->max_connection_age_grace_s = -1;
  c->max_concurrent_streams = 100;
  c->http_max_connections = 1024;
  c->listen = strdup("0.0.0.0:6566");
}

void ldr_cfg_larder_destroy(struct ldr_config *c) {
  free(c->listen);
  free(c->metrics_listen);
  free(c->http_listen);
  free(c->tls_cert);
  free(c->tls_key);
  free(c->tls_client_ca);
  for (size_t i = 0; i < c->n_token_sources; i++) {
    free(c->token_sources[i].file);
    free(c->token_sources[i].env);
  }
  free(c->token_sources);
}
