/* backends/postgres.c: the online_store keys of Feast's PostgreSQL store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "backends/postgres.h"
#include "tests/backends/store_options.h"

#define OPTS(cfg) ((const struct ldr_postgres_options *)(cfg).store.opts)

static void feast_keys_and_defaults(void **state) {
  (void)state;
  static const char *const types[] = {
      "postgres", "feast.infra.online_stores.postgres_online_store.postgres.PostgreSQLOnlineStore",
      "feast.infra.online_stores.contrib.postgres.PostgreSQLOnlineStore"};
  setenv("PGPASS", "s3cr:et$x", 1);
  for (size_t i = 0; i < 3; i++) {
    char text[512];
    snprintf(text, sizeof text,
             "project: p\nonline_store:\n  type: %s\n  host: db.internal\n  database: feast\n"
             "  user: feast\n  password: ${PGPASS}\n  min_conn: 2\n  max_conn: 20\n"
             "  conn_type: pool\n  vector_enabled: false\n",
             types[i]);
    struct ldr_config cfg;
    struct ldr_config_error err;
    if (load_for(&ldr_postgres_schema, text, &cfg, &err) != 0) fail_msg("case %zu: %s", i, err.msg);
    assert_string_equal(cfg.store.type_name, "postgres");
    assert_string_equal(OPTS(cfg)->host, "db.internal");
    assert_int_equal(OPTS(cfg)->port, 5432);
    assert_string_equal(OPTS(cfg)->database, "feast");
    assert_string_equal(OPTS(cfg)->user, "feast");
    assert_string_equal(OPTS(cfg)->password, "s3cr:et$x"); /* from the environment */
    assert_string_equal(OPTS(cfg)->db_schema, "public");
    assert_string_equal(OPTS(cfg)->sslmode, "require"); /* Feast's default */
    assert_null(OPTS(cfg)->sslrootcert_path);
    assert_int_equal(OPTS(cfg)->keepalives_idle, 0);
    ldr_config_destroy(&cfg);
  }
  static const char full[] =
      "project: p\nonline_store:\n  type: postgres\n  host: h\n  port: 6543\n  database: d\n"
      "  db_schema:\n  user: u\n  password: pw\n  sslmode: verify-full\n"
      "  sslrootcert_path: /ca.pem\n  sslcert_path: c.pem\n  sslkey_path: k.pem\n"
      "  keepalives_idle: 30\n";
  struct ldr_config cfg;
  struct ldr_config_error err;
  if (load_for(&ldr_postgres_schema, full, &cfg, &err) != 0) fail_msg("%s", err.msg);
  assert_int_equal(OPTS(cfg)->port, 6543);
  assert_null(OPTS(cfg)->db_schema); /* null: the user's schema, as in Feast */
  assert_string_equal(OPTS(cfg)->sslmode, "verify-full");
  assert_string_equal(OPTS(cfg)->sslrootcert_path, "/ca.pem");
  assert_string_equal(OPTS(cfg)->sslcert_path, "c.pem");
  assert_string_equal(OPTS(cfg)->sslkey_path, "k.pem");
  assert_int_equal(OPTS(cfg)->keepalives_idle, 30);
  ldr_config_destroy(&cfg);
}

static void errors(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"project: p\nonline_store:\n  type: postgres\n  host: h\n  user: u\n  password: p\n",
       "fs.yaml:3:3: online_store.database: required for the postgres store"},
      {"project: p\nonline_store: postgres\n",
       "fs.yaml:2:15: online_store.host: required for the postgres store"},
      {"project: p\nonline_store:\n  type: postgres\n  path: x.db\n",
       "fs.yaml:4:3: online_store: unknown key 'path' for the postgres store"},
      {"project: p\nonline_store:\n  type: postgres\n  sslmode: always\n",
       "fs.yaml:4:12: online_store.sslmode: 'always' is not one of: disable, allow, prefer, "
       "require"},
      {"project: p\nonline_store:\n  type: postgres\n  conn_type: shared\n",
       "fs.yaml:4:14: online_store.conn_type: 'shared' is not one of: singleton, pool"},
      {"project: p\nonline_store:\n  type: postgres\n  port: 99999\n",
       "fs.yaml:4:9: online_store.port: 99999 is out of range"},
      {"project: p\nonline_store:\n  type: postgres\n  host: h\n  database: d\n  user: u\n"
       "  password: p\n  db_schema: my-schema\n",
       "fs.yaml:3:3: online_store.db_schema: letters, digits and '_' only"},
      {"project: p\nonline_store:\n  type: postgres\n  vector_enabled: true\n",
       "fs.yaml:4:19: online_store.vector_enabled: only false is accepted"},
      {"project: p\n", "fs.yaml:1:1: online_store.type: required"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ldr_config cfg;
    struct ldr_config_error err;
    if (load_for(&ldr_postgres_schema, cases[i][0], &cfg, &err) == 0)
      fail_msg("case %zu loaded, want error '%s'", i, cases[i][1]);
    if (strncmp(err.msg, cases[i][1], strlen(cases[i][1])) != 0)
      fail_msg("case %zu:\n got  '%s'\n want '%s...'", i, err.msg, cases[i][1]);
    ldr_config_destroy(&cfg);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(feast_keys_and_defaults),
      cmocka_unit_test(errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
