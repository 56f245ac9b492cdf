/*
 * feature_store.yaml loading: Feast's substitution rules, every error path
 * with its file:line:column, and the defaults and values of good files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

/*
 * The loader knows no backend: these two schemas stand in for a file store
 * (Feast's default, "sqlite") and a server store with required keys, choices,
 * numbers, a null that clears and a check across keys. The real schemas are
 * tested beside their backends (tests/backends/test_<store>.c).
 */
struct file_opts {
  char *path;
  int flag;
};
struct server_opts {
  char *host, *database, *schema, *mode;
  int port;
  char *replica_mode; /* larder.replica_mode: a key the store declares under larder: */
  int pooled;         /* larder.pooled */
};
static const char *const modes[] = {"plain", "secure", NULL};
static const char *const cosine[] = {"cosine", NULL};
static const struct ldr_config_field file_fields[] = {
    {.key = "path", .kind = LDR_FIELD_PATH, .offset = offsetof(struct file_opts, path)},
    {.key = "flag", .kind = LDR_FIELD_BOOL, .offset = offsetof(struct file_opts, flag)},
    {.key = "vector_enabled", .kind = LDR_FIELD_FALSE_ONLY, .offset = LDR_NO_FIELD, .why = "no"},
    {.key = "similarity",
     .kind = LDR_FIELD_STRING,
     .offset = LDR_NO_FIELD,
     .choices = cosine,
     .why = "no"},
    {.key = "text_search_enabled",
     .kind = LDR_FIELD_FALSE_ONLY,
     .offset = LDR_NO_FIELD,
     .why = "no"},
    {.key = "enable_openai_compatible_store",
     .kind = LDR_FIELD_FALSE_ONLY,
     .offset = LDR_NO_FIELD,
     .why = "no"},
};
static int file_defaults(void *opts) {
  struct file_opts *o = opts;
  o->path = strdup("data/online.db");
  return o->path ? 0 : -1;
}
static const struct ldr_store_schema file_schema = {
    .name = "sqlite",
    .size = sizeof(struct file_opts),
    .fields = file_fields,
    .n_fields = sizeof file_fields / sizeof file_fields[0],
    .defaults = file_defaults,
};
static const struct ldr_config_field server_fields[] = {
    {.key = "host",
     .kind = LDR_FIELD_STRING,
     .offset = offsetof(struct server_opts, host),
     .required = 1},
    {.key = "database",
     .kind = LDR_FIELD_STRING,
     .offset = offsetof(struct server_opts, database),
     .required = 1},
    {.key = "schema",
     .kind = LDR_FIELD_STRING,
     .offset = offsetof(struct server_opts, schema),
     .null_clears = 1},
    {.key = "mode",
     .kind = LDR_FIELD_STRING,
     .offset = offsetof(struct server_opts, mode),
     .choices = modes},
    {.key = "port",
     .kind = LDR_FIELD_INT,
     .offset = offsetof(struct server_opts, port),
     .min = 1,
     .max = 65535},
    {.key = "pool", .kind = LDR_FIELD_INT, .offset = LDR_NO_FIELD, .min = 0, .max = 10},
};
static const struct ldr_config_field server_larder_fields[] = {
    {.key = "replica_mode",
     .kind = LDR_FIELD_STRING,
     .offset = offsetof(struct server_opts, replica_mode),
     .choices = modes},
    {.key = "pooled", .kind = LDR_FIELD_BOOL, .offset = offsetof(struct server_opts, pooled)},
};
static int server_defaults(void *opts) {
  struct server_opts *o = opts;
  o->port = 5432;
  o->schema = strdup("public");
  return o->schema ? 0 : -1;
}
static const char *server_check(const void *opts, char *buf, size_t cap) {
  const struct server_opts *o = opts;
  if (o->schema && !ldr_config_identifier(o->schema, 63)) {
    snprintf(buf, cap, "online_store.schema: '%s' is not an identifier", o->schema);
    return buf;
  }
  return NULL;
}
static const struct ldr_store_schema server_schema = {
    .name = "postgres",
    .size = sizeof(struct server_opts),
    .fields = server_fields,
    .n_fields = sizeof server_fields / sizeof server_fields[0],
    .defaults = server_defaults,
    .check = server_check,
    .larder_fields = server_larder_fields,
    .n_larder_fields = sizeof server_larder_fields / sizeof server_larder_fields[0],
};
static const struct ldr_store_schema *const stores[] = {&file_schema, &server_schema, NULL};

#define FILE_OPTS(cfg) ((const struct file_opts *)(cfg).store.opts)
#define SERVER_OPTS(cfg) ((const struct server_opts *)(cfg).store.opts)

