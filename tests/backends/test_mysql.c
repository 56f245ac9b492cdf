/* backends/mysql.c: the online_store keys of Feast's MySQL store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "backends/mysql.h"
#include "tests/backends/store_options.h"

#define OPTS(cfg) ((const struct ldr_mysql_options *)(cfg).store.opts)

static void feast_keys_and_defaults(void **state) {
  (void)state;
  struct ldr_config cfg;
  struct ldr_config_error err;
  setenv("PGPASS", "s3cr:et$x", 1);
  if (load_for(&ldr_mysql_schema, "project: p\nonline_store: mysql\n", &cfg, &err) != 0)
    fail_msg("%s", err.msg);
  /* pymysql's defaults, which Feast's store ends up with. */
  assert_string_equal(OPTS(cfg)->host, "127.0.0.1");
  assert_int_equal(OPTS(cfg)->port, 3306);
  assert_string_equal(OPTS(cfg)->user, "test");
  assert_string_equal(OPTS(cfg)->password, "test");
  assert_string_equal(OPTS(cfg)->database, "feast");
  assert_null(OPTS(cfg)->ssl_ca);
  ldr_config_destroy(&cfg);
  static const char text[] =
      "project: p\nonline_store:\n  type: "
      "feast.infra.online_stores.mysql_online_store.mysql.MySQLOnlineStore\n"
      "  host: db\n  port: 3307\n  user: u\n  password: ${PGPASS}\n  database: d\n"
      "  batch_write: false\n  batch_size: null\n  ssl_ca: /ca.pem\n  ssl_cert: c.pem\n"
      "  ssl_key: k.pem\n";
  if (load_for(&ldr_mysql_schema, text, &cfg, &err) != 0) fail_msg("%s", err.msg);
  assert_string_equal(cfg.store.type_name, "mysql");
  assert_string_equal(OPTS(cfg)->host, "db");
  assert_int_equal(OPTS(cfg)->port, 3307);
  assert_string_equal(OPTS(cfg)->password, "s3cr:et$x");
  assert_string_equal(OPTS(cfg)->database, "d");
  assert_string_equal(OPTS(cfg)->ssl_ca, "/ca.pem");
  assert_string_equal(OPTS(cfg)->ssl_key, "k.pem");
  ldr_config_destroy(&cfg);
  assert_int_equal(load_for(&ldr_mysql_schema,
                            "project: p\nonline_store:\n  type: mysql\n  batch_write: sometimes\n",
                            &cfg, &err),
                   -1);
  assert_string_equal(err.msg, "fs.yaml:4:16: online_store.batch_write: expected true or false");
  ldr_config_destroy(&cfg);
  /* Feast's batching settings only at their defaults (DESIGN §5): larder would not do them. */
  static const char *const refused[][2] = {
      {"  batch_write: true\n",
       "fs.yaml:4:16: online_store.batch_write: only false is accepted (batches are always "
       "written with multi-row statements in larder)"},
      {"  batch_size: 100\n",
       "fs.yaml:4:15: online_store.batch_size: only null is accepted (batches are always written "
       "with multi-row statements in larder)"},
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    char bad[160];
    snprintf(bad, sizeof bad, "project: p\nonline_store:\n  type: mysql\n%s", refused[i][0]);
    assert_int_equal(load_for(&ldr_mysql_schema, bad, &cfg, &err), -1);
    assert_string_equal(err.msg, refused[i][1]);
    ldr_config_destroy(&cfg);
  }
}

/* larder.read_hosts (issue 15): replicas that serve reads, checked entry by entry. */
static void read_hosts(void **state) {
  (void)state;
  struct ldr_config cfg;
  struct ldr_config_error err;
  if (load_for(&ldr_mysql_schema, "project: p\nonline_store: mysql\n", &cfg, &err) != 0)
    fail_msg("%s", err.msg);
  assert_null(OPTS(cfg)->read_hosts);
  ldr_config_destroy(&cfg);
  static const char text[] = "project: p\nonline_store:\n  type: mysql\n  host: primary\n"
                             "larder:\n  read_hosts: [replica1:3306, '[::1]:3307']\n";
  if (load_for(&ldr_mysql_schema, text, &cfg, &err) != 0) fail_msg("%s", err.msg);
  assert_string_equal(OPTS(cfg)->read_hosts[0], "replica1:3306");
  assert_string_equal(OPTS(cfg)->read_hosts[1], "[::1]:3307");
  assert_null(OPTS(cfg)->read_hosts[2]);
  /* The servers as metrics label them: the primary, then the replicas. */
  static const char *const want[] = {"primary:3306", "replica1:3306", "[::1]:3307"};
  char buf[64];
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(ldr_backend_host_label(&cfg.store, i, buf, sizeof buf), 1);
    assert_string_equal(buf, want[i]);
  }
  assert_int_equal(ldr_backend_host_label(&cfg.store, 3, buf, sizeof buf), 0);
  ldr_config_destroy(&cfg);
  static const char *const cases[][2] = {
      {"project: p\nonline_store: mysql\nlarder:\n  read_hosts: replica:3306\n",
       "fs.yaml:4:15: larder.read_hosts: expected a list of host:port"},
      {"project: p\nonline_store: mysql\nlarder:\n  read_hosts: [a:1, replica]\n",
       "fs.yaml:4:21: larder.read_hosts[1]: expected host:port, such as 10.0.0.2:3306, not "
       "'replica'"},
      {"project: p\nonline_store: mysql\nlarder:\n  read_hosts: [a:99999]\n",
       "fs.yaml:4:16: larder.read_hosts[0]: expected host:port"},
      {"project: p\nonline_store: mysql\nlarder:\n  read_hosts: [[a]]\n",
       "fs.yaml:4:16: larder.read_hosts[0]: expected a string"},
      {"project: p\nonline_store: mysql\nlarder:\n  read_from: standby\n",
       "fs.yaml:4:3: larder: unknown key 'read_from'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (load_for(&ldr_mysql_schema, cases[i][0], &cfg, &err) == 0) fail_msg("case %zu loaded", i);
    if (strncmp(err.msg, cases[i][1], strlen(cases[i][1])) != 0)
      fail_msg("case %zu:\n got  '%s'\n want '%s...'", i, err.msg, cases[i][1]);
    ldr_config_destroy(&cfg);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(feast_keys_and_defaults),
      cmocka_unit_test(read_hosts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
