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
             "  user: feast\n  password: ${PGPASS}\n  min_conn: 1\n  max_conn: 10\n"
             "  conn_type: singleton\n  vector_enabled: false\n",
             types[i]);
    struct ldr_config cfg;
    struct ldr_config_error err;
    if (load_for(&ldr_postgres_schema, text, &cfg, &err) != 0) fail_msg("case %zu: %s", i, err.msg);
    assert_string_equal(cfg.store.type_name, "postgres");
    assert_string_equal(OPTS(cfg)->host, "db.internal");
    assert_string_equal(OPTS(cfg)->port, "5432");
    assert_string_equal(OPTS(cfg)->read_from, "primary");
    assert_int_equal(OPTS(cfg)->prepared_statements, 1);
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
  assert_string_equal(OPTS(cfg)->port, "6543");
  assert_null(OPTS(cfg)->db_schema); /* null: the user's schema, as in Feast */
  assert_string_equal(OPTS(cfg)->sslmode, "verify-full");
  assert_string_equal(OPTS(cfg)->sslrootcert_path, "/ca.pem");
  assert_string_equal(OPTS(cfg)->sslcert_path, "c.pem");
  assert_string_equal(OPTS(cfg)->sslkey_path, "k.pem");
  assert_int_equal(OPTS(cfg)->keepalives_idle, 30);
  ldr_config_destroy(&cfg);
}

/* Scale-out (issue 15): libpq's multi-host form, and larder's keys of this store. */
static void hosts_and_replicas(void **state) {
  (void)state;
  static const struct {
    const char *hosts, *ports, *larder, *port, *read_from;
    int prepared;
  } cases[] = {
      {"db1,db2", "5432", "", "5432", "primary", 1},
      {"db1,db2,db3", "'5432, 5433 ,5434'", "", "5432,5433,5434", "primary", 1},
      {"db1,db2", "6432", "larder:\n  read_from: standby\n", "6432", "standby", 1},
      {"pgbouncer", "6432", "larder:\n  prepared_statements: false\n  read_from: any\n", "6432",
       "any", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[512];
    snprintf(text, sizeof text,
             "project: p\n%sonline_store:\n  type: postgres\n  host: %s\n  port: %s\n"
             "  database: d\n  user: u\n  password: p\n",
             cases[i].larder, cases[i].hosts, cases[i].ports);
    struct ldr_config cfg;
    struct ldr_config_error err;
    if (load_for(&ldr_postgres_schema, text, &cfg, &err) != 0) fail_msg("case %zu: %s", i, err.msg);
    assert_string_equal(OPTS(cfg)->host, cases[i].hosts);
    assert_string_equal(OPTS(cfg)->port, cases[i].port);
    assert_string_equal(OPTS(cfg)->read_from, cases[i].read_from);
    assert_int_equal(OPTS(cfg)->prepared_statements, cases[i].prepared);
    ldr_config_destroy(&cfg);
  }
  /* The servers as metrics label them: one port for all, or one each. */
  static const struct {
    const char *host, *port, *labels[4];
  } labels[] = {
      {"db1,db2", "5432", {"db1:5432", "db2:5432", NULL}},
      {"10.0.0.1,::1", "5432,5433", {"10.0.0.1:5432", "[::1]:5433", NULL}},
      {"db", "5432", {"db:5432", NULL}},
  };
  for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
    struct ldr_postgres_options o = {.host = (char *)labels[i].host,
                                     .port = (char *)labels[i].port};
    struct ldr_store_config cfg = {.schema = &ldr_postgres_schema, .opts = &o};
    char buf[64];
    size_t n = 0;
    for (; ldr_backend_host_label(&cfg, n, buf, sizeof buf); n++) {
      assert_non_null(labels[i].labels[n]);
      assert_string_equal(buf, labels[i].labels[n]);
    }
    assert_null(labels[i].labels[n]);
  }
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
      {"project: p\nonline_store:\n  type: postgres\n  conn_type: pool\n",
       "fs.yaml:4:14: online_store.conn_type: only 'singleton' is accepted (no connection pool: "
       "one connection per worker thread in larder)"},
      {"project: p\nonline_store:\n  type: postgres\n  max_conn: 20\n",
       "fs.yaml:4:13: online_store.max_conn: only 10 is accepted (no connection pool: one "
       "connection per worker thread in larder)"},
      {"project: p\nonline_store:\n  type: postgres\n  min_conn: 0\n",
       "fs.yaml:4:13: online_store.min_conn: only 1 is accepted"},
      {"project: p\nonline_store:\n  type: postgres\n  min_conn: many\n",
       "fs.yaml:4:13: online_store.min_conn: expected an integer"},
      {"project: p\nonline_store:\n  type: postgres\n  port: 99999\n",
       "fs.yaml:4:9: online_store.port: expected a port (1-65535) or ports separated by commas, "
       "not '99999'"},
      {"project: p\nonline_store:\n  type: postgres\n  port: 5432,,5433\n",
       "fs.yaml:4:9: online_store.port: expected a port (1-65535) or ports separated by commas, "
       "not '5432,,5433'"},
      {"project: p\nonline_store:\n  type: postgres\n  port: [5432]\n",
       "fs.yaml:4:9: online_store.port: expected a string"},
      {"project: p\nonline_store:\n  type: postgres\n  host: a,b\n  port: 1,2,3\n  database: d\n"
       "  user: u\n  password: p\n",
       "fs.yaml:3:3: online_store.port: 3 ports for 2 hosts (give one port for all, or one per "
       "host)"},
      {"project: p\nonline_store:\n  type: postgres\n  host: a,,b\n  database: d\n"
       "  user: u\n  password: p\n",
       "fs.yaml:3:3: online_store.host: a list of hosts separated by commas has an empty one"},
      {"project: p\nonline_store:\n  type: postgres\nlarder:\n  read_from: replica\n",
       "fs.yaml:5:14: larder.read_from: 'replica' is not one of: primary, standby, any"},
      {"project: p\nonline_store:\n  type: postgres\nlarder:\n  prepared_statements: no way\n",
       "fs.yaml:5:24: larder.prepared_statements: expected true or false"},
      {"project: p\nonline_store:\n  type: postgres\nlarder:\n  read_hosts: [a:1]\n",
       "fs.yaml:5:3: larder: unknown key 'read_hosts'"},
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
      cmocka_unit_test(hosts_and_replicas),
      cmocka_unit_test(errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