/* A fixed environment, so the tests never depend on the caller's. */
static const char *lookup(const char *name) {
  static const char *const env[][2] = {
      {"A", "alpha"},
      {"A_B", "ab"},
      {"PROJ", "driver_ranking"},
      {"DB_PATH", "/var/lib/x.db"},
      {"W", "4"},
      {"BAD", "abc"},
      {"REF", "$A"},
      {"EMPTY", ""},
      {"A:-d", "colon"},
      {"PGPASS", "s3cr:et$x"},
  };
  for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
    if (!strcmp(name, env[i][0])) return env[i][1];
  return NULL;
}

static void expand_vars(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"$A", "alpha"},
      {"${A}", "alpha"},
      {"x${A}y", "xalphay"},
      {"$A_B", "ab"},           /* the longest word is the name */
      {"$A-B", "alpha-B"},      /* '-' ends a bare name */
      {"$$A", "$alpha"},        /* the first '$' starts no match */
      {"${UNDEF}", "${UNDEF}"}, /* undefined: left as it is */
      {"$UNDEF x", "$UNDEF x"},
      {"${}", "${}"},
      {"${A", "${A"}, /* no closing brace: no match */
      {"cost $", "cost $"},
      {"$-", "$-"},
      {"$REF", "$A"}, /* a value is not expanded again */
      {"${A}${A}", "alphaalpha"},
      {"${A:-d}", "colon"}, /* no default syntax: the name is "A:-d" */
      {"${EMPTY}|", "|"},
      {"# $A in a comment", "# alpha in a comment"},
      {"no dollar", "no dollar"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = 0;
    char *out = ldr_config_expand_vars(cases[i][0], strlen(cases[i][0]), lookup, &n);
    assert_non_null(out);
    if (strcmp(out, cases[i][1]) != 0)
      fail_msg("'%s' -> '%s', want '%s'", cases[i][0], out, cases[i][1]);
    assert_int_equal(n, strlen(cases[i][1]));
    free(out);
  }
}

static int load(const char *text, struct ldr_config *cfg, struct ldr_config_error *err) {
  return ldr_config_load_text("fs.yaml", "/repo", text, strlen(text), lookup, stores, cfg, err);
}

static void errors(void **state) {
  (void)state;
  /* Each message starts with file:line:column (1-based, after substitution). */
  static const char *const cases[][2] = {
      {"", "fs.yaml:1:1: empty file"},
      {"project: [a\n", "fs.yaml:2:1: did not find expected ',' or ']'"},
      {"registry: r.db\n", "fs.yaml:1:1: project: required"},
      {"- a\n- b\n", "fs.yaml:1:1: feature_store.yaml: expected a mapping"},
      {"project: my-proj\n", "fs.yaml:1:10: project: 'my-proj' must be letters"},
      {"project: _hidden\n", "fs.yaml:1:10: project: '_hidden' must be letters"},
      {"project: ${UNDEF}\n", "fs.yaml:1:10: project: '${UNDEF}' must be letters"},
      {"project:\n", "fs.yaml:1:9: project: expected a string"},
      {"project: a\nproject: b\n", "fs.yaml:2:1: feature_store.yaml: duplicate key 'project'"},
      {"project: p\n---\nproject: q\n", "fs.yaml:2:1: expected a single document"},
      {"project: p\nonline_store:\n  type: redis\n",
       "fs.yaml:3:9: online_store.type: the 'redis' online store is not served"},
      {"project: p\nonline_store:\n  type: cassandra_v9\n",
       "fs.yaml:3:9: online_store.type: unknown online store type 'cassandra_v9'"},
      {"project: p\nonline_store: none\n", "fs.yaml:2:15: online_store: 'none' disables"},
      {"project: p\nonline_store: NULL_STORE\n",
       "fs.yaml:2:15: online_store: unknown online store"},
      {"project: p\nonline_store:\n  type: sqlite\n  pathh: x.db\n",
       "fs.yaml:4:3: online_store: unknown key 'pathh' for the sqlite store"},
      {"project: p\nonline_store:\n  path: [a]\n",
       "fs.yaml:3:9: online_store.path: expected a string"},
      {"project: p\nonline_store:\n  path: ''\n",
       "fs.yaml:3:9: online_store.path: must not be empty"},
      {"project: p\nonline_store:\n  vector_enabled: true\n",
       "fs.yaml:3:19: online_store.vector_enabled: only false is accepted"},
      {"project: p\nonline_store:\n  similarity: l2\n",
       "fs.yaml:3:15: online_store.similarity: only 'cosine' is accepted"},
      {"project: p\nonline_store: [sqlite]\n", "fs.yaml:2:15: online_store: expected a mapping"},
      {"project: p\nentity_key_serialization_version: three\n",
       "fs.yaml:2:35: entity_key_serialization_version: expected an integer, not 'three'"},
      {"project: p\nentity_key_serialization_version: '3'\n",
       "fs.yaml:2:35: entity_key_serialization_version: expected an integer"},
      {"project: p\nentity_key_serialization_version: -1\n",
       "fs.yaml:2:35: entity_key_serialization_version: -1 is out of range"},
      {"project: p\nlarder: [1]\n", "fs.yaml:2:9: larder: expected a mapping"},
      {"project: p\nlarder:\n  workers: many\n",
       "fs.yaml:3:12: larder.workers: expected an integer"},
      {"project: p\nlarder:\n  workers: ${BAD}\n",
       "fs.yaml:3:12: larder.workers: expected an integer, not 'abc'"},
      {"project: p\nlarder:\n  workers: 100000\n",
       "fs.yaml:3:12: larder.workers: 100000 is out of range"},
      {"project: p\nlarder:\n  metrics: on\n", "fs.yaml:3:3: larder: unknown key 'metrics'"},
      {"project: p\nlarder:\n  admin_rpcs: maybe\n",
       "fs.yaml:3:15: larder.admin_rpcs: expected true or false"},
      {"project: p\nlarder:\n  listen: nope\n", "fs.yaml:3:11: larder.listen: expected host:port"},
      {"project: p\nlarder:\n  listen: '[::]'\n",
       "fs.yaml:3:11: larder.listen: expected host:port"},
      {"project: p\nlarder:\n  listen: h:70000\n",
       "fs.yaml:3:11: larder.listen: expected host:port"},
      {"project: p\nlarder:\n  max_message_bytes: 10\n",
       "fs.yaml:3:22: larder.max_message_bytes: 10 is out of range"},
      {"project: p\nlarder:\n  max_batch_rows: 0\n",
       "fs.yaml:3:19: larder.max_batch_rows: 0 is out of range"},
      {"project: p\nlarder:\n  grace_period_s: -1\n",
       "fs.yaml:3:19: larder.grace_period_s: -1 is out of range"},
      {"project: p\nlarder:\n  log_level: loud\n",
       "fs.yaml:3:14: larder.log_level: expected debug, info, warn or error, not 'loud'"},
      {"project: p\nlarder:\n  log_level: [x]\n",
       "fs.yaml:3:14: larder.log_level: expected a level"},
      {"project: p\nregistry: [x]\n", "fs.yaml:2:11: registry: expected a path or a mapping"},
      {"project: pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp\n",
       "fs.yaml:1:10: project: longer than 58 characters"},
      /* 59 characters: "<project>_<view>" could not be 60 bytes with any view. */
      {"project: p2345678901234567890123456789012345678901234567890123456789\n",
       "fs.yaml:1:10: project: longer than 58 characters"},
      {"project: p\n  bad indent: x\n", "fs.yaml:2:13: mapping values are not allowed"},
      {"project: p\nonline_store:\n  type: postgres\n  host: h\n",
       "fs.yaml:3:3: online_store.database: required for the postgres store"},
      {"project: p\nonline_store: postgres\n",
       "fs.yaml:2:15: online_store.host: required for the postgres store"},
      {"project: p\nonline_store:\n  type: postgres\n  path: x.db\n",
       "fs.yaml:4:3: online_store: unknown key 'path' for the postgres store"},
      {"project: p\nonline_store:\n  type: postgres\n  mode: always\n",
       "fs.yaml:4:9: online_store.mode: 'always' is not one of: plain, secure"},
      {"project: p\nonline_store:\n  type: postgres\n  pool: 11\n",
       "fs.yaml:4:9: online_store.pool: 11 is out of range"},
      {"project: p\nonline_store:\n  type: postgres\n  port: 99999\n",
       "fs.yaml:4:9: online_store.port: 99999 is out of range"},
      {"project: p\nonline_store:\n  type: postgres\n  host: h\n  database: d\n  schema: "
       "my-schema\n",
       "fs.yaml:3:3: online_store.schema: 'my-schema' is not an identifier"},
      {"project: p\nonline_store:\n  type: sqlite\n  flag: sometimes\n",
       "fs.yaml:4:9: online_store.flag: expected true or false"},
      {"project: p\nonline_store:\n  type: mysql\n",
       "fs.yaml:3:9: online_store.type: the 'mysql' online store is not served by this build of "
       "larder (it serves: sqlite, postgres)"},
      {"project: p\nonline_store:\n  type: "
       "feast.infra.online_stores.mysql_online_store.mysql.MySQLOnlineStore\n",
       "fs.yaml:3:9: online_store.type: the 'mysql' online store is not served by this build"},
      {"project: p\nlarder:\n  wait_for_backend_s: forever\n",
       "fs.yaml:3:23: larder.wait_for_backend_s: expected an integer"},
      {"project: p\nregistry:\n  path: r.db\n  cache_ttl_seconds: -1\n",
       "fs.yaml:4:22: registry.cache_ttl_seconds: -1 is out of range"},
      {"project: p\nlarder:\n  enforce_ttl: sometimes\n",
       "fs.yaml:3:16: larder.enforce_ttl: expected true or false"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ldr_config cfg;
    struct ldr_config_error err;
    int rc = load(cases[i][0], &cfg, &err);
    if (rc == 0) fail_msg("case %zu loaded, want error '%s'", i, cases[i][1]);
    if (strncmp(err.msg, cases[i][1], strlen(cases[i][1])) != 0)
      fail_msg("case %zu:\n got  '%s'\n want '%s...'", i, err.msg, cases[i][1]);
    ldr_config_destroy(&cfg);
  }
}

static void defaults(void **state) {
  (void)state;
  struct ldr_config cfg;
  struct ldr_config_error err;
  assert_int_equal(load("project: driver_ranking\n", &cfg, &err), 0);
  assert_string_equal(cfg.project, "driver_ranking");
  assert_string_equal(cfg.store.project, "driver_ranking");
  assert_ptr_equal(cfg.store.schema, &file_schema);
  assert_string_equal(cfg.store.type_name, "sqlite");
  assert_string_equal(FILE_OPTS(cfg)->path, "/repo/data/online.db");
  assert_int_equal(cfg.store.key_version, 3);
  assert_null(cfg.registry);
  assert_string_equal(cfg.listen, "0.0.0.0:6566");
  assert_int_equal(cfg.workers, 0);
  assert_int_equal(cfg.admin_rpcs, 0);
  assert_int_equal(cfg.max_batch_rows, 10000);
  assert_int_equal(cfg.max_message_bytes, 4194304);
  assert_int_equal(cfg.grace_period_s, 10);
  assert_int_equal(cfg.default_deadline_s, 30);
  assert_int_equal(cfg.log_level, 1);
  assert_int_equal(cfg.enforce_ttl, 1);
  assert_null(cfg.registry_path);
  assert_null(cfg.registry_unsupported);
  ldr_config_destroy(&cfg);
  /* The longest project: 58 characters (one-character views make 60-byte tables). */
  static const char longest[] =
      "project: p234567890123456789012345678901234567890123456789012345678\n";
  if (load(longest, &cfg, &err) != 0) fail_msg("%s", err.msg);
  assert_int_equal(strlen(cfg.project), 58);
  ldr_config_destroy(&cfg);
}

/* Where ServingService finds the registry, and the registries it cannot read. */
static void registries(void **state) {
  (void)state;
  static const struct {
    const char *text, *path, *unsupported;
    int ttl;
  } cases[] = {
      {"project: p\nregistry: data/registry.db\n", "/repo/data/registry.db", NULL, 600},
      {"project: p\nregistry: /abs/r.db\n", "/abs/r.db", NULL, 600},
      {"project: p\nregistry: file:///abs/r.db\n", "/abs/r.db", NULL, 600},
      {"project: p\nregistry:\n  path: r.db\n  cache_ttl_seconds: 5\n  cache_mode: sync\n",
       "/repo/r.db", NULL, 5},
      {"project: p\nregistry:\n  registry_type: file\n  path: r.db\n  cache_ttl_seconds: 0\n",
       "/repo/r.db", NULL, 0},
      {"project: p\nregistry: s3://bucket/registry.pb\n", NULL,
       "registry.path: a location of the scheme 's3'", 600},
      {"project: p\nregistry:\n  registry_type: sql\n  path: postgresql://u:p@h/db\n",
       "postgresql://u:p@h/db", NULL, 600},
      {"project: p\nregistry:\n  registry_type: sql\n  path: mysql://u:p@h/db\n  read_path: "
       "mysql://u:p@h/ro\n  cache_mode: thread\n  cache_ttl_seconds: 1\n",
       "mysql://u:p@h/ro", NULL, 1},
      {"project: p\nregistry:\n  registry_type: sql\n  path: postgresq://u:p@h/db\n", NULL,
       "registry.path: the scheme 'postgresq' is not a database", 600},
      /* Text before "://" that is no scheme is not quoted back. */
      {"project: p\nregistry:\n  registry_type: sql\n  path: u:p@h/db?x=y://z\n", NULL,
       "registry.path: an SQL registry needs a database URL", 600},
      {"project: p\nregistry:\n  registry_type: sql\n  path: sqlite://\n", NULL,
       "registry.path: an in-memory SQLite registry", 600},
      {"project: p\nregistry:\n  registry_type: snowflake.registry\n  path: x\n", NULL,
       "registry.registry_type 'snowflake.registry'", 600},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ldr_config cfg;
    struct ldr_config_error err;
    if (load(cases[i].text, &cfg, &err) != 0) fail_msg("case %zu: %s", i, err.msg);
    if (cases[i].path)
      assert_string_equal(cfg.registry_path, cases[i].path);
    else
      assert_null(cfg.registry_path);
    if (cases[i].unsupported) {
      assert_non_null(strstr(cfg.registry_unsupported, cases[i].unsupported));
      /* What callers are told never holds the location itself. */
      assert_null(strstr(cfg.registry_unsupported, "bucket"));
      assert_null(strstr(cfg.registry_unsupported, "u:p@h"));
    } else
      assert_null(cfg.registry_unsupported);
    assert_int_equal(cfg.registry_cache_ttl_s, cases[i].ttl);
    ldr_config_destroy(&cfg);
  }
  struct ldr_config cfg;
  struct ldr_config_error err;
  assert_int_equal(load("project: p\nlarder:\n  enforce_ttl: false\n", &cfg, &err), 0);
  assert_int_equal(cfg.enforce_ttl, 0);
  ldr_config_destroy(&cfg);
}

/* The service-mesh settings of the larder section: paths, tokens, HTTP/2. */
static void mesh_settings(void **state) {
  (void)state;
  struct ldr_config cfg;
  struct ldr_config_error err;
  assert_int_equal(load("project: p\n", &cfg, &err), 0);
  assert_null(cfg.metrics_listen);
  assert_null(cfg.tls_cert);
  assert_int_equal(cfg.n_token_sources, 0);
  assert_int_equal(cfg.tls_client_scopes, LDR_SCOPE_READ | LDR_SCOPE_WRITE);
  assert_int_equal(cfg.log_json, 0);
  assert_int_equal(cfg.keepalive_time_s, -1);
  assert_int_equal(cfg.max_connection_idle_s, -1);
  assert_int_equal(cfg.max_concurrent_streams, 100);
  ldr_config_destroy(&cfg);

  assert_int_equal(load("project: p\nlarder:\n  metrics_listen: 127.0.0.1:9090\n"
                        "  log_format: json\n"
                        "  tls: {cert: tls/server.pem, key: /etc/k.pem, client_ca: ca.pem}\n"
                        "  auth: {tokens_file: tokens.txt, tokens_env: LARDER_TOKENS}\n"
                        "  keepalive_time_s: 30\n  keepalive_timeout_s: 5\n"
                        "  max_connection_idle_s: 300\n  max_connection_age_s: 3600\n"
                        "  max_connection_age_grace_s: 0\n  max_concurrent_streams: 64\n"
                        "  default_deadline_s: 0\n",
                        &cfg, &err),
                   0);
  assert_string_equal(cfg.metrics_listen, "127.0.0.1:9090");
  assert_int_equal(cfg.log_json, 1);
  assert_string_equal(cfg.tls_cert, "/repo/tls/server.pem");
  assert_string_equal(cfg.tls_key, "/etc/k.pem");
  assert_string_equal(cfg.tls_client_ca, "/repo/ca.pem");
  assert_int_equal(cfg.n_token_sources, 2);
  assert_string_equal(cfg.token_sources[0].file, "/repo/tokens.txt");
  assert_null(cfg.token_sources[0].env);
  assert_string_equal(cfg.token_sources[1].env, "LARDER_TOKENS");
  assert_int_equal(cfg.token_sources[1].scopes, LDR_SCOPE_READ | LDR_SCOPE_WRITE);
  assert_int_equal(cfg.keepalive_time_s, 30);
  assert_int_equal(cfg.keepalive_timeout_s, 5);
  assert_int_equal(cfg.max_connection_idle_s, 300);
  assert_int_equal(cfg.max_connection_age_s, 3600);
  assert_int_equal(cfg.max_connection_age_grace_s, 0);
  assert_int_equal(cfg.max_concurrent_streams, 64);
  assert_int_equal(cfg.default_deadline_s, 0);
  ldr_config_destroy(&cfg);

  static const struct {
    const char *text, *msg;
  } bad[] = {
      {"larder:\n  metrics_listen: 9090\n", "3:19: larder.metrics_listen: expected host:port"},
      {"larder:\n  log_format: xml\n", "3:15: larder.log_format: expected text or json, not 'xml'"},
      {"larder:\n  tls: {cert: a.pem}\n", "3:8: larder.tls: cert and key are both required"},
      {"larder:\n  tls: {key: k.pem, client_ca: c.pem}\n", "larder.tls: cert and key"},
      {"larder:\n  tls: {cert: a, key: b, ca: c}\n", "larder.tls: unknown key 'ca'"},
      {"larder:\n  auth: {}\n", "larder.auth: tokens_file, tokens_env or scoped is required"},
      {"larder:\n  auth: {scoped: [{tokens_file: t, scopes: [read, root]}]}\n",
       "larder.auth.scoped[0].scopes: expected read, write or admin, not 'root'"},
      {"larder:\n  auth: {scoped: [{scopes: [read]}]}\n",
       "larder.auth.scoped[0]: tokens_file or tokens_env is required"},
      {"larder:\n  auth: {scoped: [{tokens_env: X}]}\n", "larder.auth.scoped[0].scopes: required"},
      {"larder:\n  auth: {scoped: [{tokens_env: X, scopes: []}]}\n",
       "larder.auth.scoped[0].scopes: expected a list of scopes"},
      {"larder:\n  auth: {scoped: {tokens_env: X}}\n", "larder.auth.scoped: expected a list"},
      {"larder:\n  tls: {cert: a, key: b, client_scopes: [read]}\n",
       "larder.tls.client_scopes: needs client_ca"},
      {"larder:\n  max_join_keys: 0\n", "larder.max_join_keys: 0 is out of range"},
      {"larder:\n  max_columns: -1\n", "larder.max_columns: -1 is out of range"},
      {"larder:\n  receive_timeout_s: 0\n", "larder.receive_timeout_s: 0 is out of range"},
      {"larder:\n  watch_max_s: 0\n", "larder.watch_max_s: 0 is out of range"},
      {"larder:\n  read_only: perhaps\n", "larder.read_only: expected true or false"},
      {"larder:\n  auth: {tokens: x}\n", "larder.auth: unknown key 'tokens'"},
      {"larder:\n  keepalive_time_s: 0\n", "larder.keepalive_time_s"},
      {"larder:\n  max_concurrent_streams: -3\n", "larder.max_concurrent_streams"},
      {"larder:\n  default_deadline_s: -1\n", "larder.default_deadline_s"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[256];
    snprintf(text, sizeof text, "project: p\n%s", bad[i].text);
    if (load(text, &cfg, &err) == 0) fail_msg("case %zu loaded", i);
    ldr_config_destroy(&cfg); /* a failed load frees with destroy too */
    if (strstr(err.msg, bad[i].msg) == NULL) fail_msg("case %zu: %s", i, err.msg);
  }
}

/* Scoped tokens, client certificate scopes and the limits of issue 13. */
static void scopes_and_limits(void **state) {
  (void)state;
  struct ldr_config cfg;
  struct ldr_config_error err;
  assert_int_equal(load("project: p\n", &cfg, &err), 0);
  assert_int_equal(cfg.admin_rpcs, 0);
  assert_int_equal(cfg.max_join_keys, 64);
  assert_int_equal(cfg.max_columns, 256);
  assert_int_equal(cfg.receive_timeout_s, 10);
  assert_int_equal(cfg.watch_max_s, 3600);
  assert_int_equal(cfg.read_only, 0);
  ldr_config_destroy(&cfg);
  /* A key with no value, or null, keeps its default. */
  assert_int_equal(load("project: p\nlarder:\n  workers:\n  max_batch_rows: ~\n  admin_rpcs: null\n"
                        "  log_level: Null\n  metrics_listen: NULL\n  http_listen:\n",
                        &cfg, &err),
                   0);
  assert_int_equal(cfg.workers, 0);
  assert_int_equal(cfg.max_batch_rows, 10000);
  assert_int_equal(cfg.admin_rpcs, 0);
  assert_int_equal(cfg.log_level, 1);
  assert_null(cfg.metrics_listen);
  assert_null(cfg.http_listen);
  ldr_config_destroy(&cfg);
  if (load("project: p\nlarder:\n  auth:\n    tokens_env: RW\n    scoped:\n"
           "      - {tokens_file: ro.txt, scopes: [read]}\n"
           "      - {tokens_env: ADM, tokens_file: /adm.txt, scopes: [admin, read, write]}\n"
           "  tls: {cert: c.pem, key: k.pem, client_ca: ca.pem, client_scopes: [read]}\n"
           "  max_join_keys: 8\n  max_columns: 1000\n  receive_timeout_s: 2\n"
           "  watch_max_s: 60\n  read_only: true\n  admin_rpcs: true\n",
           &cfg, &err) != 0)
    fail_msg("%s", err.msg);
  assert_int_equal(cfg.n_token_sources, 4);
  assert_string_equal(cfg.token_sources[0].env, "RW");
  assert_int_equal(cfg.token_sources[0].scopes, LDR_SCOPE_READ | LDR_SCOPE_WRITE);
  assert_string_equal(cfg.token_sources[1].file, "/repo/ro.txt");
  assert_int_equal(cfg.token_sources[1].scopes, LDR_SCOPE_READ);
  assert_string_equal(cfg.token_sources[2].file, "/adm.txt");
  assert_string_equal(cfg.token_sources[3].env, "ADM");
  assert_int_equal(cfg.token_sources[3].scopes, LDR_SCOPE_READ | LDR_SCOPE_WRITE | LDR_SCOPE_ADMIN);
  assert_int_equal(cfg.tls_client_scopes, LDR_SCOPE_READ);
  assert_int_equal(cfg.max_join_keys, 8);
  assert_int_equal(cfg.max_columns, 1000);
  assert_int_equal(cfg.receive_timeout_s, 2);
  assert_int_equal(cfg.watch_max_s, 60);
  assert_int_equal(cfg.read_only, 1);
  assert_int_equal(cfg.admin_rpcs, 1);
  ldr_config_destroy(&cfg);
}

static void feast_file_with_substitution(void **state) {
  (void)state;
  static const char text[] = "project: ${PROJ}\n"
                             "registry: data/registry.db\n"
                             "provider: local\n"
                             "online_store:\n"
                             "  type: sqlite\n"
                             "  path: $DB_PATH\n"
                             "  vector_enabled: false\n"
                             "  similarity: cosine\n"
                             "  text_search_enabled: no\n"
                             "  enable_openai_compatible_store: ~\n"
                             "offline_store:\n"
                             "  type: file\n"
                             "batch_engine: local\n"
                             "auth:\n"
                             "  type: no_auth\n"
                             "entity_key_serialization_version: 2\n"
                             "larder:\n"
                             "  listen: '[::]:7000'\n"
                             "  workers: ${W}\n"
                             "  admin_rpcs: false\n"
                             "  max_batch_rows: 500\n"
                             "  max_message_bytes: 1048576\n"
                             "  grace_period_s: 0\n"
                             "  log_level: debug\n";
  struct ldr_config cfg;
  struct ldr_config_error err;
  if (load(text, &cfg, &err) != 0) fail_msg("%s", err.msg);
  assert_string_equal(cfg.project, "driver_ranking");
  assert_string_equal(cfg.registry, "data/registry.db");
  assert_string_equal(FILE_OPTS(cfg)->path, "/var/lib/x.db");
  assert_int_equal(cfg.store.key_version, 2);
  assert_string_equal(cfg.listen, "[::]:7000");
  assert_int_equal(cfg.workers, 4);
  assert_int_equal(cfg.admin_rpcs, 0);
  assert_int_equal(cfg.max_batch_rows, 500);
  assert_int_equal(cfg.max_message_bytes, 1048576);
  assert_int_equal(cfg.grace_period_s, 0);
  assert_int_equal(cfg.log_level, 0);
  ldr_config_destroy(&cfg);
}

static void store_forms(void **state) {
  (void)state;
  static const char *const texts[] = {
      "project: p\nonline_store: sqlite\n",
      "project: p\nonline_store: feast.infra.online_stores.sqlite.SqliteOnlineStore\n",
      "project: p\nonline_store:\n  type: feast.infra.online_stores.sqlite.SqliteOnlineStore\n",
      "project: p\nonline_store:\n  path: data/online.db\n", /* type defaults to sqlite */
      "project: p\nonline_store:\n",                         /* null: the default store */
      "project: p\nonline_store:\n  path:\n",                /* null: the default path */
      ("project: p\nregistry:\n  registry_type: file\n  path: data/registry.db\n  "
       "cache_ttl_seconds: 60\n"),
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    struct ldr_config cfg;
    struct ldr_config_error err;
    if (load(texts[i], &cfg, &err) != 0) fail_msg("case %zu: %s", i, err.msg);
    assert_ptr_equal(cfg.store.schema, &file_schema);
    assert_string_equal(FILE_OPTS(cfg)->path, "/repo/data/online.db");
    ldr_config_destroy(&cfg);
  }
}

/* A store's keys: Feast's class paths name it, defaults stay, null clears. */
static void server_store(void **state) {
  (void)state;
  struct ldr_config cfg;
  struct ldr_config_error err;
  static const char text[] =
      "project: p\nonline_store:\n  type: "
      "feast.infra.online_stores.contrib.postgres.PostgreSQLOnlineStore\n"
      "  host: db.internal\n  database: feast\n  pool: 2\nlarder:\n  wait_for_backend_s: 30\n";
  if (load(text, &cfg, &err) != 0) fail_msg("%s", err.msg);
  assert_ptr_equal(cfg.store.schema, &server_schema);
  assert_string_equal(cfg.store.type_name, "postgres");
  assert_string_equal(SERVER_OPTS(cfg)->host, "db.internal");
  assert_int_equal(SERVER_OPTS(cfg)->port, 5432);
  assert_string_equal(SERVER_OPTS(cfg)->schema, "public");
  assert_null(SERVER_OPTS(cfg)->mode);
  assert_int_equal(cfg.store.wait_for_backend_s, 30);
  ldr_config_destroy(&cfg);
  if (load("project: p\nonline_store:\n  type: postgres\n  host: ${PGPASS}\n  database: d\n"
           "  schema:\n  mode: secure\n  port: 6543\n",
           &cfg, &err) != 0)
    fail_msg("%s", err.msg);
  assert_string_equal(SERVER_OPTS(cfg)->host, "s3cr:et$x"); /* from the environment */
  assert_null(SERVER_OPTS(cfg)->schema);                    /* null: cleared */
  assert_string_equal(SERVER_OPTS(cfg)->mode, "secure");
  assert_int_equal(SERVER_OPTS(cfg)->port, 6543);
  ldr_config_destroy(&cfg);
  /* A build without a default store needs the type said. */
  static const struct ldr_store_schema *const only_server[] = {&server_schema, NULL};
  assert_int_equal(
      ldr_config_load_text("fs.yaml", "/repo", "project: p\n", 11, lookup, only_server, &cfg, &err),
      -1);
  assert_non_null(strstr(err.msg, "online_store.type: required"));
  ldr_config_destroy(&cfg);
}

/* A store's own keys under larder: (DESIGN §5, issue 15): loaded into its
 * options wherever `larder:` stands in the file, refused for another store
 * with the store they belong to named, and checked like online_store keys. */
static void store_keys_under_larder(void **state) {
  (void)state;
  struct ldr_config cfg;
  struct ldr_config_error err;
  if (load("project: p\nlarder:\n  pooled: true\n  replica_mode: secure\n  workers: 3\n"
           "online_store:\n  type: postgres\n  host: h\n  database: d\n",
           &cfg, &err) != 0)
    fail_msg("%s", err.msg);
  assert_string_equal(SERVER_OPTS(cfg)->replica_mode, "secure");
  assert_int_equal(SERVER_OPTS(cfg)->pooled, 1);
  assert_int_equal(cfg.workers, 3);
  ldr_config_destroy(&cfg);
  if (load("project: p\nonline_store:\n  type: postgres\n  host: h\n  database: d\n"
           "larder:\n  replica_mode: null\n",
           &cfg, &err) != 0)
    fail_msg("%s", err.msg);
  assert_null(SERVER_OPTS(cfg)->replica_mode);
  assert_int_equal(SERVER_OPTS(cfg)->pooled, 0);
  ldr_config_destroy(&cfg);
  static const char *const cases[][2] = {
      {"project: p\nlarder:\n  pooled: true\n",
       "fs.yaml:3:3: larder.pooled: a setting of the postgres store, and online_store.type is "
       "sqlite"},
      {"project: p\nonline_store:\n  type: postgres\n  host: h\n  database: d\n"
       "larder:\n  replica_mode: loud\n",
       "fs.yaml:7:17: larder.replica_mode: 'loud' is not one of: plain, secure"},
      {"project: p\nonline_store:\n  type: postgres\n  host: h\n  database: d\n"
       "larder:\n  pooled: 3\n",
       "fs.yaml:7:11: larder.pooled: expected true or false"},
      {"project: p\nonline_store:\n  type: postgres\n  host: h\n  database: d\n"
       "larder:\n  poolled: true\n",
       "fs.yaml:7:3: larder: unknown key 'poolled'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (load(cases[i][0], &cfg, &err) == 0) fail_msg("case %zu loaded", i);
    if (strcmp(err.msg, cases[i][1]) != 0)
      fail_msg("case %zu:\n got  '%s'\n want '%s'", i, err.msg, cases[i][1]);
    ldr_config_destroy(&cfg);
  }
  /* A build that serves no store declaring the key: it is unknown. */
  static const struct ldr_store_schema *const only_file[] = {&file_schema, NULL};
  static const char text[] = "project: p\nlarder:\n  pooled: true\n";
  assert_int_equal(ldr_config_load_text("fs.yaml", "/repo", text, sizeof text - 1, lookup,
                                        only_file, &cfg, &err),
                   -1);
  assert_string_equal(err.msg, "fs.yaml:3:3: larder: unknown key 'pooled'");
  ldr_config_destroy(&cfg);
}

static void file_errors(void **state) {
  (void)state;
  struct ldr_config cfg;
  struct ldr_config_error err;
  assert_int_equal(ldr_config_load("/nonexistent/feature_store.yaml", stores, &cfg, &err), -1);
  assert_string_equal(err.msg, "/nonexistent/feature_store.yaml: No such file or directory");
  ldr_config_destroy(&cfg);
}

static void relative_to_the_file(void **state) {
  (void)state;
  char dir[] = "/tmp/larder-config-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/feature_store.yaml", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("project: p\nonline_store:\n  path: sub/online.db\n", f);
  fclose(f);
  struct ldr_config cfg;
  struct ldr_config_error err;
  if (ldr_config_load(path, stores, &cfg, &err) != 0) fail_msg("%s", err.msg);
  char want[300];
  snprintf(want, sizeof want, "%s/sub/online.db", dir);
  assert_string_equal(FILE_OPTS(cfg)->path, want);
  assert_string_equal(cfg.file, path);
  ldr_config_destroy(&cfg);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(expand_vars),
      cmocka_unit_test(errors),
      cmocka_unit_test(defaults),
      cmocka_unit_test(registries),
      cmocka_unit_test(mesh_settings),
      cmocka_unit_test(scopes_and_limits),
      cmocka_unit_test(feast_file_with_substitution),
      cmocka_unit_test(store_forms),
      cmocka_unit_test(server_store),
      cmocka_unit_test(store_keys_under_larder),
      cmocka_unit_test(file_errors),
      cmocka_unit_test(relative_to_the_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
